// The rest of a response that is relayed as it arrives: its body, still on
// the upstream connection, read one piece at a time.
//
// Owns: the connection while the body is read (and with it the connection's
// pool slot and the upstream's in-flight count), the response parser past
// the head, and reading the next piece of the body (chunks decoded, the
// close that ends a body without a length taken as its end).
//
// Leaves to others: whether a response is streamed at all and the head
// (upstream_exchange), what the end of a body means for the connection and
// the upstream's health (UpstreamRouter::finish_body), the client side
// (downstream_session).
#pragma once

#include "io_types.hpp"

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "cluster.hpp"
#include "upstream_pool.hpp"

namespace userkey::lb::engine {

/// A response parser whose head is in and whose body is still to come.
using ResponseParser = http::response_parser<http::string_body>;

/// Responses whose body is at most this long (by Content-Length) are read
/// whole before the client gets anything: one write, as for the small
/// answers most requests get. Longer ones, chunked ones and ones that end
/// with the connection are streamed.
inline constexpr std::uint64_t kWholeBodyLimit = 64 * 1024;

/// A streamed body is read from its upstream in pieces of up to this many
/// bytes (the connection's read buffer holds one while it is streamed).
inline constexpr std::size_t kPieceBytes = 64 * 1024;

/// How a streamed body ended.
enum class BodyEnd {
  complete,          ///< every byte of it was relayed
  upstream_failed,   ///< the upstream closed or reset before its end, or sent a malformed body
  upstream_timeout,  ///< the upstream sent nothing for upstream_timeout
  client_gone,       ///< the client's write failed or timed out: the upstream did nothing wrong
};

struct UpstreamBody {
  std::shared_ptr<UpstreamPool> pool;  // before `conn`: the connection's slot goes back to it
  ConnPtr conn;
  std::unique_ptr<ResponseParser> parser;
  /// The whole request went and the upstream keeps the connection open:
  /// pooled again when the body ends cleanly with nothing after it.
  bool reusable = false;
  /// The upstream switched to WebSocket (a 101 to an upgrade the lb
  /// forwarded): no body and no parser, the connection is a tunnel's now
  /// (tunnel_session.hpp) and is never pooled again.
  bool upgraded = false;
  /// For passive health should the body fail: the configuration it was
  /// chosen from and its upstream there.
  std::shared_ptr<const Snapshot> snapshot;
  const UpstreamEntry* entry = nullptr;
  std::optional<Upstream::InFlight> in_flight;

  /// The body's length as the upstream said it (Content-Length), if it did.
  std::optional<std::uint64_t> length() const {
    const auto cl = parser->content_length();
    return cl ? std::optional<std::uint64_t>(*cl) : std::nullopt;
  }
  bool done() const { return parser->is_done(); }
};

/// Reads the next piece of `body` into `out` (cleared first; at most about
/// 64 KiB), each read from the upstream within `timeout`. Empty `out` and no
/// error: the body has ended. Errors: beast::error::timeout, or the read's.
awaitable<void> read_body_piece(UpstreamBody& body, std::string& out, std::chrono::milliseconds timeout,
                                error_code& ec);

}  // namespace userkey::lb::engine
