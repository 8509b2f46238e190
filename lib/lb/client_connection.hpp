// One client connection's lasting state, and the registry of a loop's
// connections.
//
// Owns: the ClientConnection (its socket, its client address, its per-IP
// count, its deadline and its place in the loop's registry), its accounting
// in connections_open (from accept to close, a refusal in progress
// included), and SessionRegistry: the intrusive list of a loop's
// connections that the deadline sweep (expire) and drain (close_idle, and
// close_tunnels at its end) walk.
// Deadlines are fields, enforced by the loop's periodic sweep: a deadline
// fires at most one sweep period late (session_sweep_period).
//
// Leaves to others: what a connection carries above its socket (the
// transport, client_transport.hpp), reading and answering requests
// (downstream_session), running the sweep (worker).
#pragma once

#include "io_types.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "admission.hpp"
#include "userkey/lb/proxy_config.hpp"
#include "userkey/lb/proxy_metrics.hpp"

namespace spdlog {
class logger;
}

namespace userkey::lb::engine {

class TlsContextStore;
class UpstreamRouter;
class SessionRegistry;
class RequestIdGenerator;
class AccessLog;
class RefusalLog;
class TunnelState;
struct SessionContext;

/// Room for the operation of a connection's readiness wait, so that going
/// idle allocates nothing (an operation too large for it, or a second one,
/// goes to the heap).
struct WaitMemory {
  alignas(std::max_align_t) unsigned char bytes[128];
  bool in_use = false;
};

/// One client connection's lasting state (shared by its readiness wait or
/// the coroutine serving it; closed when the last holder lets go). Listed in
/// its loop's SessionRegistry for its whole life.
class ClientConnection {
public:
  /// Counts the connection in connections_open; `open_now` is set to the
  /// count with it included.
  ClientConnection(const SessionContext& ctx, Socket sock, std::string client_ip, std::int64_t& open_now);
  /// Releases the per-IP count and connections_open, then closes the socket.
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  /// A deadline for what the connection does next: when the sweep finds it
  /// passed, it cancels the socket's operations and sets timed_out.
  void deadline_after(std::chrono::milliseconds d) { deadline_at(SteadyClock::now() + d); }
  void deadline_at(TimePoint t) {
    deadline = t;
    timed_out = false;
  }
  /// Clears the deadline; true when it fired.
  bool clear_deadline() {
    deadline = TimePoint::max();
    const bool fired = timed_out;
    timed_out = false;
    return fired;
  }

  const SessionContext& ctx;  ///< valid while the loop runs (never used by the destructor)
  Socket socket;
  /// The connection's client: the TCP peer, or the source of its PROXY
  /// header (--proxy-protocol). A request's own client may differ (named by
  /// a trusted proxy); this is what the connection is admitted and counted as.
  std::string client_ip;
  ConnectionPass pass;  ///< the per-IP count (views client_ip)
  TimePoint deadline = TimePoint::max();
  TimePoint idle_since;  ///< when it last began waiting for a request
  bool busy = true;      ///< a request is being read or served, or a refusal written
  bool timed_out = false;
  bool first = true;  ///< no request read yet (its head's time runs from accept)
  /// While the connection is a WebSocket tunnel: its state, through which
  /// the end of a drain closes it (close_tunnels).
  TunnelState* tunnel = nullptr;
  WaitMemory wait_memory;

private:
  friend class SessionRegistry;
  SessionRegistry& registry_;
  ProxyStats& stats_;
  ClientConnection* prev_ = nullptr;
  ClientConnection* next_ = nullptr;
};

/// The client connections of one loop (an intrusive list: listing costs no
/// allocation). Must outlive the loop's handlers and coroutines (a connection
/// leaves it when it closes).
class SessionRegistry {
public:
  void add(ClientConnection& c);
  void remove(ClientConnection& c);
  /// Cancels the pending wait or read of every connection that has waited
  /// for a request for `min_idle` or longer (drain: a client that has just
  /// had an answer may be sending its next request, which is then served).
  void close_idle(std::chrono::milliseconds min_idle = std::chrono::milliseconds(0));
  /// Closes every connection that is a tunnel now (the end of a drain:
  /// tunnels are busy as long as they last).
  void close_tunnels();
  /// Fires every deadline that has passed at `now`: marks the connection
  /// timed out and cancels its socket's operations.
  void expire(TimePoint now);
  /// Connections listed (walks the list: for tests and status pages).
  std::size_t size() const;

private:
  ClientConnection* head_ = nullptr;
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
  RequestIdGenerator& request_ids;  ///< the loop's (used when cfg.request_id)
  AccessLog& access_log;            ///< the loop's
  const TlsContextStore* tls;       ///< the TLS context new connections get; null without a TLS listener
  RefusalLog& refusals;             ///< the loop's (its log lines for refused requests)
};

/// How a listener's clients reach the lb: plain TCP, or TLS over it.
enum class ClientTransport { plain, tls };

/// How often a loop should call SessionRegistry::expire for `limits`: a
/// quarter of the shortest client timeout, within 10-250 ms.
std::chrono::milliseconds session_sweep_period(const LimitsConfig& limits);

}  // namespace userkey::lb::engine
