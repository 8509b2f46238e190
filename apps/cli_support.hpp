// CLI11 validators shared by the apps: every value is checked by the
// library's own parser, so a bad value is a clear message and exit code 2.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>

#include <userkey/config_values.hpp>

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
