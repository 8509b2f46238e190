// Relaying a streamed response to the client: its head, then its body as it
// arrives from the upstream, through one buffer of about 64 KiB.
//
// Owns: the relay loop (read a piece from the upstream, write it to the
// client, and only then read the next: the client's pace is the upstream's,
// so memory does not follow the body), the body's framing to the client
// (its Content-Length kept; else re-chunked to HTTP/1.1, close-delimited to
// HTTP/1.0), the bounds on each step (each upstream read and each client
// write within `timeout`), how the relay ended and the bytes the client got.
//
// Leaves to others: the head's fields (http1_codec), reading the upstream
// (upstream_body), what the end means for the connection and for passive
// health (UpstreamRouter::finish_body), the access log (downstream_session).
#pragma once

#include "io_types.hpp"

#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "http1_codec.hpp"
#include "upstream_body.hpp"

namespace userkey::lb::engine {

// (See downstream_session.cpp: GCC 12's false -Wmismatched-new-delete on
// Asio's coroutine frames.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

/// One write to the client of `c` within `timeout`, adding what went to
/// `sent`; false when it failed or timed out.
template <class Layer, class Buffers>
awaitable<bool> write_within(typename Layer::Connection& c, std::chrono::milliseconds timeout, std::size_t& sent,
                             Buffers buffers) {
  error_code ec;
  c.deadline_after(timeout);
  sent += co_await asio::async_write(Layer::stream(c), buffers, nothrow(ec));
  const bool fired = c.clear_deadline();
  co_return !fired && !ec;
}

/// Writes `head` (serialized for `framing`) and then `body` to the client of
/// `c` as it arrives, framed as `framing` says. Returns the bytes written to
/// the client (head and framing included); `end` says how it ended.
template <class Layer>
awaitable<std::size_t> relay_body(typename Layer::Connection& c, const std::string& head, UpstreamBody& body,
                                  http1::BodyFraming framing, std::chrono::milliseconds timeout, BodyEnd& end) {
  error_code ec;
  std::size_t sent = 0;
  end = BodyEnd::client_gone;
  const bool head_ok = co_await write_within<Layer>(c, timeout, sent, asio::buffer(head));
  if (!head_ok) co_return sent;
  std::string piece;
  std::string size_line;
  static constexpr std::string_view kCrlf = "\r\n";
  static constexpr std::string_view kLastChunk = "0\r\n\r\n";
  for (;;) {
    co_await read_body_piece(body, piece, timeout, ec);
    if (ec) {
      end = ec == beast::error::timeout ? BodyEnd::upstream_timeout : BodyEnd::upstream_failed;
      co_return sent;
    }
    if (piece.empty()) break;  // the body has ended
    bool ok = false;
    if (framing == http1::BodyFraming::chunked) {
      size_line.clear();
      http1::append_chunk_size(size_line, piece.size());
      const std::array<asio::const_buffer, 3> chunk{asio::buffer(size_line), asio::buffer(piece), asio::buffer(kCrlf)};
      ok = co_await write_within<Layer>(c, timeout, sent, chunk);
    } else {
      ok = co_await write_within<Layer>(c, timeout, sent, asio::buffer(piece));
    }
    if (!ok) co_return sent;
  }
  if (framing == http1::BodyFraming::chunked) {
    // (The upstream's trailers are dropped.)
    const bool ok = co_await write_within<Layer>(c, timeout, sent, asio::buffer(kLastChunk));
    if (!ok) co_return sent;
  }
  end = BodyEnd::complete;
  co_return sent;
}

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
