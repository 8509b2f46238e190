// BackendServer: serves a Router over HTTP/1.1 on an event loop.
//
// One event-loop thread (Boost.Asio + Beast, C++20 coroutines) owns every
// connection: it accepts, reads requests and writes answers, and an idle
// keep-alive connection costs it a descriptor and a little memory, not a
// thread. So a thousand open keep-alive clients starve nobody: each request
// is read as it arrives, and a new connection is accepted at once. Only
// repository work leaves the loop: lookups (`/`) run on a pool of `threads`
// workers (a MongoDB lookup blocks for up to its timeout), and /readyz checks
// on a thread of their own, where concurrent probes share one check, so a
// probe never queues behind lookups. /healthz, 404 and 405 are answered on
// the loop itself.
//
// Limits: the listen backlog is `backlog`; a keep-alive connection serves up
// to `keep_alive_max_requests` requests and may idle `keep_alive_timeout_s`
// between them; a request must arrive within `read_timeout_s`. A malformed
// request is answered 400, a request target over 8 KiB 414, a head over
// 16 KiB 431, a body over 64 KiB 413, in the router's JSON error shape
// (Router::protocol_error). TCP_NODELAY is on; the listener sets SO_REUSEADDR
// but never SO_REUSEPORT, so a port already in use is a bind() error.
//
// Every request the router answers produces, when access logging is on, one
// log line: method, target, status, latency, peer. Nothing else of the
// request is logged.
//
// Metrics: every answer is counted by status, every lookup's latency goes
// into a histogram (BackendMetrics, metrics()), and `GET /metrics` answers
// the Prometheus page with those and the repository's own counters
// (UserRepository::collect_stats). It is served on the listen address, or,
// when `admin` is set, only on that second address (which answers /metrics,
// /healthz and /readyz, 404 to anything else); the listen address then answers
// /metrics like any unknown path (the router's 404). The page is rendered on
// the event loop.
//
// Thread-safety: run() blocks the calling thread; stop() may be called from
// any thread (e.g. a signal watcher): it stops accepting, closes idle
// connections, and lets requests in progress finish; run() then returns.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "userkey/backend/backend_metrics.hpp"
#include "userkey/backend/router.hpp"
#include "userkey/core/config_values.hpp"

namespace spdlog {
class logger;
}

namespace userkey {

struct BackendServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5001;  ///< 0 = any free port (see BackendServer::port())
  std::size_t threads = 128;  ///< workers for repository lookups (not per connection)
  std::size_t keep_alive_max_requests = 10'000;
  int keep_alive_timeout_s = 5;
  int read_timeout_s = 5;
  int backlog = 4096;
  bool access_log = true;
  /// A lookup not answered within this (waiting for a worker included) is a
  /// 503 + Retry-After; 0 = no limit. Set it a little above the store's own
  /// timeout, so that a hung store is answered in time however many lookups
  /// queue behind the `threads` workers.
  std::chrono::milliseconds lookup_timeout{0};
  /// Where /metrics is served instead of the listen address (port 0: any
  /// free port, see BackendServer::admin_port()); unset: on the listen address.
  std::optional<HostPort> admin;
};

class BackendServer {
public:
  BackendServer(BackendServerConfig config, std::shared_ptr<spdlog::logger> log);
  ~BackendServer();
  BackendServer(const BackendServer&) = delete;
  BackendServer& operator=(const BackendServer&) = delete;

  /// Binds and listens (on the admin address too, when set). Returns false
  /// with a message in `error` when an address is taken or invalid.
  bool bind(std::string* error);
  /// The bound port (after bind()).
  std::uint16_t port() const { return bound_port_; }
  /// The bound admin port (after bind(), when config.admin is set), else 0.
  std::uint16_t admin_port() const { return admin_port_; }
  /// What this server has counted (also while it runs).
  const BackendMetrics& metrics() const { return metrics_; }
  /// Serves `router` until stop(). Requires a successful bind() (so the
  /// router can be given the bound port, e.g. after binding port 0).
  /// Returns false when serving failed (not when stopped); returns at once if
  /// stop() came first.
  bool run(std::shared_ptr<const Router> router);
  /// Stops accepting, finishes in-flight requests; run() then returns.
  /// Safe before, during or after run().
  void stop();

private:
  class Server;
  std::shared_ptr<const Router> router_;
  BackendServerConfig config_;
  std::shared_ptr<spdlog::logger> log_;
  BackendMetrics metrics_;  // before server_, which counts into it
  std::unique_ptr<Server> server_;
  std::uint16_t bound_port_ = 0;
  std::uint16_t admin_port_ = 0;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_requested_{false};
};

/// Raises this process's soft RLIMIT_NOFILE to its hard limit, as nginx's
/// worker_rlimit_nofile does: every open client connection holds a
/// descriptor, and the usual soft limit (1024) is below what an event loop
/// can hold. Returns the soft limit in force afterwards; `error`, when given,
/// receives why it could not be raised (left empty otherwise).
std::uint64_t raise_open_file_limit(std::string* error = nullptr);

}  // namespace userkey
