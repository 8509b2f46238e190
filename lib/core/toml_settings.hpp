// Internal: the TOML side of settings tables, for library code that reads a
// file with parts a table cannot describe (lb's [[upstream]] array of tables).
// Public users go through userkey/core/settings_file.hpp.
#pragma once

#include <toml++/toml.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "userkey/core/settings.hpp"

namespace userkey::detail {

class TomlSettingsReader {
public:
  /// Handles one key of a file in place of the table: called with the node
  /// and the full dotted key.
  using Hook = std::function<void(const toml::node&, const std::string& key)>;
  using Hooks = std::map<std::string, Hook, std::less<>>;

  explicit TomlSettingsReader(std::string source) : source_(std::move(source)) {}

  /// Parses TOML text; ConfigError "SOURCE:LINE: invalid TOML: ..." when it
  /// is not TOML.
  toml::table parse(std::string_view text) const;

  /// Every key of `root`: a setting of `settings`, a table of such settings,
  /// or a key of `hooks`; anything else is an error. Checks each value.
  SettingValues read(const toml::table& root, const SettingList& settings, const Hooks& hooks = {}) const;

  /// Calls `handlers` for each key of `table` (a table the caller reads
  /// itself); an unknown key is an error with a suggestion.
  void dispatch(const toml::table& table, std::string_view prefix, const Hooks& handlers) const;

  /// One value as text, in `shape`; wrong node types are errors.
  std::string text_of(const toml::node& n, const std::string& key, FileShape shape) const;

  /// One value parsed and checked by `kind`, errors located at `n`.
  template <class T>
  T value(const toml::node& n, const std::string& key, const ValueKind<T>& kind) const {
    const std::string text = text_of(n, key, kind.file_shape);
    try {
      T v = kind.parse(text);
      if (kind.check) kind.check(v);
      return v;
    } catch (const ValueError& e) {
      fail(n.source(), key, e.what());
    }
  }

  [[noreturn]] void fail(const toml::source_region& where, std::string_view key, std::string_view what) const;

  static std::string type_name(const toml::node& n);

private:
  void walk(const toml::table& table, const std::string& prefix, const SettingList& settings, const Hooks& hooks,
            SettingValues& out) const;
  [[noreturn]] void unknown(const toml::key& k, const std::string& full, const std::vector<std::string>& known) const;

  std::string source_;
};

}  // namespace userkey::detail
