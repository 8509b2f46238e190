// Reading one request on a backend connection (internal to BackendServer).
//
// Owns: the parser's limits (http_wire.hpp), the read deadlines (the first
// request's or the keep-alive wait, then `read_timeout_s` for the body), the
// framing check once the head is in (more than one Content-Length, or one
// with Transfer-Encoding, is ambiguous framing: 400, RFC 9112 6.3), the
// interim "100 Continue" when the client waits for it, and the body (read
// and dropped by the caller: no route takes one).
//
// Leaves to others: what a failed read is answered with
// (http_wire.hpp's status_for_read_error), the answer itself.
#pragma once

#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>

namespace userkey::detail {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

/// A parser with the backend's head and body limits.
void limit_parser(RequestParser& parser);

/// The error a request head with ambiguous framing is refused with
/// (http::error::bad_content_length, answered 400), or none.
boost::system::error_code framing_error(const boost::beast::http::fields& head);

/// Whether the client waits for "100 Continue" before sending its body.
bool expects_continue(const boost::beast::http::fields& head);

/// Reads a request into `parser`: the head within `head_timeout`, then,
/// framing checked and 100 Continue sent when asked for, the body within
/// `body_timeout`. `head_read` is set once the head is in (the connection
/// is busy from then on).
boost::asio::awaitable<boost::system::error_code> read_request(boost::beast::tcp_stream& stream,
                                                               boost::beast::flat_buffer& buffer,
                                                               RequestParser& parser,
                                                               std::chrono::seconds head_timeout,
                                                               std::chrono::seconds body_timeout, bool& head_read);

}  // namespace userkey::detail
