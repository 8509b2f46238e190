// Parsing of the value types every app's configuration shares: listen
// addresses and durations. One parser each, so flags, environment variables
// and config files accept exactly the same spellings; and their printers,
// whose output the parsers read back unchanged.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace userkey {

struct HostPort {
  std::string host;  ///< "127.0.0.1", "::1" (without brackets) or a name
  std::uint16_t port = 0;
};

/// "HOST:PORT" or "[V6]:PORT"; port 0..65535 (0 = any free port). nullopt
/// with a message in `error` otherwise.
std::optional<HostPort> parse_host_port(std::string_view text, std::string* error = nullptr);

/// "250ms", "2s", "1.5s", "5m", "1h"; a bare number is seconds. Negative or
/// malformed input gives nullopt with a message in `error`.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string* error = nullptr);

/// "127.0.0.1:8080", "[::1]:8080".
std::string format_host_port(const HostPort& hp);

/// The largest whole unit: "250ms", "2s", "5m" ("0s" for zero; negative
/// durations print as "-5ms", which parse_duration() rejects).
std::string format_duration(std::chrono::milliseconds d);

}  // namespace userkey
