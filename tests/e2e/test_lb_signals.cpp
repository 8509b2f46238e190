// End-to-end: the signal table of a real userkey-lb process. SIGUSR1 reopens
// --log-file and --access-log-file (logrotate's `create` + `postrotate kill
// -USR1`), SIGQUIT drains like SIGTERM, and the signals nginx and HAProxy
// give other meanings (SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU) are logged and
// ignored: the process stays up and serves.
#include <doctest/doctest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "support/httplib_upstream.hpp"
#include "support/lb_process.hpp"
#include "support/process.hpp"
#include "userkey/core/signal_watcher.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;

namespace {

// An upstream that answers GET /slow after `delay` (counting the requests
// it holds in `now`) and anything else at once.
struct HoldingUpstream {
  explicit HoldingUpstream(std::chrono::milliseconds delay)
      : http([this, delay](httplib::Server& server) {
          server.new_task_queue = [] { return new httplib::ThreadPool(8); };  // owned by httplib
          server.Get(".*", [this, delay](const httplib::Request& req, httplib::Response& res) {
            if (req.path == "/slow") {
              ++now;
              std::this_thread::sleep_for(delay);
              --now;
            }
            res.set_content("{\"ok\":true}", "application/json");
          });
        }) {}
  std::atomic<int> now{0};
  HttplibUpstream http;  // last: stops before the counter goes
};

}  // namespace

TEST_CASE("lb SIGUSR1 after a rename: the process lives, later lines go to new files at the configured paths") {
  for (const std::string format : {"text", "json"}) {
    CAPTURE(format);
    HoldingUpstream up(0ms);
    TempDir logs;
    const auto log_path = logs.path() / "lb.log";
    const auto access_path = logs.path() / "access.log";
    LbProcess lb({"--upstream", up.http.upstream(), "--no-active-health", "--access-log-format", format,
                  "--log-file", log_path.string(), "--access-log-file", access_path.string()});
    REQUIRE(http_get(lb.port, "/before").status == 200);
    REQUIRE(eventually([&] { return file_contains(access_path, "/before"); }, 3s));
    CHECK(eventually([&] { return file_contains(log_path, "listening on http://127.0.0.1:"); }, 3s));
    CHECK_FALSE(file_contains(log_path, "/before"));  // access lines have a file of their own

    // logrotate: move the files away, then kill -USR1.
    std::filesystem::rename(log_path, logs.path() / "lb.log.1");
    std::filesystem::rename(access_path, logs.path() / "access.log.1");
    lb.proc.signal(SIGUSR1);
    REQUIRE_MESSAGE(eventually([&] { return file_contains(log_path, "SIGUSR1: log files reopened"); }, 3s),
                    read_text_file(logs.path() / "lb.log.1"));
    REQUIRE(http_get(lb.port, "/after").status == 200);
    REQUIRE(eventually([&] { return file_contains(access_path, "/after"); }, 3s));
    CHECK(lb.proc.running());
    CHECK_FALSE(file_contains(access_path, "/before"));
    CHECK(file_contains(logs.path() / "access.log.1", "/before"));
    CHECK_FALSE(file_contains(logs.path() / "access.log.1", "/after"));
    CHECK_FALSE(file_contains(logs.path() / "lb.log.1", "SIGUSR1"));

    lb.proc.signal(SIGTERM);
    const auto rc = lb.proc.wait(15s);
    REQUIRE(rc.has_value());
    CHECK(*rc == 0);
    CHECK(eventually([&] { return file_contains(log_path, "stopped"); }, 3s));  // written before the exit
  }
}

TEST_CASE("lb SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU: logged and ignored, the lb stays up and serves") {
  HoldingUpstream up(0ms);
  LbProcess lb({"--upstream", up.http.upstream(), "--no-active-health"});
  for (const int sig : {SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU}) {
    CAPTURE(sig);
    lb.proc.signal(sig);
    CHECK(eventually([&] { return lb.proc.log().find(std::string(userkey::signal_name(sig)) + " ignored") != std::string::npos; },
                     3s));
    CHECK(lb.proc.running());
    CHECK(http_get(lb.port, "/").status == 200);
  }
}

TEST_CASE("lb SIGQUIT drains like SIGTERM: an in-flight slow request completes, then exit 0") {
  HoldingUpstream up(500ms);
  LbProcess lb({"--upstream", up.http.upstream(), "--no-active-health", "--access-log", "false"});
  int status = 0;
  std::thread client([&] { status = http_get(lb.port, "/slow", {}, 10s).status; });
  const bool held = eventually([&] { return up.now.load() == 1; }, 5s);  // the request is at the upstream
  lb.proc.signal(SIGQUIT);
  client.join();
  REQUIRE(held);
  CHECK(status == 200);
  const auto rc = lb.proc.wait(15s);
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(lb.proc.log().find("SIGQUIT received, draining") != std::string::npos);
}

TEST_CASE("lb --log-file that cannot be opened: a clear message and exit 2") {
  TempDir dir;
  ChildProcess proc({USERKEY_LB_BIN, "--listen", "127.0.0.1:" + std::to_string(free_port()), "--admin", "off",
                     "--upstream", "127.0.0.1:1", "--log-file", (dir.path() / "missing" / "lb.log").string()},
                    dir.path() / "out.log");
  const auto rc = proc.wait(10s);
  REQUIRE(rc.has_value());
  CHECK(*rc == 2);
  CHECK(proc.log().find("cannot open log file") != std::string::npos);
}
