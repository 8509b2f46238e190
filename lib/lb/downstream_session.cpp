// One client connection, from accept to close: see downstream_session.hpp.
#include "downstream_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/read.hpp>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <optional>
#include <vector>

#include "access_log.hpp"
#include "body_budget.hpp"
#include "client_body.hpp"
#include "client_transport.hpp"
#include "http1_codec.hpp"
#include "idle_wait.hpp"
#include "local_reply.hpp"
#include "proxy_header_reader.hpp"
#include "request_id.hpp"
#include "response_relay.hpp"
#include "tunnel_session.hpp"
#include "upstream_router.hpp"

namespace userkey::lb::engine {

namespace {

// The client of a request: the connection's (`c.client_ip` itself), or,
// when the connection comes from a trusted proxy, the client its
// X-Forwarded-For / Forwarded names (written into `buffer`, returned).
const std::string& resolve_client(const ClientConnection& c, const Request& req, std::string& buffer) {
  const auto& trusted = c.ctx.admission.trusted_proxies();
  if (trusted.empty() || !trusted.trusted(c.client_ip)) return c.client_ip;
  trusted.resolve(c.client_ip, req.base(), buffer);
  return buffer;
}

std::string_view unparsed(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

}  // namespace

// GCC 12 at -O2 inlines Asio's recycling frame allocator into a coroutine's
// ramp and then takes the frame's class operator delete for a mismatch with
// the ::operator new inside it (a false positive; the pair is Asio's own
// awaitable_frame_base::operator new / delete): first seen in serve(), off
// for every coroutine of this file since the session became templates.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"


// Serves requests while they keep coming; when none is pending (nothing
// buffered, nothing readable), hands the connection back to a readiness
// wait and ends, releasing its buffer and parser.
template <class Layer>
awaitable<void> serve(ClientPtr<Layer> conn) {
  auto& c = *conn;
  const SessionContext& ctx = c.ctx;
  const auto& lim = ctx.cfg.limits;
  auto& stream = Layer::stream(c);
  if constexpr (Layer::secure) {
    // A new TLS connection: the handshake first. Then, unless the request
    // came with it, wait for the request idle (its deadline still runs from
    // accept).
    if (!c.handshake_done) {
      // Closed without a byte sent (a TCP health check, a port scan): no
      // handshake was tried, none failed. A readiness with nothing behind it
      // (an event from before the PROXY header was taken, say): wait again,
      // within the same deadline.
      char first_byte = 0;
      const ssize_t peeked = ::recv(c.socket.native_handle(), &first_byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (peeked == 0) co_return;
      if (peeked < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) wait_for_request<Layer>(conn);
        co_return;
      }
      if (!co_await handshake(c)) co_return;
      error_code ec;
      if (!input_waiting<Layer>(c, ec)) {
        if (!ec) wait_for_request<Layer>(conn);
        co_return;
      }
    }
  }
  try {
    // Capped: a head, one chunk-size line or a trailer section must fit.
    beast::flat_buffer buffer(http1::read_buffer_limit(lim));
    std::vector<bool> tried;
    std::string wire;  // serialized heads, reused for every request of this run
    ForwardReport report;
    RequestId request_id;
    RequestTrace trace;
    std::string log_method, log_target;  // only for the access log line; reused
    std::string request_client;          // a client named by a trusted proxy; reused
    const bool logging = ctx.access_log.enabled();
    for (;;) {
      // (While draining, a request already on its way is still served, with
      // Connection: close; drain closes connections that stay idle.)
      http1::RequestParser parser;
      parser.header_limit(lim.max_header_bytes);
      parser.body_limit(lim.max_body_bytes);
      http1::ChunkExtensionLimit extensions(lim.max_header_bytes);
      extensions.attach(parser);
      error_code ec;
      // A new connection's head must arrive within header_timeout of accept;
      // a keep-alive request's within header_timeout of its first byte.
      c.deadline_at(c.first ? c.idle_since + lim.header_timeout : SteadyClock::now() + lim.header_timeout);
      c.first = false;
      std::size_t bytes_in = co_await http::async_read_header(stream, buffer, parser, nothrow(ec));
      Layer::settle(ec);
      if (c.clear_deadline()) ec = beast::error::timeout;
      c.busy = true;
      const bool head_request = parser.get().method() == http::verb::head;  // unknown until the request line is in
      if (ec) {
        const auto decision = http1::classify_head_error(ec, parser.got_some());
        co_await answer<Layer>(c, decision, head_request);
        co_return;
      }
      // The request's time runs from here (its head is in).
      const auto started = SteadyClock::now();
      const auto started_wall = logging ? std::chrono::system_clock::now() : std::chrono::system_clock::time_point{};
      if (ctx.cfg.request_id)
        take_identity(parser.get(), ctx.request_ids, request_id, trace);
      else
        clear_identity(request_id, trace);
      if (const auto framing = http1::check_framing(parser, lim.max_body_bytes); !framing.forwards()) {
        co_await answer<Layer>(c, framing, head_request, request_id.view());
        co_return;
      }
      const http1::FieldSet head = parser.chunked() ? http1::head_fields(parser.get()) : http1::FieldSet{};
      // A body is reserved against the lb-wide bound before a byte of it is
      // read: its length when it is held whole, a replay buffer and a read
      // buffer when it is streamed. Beyond: 503, and the connection closes
      // (the body is unread).
      BodyLease lease;
      if (!parser.is_done()) {
        const auto cl = parser.content_length();
        const std::uint64_t want =
            cl && *cl <= kReplayLimit ? *cl : kReplayLimit + http1::read_buffer_limit(lim);
        lease = BodyLease::reserve(ctx.stats.body_bytes_reserved, lim.max_buffered_body_bytes, want);
        if (!lease) {
          count_refusal(c, Rejection::body_memory, 503);
          co_await write_error<Layer>(c, 503, "proxy busy: request bodies in progress hold its memory bound", false,
                                      parser.get().version(), std::chrono::seconds(1), head_request,
                                      request_id.view());
          co_return;
        }
      }
      // A client waiting for 100 Continue gets it from the lb before the
      // body is read (an HTTP/1.0 client does not know 100 Continue: it
      // just sends the body).
      if (auto expect = parser.get().find(http::field::expect); expect != parser.get().end() &&
                                                                parser.get().version() >= 11 &&
                                                                beast::iequals(expect->value(), "100-continue") &&
                                                                !parser.is_done()) {
        c.deadline_after(lim.header_timeout);
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await asio::async_write(stream, asio::buffer(kContinue), nothrow(ec));
        if (c.clear_deadline() || ec) co_return;
      }
      // The body: held whole when it is short (then retries may send it
      // again), else its first 64 KiB, the rest streamed as the upstream
      // takes it (client_body).
      ClientBody<Layer> body(c, buffer, parser, lim.body_timeout);
      co_await body.hold(SteadyClock::now() + lim.body_timeout, ec);
      if (ec) {
        const auto decision = http1::classify_body_error(ec, unparsed(buffer));
        co_await answer<Layer>(c, decision, head_request, request_id.view());
        co_return;
      }
      const Request& req = parser.get();
      if (body.complete() && parser.chunked()) http1::drop_trailers(parser.get(), head);
      // Only kept for the access log line (`req` goes to the router).
      if (logging) {
        log_method.assign(req.method_string().data(), req.method_string().size());
        log_target.assign(req.target().data(), req.target().size());
      }
      bool keep_alive = req.keep_alive() && !ctx.draining.load(std::memory_order_relaxed);
      const unsigned version = req.version();
      ctx.stats.requests.fetch_add(1, std::memory_order_relaxed);

      // The request's client: the connection's, or whom a trusted proxy
      // names in X-Forwarded-For / Forwarded (then also IP-filtered here).
      const std::string& client = resolve_client(c, req, request_client);
      http1::ForwardedFor xff;
      if (!ctx.admission.trusted_proxies().empty()) {
        xff.keep_chain = &client != &c.client_ip;  // an untrusted peer's chain is dropped
        xff.peer = c.client_ip;
      }

      bool written = true;
      if (const auto refused = ctx.admission.admit_request(client, &client != &c.client_ip)) {
        count_refusal(c, refused->reason, refused->status);
        keep_alive = keep_alive && body.read_through();  // (a streamed body's rest is unread)
        co_await write_error<Layer>(c, refused->status, refused->message, keep_alive, version,
                                    refused->retry_after, head_request, request_id.view());
        // (A keep-alive refusal that failed to go out ends at the next read.)
      } else {
        const http1::UpstreamIds ids(request_id.view(), trace.parent.text(), trace.continued);
        Response res =
            co_await ctx.router.forward(req, body, client, ids, tried, report, wire, Layer::forwarded_proto, xff);
        bytes_in += body.bytes_read();
        if (report.client_failed) {
          // The client's streamed body failed (stalled, cut short, malformed,
          // too long): its answer, as for a body read whole.
          const auto decision = http1::classify_body_error(body.client_error(), unparsed(buffer));
          co_await answer<Layer>(c, decision, head_request, request_id.view());
          co_return;
        }
        // An answer that came before the whole body was read leaves the
        // connection out of step: it closes after the answer.
        keep_alive = keep_alive && body.read_through();
        lease.reset();
        std::size_t bytes_out = 0;
        if (report.body && report.body->upgraded) {
          // A WebSocket upgrade the upstream switched: the connection is a
          // tunnel from here to its end (tunnel_session.hpp).
          co_await serve_tunnel<Layer>(c, buffer, res, std::move(report.body), wire, request_id.view(), bytes_in,
                                       bytes_out);
          keep_alive = false;
        } else if (report.body) {
          // A long, chunked or close-delimited body: relayed as it arrives.
          const auto length = report.body->length();
          const auto framing = http1::client_framing(length.has_value(), version);
          keep_alive = keep_alive && framing != http1::BodyFraming::close;
          http1::serialize_client_head(wire, res, version, keep_alive, framing,
                                       length ? std::to_string(*length) : std::string(), request_id.view());
          BodyEnd end = BodyEnd::client_gone;
          bytes_out = co_await relay_body<Layer>(c, wire, *report.body, framing, ctx.cfg.upstream_timeout, end);
          ctx.router.finish_body(std::move(report.body), end);
          written = end == BodyEnd::complete;
        } else {
          http1::serialize_client_response(wire, res, version, keep_alive, head_request, request_id.view());
          const std::array<asio::const_buffer, 2> out{
              asio::buffer(wire), asio::buffer(head_request ? std::string_view{} : std::string_view(res.body()))};
          c.deadline_after(ctx.cfg.upstream_timeout);
          bytes_out = co_await asio::async_write(stream, out, nothrow(ec));
          if (c.clear_deadline()) ec = asio::error::timed_out;
          written = !ec;
        }
        const auto took = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started);
        ctx.stats.answered(res.result_int());
        ctx.stats.client_latency.observe(took);
        if (logging) {
          AccessRecord r;
          r.time = started_wall;
          r.client = client;
          r.method = log_method;
          r.target = log_target;
          r.status = res.result_int();
          r.bytes_in = bytes_in;
          r.bytes_out = bytes_out;
          r.duration = took;
          r.upstream_time = report.upstream_time;
          r.upstream = report.upstream;
          r.request_id = request_id.view();
          r.trace_id = trace.parent.trace_id();
          r.retries = report.retries;
          r.tls = Layer::version(c);
          ctx.access_log.write(r);
        }
        // An answer before the body's end: the client may still be sending
        // it; a lingering close lets the answer reach it (see local_reply).
        if (written && !body.read_through()) co_await net::linger_close(c.socket);
      }
      if (!written || !keep_alive) co_return;
      c.busy = false;
      c.idle_since = SteadyClock::now();
      // The next request is already here (pipelined, or sent at once): serve
      // it in this run. Otherwise go idle, holding none of this.
      if (buffer.size() == 0) {
        switch (read_now_into<Layer>(c, buffer)) {
          case ReadNow::data: break;
          case ReadNow::nothing: wait_for_request<Layer>(conn); co_return;  // (a copy: `c` stays valid should this throw)
          case ReadNow::closed: co_return;
        }
      }
    }
  } catch (const std::exception& e) {
    // Nothing in a request should throw; if something does, this
    // connection ends (its accounting runs when it closes).
    ctx.log.error("connection from {} ended by an internal error: {}", c.client_ip, e.what());
  }
}

namespace {

template <class Layer>
ClientPtr<Layer> make_connection(const SessionContext& ctx, Socket sock, std::string ip, std::int64_t& open) {
  if constexpr (Layer::secure)
    return std::make_shared<TlsClientConnection>(ctx, std::move(sock), std::move(ip), open, ctx.tls->current());
  else
    return std::make_shared<ClientConnection>(ctx, std::move(sock), std::move(ip), open);
}

template <class Layer>
void admit_and_serve(ClientPtr<Layer> conn, std::int64_t open);

// --proxy-protocol: the header first (proxy_header_reader), then admission
// of the client it names.
template <class Layer>
awaitable<void> proxy_then_admit(ClientPtr<Layer> conn, std::int64_t open) {
  // (The result is held in a variable first: GCC 12 miscompiles this
  // co_await as an if's condition, destroying the awaited frame twice.)
  const bool header_read = co_await read_proxy_header(*conn);
  if (header_read) admit_and_serve<Layer>(std::move(conn), open);
}

template <class Layer>
void start_session(const SessionContext& ctx, Socket sock) {
  error_code ec;
  const auto remote = sock.remote_endpoint(ec);
  if (ec) return;
  auto ip_addr = remote.address();
  if (ip_addr.is_v6() && ip_addr.to_v6().is_v4_mapped()) ip_addr = ip_addr.to_v6().to_v4();
  sock.set_option(tcp::no_delay(true), ec);
  std::int64_t open = 0;
  auto conn = make_connection<Layer>(ctx, std::move(sock), ip_addr.to_string(), open);
  if (!ctx.cfg.proxy_protocol) {
    admit_and_serve<Layer>(std::move(conn), open);
    return;
  }
  // An untrusted peer's connection closes here, unread.
  if (proxy_header_allowed(*conn))
    asio::co_spawn(ctx.io, proxy_then_admit<Layer>(std::move(conn), open), asio::detached);
}

// Admission (the connection cap, the IP filter, the per-IP cap: on the
// connection's client_ip, final by now), then serving.
template <class Layer>
void admit_and_serve(ClientPtr<Layer> conn, std::int64_t open) {
  const SessionContext& ctx = conn->ctx;
  auto& c = *conn;
  error_code ec;
  const auto cap = ctx.cfg.limits.max_connections;
  std::optional<Refusal> refused;
  if (cap > 0 && open > static_cast<std::int64_t>(cap))
    refused = Refusal{Rejection::max_connections, 503, "too many connections", std::chrono::seconds(1)};
  else
    refused = ctx.admission.admit_connection(c.client_ip, c.pass);
  if (refused) {
    count_refusal(c, refused->reason, Layer::secure ? 0u : refused->status);
    // A TLS client is refused before its handshake, as HAProxy's `tcp-request
    // connection reject`: no handshake CPU is spent on it, and the
    // connection closes unanswered (an HTTP answer would need the handshake).
    if constexpr (Layer::secure) return;
    // A plain one is answered before any request is read, then closed.
    const bool head_request = peeks_head_request(c.socket);
    asio::co_spawn(ctx.io, refuse<Layer>(std::move(conn), *refused, head_request), asio::detached);
    return;
  }
  // The request (a TLS client's hello) is often in already: serve it without
  // waiting.
  c.busy = false;
  if (input_waiting<Layer>(c, ec)) {
    asio::co_spawn(ctx.io, serve<Layer>(std::move(conn)), asio::detached);
    return;
  }
  wait_for_request<Layer>(std::move(conn));
}
#pragma GCC diagnostic pop

}  // namespace

void start_downstream_session(const SessionContext& ctx, Socket sock, ClientTransport transport) {
  if (transport == ClientTransport::plain)
    start_session<PlainLayer>(ctx, std::move(sock));
  else if (ctx.tls != nullptr)
    start_session<TlsLayer>(ctx, std::move(sock));
  // (else: a TLS listener without a context is the facade's bug; the
  // connection closes.)
}

}  // namespace userkey::lb::engine
