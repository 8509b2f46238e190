// One client connection, from accept to close.
//
// Owns: the admission steps' outcome for the connection and for each request
// (refusals answered and counted), the connection's accounting
// (connections_open, the loop's session registry that drain uses), reading
// each request head under header_timeout (first request) or idle_timeout
// (between keep-alive requests), acting on the codec's decisions, 100
// Continue, reading the body, keep-alive, the lb's own error replies (with a
// lingering close), writing the relayed response (head and body in one
// gathered write) and the access log line.
//
// Leaves to others: message rules (http1_codec), what may be admitted
// (admission), the upstream side (upstream_router), accepting (listener).
#pragma once

#include "io_types.hpp"

#include <atomic>
#include <list>
#include <string>

#include "userkey/lb/proxy_config.hpp"
#include "userkey/lb/proxy_metrics.hpp"

namespace spdlog {
class logger;
}

namespace userkey::lb::engine {

class Admission;
class UpstreamRouter;

/// The client connections of one loop, so drain can close the idle ones.
/// Must outlive the loop's coroutines (a session leaves it when it ends).
class SessionRegistry {
public:
  struct Entry {
    Stream* stream;
    bool busy;  ///< a request is being read or served
  };
  using Handle = std::list<Entry>::iterator;

  Handle add(Stream& stream) {
    entries_.push_front({&stream, false});
    return entries_.begin();
  }
  void remove(Handle h) { entries_.erase(h); }
  /// Cancels the pending read of every connection waiting for a request.
  void close_idle();

private:
  std::list<Entry> entries_;
};

/// What the sessions of one loop share; everything outlives them.
struct SessionContext {
  asio::io_context& io;
  const ProxyConfig& cfg;
  ProxyStats& stats;
  Admission& admission;
  UpstreamRouter& router;
  SessionRegistry& sessions;
  const std::atomic<bool>& draining;
  spdlog::logger& log;
};

/// Serves one accepted connection until it closes (run on `ctx.io`).
awaitable<void> run_downstream_session(const SessionContext& ctx, Socket sock);

}  // namespace userkey::lb::engine
