// CommandLine: the flags and environment variables of a program, made from
// settings tables (see settings.hpp), so an app only wires.
//
// Each setting with a flag becomes an option: its value is checked with the
// setting's own parser (a bad value is exit code 2 with "--flag: what is
// wrong", or "ENV_NAME (--flag): what is wrong" when the value came from the
// environment), it falls back to its environment variable when the flag is
// not given (the flag wins), and --help shows its type, the default printed
// from a default Config, the environment name and the help line. given()
// returns what the command line and environment set, as SettingValues for
// SettingsTable::apply() or a loader that layers them over a config file.
//
// Besides settings, a program may have --version (prints one line, exit 0)
// and action flags such as --check-config: no value, no environment
// variable (an action is asked for on the command line only), read with
// action().
//
// CLI11 does the parsing; it stays inside the library (no CLI11 type in this
// header).
//
// Thread-safety: one thread uses a CommandLine; it refers to no table after
// add_settings() returns (the settings are copied).
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>

#include "userkey/core/settings.hpp"

namespace userkey {

class CommandLine {
public:
  /// `description` heads --help; `column_width` is where help lines start.
  explicit CommandLine(std::string description, std::size_t column_width = 30);
  ~CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  /// An option outside any table whose value must name an existing file
  /// (such as --config), with environment variable `env`. Read with value().
  void add_file_option(const std::string& flag, const std::string& env, const std::string& help);

  /// --version: prints `line` and a newline to `out`, and parse() returns 0
  /// (whatever else the command line holds).
  void add_version(std::string line);

  /// A flag without a value or environment variable (e.g. --check-config)
  /// that asks the program for something other than its usual run; read
  /// with action().
  void add_action(const std::string& flag, const std::string& help);

  /// One option per setting of `settings` that has a flag, in table order;
  /// `defaults` are shown in --help (a list's items joined by its delimiter).
  void add_settings(const SettingList& settings, const SettingValues& defaults);
  template <class Config>
  void add_settings(const SettingsTable<Config>& table, const Config& defaults = Config{}) {
    add_settings(table.settings(), table.values_of(defaults));
  }

  /// Parses argv (and the environment). nullopt: go on. Otherwise the exit
  /// code: 0 after --help or --version (printed to `out`), 2 after a usage
  /// error or a bad value (the message, naming the flag or the environment
  /// variable it came from, and a pointer to --help go to `err`).
  std::optional<int> parse(int argc, const char* const* argv);
  std::optional<int> parse(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

  /// The settings given by flag or environment, by key (after parse()).
  /// A negating flag gives its setting "false" ("true" when its environment
  /// variable is false).
  SettingValues given() const;

  /// Whether the add_action() flag `flag` was given (after parse()).
  bool action(const std::string& flag) const;

  /// The value of an add_file_option() option, when given.
  std::optional<std::string> value(const std::string& flag) const;

  /// The --help text.
  std::string help() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace userkey
