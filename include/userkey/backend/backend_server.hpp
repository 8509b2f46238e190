// BackendServer: serves a Router over HTTP/1.1 with cpp-httplib.
//
// Beyond wiring, it fixes the limits of Debian's compiled cpp-httplib 0.11:
// the listen backlog is raised from 5 to `backlog` (a burst of new
// connections would otherwise overflow the accept queue and stall clients
// for a SYN retransmit), a keep-alive connection serves up to
// `keep_alive_max_requests` requests instead of 5, and the worker pool has
// `threads` threads (cpp-httplib holds one thread per open connection, so
// size it above the load balancer's upstream connection pool).
//
// Every request goes through the Router (including unknown paths and
// methods) and, when access logging is on, produces one log line: method,
// target, status, latency, peer. Nothing else of the request is logged.
//
// Thread-safety: run() blocks the calling thread; stop() may be called from
// any thread (e.g. a signal watcher) and lets in-flight requests finish.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "userkey/backend/router.hpp"

namespace spdlog {
class logger;
}

namespace userkey {

struct BackendServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5001;  ///< 0 = any free port (see BackendServer::port())
  std::size_t threads = 128;
  std::size_t keep_alive_max_requests = 10'000;
  int keep_alive_timeout_s = 5;
  int read_timeout_s = 5;
  int backlog = 4096;
  bool access_log = true;
};

class BackendServer {
public:
  BackendServer(BackendServerConfig config, std::shared_ptr<spdlog::logger> log);
  ~BackendServer();
  BackendServer(const BackendServer&) = delete;
  BackendServer& operator=(const BackendServer&) = delete;

  /// Binds and listens. Returns false with a message in `error` when the
  /// address is taken or invalid.
  bool bind(std::string* error);
  /// The bound port (after bind()).
  std::uint16_t port() const { return bound_port_; }
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
  std::unique_ptr<Server> server_;
  std::uint16_t bound_port_ = 0;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_requested_{false};
};

}  // namespace userkey
