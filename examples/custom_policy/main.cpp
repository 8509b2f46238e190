// custom_policy: a balancing policy written outside the library, registered
// by name and driven by the library's real proxy engine.
//
// Starts three tiny upstreams (alpha, beta, gamma) in this process, puts a
// userkey::lb::ProxyServer using the "first_healthy" policy in front of them,
// and checks, through real HTTP requests, that
//   1. with every upstream up, alpha (the primary) answers everything;
//   2. with alpha stopped, beta answers everything (no request fails: the
//      proxy retries the failed attempt and passive health takes alpha out);
//   3. once alpha is back and its fail_timeout has passed, alpha answers again.
// Exits 0 when all three hold, 1 otherwise. `--self-test` is accepted (and is
// what it always does) so run_all.sh can call every example the same way.
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "userkey/lb/balancing_policy.hpp"
#include "userkey/lb/proxy_config.hpp"
#include "userkey/lb/proxy_server.hpp"
#include "userkey/core/logging.hpp"

namespace {

using namespace std::chrono_literals;
namespace lb = userkey::lb;

/// first_healthy: "primary with fallback". Upstreams are listed in order of
/// preference; every request goes to the first one that is eligible (healthy
/// and not already tried for this request). The others only take traffic
/// while everything before them is down, and traffic returns to the primary
/// as soon as health lets it back in. Useful for an active/standby pair, or
/// to keep a warm cache on one backend.
///
/// Stateless, so choose() is trivially safe to call concurrently. O(n).
class FirstHealthyPolicy final : public lb::BalancingPolicy {
public:
  static constexpr std::string_view kName = "first_healthy";

  std::string_view name() const override { return kName; }

  std::optional<std::size_t> choose(const lb::Candidates& c, const lb::RequestInfo& /*req*/) override {
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (c.eligible(i)) return i;
    }
    return std::nullopt;
  }
};

/// A tiny HTTP upstream answering every GET with its own name, served from a
/// background thread. Binds in the constructor (port 0 = kernel's choice;
/// throws std::runtime_error when it cannot bind); stops and joins in the
/// destructor.
class NameServer {
public:
  explicit NameServer(std::string name, int port = 0) : name_(std::move(name)) {
    server_.Get(".*", [this](const httplib::Request&, httplib::Response& res) { res.set_content(name_, "text/plain"); });
    port_ = port == 0 ? server_.bind_to_any_port("127.0.0.1") : (server_.bind_to_port("127.0.0.1", port) ? port : -1);
    if (port_ < 0) throw std::runtime_error("cannot bind " + name_);
    loop_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~NameServer() {
    server_.stop();
    loop_.join();
  }
  NameServer(const NameServer&) = delete;
  NameServer& operator=(const NameServer&) = delete;

  int port() const { return port_; }

private:
  std::string name_;
  httplib::Server server_;
  int port_ = -1;
  std::thread loop_;
};

/// Sends `n` requests through the proxy and checks that `expected` answered
/// all of them. Prints the distribution.
bool expect_all_from(std::uint16_t proxy_port, const char* phase, int n, const std::string& expected) {
  httplib::Client client("127.0.0.1", proxy_port);
  client.set_keep_alive(true);
  std::map<std::string, int> answered_by;
  for (int i = 0; i < n; ++i) {
    auto res = client.Get("/?user_id=" + std::to_string(i + 1));
    ++answered_by[res && res->status == 200 ? res->body : "(failed)"];
  }
  const bool ok = answered_by[expected] == n;
  std::printf("%-4s %-22s", ok ? "ok" : "FAIL", phase);
  for (const auto& [who, count] : answered_by) {
    if (count > 0) std::printf("  %s=%d", who.c_str(), count);
  }
  std::printf("   (expected %s=%d)\n", expected.c_str(), n);
  return ok;
}

lb::ProxyConfig proxy_config(const std::vector<int>& upstream_ports) {
  lb::ProxyConfig config;
  config.policy = std::string(FirstHealthyPolicy::kName);
  config.listen_host = "127.0.0.1";
  config.listen_port = 0;
  config.admin_host = "";  // no admin endpoint
  config.access_log = false;
  config.active.enabled = false;  // passive health is enough here, and deterministic
  config.passive = {.max_fails = 1, .fail_timeout = 300ms};
  for (int port : upstream_ports) config.upstreams.push_back({.host = "127.0.0.1", .port = static_cast<std::uint16_t>(port)});
  return config;
}

int run() {
  constexpr int kRequests = 20;
  auto alpha = std::make_unique<NameServer>("alpha");
  const NameServer beta("beta");
  const NameServer gamma("gamma");
  const int alpha_port = alpha->port();

  lb::PolicyRegistry registry = lb::PolicyRegistry::with_builtins();
  registry.add(std::string(FirstHealthyPolicy::kName),
               [](const lb::PolicyContext&) { return std::make_unique<FirstHealthyPolicy>(); });
  lb::ProxyServer proxy(proxy_config({alpha_port, beta.port(), gamma.port()}), std::move(registry),
                        userkey::make_logger("custom_policy", "error"));
  std::string error;
  if (!proxy.start(&error)) {
    std::fprintf(stderr, "proxy: %s\n", error.c_str());
    return 1;
  }
  std::printf("proxy on 127.0.0.1:%u, policy %s, upstreams alpha beta gamma\n", proxy.port(),
              std::string(FirstHealthyPolicy::kName).c_str());

  bool ok = expect_all_from(proxy.port(), "all up:", kRequests, "alpha");
  alpha.reset();  // the primary goes away
  ok = expect_all_from(proxy.port(), "alpha stopped:", kRequests, "beta") && ok;
  alpha = std::make_unique<NameServer>("alpha", alpha_port);
  std::this_thread::sleep_for(400ms);  // > fail_timeout: passive health lets alpha back in
  ok = expect_all_from(proxy.port(), "alpha restarted:", kRequests, "alpha") && ok;

  proxy.stop();
  std::puts(ok ? "custom_policy self-test passed" : "custom_policy self-test FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view arg = argc > 1 ? argv[1] : "";
  if (!arg.empty() && arg != "--self-test") {
    std::fprintf(stderr, "usage: %s [--self-test]\n", argv[0]);
    return 2;
  }
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custom_policy: %s\n", e.what());
    return 1;
  }
}
