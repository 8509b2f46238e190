// ProxyServer: the event-driven HTTP/1.1 reverse proxy (Boost.Asio +
// Boost.Beast, C++20 coroutines).
//
// Request path: accept (IP filter, per-IP connection cap) -> read the request
// head under a deadline (431 / 413 / 400 on oversize or ambiguous framing) ->
// per-IP token bucket (429) -> the BalancingPolicy chooses among healthy,
// untried upstreams -> a pooled keep-alive upstream connection (bounded by
// max_conns, with a bounded wait queue) -> response relayed to the client.
// Idempotent requests that could not connect or got no response are retried
// on a different upstream; never after a response byte reached the client.
//
// TLS: with tls.listen, a second listener whose connections are served the
// same way over TLS (1.2 / 1.3, ALPN http/1.1, ticket resumption), with
// X-Forwarded-Proto: https; its certificate and key are read once, when the
// ProxyServer is built. Either listener may be off, not both.
//
// Threads: `threads` event loops. The first accepts and hands connections to
// each loop in turn; each loop has its own upstream connection pools, so the
// request path takes no lock. (One listening socket and no SO_REUSEPORT: a
// second process can never silently share the port.)
// Upstream state (health, in-flight counts, metrics) is shared through
// atomics.
//
// Upstream names are resolved at construction, on reload() and every
// resolve_interval in a background thread; an upstream whose address changed
// gets fresh state (health, pooled connections) under the same name.
//
// Lifecycle: start() binds and runs the loops in background threads;
// reload() swaps upstreams and policy without dropping connections;
// drain() stops accepting and waits for in-flight requests (bounded by
// drain_timeout); stop() ends everything at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "userkey/lb/balancing_policy.hpp"
#include "userkey/lb/proxy_config.hpp"

namespace spdlog {
class logger;
}

namespace userkey::lb {

/// Resolves an upstream host name to IP address texts, best first (only the
/// first is used); empty or throwing = not resolvable. IP literals never
/// reach it. Called from the constructor, reload() and the background
/// re-resolution thread, never from an event loop.
using HostResolver = std::function<std::vector<std::string>(const std::string& host, std::uint16_t port)>;

/// The system resolver (getaddrinfo): the default HostResolver.
std::vector<std::string> system_resolve(const std::string& host, std::uint16_t port);

class ProxyServer {
public:
  /// Throws std::invalid_argument for an unknown policy, a bad hash key or
  /// CIDR, an empty upstream list or an upstream name that does not resolve;
  /// ConfigError (userkey/core/settings.hpp) when tls.listen is set and
  /// tls.cert / tls.key cannot be read, are not PEM, or do not belong
  /// together; std::system_error when access_log_file cannot be opened.
  /// `resolver` defaults to system_resolve.
  ProxyServer(ProxyConfig config, PolicyRegistry registry, std::shared_ptr<spdlog::logger> log,
              HostResolver resolver = {});
  ~ProxyServer();
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  /// Raises the process's soft RLIMIT_NOFILE to its hard limit (logged),
  /// binds the listeners (and admin endpoint) and starts serving. Returns
  /// false with a message when an address cannot be bound.
  bool start(std::string* error);
  /// The bound proxy / admin ports (after start()); 0 for one that is off.
  std::uint16_t port() const;
  std::uint16_t admin_port() const;
  /// The bound TLS listener's port (after start()); 0 without one.
  std::uint16_t tls_port() const;

  /// Replaces upstreams, policy, hash key, health, retry and resolve_interval
  /// settings (other fields are ignored). Upstreams whose address is
  /// unchanged keep their health and pooled connections. Throws
  /// std::invalid_argument like the constructor, leaving the running
  /// configuration untouched.
  void reload(const ProxyConfig& config);

  /// Opens again the log files the server writes to (those of its logger
  /// made by make_logger with a file, and access_log_file), after logrotate
  /// moved them: see reopen_log_files() (userkey/core/logging.hpp). Safe
  /// while serving, from any thread. False with `error` set when one cannot
  /// be opened (it keeps writing to the old one).
  bool reopen_logs(std::string* error = nullptr);

  /// Stops accepting, lets in-flight requests finish (up to drain_timeout),
  /// closes the WebSocket tunnels still open, then stops. Blocks until done.
  void drain();
  /// Stops at once. Blocks until the loops have exited.
  void stop();

  /// Prometheus text exposition of the proxy's metrics.
  std::string metrics_text() const;
  /// JSON: upstreams with health, in-flight, counters; policy; settings.
  std::string status_json() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace userkey::lb
