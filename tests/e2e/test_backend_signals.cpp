// End-to-end: the signal table of a real userkey-backend process. SIGUSR1
// reopens --log-file (logrotate's `create` + `postrotate kill -USR1`),
// SIGQUIT stops gracefully like SIGTERM, and the signals nginx and HAProxy
// give other meanings (SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU) are logged and
// ignored: the process stays up and serves.
#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "support/backend_process.hpp"
#include "support/ferretdb.hpp"
#include "support/process.hpp"
#include "userkey/core/signal_watcher.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;

TEST_CASE("backend SIGUSR1 after a rename: the process lives, later lines go to a new file at the configured path") {
  TempDir logs;
  const auto log_path = logs.path() / "backend.log";
  BackendProcess b({"--dump", dump_dir().string(), "--log-file", log_path.string()});
  REQUIRE(http_get(b.port, "/?user_id=1").status == 200);
  REQUIRE(eventually([&] { return file_contains(log_path, "GET /?user_id=1 200"); }, 3s));
  CHECK(b.proc.log().find("GET /?user_id=1") == std::string::npos);  // not on stderr

  std::filesystem::rename(log_path, logs.path() / "backend.log.1");
  b.proc.signal(SIGUSR1);
  REQUIRE_MESSAGE(eventually([&] { return file_contains(log_path, "SIGUSR1: log file reopened"); }, 3s),
                  read_text_file(logs.path() / "backend.log.1"));
  REQUIRE(http_get(b.port, "/?user_id=2").status == 200);
  REQUIRE(eventually([&] { return file_contains(log_path, "GET /?user_id=2 200"); }, 3s));
  CHECK(b.proc.running());
  CHECK_FALSE(file_contains(log_path, "user_id=1"));
  CHECK(file_contains(logs.path() / "backend.log.1", "GET /?user_id=1 200"));
  CHECK_FALSE(file_contains(logs.path() / "backend.log.1", "user_id=2"));
}

TEST_CASE("backend SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU: logged and ignored, the backend stays up and serves") {
  BackendProcess b({"--dump", dump_dir().string(), "--access-log", "false"});
  for (const int sig : {SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU}) {
    CAPTURE(sig);
    b.proc.signal(sig);
    CHECK(eventually(
        [&] { return b.proc.log().find(std::string(userkey::signal_name(sig)) + " ignored") != std::string::npos; },
        3s));
    CHECK(b.proc.running());
    CHECK(http_get(b.port, "/?user_id=1").status == 200);
  }
}

TEST_CASE("backend SIGQUIT stops like SIGTERM: an in-flight request (waiting on a hung database) is answered, exit 0") {
  FerretDb db;
  const std::map<std::string, std::string> creds{{"mongo_user", FerretDb::kUser}, {"mongo_pass", FerretDb::kPassword}};
  BackendProcess b({"--mongo-uri", db.uri(), "--mongo-timeout", "800ms"}, creds);
  REQUIRE(http_get(b.port, "/?user_id=5").status == 400);  // connected (nothing restored: unknown id)
  db.pause();  // lookups now take the full timeout before answering 503
  int status = 0;
  std::thread client([&] { status = http_get(b.port, "/?user_id=1", {}, 10s).status; });
  std::this_thread::sleep_for(200ms);  // the request is in flight (if not, it is refused: status 0)
  b.proc.signal(SIGQUIT);
  client.join();
  CHECK(status == 503);  // answered, not dropped
  const auto rc = b.proc.wait(15s);
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(b.proc.log().find("SIGQUIT received") != std::string::npos);
}
