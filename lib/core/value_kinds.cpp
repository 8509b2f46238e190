// The built-in value kinds. See userkey/core/value_kinds.hpp.
#include "userkey/core/value_kinds.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace userkey::kinds {

namespace {

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

template <class Int>
bool parse_int(std::string_view text, Int& out) {
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc{} && p == text.data() + text.size();
}

[[noreturn]] void not_whole(std::string_view text) {
  throw ValueError("expected a whole number, got " + quoted(text));
}

}  // namespace

namespace detail {

[[noreturn]] void out_of_range(const std::string& lo, const std::string& hi, const std::string& got) {
  throw ValueError("must be between " + lo + " and " + hi + ", got " + got);
}

std::uint64_t parse_whole_unsigned(std::string_view text, std::uint64_t lo, std::uint64_t hi) {
  std::uint64_t v = 0;
  if (!text.empty() && text.front() == '-') {
    std::int64_t negative = 0;
    if (!parse_int(text, negative)) not_whole(text);
    if (lo == 0) throw ValueError("must not be negative, got " + std::string(text));
    out_of_range(std::to_string(lo), std::to_string(hi), std::string(text));
  }
  if (!parse_int(text, v)) not_whole(text);
  if (v < lo || v > hi) out_of_range(std::to_string(lo), std::to_string(hi), std::to_string(v));
  return v;
}

std::int64_t parse_whole_signed(std::string_view text, std::int64_t lo, std::int64_t hi) {
  std::int64_t v = 0;
  if (!parse_int(text, v)) not_whole(text);
  if (v < lo || v > hi) out_of_range(std::to_string(lo), std::to_string(hi), std::to_string(v));
  return v;
}

}  // namespace detail

ValueKind<std::string> text(std::string hint, std::function<void(const std::string&)> rule) {
  ValueKind<std::string> k;
  k.type_name = hint.empty() ? "TEXT" : "TEXT:" + hint;
  k.parse = [](std::string_view t) { return std::string(t); };
  k.check = std::move(rule);
  k.format = [](const std::string& v) { return v; };
  return k;
}

ValueKind<std::string> non_empty_text() {
  return text({}, [](const std::string& v) {
    if (v.empty()) throw ValueError("must not be empty");
  });
}

ValueKind<std::string> one_of(std::vector<std::string> choices) {
  std::string braces, listed;
  for (const auto& c : choices) {
    braces += (braces.empty() ? "" : ",") + c;
    listed += (listed.empty() ? "" : ", ") + c;
  }
  return text("{" + braces + "}", [choices, listed](const std::string& v) {
    if (std::find(choices.begin(), choices.end(), v) == choices.end())
      throw ValueError("must be one of " + listed + "; got " + quoted(v));
  });
}

ValueKind<std::string> log_level() { return one_of({"trace", "debug", "info", "warn", "error", "critical", "off"}); }

ValueKind<bool> boolean() {
  ValueKind<bool> k;
  k.type_name = "BOOLEAN";
  k.file_shape = FileShape::boolean;
  k.parse = [](std::string_view t) {
    const std::string v = lower(t);
    if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
    if (v == "false" || v == "no" || v == "off" || v == "0") return false;
    throw ValueError("expected true or false, got " + quoted(t));
  };
  k.format = [](const bool& v) { return std::string(v ? "true" : "false"); };
  return k;
}

ValueKind<double> non_negative_number() {
  ValueKind<double> k;
  k.type_name = "FLOAT";
  k.file_shape = FileShape::number;
  k.parse = [](std::string_view t) {
    double v = 0;
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc{} || p != t.data() + t.size()) throw ValueError("expected a number, got " + quoted(t));
    return v;
  };
  k.check = [](const double& v) {
    if (!std::isfinite(v) || v < 0) throw ValueError("must be a finite number >= 0");
  };
  k.format = [](const double& v) {
    char buf[64];
    const auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return ec == std::errc{} ? std::string(buf, p) : std::string("nan");
  };
  return k;
}

ValueKind<std::chrono::milliseconds> duration(bool positive) {
  ValueKind<std::chrono::milliseconds> k;
  k.type_name = "TEXT:DURATION";
  k.file_shape = FileShape::duration;
  k.parse = [](std::string_view t) {
    if (!t.empty() && t.front() == '-') throw ValueError("must not be negative");
    std::string err;
    auto d = parse_duration(t, &err);
    if (!d) throw ValueError(err);
    return *d;
  };
  k.check = [positive](const std::chrono::milliseconds& d) {
    if (d.count() < 0) throw ValueError("must not be negative");
    if (positive && d.count() == 0) throw ValueError("must be greater than zero");
  };
  k.format = [](const std::chrono::milliseconds& d) { return format_duration(d); };
  return k;
}

ValueKind<HostPort> host_port() {
  ValueKind<HostPort> k;
  k.type_name = "TEXT:HOST:PORT";
  k.parse = [](std::string_view t) {
    std::string err;
    auto hp = parse_host_port(t, &err);
    if (!hp) throw ValueError(err);
    return *hp;
  };
  k.check = [](const HostPort& hp) {
    if (hp.host.empty()) throw ValueError("host must not be empty");
  };
  k.format = [](const HostPort& hp) { return format_host_port(hp); };
  return k;
}

ValueKind<std::optional<HostPort>> host_port_or_off() {
  const auto address = host_port();
  ValueKind<std::optional<HostPort>> k;
  k.type_name = "TEXT:HOST:PORT|off";
  k.parse = [address](std::string_view t) -> std::optional<HostPort> {
    if (t.empty() || t == "off") return std::nullopt;
    return address.parse(t);
  };
  k.check = [address](const std::optional<HostPort>& hp) {
    if (hp) address.check(*hp);
  };
  k.format = [](const std::optional<HostPort>& hp) { return hp ? format_host_port(*hp) : std::string("off"); };
  return k;
}

}  // namespace userkey::kinds
