// A request's body on the client connection, read for the upstream side:
// the RequestBody the session hands to the router.
//
// Owns: reading the body through the request's parser (chunks decoded, the
// body limit enforced by the parser) into the held part, up to
// kReplayLimit, before anything goes upstream (hold(), within the body's
// deadline); then, for a longer body, one piece at a time as the upstream
// exchange asks for it (next(), each wait for the client within
// `body_timeout`: an upstream that reads slowly is not the client's fault);
// stopping a read in progress (stop()), and the bytes read.
//
// Leaves to others: what goes upstream and when (upstream_exchange), the
// budget its bytes are reserved from (body_budget, by the session),
// answering a failure (local_reply).
#pragma once

#include "io_types.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>

#include <chrono>
#include <cstddef>
#include <string>

#include "http1_codec.hpp"
#include "request_body.hpp"

namespace userkey::lb::engine {

// (See downstream_session.cpp: GCC 12's false -Wmismatched-new-delete on
// Asio's coroutine frames.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

template <class Layer>
class ClientBody final : public RequestBody {
public:
  /// `parser` has read the request's head from `c` through `buffer`; all
  /// three outlive this.
  ClientBody(typename Layer::Connection& c, beast::flat_buffer& buffer, http1::RequestParser& parser,
             std::chrono::milliseconds body_timeout)
      : c_(c), buffer_(buffer), parser_(parser), body_timeout_(body_timeout) {}

  /// Reads the body until it ends or kReplayLimit bytes of it are held,
  /// all by `deadline`. Then complete() says which; an incomplete body's
  /// length() is the client's Content-Length (none: chunked). `ec`: the
  /// read's error (beast::error::timeout past the deadline).
  awaitable<void> hold(TimePoint deadline, error_code& ec) {
    auto& body = parser_.get().body();
    // Room for a whole read: Beast reads as much as the buffer has room for
    // (at least 512 bytes), and one grown only to the head's size would
    // take a long body 512 bytes at a time.
    if (!parser_.is_done() && buffer_.capacity() < buffer_.max_size()) buffer_.reserve(buffer_.max_size());
    while (!parser_.is_done() && body.size() < kReplayLimit) {
      c_.deadline_at(deadline);
      bytes_ += co_await http::async_read_some(Layer::stream(c_), buffer_, parser_, nothrow(ec));
      Layer::settle(ec);
      if (c_.clear_deadline()) ec = beast::error::timeout;
      // The parser reserves the whole Content-Length at the body's start:
      // only what is held is kept.
      if (body.capacity() > 2 * kReplayLimit) body.shrink_to_fit();
      if (ec) co_return;
    }
    held_ = std::move(body);
    body.clear();
    complete_ = parser_.is_done();
    if (!complete_ && !parser_.chunked() && parser_.content_length()) length_ = *parser_.content_length();
  }

  awaitable<void> next(std::string& out, error_code& ec) override {
    out.clear();
    ec = {};
    if (parser_.is_done()) co_return;
    if (!pumped_) {
      // From here on the body cannot be sent again: what was held went.
      pumped_ = true;
      std::string().swap(held_);
    }
    auto& body = parser_.get().body();
    while (body.empty() && !parser_.is_done()) {
      if (stopped_) {
        ec = asio::error::operation_aborted;
        co_return;
      }
      c_.deadline_after(body_timeout_);
      bytes_ += co_await http::async_read_some(Layer::stream(c_), buffer_, parser_, nothrow(ec));
      Layer::settle(ec);
      if (c_.clear_deadline()) ec = beast::error::timeout;
      if (stopped_ && ec) ec = asio::error::operation_aborted;
      if (ec) {
        if (ec != asio::error::operation_aborted) client_error_ = ec;
        co_return;
      }
    }
    out.swap(body);
    body.clear();
  }

  void stop() override {
    stopped_ = true;
    error_code ignored;
    c_.socket.cancel(ignored);
  }

  /// Body bytes read from the client (framing included).
  std::size_t bytes_read() const { return bytes_; }
  /// The whole body was read: the connection is in step for another request.
  bool read_through() const { return parser_.is_done(); }

private:
  typename Layer::Connection& c_;
  beast::flat_buffer& buffer_;
  http1::RequestParser& parser_;
  std::chrono::milliseconds body_timeout_;
  std::size_t bytes_ = 0;
  bool stopped_ = false;
};

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
