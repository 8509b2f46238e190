// Test support: a real userkey-lb process on free 127.0.0.1 ports (proxy and
// admin), and small in-process upstreams and client loads to put it under.
// Everything is stopped and joined by its destructor.
#pragma once

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/httplib_upstream.hpp"
#include "support/process.hpp"

namespace userkey::test {

/// userkey-lb on free ports; `args` follow --listen and --admin; `prefix`
/// comes before the binary (e.g. a shell that lowers a limit, then execs).
/// USERKEY_TEST_LB_BIN in the environment names another binary (to measure
/// an older build with the same test). The constructor waits until it
/// accepts connections.
struct LbProcess {
  TempDir dir;
  std::uint16_t port = free_port();
  std::uint16_t admin = free_port();
  ChildProcess proc;

  explicit LbProcess(const std::vector<std::string>& args, const std::vector<std::string>& prefix = {}) {
    std::vector<std::string> argv = prefix;
    const char* other = std::getenv("USERKEY_TEST_LB_BIN");
    for (const std::string& a : {std::string(other != nullptr && *other != '\0' ? other : USERKEY_LB_BIN), std::string("--listen"),
                                 "127.0.0.1:" + std::to_string(port), std::string("--admin"),
                                 "127.0.0.1:" + std::to_string(admin)})
      argv.push_back(a);
    argv.insert(argv.end(), args.begin(), args.end());
    proc = ChildProcess(argv, dir.path() / "lb.log");
    REQUIRE_MESSAGE(wait_for_port(port, std::chrono::seconds(10)), proc.log());
  }
  std::string metrics() const { return http_get(admin, "/metrics").body; }

  /// The value of one metric line (`name` with its labels), or -1.
  long long metric(const std::string& name) const {
    const std::string text = metrics();
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(text.substr(at + name.size() + 2));
  }

  /// Resident set size of the process, KiB (VmRSS in /proc/PID/status), or -1.
  long rss_kib() const {
    std::ifstream status("/proc/" + std::to_string(proc.pid()) + "/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
  }

  nlohmann::json status() const {
    const auto r = http_get(admin, "/status");
    return r.status == 200 ? nlohmann::json::parse(r.body) : nlohmann::json{};
  }
  nlohmann::json upstream_status(const std::string& address) const {
    const auto st = status();
    if (st.contains("upstreams"))
      for (auto& u : st["upstreams"])
        if (u["address"] == address) return u;
    return {};
  }
};

/// An in-process HTTP upstream: GET /slow sleeps `slow` before answering,
/// every other GET answers at once with its name (after `delay`).
struct FakeUpstream {
  explicit FakeUpstream(std::string n, std::chrono::milliseconds slow = std::chrono::milliseconds(2000),
                        std::chrono::milliseconds delay = std::chrono::milliseconds(0))
      : name(std::move(n)), http([this, slow, delay](httplib::Server& server) {
          server.new_task_queue = [] { return new httplib::ThreadPool(16); };  // owned by httplib
          server.Get(".*", [this, slow, delay](const httplib::Request& req, httplib::Response& res) {
            std::this_thread::sleep_for(req.path == "/slow" ? slow : delay);
            ++served;
            res.set_content("{\"backend\":\"" + name + "\"}", "application/json");
          });
        }) {}
  std::string upstream() const { return http.upstream(); }

  std::string name;
  std::atomic<int> served{0};
  HttplibUpstream http;  // last: stops before the rest goes
};

/// `clients` threads sending GET `target` on keep-alive connections until
/// stop() (or each has sent `per_client`), counting what they get back.
class ClientLoad {
public:
  ClientLoad(std::uint16_t port, int clients, int per_client, std::string target = "/")
      : target_(std::move(target)) {
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back([this, port, per_client] {
        httplib::Client cli("127.0.0.1", port);
        cli.set_keep_alive(true);
        cli.set_connection_timeout(std::chrono::seconds(5));
        cli.set_read_timeout(std::chrono::seconds(10));
        for (int i = 0; i < per_client && !stop_; ++i) {
          auto r = cli.Get(target_.c_str());
          std::lock_guard lock(mu_);
          if (r && r->status == 200) ++ok_;
          else if (r) ++statuses_[r->status];
          else ++errors_[httplib::to_string(r.error())];
        }
      });
    }
  }
  ~ClientLoad() { join(); }
  ClientLoad(const ClientLoad&) = delete;
  ClientLoad& operator=(const ClientLoad&) = delete;

  void stop() { stop_ = true; }
  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  int ok() const {
    std::lock_guard lock(mu_);
    return ok_;
  }
  /// Non-200 answers by status and failures by httplib error, as text.
  std::string failures() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (auto& [s, n] : statuses_) out += "status " + std::to_string(s) + ": " + std::to_string(n) + "; ";
    for (auto& [e, n] : errors_) out += e + ": " + std::to_string(n) + "; ";
    return out;
  }
  int failed() const {
    std::lock_guard lock(mu_);
    int n = 0;
    for (auto& [s, c] : statuses_) n += c;
    for (auto& [e, c] : errors_) n += c;
    return n;
  }
  /// Failures of one httplib error kind ("Connection", "Read", ...).
  int errors(const std::string& kind) const {
    std::lock_guard lock(mu_);
    auto it = errors_.find(kind);
    return it == errors_.end() ? 0 : it->second;
  }

private:
  std::string target_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  int ok_ = 0;
  std::map<int, int> statuses_;
  std::map<std::string, int> errors_;
  std::vector<std::thread> threads_;
};

}  // namespace userkey::test
