// One request and its response on one upstream connection: see
// upstream_exchange.hpp.
#include "upstream_exchange.hpp"

#include <boost/asio/co_spawn.hpp>
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
  explicit PendingWrite(const Executor& ex) : signal(ex, Timer::time_point::max()), deadline(ex) {}
  Timer signal;
  /// A streamed body's: the response's deadline, set when the body's end
  /// went (the response read runs without one while the body streams).
  Timer deadline;
  bool done = false;
  /// The exchange is over: the deadline's handler leaves the connection be.
  bool finished = false;
  bool read_timed_out = false;
  bool client_failed = false;  // reading the client's body failed
  error_code error;
  std::size_t written = 0;
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// One write of `prefix` and `data` (`data` framed as a chunk when `chunked`)
// within `timeout`, counted in `p`.
awaitable<void> write_piece(Conn& conn, std::string_view prefix, std::string_view data, bool chunked,
                            std::string& size_line, std::chrono::milliseconds timeout, PendingWrite& p) {
  static constexpr std::string_view kCrlf = "\r\n";
  const bool framed = chunked && !data.empty();
  size_line.clear();
  if (framed) http1::append_chunk_size(size_line, data.size());
  const std::array<asio::const_buffer, 4> out{asio::buffer(prefix), asio::buffer(size_line), asio::buffer(data),
                                              asio::buffer(framed ? kCrlf : std::string_view{})};
  // (While the response read is pending this sets the write's timer only.)
  conn.stream.expires_after(timeout);
  p.written += co_await on_stream(conn, [&](auto& s) { return asio::async_write(s, out, nothrow(p.error)); });
}

// Writes a streamed request: the head with the held bytes, then each piece
// as the client sends it, then (chunked) the last chunk. The whole body
// went: the response's deadline starts. A write that failed on its own
// account, or a client that failed, ends the response read (the upstream
// never had the whole request).
awaitable<void> pump_body(Conn& conn, const std::string& head, RequestBody& body, std::chrono::milliseconds timeout,
                          std::shared_ptr<PendingWrite> p) {
  static constexpr std::string_view kLastChunk = "0\r\n\r\n";
  const bool chunked = !body.length();
  std::string size_line, piece;
  co_await write_piece(conn, head, body.held(), chunked, size_line, timeout, *p);
  while (!p->error) {
    error_code ec;
    co_await body.next(piece, ec);
    if (ec) {
      // (Stopped: the exchange has its answer, or gave up.)
      p->client_failed = ec != asio::error::operation_aborted;
      p->error = ec;
      break;
    }
    if (piece.empty()) {
      if (chunked) co_await write_piece(conn, kLastChunk, {}, false, size_line, timeout, *p);
      break;
    }
    co_await write_piece(conn, {}, piece, chunked, size_line, timeout, *p);
  }
  if (!p->error) {
    p->deadline.expires_after(timeout);
    p->deadline.async_wait([p, stream = &conn.stream](const error_code& ec) {
      if (ec || p->finished) return;
      p->read_timed_out = true;
      stream->close();
    });
  } else if (p->client_failed || (!peer_closed(p->error) && p->error != asio::error::operation_aborted)) {
    conn.stream.close();
  }
}

// The response (or the read's failure) came before the whole request
// went: the write ends here, and the connection is not reused. Shutting the
// sending side down ends the write's next step too (EPIPE), where a cancel
// alone would miss a step not yet started; a streamed body (`streamed`)
// stops reading the client. Then the write's result goes into `x`.
awaitable<void> end_write(Conn& conn, PendingWrite& pending, RequestBody* streamed, Exchange& x) {
  if (!pending.done) {
    error_code ignored;
    conn.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    conn.stream.cancel();
    if (streamed != nullptr) streamed->stop();
  }
  while (!pending.done) {
    error_code ignored;
    co_await pending.signal.async_wait(nothrow(ignored));
  }
  pending.finished = true;
  pending.deadline.cancel();
  x.write_error = pending.error;
  x.written = pending.written;
  x.client_failed = pending.client_failed;
}

#pragma GCC diagnostic pop

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

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

awaitable<Exchange> exchange(Conn& conn, const std::string& head, RequestBody& body, bool head_request,
                             std::chrono::milliseconds timeout) {
  Exchange x;
  const bool streamed = !body.complete();
  const std::string& whole = body.held();
  const std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(whole)};
  // A request without a body is written first (it fits the socket's buffer:
  // the write ends whatever the upstream does), then the response is read.
  // One with a body is written while the response is read; a streamed one
  // by pump_body, the response read having no deadline until the body's
  // end went.
  std::shared_ptr<PendingWrite> pending;
  if (streamed) {
    conn.stream.expires_never();
    pending = std::make_shared<PendingWrite>(conn.stream.get_executor());
    asio::co_spawn(conn.stream.get_executor(), pump_body(conn, head, body, timeout, pending),
                   [pending](const std::exception_ptr& e) {
                     if (e && !pending->error) pending->error = asio::error::no_memory;
                     pending->done = true;
                     pending->signal.cancel();
                   });
  } else if (whole.empty()) {
    conn.stream.expires_after(timeout);
    x.written = co_await on_stream(conn, [&](auto& s) { return asio::async_write(s, wire, nothrow(x.write_error)); });
  } else {
    conn.stream.expires_after(timeout);
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
  if (streamed) {
    co_await end_write(conn, *pending, &body, x);
    if (read_error && pending->read_timed_out) read_error = beast::error::timeout;
    conn.stream.expires_after(timeout);  // for the rest of the response
  }
  const bool stream_body = read && !read_error && !read_whole(*rp);
  if (read && !read_error && !rp->is_done() && !stream_body) {
    co_await on_stream(conn, [&](auto& s) { return http::async_read(s, conn.buffer, *rp, nothrow(read_error)); });
    if (read_error == asio::ssl::error::stream_truncated) read_error = http::error::end_of_stream;
  }
  if (pending && !streamed) co_await end_write(conn, *pending, nullptr, x);
  if (x.client_failed) {
    x.error = body.client_error();
    co_return x;
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

awaitable<Exchange> exchange(Conn& conn, const std::string& head, const std::string& body, bool head_request,
                             std::chrono::milliseconds timeout) {
  HeldBody held(body);
  co_return co_await exchange(conn, head, held, head_request, timeout);
}

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
