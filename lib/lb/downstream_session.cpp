// One client connection, from accept to close: see downstream_session.hpp.
#include "downstream_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "admission.hpp"
#include "http1_codec.hpp"
#include "upstream_router.hpp"

namespace userkey::lb::engine {

void SessionRegistry::close_idle() {
  for (auto& e : entries_) {
    if (!e.busy) {
      error_code ec;
      e.stream->socket().cancel(ec);
    }
  }
}

namespace {

// Read deadline for a request head, one per session, re-armed for each
// request. Shared with its timer handler, which may run after the read
// finished: the generation tells it that its deadline is no longer current.
struct HeadDeadline {
  HeadDeadline(asio::io_context& io, Stream* s) : timer(io), stream(s) {}
  Timer timer;
  Stream* stream;
  std::uint64_t generation = 0;
  bool fired = false;
};

// While a session is served: counted in connections_open and listed in the
// loop's registry (undone in reverse, however the session ends, even when the
// loop is destroyed under it: both outlive the loop's coroutines).
class OpenSession {
public:
  OpenSession(const SessionContext& ctx, Stream& client) : registry_(ctx.sessions), stats_(ctx.stats) {
    stats_.connections_open.fetch_add(1, std::memory_order_relaxed);
    handle_ = registry_.add(client);
  }
  ~OpenSession() {
    registry_.remove(handle_);
    stats_.connections_open.fetch_sub(1, std::memory_order_relaxed);
  }
  OpenSession(const OpenSession&) = delete;
  OpenSession& operator=(const OpenSession&) = delete;
  SessionRegistry::Entry& entry() { return *handle_; }

private:
  SessionRegistry& registry_;
  ProxyStats& stats_;
  SessionRegistry::Handle handle_;
};

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

// A request the lb answers itself (or drops), counted.
awaitable<void> answer(const SessionContext& ctx, Stream& client, const http1::RequestDecision& d) {
  if (d.reason) ctx.stats.reject(*d.reason);
  if (d.action == http1::RequestDecision::Action::reject) co_await write_error(client, d.status, d.message, false);
}

awaitable<void> serve(const SessionContext& ctx, Stream& client, const std::string& client_ip,
                      SessionRegistry::Entry& ref) {
  const auto& lim = ctx.cfg.limits;
  beast::flat_buffer buffer;
  std::vector<bool> tried;
  std::string wire;  // serialized heads, reused for every request on this connection
  bool first = true;
  const auto deadline = std::make_shared<HeadDeadline>(ctx.io, &client);
  for (;;) {
    if (ctx.draining.load(std::memory_order_relaxed)) co_return;
    ref.busy = false;
    http1::RequestParser parser;
    parser.header_limit(lim.max_header_bytes);
    parser.body_limit(lim.max_body_bytes);
    // A new connection must send its head within header_timeout; between
    // keep-alive requests it may idle for idle_timeout. The deadline cancels
    // the read instead of closing the socket, so a slow client still gets
    // its 408.
    error_code ec;
    {
      const std::uint64_t gen = ++deadline->generation;
      deadline->fired = false;
      deadline->timer.expires_after(first ? lim.header_timeout : lim.idle_timeout);
      deadline->timer.async_wait([deadline, gen](const error_code& e) {
        if (e || deadline->generation != gen) return;  // cancelled, or a later request's deadline
        deadline->fired = true;
        error_code ignored;
        deadline->stream->socket().cancel(ignored);
      });
      first = false;
      co_await http::async_read_header(client, buffer, parser, nothrow(ec));
      ++deadline->generation;  // disarm
      deadline->timer.cancel();
      if (deadline->fired) ec = beast::error::timeout;
    }
    ref.busy = true;
    if (ec) {
      const auto decision = http1::classify_head_error(ec, parser.got_some());
      co_await answer(ctx, client, decision);
      co_return;
    }
    if (const auto framing = http1::check_framing(parser, lim.max_body_bytes); !framing.forwards()) {
      co_await answer(ctx, client, framing);
      co_return;
    }
    // The whole body is read here before anything goes upstream, so a
    // client waiting for 100 Continue gets it from the lb.
    if (auto expect = parser.get().find(http::field::expect);
        expect != parser.get().end() && beast::iequals(expect->value(), "100-continue") && !parser.is_done()) {
      client.expires_after(lim.header_timeout);
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(client, asio::buffer(kContinue), nothrow(ec));
      if (ec) co_return;
    }
    client.expires_after(lim.header_timeout);
    co_await http::async_read(client, buffer, parser, nothrow(ec));
    if (ec) {
      const auto decision = http1::classify_body_error(ec);
      co_await answer(ctx, client, decision);
      co_return;
    }
    client.expires_never();
    Request req = parser.release();
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
      co_await write_error(client, refused->status, refused->message, keep_alive, version, refused->retry_after);
      if (!keep_alive) co_return;
      continue;
    }

    const auto started = SteadyClock::now();
    std::string upstream_name;
    const bool head_request = req.method() == http::verb::head;
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
    ConnectionPass pass;  // the per-IP count: released before the socket closes
    if (const auto refused = ctx.admission.admit_connection(client_ip, pass)) {
      ctx.stats.reject(refused->reason);
      co_await write_error(client, refused->status, refused->message, false, 11, refused->retry_after);
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
