// One client connection, from accept to close: the request flow that ties
// the connection's rooms together.
//
// Owns: the admission steps' outcome for the connection and for each request
// (refusals answered and counted), the max_connections cap (503 + close
// beyond it), the capped read buffer, the deadlines (header_timeout for a
// head, body_timeout for a body: 408 when part of a request is in;
// idle_timeout for a keep-alive connection's next first byte; the writes'),
// acting on the
// codec's decisions, 100 Continue (HTTP/1.1 only), reading the body
// (trailers dropped), the request id (kept or made once the head is in;
// echoed on every answer to that request, the lb's own included),
// keep-alive, writing the relayed response (head and body in one gathered
// write) and what the access log line says.
//
// Its rooms: the connection's lasting state and the loop's registry
// (client_connection), plain or TLS and the handshake (client_transport),
// the PROXY header (proxy_header_reader), the idle wait (idle_wait), the
// lb's own answers (local_reply), a WebSocket tunnel (tunnel_session).
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
// that closes before sending a byte tried none. A TLS client refused at
// admission (IP filter, per-IP cap, max_connections) is closed before its
// handshake, unanswered: no handshake CPU is spent on it.
//
// The client's address: with --proxy-protocol, a PROXY header must start
// every connection (before a TLS handshake), within header_timeout of
// accept, from a trusted proxy's peer address when --trusted-proxies lists
// any (another peer is closed before anything is read); its source replaces
// the peer address before admission, so everything per connection sees the
// real client (a connection without a valid header is closed unanswered,
// counted in proxy_header_failures).
// With trusted proxies, a request from one is from whom its X-Forwarded-For
// names in --real-ip-header (real_ip.hpp): that address is IP-filtered, rate-limited, hashed,
// logged and sent upstream in X-Real-IP; X-Forwarded-For upstream is the
// trusted chain plus the peer, or, from an untrusted peer, the peer alone.
//
// Leaves to others: message rules (http1_codec), what may be admitted
// (admission), the upstream side (upstream_router), accepting (listener),
// the TLS policy and certificate (tls_context).
#pragma once

#include "io_types.hpp"

#include "client_connection.hpp"

namespace userkey::lb::engine {

/// Serves one accepted connection until it closes (on `ctx.io`'s thread).
/// `tls` needs `ctx.tls` (without it the connection is closed).
void start_downstream_session(const SessionContext& ctx, Socket sock,
                              ClientTransport transport = ClientTransport::plain);

}  // namespace userkey::lb::engine
