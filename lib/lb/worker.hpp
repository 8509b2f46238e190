// One event loop and what lives on it.
//
// Owns: the io_context (run by one thread, so its reactor runs without I/O
// locking), the loop's upstream pools and their idle sweep, its router, its
// request id generator and access log (per loop: no lock on either), its
// client sessions (started here, or adopted from a descriptor another loop
// accepted) and the sweep that enforces their deadlines (one timer per loop,
// none per connection) and, on the loop that asks for it, the sweep of idle
// rate-limit buckets.
//
// Leaves to others: accepting (listener), a session's work
// (downstream_session), an upstream's (upstream_router, upstream_pool), the
// shared state (cluster, admission, counters: owned by the ProxyServer facade).
#pragma once

#include "io_types.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "access_log.hpp"
#include "refusal_log.hpp"
#include "admission.hpp"
#include "cluster.hpp"
#include "downstream_session.hpp"
#include "request_id.hpp"
#include "upstream_pool.hpp"
#include "upstream_router.hpp"
#include "userkey/lb/proxy_config.hpp"
#include "userkey/lb/proxy_metrics.hpp"

namespace userkey::lb::engine {

/// What every loop shares; owned by the facade, outlives the loops.
struct EngineContext {
  const ProxyConfig& cfg;
  ProxyStats& stats;
  Admission& admission;
  const Cluster& cluster;
  spdlog::logger& log;
  /// Where JSON access log lines go (null: to `log`).
  spdlog::logger* json_access_log;
  /// Where text access log lines go (null: to `log`).
  spdlog::logger* text_access_log;
  const std::atomic<bool>& draining;
  const std::atomic<bool>& stopped;
  /// The TLS server context the TLS listener's connections are made with;
  /// null without one.
  const TlsContextStore* tls;
  /// The client TLS context for upstreams with tls=on (built for every
  /// configuration, so always there).
  asio::ssl::context& upstream_tls;
};

class Worker {
public:
  /// Loop `index` of `loops`, which split each upstream's max_conns.
  Worker(const EngineContext& ctx, std::size_t index, std::size_t loops);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  asio::io_context& io() { return io_; }

  /// Serves an accepted connection (of a listener of `transport`); on this
  /// loop's thread.
  void start_session(Socket sock, ClientTransport transport);
  /// Hands a descriptor accepted by another loop to this one (from any
  /// thread): this loop adopts it into its own reactor and serves it.
  void adopt(int fd, const tcp& protocol, ClientTransport transport);
  /// Ends the connections that have waited for a request for `min_idle` or
  /// longer (drain); on this loop's thread.
  void close_idle_sessions(std::chrono::milliseconds min_idle) { sessions_.close_idle(min_idle); }
  /// Closes the connections that are WebSocket tunnels (the end of a
  /// drain); on this loop's thread.
  void close_tunnels() { sessions_.close_tunnels(); }

  /// Spawns the loop's periodic sweeps (before run()).
  void start_housekeeping(bool sweep_rate_limits);
  /// Runs the loop until stopped; the body of this loop's thread.
  void run();

private:
  awaitable<void> sweep_idle_connections();
  awaitable<void> sweep_session_deadlines();
  awaitable<void> sweep_rate_limits();

  EngineContext ctx_;
  // Declared before the loop: the loop's destruction ends its coroutines,
  // which leave these as they go.
  PoolShared pool_shared_;
  SessionRegistry sessions_;
  asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  LoopPools pools_{io_, pool_shared_};
  UpstreamRouter router_;
  RequestIdGenerator request_ids_;
  AccessLog access_log_;
  RefusalLog refusals_;
  SessionContext session_ctx_;
};

/// The listener's hand-off that spreads accepted connections over `loops`
/// in turn, starting with the first: the first loop (the accepting one)
/// serves its own at once, the others adopt theirs by descriptor. Every
/// connection of the listener is served as `transport` (a TLS listener is a
/// listener with this hand-off). `loops` outlives the function returned.
std::function<void(Socket, const tcp&)> hand_to_loops(std::span<const std::unique_ptr<Worker>> loops,
                                                     ClientTransport transport = ClientTransport::plain);

}  // namespace userkey::lb::engine
