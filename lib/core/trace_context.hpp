// W3C Trace Context (https://www.w3.org/TR/trace-context/): the traceparent
// header's rules, shared by the lb (keeps a client's trace or starts one,
// sends it upstream, logs its trace-id) and the backend (logs the trace-id it
// gets), so both accept exactly the same values.
//
// Owns: parsing a traceparent value, the version-00 text a TraceParent holds
// in place (55 characters: no allocation) and is sent on with, starting a
// trace from random words, and a new parent-id for a hop of one's own.
//
// The rules: `version "-" trace-id "-" parent-id "-" flags`, every field
// lower-case hex; the trace-id 32 digits and the parent-id 16, neither all
// zeros; the flags 2 digits. Version 00 is exactly those 55 characters.
// Version ff is invalid. A later version (01-fe) is read by the spec's
// forward-compatible rule: at least 55 characters, the first four fields as
// above, then the end or a `-` (what follows is ignored); it is held (and
// sent on) as version 00.
//
// Leaves to others: where the random words come from (the lb's per-loop
// generator), which header fields are read and written (lb/request_id,
// lb/http1_codec, backend/backend_connection), tracestate (passed on as it
// is, or dropped, by the lb).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace userkey {

/// The header fields of W3C Trace Context.
inline constexpr std::string_view kTraceParentField = "traceparent";
inline constexpr std::string_view kTraceStateField = "tracestate";

/// A valid traceparent, held as its version-00 text ("00-" trace-id "-"
/// parent-id "-" flags); empty when there is none.
class TraceParent {
public:
  /// The length of a version-00 traceparent.
  static constexpr std::size_t kLength = 55;
  /// The flags kept from a parsed value: sampled (01) and Level 2's
  /// random-trace-id (02), which stay true of the trace-id kept; the bits the
  /// spec leaves undefined are set to zero, as it asks.
  static constexpr std::uint8_t kKeptFlags = 0x03;

  bool empty() const noexcept { return !set_; }
  /// The whole value, 55 characters; empty when there is none.
  std::string_view text() const noexcept { return set_ ? std::string_view(text_.data(), kLength) : std::string_view{}; }
  /// 32 lower-case hex digits; empty when there is none.
  std::string_view trace_id() const noexcept {
    return set_ ? std::string_view(text_.data() + 3, 32) : std::string_view{};
  }
  /// 16 lower-case hex digits; empty when there is none.
  std::string_view parent_id() const noexcept {
    return set_ ? std::string_view(text_.data() + 36, 16) : std::string_view{};
  }
  /// The flags (0 when there is none).
  std::uint8_t flags() const noexcept;
  void clear() noexcept { set_ = false; }

  /// Holds `value` when it is a valid traceparent (see the rules above), as
  /// version 00 with its flags masked by kKeptFlags; true then. Otherwise
  /// this is left empty and the result is false.
  bool parse(std::string_view value) noexcept;
  /// A new trace: the trace-id from `trace_high` and `trace_low` (high word
  /// first), the parent-id from `parent`, `flags`. An all-zero id is made 1
  /// (never valid otherwise; with random words, never seen in practice).
  void start(std::uint64_t trace_high, std::uint64_t trace_low, std::uint64_t parent, std::uint8_t flags) noexcept;
  /// The same trace, the same flags, a new parent-id (0 is made 1). Only on
  /// a TraceParent that holds one.
  void set_parent_id(std::uint64_t parent) noexcept;

private:
  std::array<char, kLength> text_{};
  bool set_ = false;
};

}  // namespace userkey
