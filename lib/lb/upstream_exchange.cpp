// One request and its response on one upstream connection: see
// upstream_exchange.hpp.
#include "upstream_exchange.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <memory>

namespace userkey::lb::engine {

namespace {

// `op(s)` on the stream requests to `conn` go over: its TLS layer when it has
// one, else the connection itself. `op` starts one asynchronous operation
// and returns its awaitable (or nothing), the same type for either stream.
template <class Op>
auto on_stream(Conn& conn, Op&& op) {
  return conn.tls ? op(*conn.tls) : op(conn.stream);
}

// A write that runs while the response is read: its result, and a timer
// cancelled when it is in (never expiring by itself).
struct PendingWrite {
  explicit PendingWrite(const Executor& ex) : signal(ex, Timer::time_point::max()) {}
  Timer signal;
  bool done = false;
  error_code error;
  std::size_t written = 0;
};

// A body read whole rather than streamed: none, one already complete, or
// one whose Content-Length is at most kWholeBodyLimit.
bool read_whole(const ResponseParser& rp) {
  return rp.is_done() || (rp.content_length() && *rp.content_length() <= kWholeBodyLimit);
}

}  // namespace

bool peer_closed(const error_code& ec) {
  return ec == asio::error::broken_pipe || ec == asio::error::connection_reset || ec == asio::error::eof ||
         ec == asio::ssl::error::stream_truncated;
}

error_code decisive_error(const error_code& write_error, const error_code& read_error) {
  if (write_error && !peer_closed(write_error) && write_error != asio::error::operation_aborted) return write_error;
  return read_error;
}

awaitable<Exchange> exchange(Conn& conn, const std::string& head, const std::string& body, bool head_request,
                             std::chrono::milliseconds timeout) {
  Exchange x;
  conn.stream.expires_after(timeout);
  const std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(body)};
  // A request without a body is written first (it fits the socket's buffer:
  // the write ends whatever the upstream does), then the response is read.
  // One with a body is written while the response is read.
  std::shared_ptr<PendingWrite> pending;
  if (body.empty()) {
    x.written = co_await on_stream(conn, [&](auto& s) { return asio::async_write(s, wire, nothrow(x.write_error)); });
  } else {
    pending = std::make_shared<PendingWrite>(conn.stream.get_executor());
    on_stream(conn, [&](auto& s) {
      asio::async_write(s, wire, [pending, stream = &conn.stream](const error_code& ec, std::size_t n) {
        pending->done = true;
        pending->error = ec;
        pending->written = n;
        // A write that failed on its own account (a timeout, a local
        // error) ends the read too: the upstream never had the request.
        // Closed, not cancelled: a cancel reaches only an operation pending
        // at that moment, not the read's next one.
        if (ec && !peer_closed(ec)) stream->close();
        pending->signal.cancel();
      });
    });
  }
  conn.buffer.clear();
  error_code read_error;
  // Interim 1xx responses (other than 101) are skipped: the final response
  // follows on the same connection.
  // No cap on the body's size: a long one is streamed, not held.
  auto rp = std::make_unique<ResponseParser>();
  const bool read = !x.write_error || peer_closed(x.write_error);
  while (read) {
    rp = std::make_unique<ResponseParser>();
    rp->body_limit(std::numeric_limits<std::uint64_t>::max());
    if (head_request) rp->skip(true);
    co_await on_stream(conn,
                       [&](auto& s) { return http::async_read_header(s, conn.buffer, *rp, nothrow(read_error)); });
    // An upstream that closes TLS without close_notify has closed: as a
    // plain connection's end of stream (which never reports this error).
    if (read_error == asio::ssl::error::stream_truncated) read_error = http::error::end_of_stream;
    x.got_some = x.got_some || rp->got_some();
    const unsigned code = rp->get().result_int();
    if (read_error || code / 100 != 1 || code == 101) break;
  }
  const bool stream_body = read && !read_error && !read_whole(*rp);
  if (read && !read_error && !rp->is_done() && !stream_body) {
    co_await on_stream(conn, [&](auto& s) { return http::async_read(s, conn.buffer, *rp, nothrow(read_error)); });
    if (read_error == asio::ssl::error::stream_truncated) read_error = http::error::end_of_stream;
  }
  if (pending) {
    // The response (or the read's failure) came before the whole request
    // went: the write ends here, and the connection is not reused. Shutting
    // the sending side down ends the write's next step too (EPIPE), where a
    // cancel alone would miss a step not yet started.
    if (!pending->done) {
      error_code ignored;
      conn.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      conn.stream.cancel();
    }
    while (!pending->done) {
      error_code ignored;
      co_await pending->signal.async_wait(nothrow(ignored));
    }
    x.write_error = pending->error;
    x.written = pending->written;
  }
  if (stream_body) {
    x.response.emplace();
    x.response->base() = rp->get().base();
    x.body = std::move(rp);
  } else if (read && !read_error) {
    x.response = rp->release();
  }
  else
    x.error = read ? decisive_error(x.write_error, read_error) : x.write_error;
  co_return x;
}

}  // namespace userkey::lb::engine
