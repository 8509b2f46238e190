// One client connection, from accept to close.
//
// Owns: the admission steps' outcome for the connection and for each request
// (refusals answered and counted), the connection's accounting
// (connections_open, the loop's registry of connections that drain and the
// deadline sweep use), the max_connections cap (503 + close beyond it), the
// capped read buffer, the deadlines (header_timeout for a head, body_timeout
// for a body: 408 when part of a request is in; idle_timeout for a
// keep-alive connection's next first byte; the writes'), acting on the
// codec's decisions, 100 Continue (HTTP/1.1 only), reading the body
// (trailers dropped), the request id (kept or made once the head is in;
// echoed on every answer to that request, the lb's own included),
// keep-alive, the lb's own error replies (no body to a HEAD; a lingering
// close), writing the relayed response (head and body in one gathered
// write) and what the access log line says.
//
// A connection between requests (or before its first byte) holds no parser,
// buffer, coroutine or timer: only a ClientConnection (socket, address,
// counts, deadline) and the readiness wait on its socket. A request's first
// byte starts a coroutine that serves requests while they keep coming and
// ends when the connection goes idle again. Deadlines are fields, enforced by
// the loop's periodic sweep (SessionRegistry::expire): a deadline fires at
// most one sweep period late (session_sweep_period).
//
// A connection from the TLS listener is the same ClientConnection with a
// TLS layer over its socket, made at accept from the TlsContext current then
// (a certificate reload does not touch open connections):
// the session code is one template over how it reaches the client's bytes
// (the socket, or the TLS stream), so plain connections carry nothing of
// TLS. Its first serve does the handshake, bounded by the head's deadline
// (header_timeout from accept); then the connection goes idle like any
// other (a readiness wait on the socket, taken only when OpenSSL holds no
// unread input), and X-Forwarded-Proto: https goes with its requests.
// Handshakes, and failed ones by why, are counted (ProxyStats); a client
// that closes before sending a byte tried none.
//
// The client's address: with --proxy-protocol, a PROXY header must start
// every connection (before a TLS handshake), within header_timeout of
// accept; its source replaces the peer address before admission, so
// everything per connection sees the real client (a connection without a
// valid header is closed unanswered, counted in proxy_header_failures).
// With trusted proxies, a request from one is from whom its X-Forwarded-For
// names (real_ip.hpp): that address is IP-filtered, rate-limited, hashed,
// logged and sent upstream in X-Real-IP; X-Forwarded-For upstream is the
// trusted chain plus the peer, or, from an untrusted peer, the peer alone.
//
// Leaves to others: message rules (http1_codec), what may be admitted
// (admission), the upstream side (upstream_router), accepting (listener),
// the TLS policy and certificate (tls_context).
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
  /// Fires every deadline that has passed at `now`: marks the connection
  /// timed out and cancels its socket's operations.
  void expire(TimePoint now);

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
};

/// How a listener's clients reach the lb: plain TCP, or TLS over it.
enum class ClientTransport { plain, tls };

/// How often a loop should call SessionRegistry::expire for `limits`: a
/// quarter of the shortest client timeout, within 10-250 ms.
std::chrono::milliseconds session_sweep_period(const LimitsConfig& limits);

/// Serves one accepted connection until it closes (on `ctx.io`'s thread).
/// `tls` needs `ctx.tls` (without it the connection is closed).
void start_downstream_session(const SessionContext& ctx, Socket sock,
                              ClientTransport transport = ClientTransport::plain);

}  // namespace userkey::lb::engine
