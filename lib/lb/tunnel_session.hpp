// The session's side of a WebSocket upgrade the upstream accepted: the 101
// to the client, then the connection as a tunnel until it ends.
//
// Owns: the 101 as the client gets it (the upstream's end-to-end fields,
// the request id, then `Connection: Upgrade` and `Upgrade: websocket`),
// written within upstream_timeout; the tunnel's bounds
// (limits.tunnel_idle_timeout) and its place on the connection, where the
// end of a drain finds it (ClientConnection::tunnel); its count
// (tunnels_open for its life, tunnels_total, the bytes each way, what
// closed it); the bytes for the access log line, which the session writes
// when the tunnel has ended; and the upgraded upstream connection with the
// upstream's in-flight count (least_connections sees the tunnel), held
// until then and closed.
//
// Templates over the session's layer (client_transport.hpp), instantiated by
// downstream_session.cpp.
//
// Leaves to others: whether the request was an upgrade and the upstream
// switched (upgrade, upstream_router), the relay itself (tunnel), the access
// log line (downstream_session).
#pragma once

#include "io_types.hpp"

#include <boost/beast/core/flat_buffer.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "client_transport.hpp"
#include "http1_codec.hpp"
#include "response_relay.hpp"
#include "tunnel.hpp"
#include "upgrade.hpp"
#include "upstream_body.hpp"

namespace userkey::lb::engine {

/// A tunnel counted open and listed on its client connection for as long
/// as this lives.
class OpenTunnel {
public:
  OpenTunnel(ProxyStats& stats, ClientConnection& c, TunnelState& state) : stats_(stats), c_(c) {
    stats_.tunnels.fetch_add(1, std::memory_order_relaxed);
    stats_.tunnels_open.fetch_add(1, std::memory_order_relaxed);
    c_.tunnel = &state;
  }
  ~OpenTunnel() {
    c_.tunnel = nullptr;
    stats_.tunnels_open.fetch_sub(1, std::memory_order_relaxed);
  }
  OpenTunnel(const OpenTunnel&) = delete;
  OpenTunnel& operator=(const OpenTunnel&) = delete;

private:
  ProxyStats& stats_;
  ClientConnection& c_;
};

// (See downstream_session.cpp: GCC 12's false -Wmismatched-new-delete on
// Asio's coroutine frames.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

/// Writes `res` (the upstream's 101) to the client of `c`, then relays the
/// connection's bytes both ways with `up`'s (the upgraded upstream
/// connection) until the tunnel ends; `client_buffer` holds what the client
/// sent past its request head. Adds the bytes read from the client to
/// `bytes_in`, and those written to it (the 101 included) to `bytes_out`.
/// The client connection cannot carry another request afterwards; the
/// upstream one is closed on return.
template <class Layer>
awaitable<void> serve_tunnel(typename Layer::Connection& c, const beast::flat_buffer& client_buffer,
                             const Response& res, std::unique_ptr<UpstreamBody> up, std::string& wire,
                             std::string_view request_id, std::size_t& bytes_in, std::size_t& bytes_out) {
  const SessionContext& ctx = c.ctx;
  http1::serialize_client_head(wire, res, 11, /*keep_alive=*/true, http1::BodyFraming::length, {}, request_id);
  http1::add_websocket_fields(wire);
  const bool sent = co_await write_within<Layer>(c, ctx.cfg.upstream_timeout, bytes_out, asio::buffer(wire));
  if (!sent) co_return;
  Conn& conn = *up->conn;
  const auto state = std::make_shared<TunnelState>(c.socket, conn.stream.socket(), ctx.cfg.limits.tunnel_idle_timeout);
  {
    const OpenTunnel open(ctx.stats, c, *state);
    const asio::const_buffer from_client = client_buffer.data();
    const asio::const_buffer from_upstream = conn.buffer.data();
    if (conn.tls)
      co_await run_tunnel(state, Layer::stream(c), *conn.tls, from_client, from_upstream);
    else
      co_await run_tunnel(state, Layer::stream(c), conn.stream, from_client, from_upstream);
  }
  ctx.stats.tunnel_bytes_to_upstream.fetch_add(state->to_upstream, std::memory_order_relaxed);
  ctx.stats.tunnel_bytes_to_client.fetch_add(state->to_client, std::memory_order_relaxed);
  ctx.stats.tunnel_closed(state->end());
  bytes_in += state->to_upstream;
  bytes_out += state->to_client;
}

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
