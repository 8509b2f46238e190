// One request and its response on one upstream connection.
//
// Owns: writing the request (head, then body) and reading the response
// (skipping interim 1xx other than 101), under one deadline; a streamed body
// (request_body) is written piece by piece as the client sends it, each
// write within the timeout, and the response's deadline runs from the
// body's end. A request with
// a body is written while the response is read, so an upstream that answers
// before it has taken the whole body (a 413 as soon as the head is in, then
// a close or no more reading) is heard: its answer ends the write instead of
// the lb waiting on a write the upstream no longer reads. A write the
// upstream cut short (it closed or reset) still has what it sent read.
//
// Leaves to others: which connection (upstream_pool), whether the
// connection is reused, and what an outcome means for health and retries
// (upstream_router).
#pragma once

#include "io_types.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <memory>
#include <string>

#include "request_body.hpp"
#include "upstream_body.hpp"
#include "upstream_pool.hpp"

namespace userkey::lb::engine {

/// How an exchange went.
struct Exchange {
  /// The final response, when one was read in full (possibly before the
  /// request was written in full), or only its head when `body` is set.
  std::optional<Response> response;
  /// Set when the response's body is streamed (longer than kWholeBodyLimit,
  /// chunked, or ending with the connection): its parser, the head read,
  /// the body still on the connection.
  std::unique_ptr<ResponseParser> body;
  /// The write's error (none: the whole request was written) and how many
  /// bytes of the request went.
  error_code write_error;
  std::size_t written = 0;
  /// The error the exchange is judged by when no response came (see
  /// decisive_error()); none with a response.
  error_code error;
  /// Some of a response arrived (a response or not).
  bool got_some = false;
  /// Reading a streamed body from the client failed (a timeout, a close, a
  /// malformed chunk, the body limit): the exchange ended for the client's
  /// doing, not the upstream's. The error is RequestBody::client_error().
  bool client_failed = false;

  /// The whole request went: the connection is in step with the upstream.
  bool request_complete() const { return !write_error; }
};

/// True when a write that ended with `ec` ended because the peer closed or
/// reset the connection, so what it sent before may still be read (an early
/// answer); false for none, a timeout, a cancellation or a local error.
bool peer_closed(const error_code& ec);

/// What a failed exchange is judged by: the write's error when the write
/// failed on its own account (a timeout, a local error: nothing more was
/// read), else the read's.
error_code decisive_error(const error_code& write_error, const error_code& read_error);

/// Writes `head` and `body` on `conn` (through its TLS layer when it has
/// one) and reads the response's head, all within `timeout`; then its body
/// too when it is short (Content-Length up to kWholeBodyLimit), else leaves
/// the body to be streamed (Exchange::body). A body that is not complete()
/// is written as held() and then each piece of next(), framed as its
/// length() says, each write within `timeout`; the response then has
/// `timeout` from the body's end. `head_request`: the response has no
/// body. Leaves the connection's deadline set; the caller decides whether
/// the connection is reused.
awaitable<Exchange> exchange(Conn& conn, const std::string& head, RequestBody& body, bool head_request,
                             std::chrono::milliseconds timeout);

/// exchange() with a body held whole.
awaitable<Exchange> exchange(Conn& conn, const std::string& head, const std::string& body, bool head_request,
                             std::chrono::milliseconds timeout);

}  // namespace userkey::lb::engine
