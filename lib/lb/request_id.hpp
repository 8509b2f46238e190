// Request ids and trace context as the lb handles them: which client
// X-Request-Id and traceparent are kept, and the fresh ones each event loop
// makes.
//
// Owns: the in-place holder a session keeps an id in (no allocation), the
// per-loop generator of fresh ids (128 bits of xoshiro256** as 32 lower-case
// hex digits, seeded from std::random_device; one per loop, so generating
// takes no lock and touches no shared state), and what the lb does with a
// request's trace (RequestTrace): the client's valid traceparent keeps its
// trace-id and flags and gets a parent-id of the lb's own hop; otherwise a
// new trace starts (random trace-id and parent-id from the same generator,
// flags 00: the lb records no spans, so it asks no one to sample).
//
// Leaves to others: the rules for a well-formed id and a valid traceparent
// (core/request_id.hpp, core/trace_context.hpp, shared with the backend),
// putting them in the upstream request and the client's response
// (http1_codec), deciding when to do it (downstream_session).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/request_id.hpp"
#include "core/trace_context.hpp"

namespace userkey::lb::engine {

/// A request id held in place (up to kMaxRequestIdLength characters); empty
/// when the request has none.
class RequestId {
public:
  std::string_view view() const noexcept { return {data_.data(), size_}; }
  bool empty() const noexcept { return size_ == 0; }
  /// Holds `id`, cut to kMaxRequestIdLength characters.
  void assign(std::string_view id) noexcept {
    size_ = id.size() < data_.size() ? id.size() : data_.size();
    for (std::size_t i = 0; i < size_; ++i) data_[i] = id[i];
  }
  void clear() noexcept { size_ = 0; }

private:
  friend class RequestIdGenerator;
  std::array<char, kMaxRequestIdLength> data_{};
  std::size_t size_ = 0;
};

/// Fresh request ids for one event loop: not thread-safe, keep one per loop.
class RequestIdGenerator {
public:
  /// Seeded from std::random_device.
  RequestIdGenerator();
  /// Seeded from `seed` (tests: the same seed gives the same ids).
  explicit RequestIdGenerator(std::uint64_t seed) noexcept;

  /// Puts a fresh id in `out`: 32 lower-case hex digits (128 bits).
  void next(RequestId& out) noexcept;
  /// 64 pseudo-random bits (xoshiro256**).
  std::uint64_t next64() noexcept;

private:
  void seed(std::uint64_t s) noexcept;
  std::array<std::uint64_t, 4> state_{};
};

/// The id a request goes on with. `fields` are its head's fields: when they
/// hold exactly one X-Request-Id and it is well-formed, `out` holds it and
/// the result is true; otherwise (none, several, malformed) `out` holds a
/// fresh id from `ids` and the result is false.
template <class Fields>
bool take_request_id(const Fields& fields, RequestIdGenerator& ids, RequestId& out) {
  if (const std::string_view id = request_id_of(fields); !id.empty()) {
    out.assign(id);
    return true;
  }
  ids.next(out);
  return false;
}

/// A request's trace as the lb sends it upstream (traceparent) and logs it.
struct RequestTrace {
  TraceParent parent;      ///< what goes upstream; empty: none (request ids off)
  bool continued = false;  ///< the client's trace goes on: so does its tracestate
  void clear() noexcept {
    parent.clear();
    continued = false;
  }
};

/// The trace a request goes on with. `fields` are its head's fields: when
/// they hold exactly one traceparent and it is valid, `out` continues its
/// trace (trace-id and flags kept, a new parent-id for the lb's hop) and the
/// result is true; otherwise (none, several, invalid) `out` starts a new
/// trace (flags 00) and the result is false. Both from `ids`.
template <class Fields>
bool take_trace(const Fields& fields, RequestIdGenerator& ids, RequestTrace& out) {
  out.continued = out.parent.parse(single_field(fields, kTraceParentField));
  if (out.continued) {
    out.parent.set_parent_id(ids.next64());
  } else {
    const std::uint64_t high = ids.next64(), low = ids.next64();
    out.parent.start(high, low, ids.next64(), 0);
  }
  return out.continued;
}

/// What a session does with a request's head: take_request_id, then take_trace.
template <class Fields>
void take_identity(const Fields& fields, RequestIdGenerator& ids, RequestId& id, RequestTrace& trace) {
  take_request_id(fields, ids, id);
  take_trace(fields, ids, trace);
}

/// Request ids off: no id and no trace of the lb's.
inline void clear_identity(RequestId& id, RequestTrace& trace) noexcept {
  id.clear();
  trace.clear();
}

}  // namespace userkey::lb::engine
