// One backend client connection: see backend_connection.hpp.
#include "backend/backend_connection.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <array>
#include <chrono>
#include <exception>
#include <string>

#include "backend/http_wire.hpp"
#include "backend/request_reader.hpp"
#include "core/request_id.hpp"
#include "core/trace_context.hpp"
#include "net/lingering_close.hpp"

namespace userkey::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

Connections::Handle Connections::add(beast::tcp_stream& stream) {
  entries_.push_front({&stream});
  return entries_.begin();
}

void Connections::cancel_idle() {
  error_code ec;
  for (auto& e : entries_)
    if (!e.busy) e.stream->socket().cancel(ec);
}

namespace {

auto nothrow(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// An answer to a request that cannot go on (malformed, too large), then a
// lingering close: the client may still be sending what was refused.
asio::awaitable<void> refuse(ConnectionContext& ctx, beast::tcp_stream& stream, int status, std::string& head) {
  const HttpResponse res = ctx.dispatch.router().protocol_error(status);
  ctx.metrics.count_response(status);
  head.clear();
  append_response_head(head, res, res.body.size(), false, false);
  const std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(res.body)};
  error_code ec;
  stream.expires_after(std::chrono::seconds(ctx.cfg.read_timeout_s));
  co_await asio::async_write(stream, wire, nothrow(ec));
  if (ec) co_return;
  stream.expires_never();  // the lingering close has its own bound
  co_await net::linger_close(stream.socket());
}

asio::awaitable<void> serve(ConnectionContext& ctx, beast::tcp_stream& stream, const std::string& peer,
                            Connections::Entry& self, Listener listener) {
  const auto& cfg = ctx.cfg;
  beast::flat_buffer buffer;
  std::string head;
  for (std::size_t served = 0;;) {
    if (ctx.stopping) co_return;
    self.busy = false;
    RequestParser parser;
    limit_parser(parser);
    const error_code ec = co_await read_request(
        stream, buffer, parser, std::chrono::seconds(served == 0 ? cfg.read_timeout_s : cfg.keep_alive_timeout_s),
        std::chrono::seconds(cfg.read_timeout_s), self.busy);
    if (ec) {
      const auto target = parser.get().target();
      if (const int status = status_for_read_error(ec, {target.data(), target.size()}))
        co_await refuse(ctx, stream, status, head);
      co_return;
    }
    const auto& req = parser.get();
    if (req.target().size() > kMaxRequestTarget) {
      co_await refuse(ctx, stream, 414, head);
      co_return;
    }
    ++served;
    const auto started = SteadyClock::now();
    RequestLine line{std::string(req.method_string()), std::string(req.target()),
                     std::string(req[http::field::accept])};
    // Who the request is, as the lb (or a client) says: a well-formed
    // X-Request-Id and a valid traceparent; views of the request's fields.
    const std::string_view request_id = request_id_of(req);
    TraceParent trace;
    trace.parse(single_field(req, kTraceParentField));
    const Route route = route_of(line.method, line.target, listener, cfg.admin.has_value());
    HttpResponse out = co_await ctx.dispatch.respond(line, route);
    ctx.metrics.count_response(out.status);
    if (route == Route::lookup)
      ctx.metrics.observe_lookup(std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started));
    const bool keep_alive = req.keep_alive() && served < cfg.keep_alive_max_requests && !ctx.stopping;
    const bool head_only = req.method() == http::verb::head;
    head.clear();
    append_response_head(head, out, out.body.size(), keep_alive, req.version() == 10, request_id);
    const std::array<asio::const_buffer, 2> wire{asio::buffer(head),
                                                 asio::buffer(head_only ? std::string_view{} : out.body)};
    stream.expires_after(std::chrono::seconds(cfg.read_timeout_s));
    error_code write_ec;
    co_await asio::async_write(stream, wire, nothrow(write_ec));
    if (cfg.access_log && ctx.log) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started).count();
      ctx.log->info("{} {} {} {}us {} id={} trace={}", line.method, line.target, out.status, us, peer,
                    request_id.empty() ? std::string_view("-") : request_id,
                    trace.empty() ? std::string_view("-") : trace.trace_id());
    }
    if (write_ec || !keep_alive) co_return;
  }
}

}  // namespace

asio::awaitable<void> serve_connection(ConnectionContext& ctx, tcp::socket sock, Listener listener) {
  error_code ec;
  // Without it, Nagle holds a response's second segment until the client's
  // delayed ACK (~40 ms).
  sock.set_option(tcp::no_delay(true), ec);
  const auto remote = sock.remote_endpoint(ec);
  const std::string peer = ec ? std::string("-") : remote.address().to_string();
  beast::tcp_stream stream(std::move(sock));
  const auto self = ctx.connections.add(stream);
  try {
    co_await serve(ctx, stream, peer, *self, listener);
  } catch (const std::exception& e) {
    if (ctx.log) ctx.log->error("connection from {} ended by an internal error: {}", peer, e.what());
  }
  ctx.connections.remove(self);
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.socket().close(ec);
}

#pragma GCC diagnostic pop

}  // namespace userkey::detail
