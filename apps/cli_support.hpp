// CLI11 validators shared by the apps: every value is checked by the
// library's own parser, so a bad value is a clear message and exit code 2.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>
#include <string>

#include <userkey/core/config_values.hpp>
#include <userkey/lb/hash_key.hpp>
#include <userkey/lb/ip_filter.hpp>
#include <userkey/lb/upstream.hpp>

namespace userkey::apps {

inline CLI::Validator host_port_validator() {
  return CLI::Validator(
      [](std::string& v) {
        std::string err;
        return parse_host_port(v, &err) ? std::string{} : err;
      },
      "HOST:PORT");
}

inline CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& v) {
        std::string err;
        return parse_duration(v, &err) ? std::string{} : err;
      },
      "DURATION");
}

/// HOST:PORT, or "off".
inline CLI::Validator host_port_or_off_validator() {
  return CLI::Validator(
      [](std::string& v) {
        std::string err;
        return v == "off" || parse_host_port(v, &err) ? std::string{} : err;
      },
      "HOST:PORT|off");
}

/// An lb upstream spec, HOST:PORT[,weight=N][,max_conns=N].
inline CLI::Validator upstream_validator() {
  return CLI::Validator(
      [](std::string& v) {
        std::string err;
        return lb::parse_upstream(v, &err) ? std::string{} : (err.empty() ? "malformed upstream '" + v + "'" : err);
      },
      "HOST:PORT[,weight=N][,max_conns=N]");
}

/// An address block, ADDR[/LEN].
inline CLI::Validator cidr_validator() {
  return CLI::Validator(
      [](std::string& v) {
        std::string err;
        return lb::Cidr::parse(v, &err) ? std::string{} : (err.empty() ? "bad CIDR '" + v + "'" : err);
      },
      "CIDR");
}

/// An lb hash key, query:NAME | header:NAME | ip | path.
inline CLI::Validator hash_key_validator() {
  return CLI::Validator(
      [](std::string& v) {
        std::string err;
        return lb::HashKeySpec::parse(v, &err) ? std::string{} : err;
      },
      "query:NAME|header:NAME|ip|path");
}

/// A whole decimal number >= 0 (CLI11 alone would read "-1" as 2^64-1 for a
/// 64-bit unsigned option).
inline CLI::Validator non_negative_integer_validator() {
  return CLI::Validator(
      [](std::string& v) {
        const bool ok = !v.empty() && std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); });
        return ok ? std::string{} : "expected a whole number >= 0, got '" + v + "'";
      },
      "N");
}

/// Gives `opt` the environment variable PREFIX + its long name in upper case
/// with '-' as '_' ("--max-fails" -> USERKEY_LB_MAX_FAILS), so names never
/// drift from the flags. Returns `opt` for chaining.
inline CLI::Option* env_from_name(CLI::Option* opt, const std::string& prefix) {
  std::string name = opt->get_lnames().front();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return c == '-' ? '_' : static_cast<char>(std::toupper(c));
  });
  return opt->envname(prefix + name);
}

/// `value` when `opt` was given on the command line or through its
/// environment variable, else nullopt (the lower layers keep their value).
template <typename T>
std::optional<T> given(const CLI::Option* opt, const T& value) {
  return opt->count() > 0 ? std::optional<T>(value) : std::nullopt;
}

/// Like given() for a duration option already checked by duration_validator().
inline std::optional<std::chrono::milliseconds> given_duration(const CLI::Option* opt, const std::string& text) {
  return opt->count() > 0 ? parse_duration(text) : std::nullopt;
}

/// A duration in the syntax parse_duration() reads back ("250ms", "2s",
/// "5m"), for --help defaults.
inline std::string duration_text(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

/// Parses the command line. Returns nullopt to go on, or the exit code:
/// 0 after --help, 2 for any usage error (CLI11's message is printed).
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

}  // namespace userkey::apps
