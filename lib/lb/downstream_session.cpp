// One client connection, from accept to close: see downstream_session.hpp.
#include "downstream_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>

#include <sys/socket.h>

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "admission.hpp"
#include "http1_codec.hpp"
#include "upstream_router.hpp"

namespace userkey::lb::engine {

void SessionRegistry::close_idle(std::chrono::milliseconds min_idle) {
  const auto now = SteadyClock::now();
  for (auto& e : entries_) {
    if (!e.busy && now - e.idle_since >= min_idle) {
      error_code ec;
      e.stream->socket().cancel(ec);
    }
  }
}

namespace {

// Read deadline, one per session, re-armed for each read it guards (the
// next request's first byte, its head, its body). It cancels the read
// instead of closing the socket, so a slow client still gets its 408. Shared
// with its timer handler, which may run after the read finished: the
// generation tells it that its deadline is no longer current.
struct ReadDeadline {
  ReadDeadline(asio::io_context& io, Stream* s) : timer(io), stream(s) {}
  Timer timer;
  Stream* stream;
  std::uint64_t generation = 0;
  bool fired = false;
};

void arm(const std::shared_ptr<ReadDeadline>& d, std::chrono::milliseconds after) {
  const std::uint64_t gen = ++d->generation;
  d->fired = false;
  d->timer.expires_after(after);
  d->timer.async_wait([d, gen](const error_code& e) {
    if (e || d->generation != gen) return;  // cancelled, or a later read's deadline
    d->fired = true;
    error_code ignored;
    d->stream->socket().cancel(ignored);
  });
}

// True when the deadline fired before the read ended.
bool disarm(ReadDeadline& d) {
  ++d.generation;
  d.timer.cancel();
  return d.fired;
}

// Counted in connections_open from accept to close, refused or served (so a
// refusal in progress counts against max_connections too).
class CountedConnection {
public:
  explicit CountedConnection(ProxyStats& stats)
      : stats_(stats), open_(stats.connections_open.fetch_add(1, std::memory_order_relaxed) + 1) {}
  ~CountedConnection() { stats_.connections_open.fetch_sub(1, std::memory_order_relaxed); }
  CountedConnection(const CountedConnection&) = delete;
  CountedConnection& operator=(const CountedConnection&) = delete;
  /// connections_open just after this one was counted.
  std::int64_t open() const { return open_; }

private:
  ProxyStats& stats_;
  std::int64_t open_;
};

// While a session is served: listed in the loop's registry (left however the
// session ends, even when the loop is destroyed under it: the registry
// outlives the loop's coroutines).
class OpenSession {
public:
  OpenSession(const SessionContext& ctx, Stream& client) : registry_(ctx.sessions) { handle_ = registry_.add(client); }
  ~OpenSession() { registry_.remove(handle_); }
  OpenSession(const OpenSession&) = delete;
  OpenSession& operator=(const OpenSession&) = delete;
  SessionRegistry::Entry& entry() { return *handle_; }

private:
  SessionRegistry& registry_;
  SessionRegistry::Handle handle_;
};

// A refusal written before any request is read: when the request is already
// there and is a HEAD, the answer must have no body.
bool peeks_head_request(Stream& client) {
  char first[5];
  const ssize_t n = ::recv(client.socket().native_handle(), first, sizeof first, MSG_PEEK | MSG_DONTWAIT);
  return n == static_cast<ssize_t>(sizeof first) && std::string_view(first, sizeof first) == "HEAD ";
}

// The lb's own answer. `head_request`: headers only (a HEAD response has no
// body, whatever its Content-Length says).
awaitable<void> write_error(Stream& client, unsigned status, std::string_view message, bool keep_alive,
                            unsigned version = 11, std::chrono::seconds retry_after = std::chrono::seconds(0),
                            bool head_request = false) {
  const Response res = http1::make_error_response(status, message, version, retry_after);
  std::string head;
  http1::serialize_client_response(head, res, version, keep_alive, false);
  const std::array<asio::const_buffer, 2> out{
      asio::buffer(head), asio::buffer(head_request ? std::string_view{} : std::string_view(res.body()))};
  client.expires_after(std::chrono::seconds(5));
  error_code ec;
  co_await asio::async_write(client, out, nothrow(ec));
  if (!keep_alive && !ec) {
    // Lingering close: the client may still be sending what we refused (a
    // huge header or body). Closing with unread data would reset the
    // connection and could destroy this answer before the client reads it,
    // so stop sending, then read and discard for a moment.
    client.socket().shutdown(tcp::socket::shutdown_send, ec);
    client.expires_after(std::chrono::seconds(1));
    std::array<char, 4096> discard;
    for (std::size_t total = 0; total < 256 * 1024;) {
      const std::size_t n = co_await client.async_read_some(asio::buffer(discard), nothrow(ec));
      if (ec) break;
      total += n;
    }
  }
  client.expires_never();
}

// A request the lb answers itself (or drops), counted; then the connection
// closes. `head_request`: the request was a HEAD (no body in the answer).
awaitable<void> answer(const SessionContext& ctx, Stream& client, const http1::RequestDecision& d,
                       bool head_request) {
  if (d.reason) ctx.stats.reject(*d.reason);
  if (d.action == http1::RequestDecision::Action::reject)
    co_await write_error(client, d.status, d.message, false, 11, std::chrono::seconds(0), head_request);
}

std::string_view unparsed(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

awaitable<void> serve(const SessionContext& ctx, Stream& client, const std::string& client_ip,
                      SessionRegistry::Entry& ref) {
  const auto& lim = ctx.cfg.limits;
  // Capped: a head, one chunk-size line or a trailer section must fit.
  beast::flat_buffer buffer(http1::read_buffer_limit(lim));
  std::vector<bool> tried;
  std::string wire;  // serialized heads, reused for every request on this connection
  bool first = true;
  const auto deadline = std::make_shared<ReadDeadline>(ctx.io, &client);
  for (;;) {
    // (While draining, a request already on its way is still served, with
    // Connection: close; drain closes connections that stay idle.)
    ref.busy = false;
    ref.idle_since = SteadyClock::now();
    http1::RequestParser parser;
    parser.header_limit(lim.max_header_bytes);
    parser.body_limit(lim.max_body_bytes);
    http1::ChunkExtensionLimit extensions(lim.max_header_bytes);
    extensions.attach(parser);
    error_code ec;
    // Between keep-alive requests the connection may idle for idle_timeout,
    // holding no buffer; a new connection's head, or the next request's once
    // its first byte is in, must arrive within header_timeout.
    if (!first && buffer.size() == 0 && client.socket().available(ec) == 0) {
      buffer.shrink_to_fit();
      arm(deadline, lim.idle_timeout);
      co_await client.socket().async_wait(tcp::socket::wait_read, nothrow(ec));
      if (disarm(*deadline) || ec) co_return;  // idle too long, drain, or gone
    }
    first = false;
    arm(deadline, lim.header_timeout);
    co_await http::async_read_header(client, buffer, parser, nothrow(ec));
    if (disarm(*deadline)) ec = beast::error::timeout;
    ref.busy = true;
    const bool head_request = parser.get().method() == http::verb::head;  // unknown until the request line is in
    if (ec) {
      const auto decision = http1::classify_head_error(ec, parser.got_some());
      co_await answer(ctx, client, decision, head_request);
      co_return;
    }
    if (const auto framing = http1::check_framing(parser, lim.max_body_bytes); !framing.forwards()) {
      co_await answer(ctx, client, framing, head_request);
      co_return;
    }
    const http1::FieldSet head = parser.chunked() ? http1::head_fields(parser.get()) : http1::FieldSet{};
    // The whole body is read here before anything goes upstream, so a
    // client waiting for 100 Continue gets it from the lb (an HTTP/1.0
    // client does not know 100 Continue: it just sends the body).
    if (auto expect = parser.get().find(http::field::expect); expect != parser.get().end() &&
                                                              parser.get().version() >= 11 &&
                                                              beast::iequals(expect->value(), "100-continue") &&
                                                              !parser.is_done()) {
      client.expires_after(lim.header_timeout);
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(client, asio::buffer(kContinue), nothrow(ec));
      client.expires_never();
      if (ec) co_return;
    }
    arm(deadline, lim.body_timeout);
    co_await http::async_read(client, buffer, parser, nothrow(ec));
    if (disarm(*deadline)) ec = beast::error::timeout;
    if (ec) {
      const auto decision = http1::classify_body_error(ec, unparsed(buffer));
      co_await answer(ctx, client, decision, head_request);
      co_return;
    }
    const bool chunked = parser.chunked();
    Request req = parser.release();
    if (chunked) http1::drop_trailers(req, head);
    // Only kept for the access log line.
    std::string log_method, log_target;
    if (ctx.cfg.access_log) {
      log_method = std::string(req.method_string());
      log_target = std::string(req.target());
    }
    const bool keep_alive = req.keep_alive() && !ctx.draining.load(std::memory_order_relaxed);
    const unsigned version = req.version();
    ctx.stats.requests.fetch_add(1, std::memory_order_relaxed);

    if (const auto refused = ctx.admission.admit_request(client_ip)) {
      ctx.stats.reject(refused->reason);
      co_await write_error(client, refused->status, refused->message, keep_alive, version, refused->retry_after,
                           head_request);
      if (!keep_alive) co_return;
      continue;
    }

    const auto started = SteadyClock::now();
    std::string upstream_name;
    Response res = co_await ctx.router.forward(std::move(req), client_ip, tried, upstream_name, wire);
    http1::serialize_client_response(wire, res, version, keep_alive, head_request);
    client.expires_after(ctx.cfg.upstream_timeout);
    const std::array<asio::const_buffer, 2> out{
        asio::buffer(wire), asio::buffer(head_request ? std::string_view{} : std::string_view(res.body()))};
    co_await asio::async_write(client, out, nothrow(ec));
    client.expires_never();
    if (ctx.cfg.access_log) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started).count();
      ctx.log.info("{} {} {} {} {}us upstream={}", client_ip, log_method, log_target, res.result_int(), us,
                   upstream_name.empty() ? "-" : upstream_name);
    }
    if (ec || !keep_alive) co_return;
  }
}

}  // namespace

awaitable<void> run_downstream_session(const SessionContext& ctx, Socket sock) {
  error_code ec;
  const auto remote = sock.remote_endpoint(ec);
  if (ec) co_return;
  auto ip_addr = remote.address();
  if (ip_addr.is_v6() && ip_addr.to_v6().is_v4_mapped()) ip_addr = ip_addr.to_v6().to_v4();
  const std::string client_ip = ip_addr.to_string();
  sock.set_option(tcp::no_delay(true), ec);
  Stream client(std::move(sock));
  {
    const CountedConnection counted(ctx.stats);
    const auto cap = ctx.cfg.limits.max_connections;
    std::optional<Refusal> refused;
    ConnectionPass pass;  // the per-IP count: released before the socket closes
    if (cap > 0 && counted.open() > static_cast<std::int64_t>(cap))
      refused = Refusal{Rejection::max_connections, 503, "too many connections", std::chrono::seconds(1)};
    else
      refused = ctx.admission.admit_connection(client_ip, pass);
    if (refused) {
      // Answered before any request is read, then closed.
      ctx.stats.reject(refused->reason);
      co_await write_error(client, refused->status, refused->message, false, 11, refused->retry_after,
                           peeks_head_request(client));
      co_return;
    }
    OpenSession open(ctx, client);
    try {
      co_await serve(ctx, client, client_ip, open.entry());
    } catch (const std::exception& e) {
      // Nothing in a request should throw; if something does, this
      // connection ends but its accounting still runs.
      ctx.log.error("connection from {} ended by an internal error: {}", client_ip, e.what());
    }
  }
  client.socket().shutdown(tcp::socket::shutdown_send, ec);
  client.socket().close(ec);
}

}  // namespace userkey::lb::engine
