// W3C traceparent: see trace_context.hpp.
#include "core/trace_context.hpp"

namespace userkey {

namespace {

constexpr char kHex[] = "0123456789abcdef";

// The value of a lower-case hex digit, or -1 (upper case is not hex here:
// the spec's HEXDIGLC).
constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

constexpr bool lower_hex(std::string_view s) noexcept {
  for (const char c : s)
    if (hex_value(c) < 0) return false;
  return true;
}

constexpr bool all_zeros(std::string_view s) noexcept { return s.find_first_not_of('0') == std::string_view::npos; }

// `v` as 16 lower-case hex digits at `out`.
void write_hex64(char* out, std::uint64_t v) noexcept {
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kHex[v & 15];
}

void write_flags(char* out, std::uint8_t flags) noexcept {
  out[0] = kHex[flags >> 4];
  out[1] = kHex[flags & 15];
}

// Offsets in a version-00 value: "vv-" trace-id(32) "-" parent-id(16) "-" flags(2).
constexpr std::size_t kTraceAt = 3;
constexpr std::size_t kParentAt = 36;
constexpr std::size_t kFlagsAt = 53;

}  // namespace

std::uint8_t TraceParent::flags() const noexcept {
  if (!set_) return 0;
  return static_cast<std::uint8_t>(hex_value(text_[kFlagsAt]) * 16 + hex_value(text_[kFlagsAt + 1]));
}

bool TraceParent::parse(std::string_view value) noexcept {
  set_ = false;
  if (value.size() < kLength) return false;
  const std::string_view version = value.substr(0, 2);
  if (!lower_hex(version) || version == "ff") return false;
  // Version 00 is exactly 55 characters; a later one may go on after a dash.
  if (version == "00" ? value.size() != kLength : value.size() > kLength && value[kLength] != '-') return false;
  if (value[kTraceAt - 1] != '-' || value[kParentAt - 1] != '-' || value[kFlagsAt - 1] != '-') return false;
  const std::string_view trace = value.substr(kTraceAt, 32);
  const std::string_view parent = value.substr(kParentAt, 16);
  const std::string_view flags = value.substr(kFlagsAt, 2);
  if (!lower_hex(trace) || !lower_hex(parent) || !lower_hex(flags) || all_zeros(trace) || all_zeros(parent))
    return false;
  value.copy(text_.data(), kLength);
  text_[0] = '0';
  text_[1] = '0';
  const auto kept = static_cast<std::uint8_t>((hex_value(flags[0]) * 16 + hex_value(flags[1])) & kKeptFlags);
  write_flags(text_.data() + kFlagsAt, kept);
  set_ = true;
  return true;
}

void TraceParent::start(std::uint64_t trace_high, std::uint64_t trace_low, std::uint64_t parent,
                        std::uint8_t flags) noexcept {
  if (trace_high == 0 && trace_low == 0) trace_low = 1;
  text_[0] = '0';
  text_[1] = '0';
  text_[kTraceAt - 1] = '-';
  write_hex64(text_.data() + kTraceAt, trace_high);
  write_hex64(text_.data() + kTraceAt + 16, trace_low);
  text_[kParentAt - 1] = '-';
  text_[kFlagsAt - 1] = '-';
  write_flags(text_.data() + kFlagsAt, flags);
  set_ = true;
  set_parent_id(parent);
}

void TraceParent::set_parent_id(std::uint64_t parent) noexcept {
  write_hex64(text_.data() + kParentAt, parent == 0 ? 1 : parent);
}

}  // namespace userkey
