// A request's body as the upstream side sees it: the part the lb holds, and,
// for a body longer than that, the rest still on the client connection,
// taken one piece at a time as the upstream takes it.
//
// Owns: the held bytes (the replay buffer: the whole body when it fits, else
// its first bytes), whether the body is complete in them, whether anything
// past them has been read from the client (after which no attempt can send
// the body again: the rule retries follow), and the framing a streamed body
// goes upstream in (the client's Content-Length, or chunks).
//
// Leaves to others: reading the client (the session's ClientBody, which
// implements next() and stop()), writing upstream (upstream_exchange),
// whether to retry (upstream_router), the global bound on held bytes
// (body_budget).
#pragma once

#include "io_types.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace userkey::lb::engine {

/// Bodies up to this long are held whole before anything goes upstream (and
/// may be sent again by a retry); a longer one is streamed: its first
/// kReplayLimit bytes are held, the rest read from the client as the
/// upstream takes it. Envoy's rule, with a fixed 64 KiB buffer: a request
/// is retried only while its whole body is still held.
inline constexpr std::size_t kReplayLimit = 64 * 1024;

class RequestBody {
public:
  virtual ~RequestBody() = default;

  /// What the lb holds: the whole body when complete(), else its first bytes.
  const std::string& held() const { return held_; }
  /// The whole body is held.
  bool complete() const { return complete_; }
  /// No byte past held() has been read from the client: an attempt may
  /// still send the body from its start (a retry is possible).
  bool replayable() const { return complete_ || !pumped_; }
  /// A streamed body's length as the client said it (Content-Length); none:
  /// it goes upstream in chunks.
  std::optional<std::uint64_t> length() const { return length_; }

  /// The next piece past held() (and past the pieces before), read from
  /// the client, into `out` (cleared first). Empty `out` and no error: the
  /// body has ended. An error is the client's (see client_error()).
  virtual awaitable<void> next(std::string& out, error_code& ec) = 0;
  /// Ends a next() in progress (the upstream answered before the whole body
  /// went, or failed): it returns operation_aborted. The client connection
  /// is then out of step: it closes after its answer.
  virtual void stop() = 0;

  /// Why reading the client failed (beast::error::timeout for the body
  /// deadline); none while it has not.
  const error_code& client_error() const { return client_error_; }

protected:
  std::string held_;
  bool complete_ = true;
  bool pumped_ = false;
  std::optional<std::uint64_t> length_;
  error_code client_error_;
};

// (See downstream_session.cpp: GCC 12's false -Wmismatched-new-delete on
// Asio's coroutine frames.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

/// A body held whole (or none): nothing to read from a client. What tests,
/// and callers that have the whole body, hand to the upstream side.
class HeldBody final : public RequestBody {
public:
  explicit HeldBody(std::string body = {}) { held_ = std::move(body); }
  awaitable<void> next(std::string& out, error_code& ec) override {
    out.clear();
    ec = {};
    co_return;
  }
  void stop() override {}
};

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
