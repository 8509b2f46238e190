// The value kinds settings tables are built from (see settings.hpp): each
// says how one type of value is written as text, checked and printed, so
// flags, environment variables and config files accept the same spellings
// and give the same messages.
//
// Every function returns a fresh ValueKind; parse() and check() throw
// ValueError. Thread-safety: kinds are immutable values.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "userkey/core/config_values.hpp"
#include "userkey/core/settings.hpp"

namespace userkey::kinds {

/// Any text; `rule` (optional) rejects values by throwing ValueError;
/// `hint` is shown in --help ("TEXT:hint").
ValueKind<std::string> text(std::string hint = {}, std::function<void(const std::string&)> rule = {});

/// Text that is not empty.
ValueKind<std::string> non_empty_text();

/// One of `choices` ("TEXT:{a,b,c}" in --help).
ValueKind<std::string> one_of(std::vector<std::string> choices);

/// A log level: trace, debug, info, warn, error, critical, off.
ValueKind<std::string> log_level();

/// true/false (also yes/no, on/off, 1/0, any case); prints true/false.
ValueKind<bool> boolean();

/// A finite decimal number >= 0 ("FLOAT"); prints the shortest text that
/// reads back as the same double.
ValueKind<double> non_negative_number();

/// parse_duration() syntax ("250ms", "2s", "1.5s", "5m", "1h", a bare
/// number of seconds); `positive`: zero is rejected too. Prints
/// format_duration().
ValueKind<std::chrono::milliseconds> duration(bool positive = false);

/// HOST:PORT or [V6]:PORT, port 0..65535.
ValueKind<HostPort> host_port();

/// HOST:PORT, or "off" (also "") for nothing.
ValueKind<std::optional<HostPort>> host_port_or_off();

namespace detail {
std::uint64_t parse_whole_unsigned(std::string_view text, std::uint64_t lo, std::uint64_t hi);
std::int64_t parse_whole_signed(std::string_view text, std::int64_t lo, std::int64_t hi);
/// Throws ValueError "must be between LO and HI, got GOT".
[[noreturn]] void out_of_range(const std::string& lo, const std::string& hi, const std::string& got);
}  // namespace detail

/// A whole number in [lo, hi] of integer type T: "UINT" or "INT" in --help,
/// followed by ":INT in [lo - hi]" when the range is narrower than T's.
template <class T>
ValueKind<T> whole(T lo = 0, T hi = std::numeric_limits<T>::max()) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  using Limits = std::numeric_limits<T>;
  ValueKind<T> k;
  k.type_name = std::is_signed_v<T> ? "INT" : "UINT";
  if (lo != Limits::min() || hi != Limits::max())
    k.type_name += ":INT in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]";
  k.file_shape = FileShape::integer;
  k.parse = [lo, hi](std::string_view t) -> T {
    if constexpr (std::is_signed_v<T>) return static_cast<T>(detail::parse_whole_signed(t, lo, hi));
    else return static_cast<T>(detail::parse_whole_unsigned(t, lo, hi));
  };
  k.check = [lo, hi](const T& v) {
    if (v < lo || v > hi) detail::out_of_range(std::to_string(lo), std::to_string(hi), std::to_string(v));
  };
  k.format = [](const T& v) { return std::to_string(v); };
  return k;
}

}  // namespace userkey::kinds
