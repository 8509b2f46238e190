#include "userkey/core/config_values.hpp"

#include <charconv>
#include <cmath>

namespace userkey {

std::optional<HostPort> parse_host_port(std::string_view text, std::string* error) {
  auto fail = [&](std::string msg) -> std::optional<HostPort> {
    if (error) *error = std::move(msg);
    return std::nullopt;
  };
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return fail("expected [IPV6]:PORT, got '" + std::string(text) + "'");
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return fail("expected HOST:PORT, got '" + std::string(text) + "'");
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) return fail("IPv6 addresses need brackets: [::1]:PORT");
    port_text = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (port_text.empty() || ec != std::errc{} || p != port_text.data() + port_text.size() || value > 65535)
    return fail("port must be a number from 0 to 65535, got '" + std::string(port_text) + "'");
  if (hp.host.empty()) return fail("host is empty in '" + std::string(text) + "'");
  hp.port = static_cast<std::uint16_t>(value);
  return hp;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string* error) {
  auto fail = [&]() -> std::optional<std::chrono::milliseconds> {
    if (error) *error = "expected a duration such as 250ms, 2s, 5m or 1h, got '" + std::string(text) + "'";
    return std::nullopt;
  };
  double value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || !(value >= 0) || !std::isfinite(value)) return fail();
  const std::string_view unit(p, static_cast<std::size_t>(text.data() + text.size() - p));
  double ms = 0;
  if (unit.empty() || unit == "s") ms = value * 1000;
  else if (unit == "ms") ms = value;
  else if (unit == "m") ms = value * 60'000;
  else if (unit == "h") ms = value * 3'600'000;
  else return fail();
  if (ms > 1e12) return fail();
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms + 0.5));
}

std::string format_host_port(const HostPort& hp) {
  const bool v6 = hp.host.find(':') != std::string::npos;
  return (v6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(hp.port);
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace userkey
