// The rest of a streamed response: see upstream_body.hpp.
#include "upstream_body.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http/read.hpp>

namespace userkey::lb::engine {

// (See downstream_session.cpp: GCC 12's false -Wmismatched-new-delete on
// Asio's coroutine frames.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

awaitable<void> read_body_piece(UpstreamBody& body, std::string& out, std::chrono::milliseconds timeout,
                                error_code& ec) {
  ec = {};
  out.clear();
  Conn& conn = *body.conn;
  ResponseParser& parser = *body.parser;
  // Room for a whole piece: Beast reads as much as the buffer has room for
  // (at least 512 bytes), and a buffer grown only to a head's size would
  // relay a long body 512 bytes at a time. (Given back in finish_body.)
  if (conn.buffer.capacity() < kPieceBytes) conn.buffer.reserve(kPieceBytes);
  // A read may bring only framing (a chunk's size line): read on until some
  // of the body comes or it ends.
  while (out.empty() && !parser.is_done()) {
    conn.stream.expires_after(timeout);
    if (conn.tls)
      co_await http::async_read_some(*conn.tls, conn.buffer, parser, nothrow(ec));
    else
      co_await http::async_read_some(conn.stream, conn.buffer, parser, nothrow(ec));
    // An upstream that closes TLS without close_notify has closed: the end
    // of a body that ends with the connection, else a body cut short.
    if (ec == asio::ssl::error::stream_truncated) {
      ec = {};
      parser.put_eof(ec);
    }
    // What the parser took is this piece; its body string starts over
    // (the parser appends to whatever string it holds).
    out.swap(parser.get().body());
    parser.get().body().clear();
    if (ec) {
      out.clear();
      break;
    }
  }
  conn.stream.expires_never();
}

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
