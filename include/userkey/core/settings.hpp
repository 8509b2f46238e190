// Settings tables: each setting of a program declared once, and everything
// that reads or shows settings driven by that one declaration.
//
// A SettingsTable<Config> lists the settings of one plain config struct. A
// setting is a SettingInfo (key, flag, help, whether a reload applies it,
// ...), a Field (how to read and write it in Config) and a ValueKind (how its
// text is parsed, checked and printed). From the table come:
//   - the config-file reader (userkey/core/settings_file.hpp): the key is
//     the file key ("health.rise" = key `rise` of table [health]);
//   - the command line (userkey/core/command_line.hpp): the flag, the
//     environment variable (the table's prefix + the flag in upper case,
//     "--max-fails" -> USERKEY_LB_MAX_FAILS), the help line and the default
//     shown in it (printed from a default-constructed Config);
//   - SettingValues: settings given as text, keyed by setting key, applied
//     with the same parsers as the file (flags and environment end up here);
//   - check(): every setting's own rule on a Config built in code;
//   - changed(): which keys differ between two Configs, e.g. to tell which
//     changes a reload cannot apply.
//
// Errors: text that does not parse is a ValueError (what is wrong, no key);
// the table turns it into a ConfigError that starts with the key, e.g.
// "health.rise: must be between 1 and 1000, got 0" (list items:
// "limits.allow[1]: ...").
//
// Thread-safety: a table is immutable after construction; const member
// functions may be called from any number of threads. SettingValues is a
// plain value.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace userkey {

/// A configuration that cannot be read or is invalid. The message names the
/// source (when a file), the line when known, the setting key and the fault.
class ConfigError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A value that does not parse or is out of range; the message says what is
/// wrong but not which setting (the caller adds that).
class ValueError : public std::invalid_argument {
public:
  using std::invalid_argument::invalid_argument;
};

/// How a config file writes one value (a list setting: an array of these).
enum class FileShape {
  string,    ///< "text"
  boolean,   ///< true / false
  integer,   ///< 42
  number,    ///< 42 or 1.5
  duration,  ///< "250ms" or an integer number of seconds
};

/// How values of type T are written as text, parsed, checked and printed.
template <class T>
struct ValueKind {
  /// Shown in --help after the flag: "UINT", "TEXT:DURATION", "TEXT:{a,b}".
  std::string type_name;
  FileShape file_shape = FileShape::string;
  /// Text to value, syntax only; throws ValueError.
  std::function<T(std::string_view)> parse;
  /// The rule a value must meet (range, non-empty...), also for values set
  /// in code; throws ValueError. Empty = any parsed value is fine.
  std::function<void(const T&)> check;
  /// Value to text that parse() reads back as the same value.
  std::function<std::string(const T&)> format;
};

/// How a setting is read from and written to a Config.
template <class Config, class T>
struct Field {
  std::function<T(const Config&)> get;
  std::function<void(Config&, T)> set;
};

/// A data member, e.g. field(&ProxyConfig::retries).
template <class Config, class T>
Field<Config, T> field(T Config::*member) {
  return {[member](const Config& c) { return c.*member; }, [member](Config& c, T v) { c.*member = std::move(v); }};
}

/// A member of a member, e.g. field(&ProxyConfig::active, &ActiveHealthConfig::rise).
template <class Config, class Part, class T>
Field<Config, T> field(Part Config::*part, T Part::*member) {
  return {[part, member](const Config& c) { return c.*part.*member; },
          [part, member](Config& c, T v) { c.*part.*member = std::move(v); }};
}

/// The declaration of one setting, apart from its type.
struct SettingInfo {
  /// Unique name; the config-file key, dotted for nested tables ("health.rise").
  std::string key = {};
  /// Command-line flag ("--rise"); empty = not on the command line.
  std::string flag = {};
  /// One line for --help.
  std::string help = {};
  /// A running program applies a change of it on reload (see changed()).
  bool reloadable = false;
  /// bool settings only: the flag takes no value and sets the opposite of
  /// its name ("--no-active-health" sets health.active = false).
  bool negating_flag = false;
  /// Lists only: separator of items in one argument or environment value.
  char delimiter = ',';
  /// Keys of settings that may not be given together with this one.
  std::vector<std::string> excludes = {};
  /// Read from config files (false: command line and environment only).
  bool in_file = true;
};

/// One setting of a table: its declaration plus type-erased access. Made by
/// SettingsTable::add().
class Setting {
public:
  const SettingInfo& info() const { return info_; }
  const std::string& key() const { return info_.key; }
  const std::string& flag() const { return info_.flag; }
  /// The environment variable, or empty when the setting has no flag.
  const std::string& env() const { return env_; }
  const std::string& help() const { return info_.help; }
  bool reloadable() const { return info_.reloadable; }
  bool is_list() const { return list_; }
  const std::string& type_name() const { return type_name_; }
  FileShape file_shape() const { return file_shape_; }

  /// Checks one value (one item of a list) as applying it would: parse and
  /// rule. Throws ValueError.
  void check_text(std::string_view text) const { check_text_(text); }

private:
  template <class>
  friend class SettingsTable;
  Setting() = default;

  SettingInfo info_;
  std::string env_;
  std::string type_name_;
  FileShape file_shape_ = FileShape::string;
  bool list_ = false;
  // Config is the table's Config; only SettingsTable<Config> calls these.
  std::function<void(void*, const std::vector<std::string>&)> apply_;  // throws ConfigError (keyed)
  std::function<std::vector<std::string>(const void*)> texts_;
  std::function<void(const void*)> check_;  // throws ConfigError (keyed)
  std::function<void(std::string_view)> check_text_;
};

/// Settings given as text, by key: from flags and the environment, or in
/// code. A scalar has one text; a list any number (an empty list clears it).
class SettingValues {
public:
  using Map = std::map<std::string, std::vector<std::string>, std::less<>>;

  SettingValues& set(std::string key, std::string text);
  SettingValues& set_list(std::string key, std::vector<std::string> items);
  /// The texts of `key`, or nullptr when not given.
  const std::vector<std::string>* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  /// Every entry of `top` replaces this one's entry of the same key.
  void update(const SettingValues& top);
  bool empty() const { return map_.empty(); }
  std::size_t size() const { return map_.size(); }
  Map::const_iterator begin() const { return map_.begin(); }
  Map::const_iterator end() const { return map_.end(); }
  bool operator==(const SettingValues&) const = default;

private:
  Map map_;
};

/// The untyped view of a table, for readers of files and command lines.
class SettingList {
public:
  /// `env_prefix`: the environment names' prefix ("USERKEY_LB_").
  explicit SettingList(std::string env_prefix) : env_prefix_(std::move(env_prefix)) {}
  const std::string& env_prefix() const { return env_prefix_; }
  /// env_prefix + the flag without "--", upper case, '-' as '_'.
  std::string env_for(std::string_view flag) const;
  const Setting* find(std::string_view key) const;
  std::size_t size() const { return items_.size(); }
  std::vector<Setting>::const_iterator begin() const { return items_.begin(); }
  std::vector<Setting>::const_iterator end() const { return items_.end(); }

private:
  template <class>
  friend class SettingsTable;
  std::string env_prefix_;
  std::vector<Setting> items_;
};

/// The settings of one Config type, in declaration order (the --help order).
template <class Config>
class SettingsTable {
public:
  explicit SettingsTable(std::string env_prefix) : list_(std::move(env_prefix)) {}

  /// Declares a setting of type T. Throws std::logic_error for a key, flag
  /// or environment name declared twice.
  template <class T>
  void add(SettingInfo info, Field<Config, T> field, ValueKind<T> kind);
  /// Declares a list setting whose items are of kind `item`.
  template <class T>
  void add(SettingInfo info, Field<Config, std::vector<T>> field, ValueKind<T> item);

  const SettingList& settings() const { return list_; }
  const Setting* find(std::string_view key) const { return list_.find(key); }

  /// Sets every given setting in `config`. Throws ConfigError for an
  /// unknown key or a value that does not parse or break its rule.
  void apply(Config& config, const SettingValues& values) const {
    for (const auto& [key, texts] : values) {
      const Setting* s = list_.find(key);
      if (s == nullptr) throw ConfigError("unknown setting '" + key + "'");
      s->apply_(&config, texts);
    }
  }
  /// Every setting of `config` as text (apply() of the result on any Config
  /// makes it equal to `config` in every setting).
  SettingValues values_of(const Config& config) const {
    SettingValues out;
    for (const auto& s : list_) out.set_list(s.key(), s.texts_(&config));
    return out;
  }
  /// Checks every setting's rule, in table order; throws ConfigError.
  void check(const Config& config) const {
    for (const auto& s : list_) s.check_(&config);
  }
  /// Keys whose value differs between `a` and `b`, in table order.
  std::vector<std::string> changed(const Config& a, const Config& b) const {
    std::vector<std::string> out;
    for (const auto& s : list_)
      if (s.texts_(&a) != s.texts_(&b)) out.push_back(s.key());
    return out;
  }

private:
  Setting& declare(SettingInfo info, std::string type_name, FileShape shape, bool list);
  SettingList list_;
};

namespace detail {
[[noreturn]] void throw_keyed(const std::string& key, const ValueError& e);
void check_new_setting(const SettingList& list, const SettingInfo& info);

// Text -> value through a kind's parser, then its range check.
template <class T>
auto checked_parser(ValueKind<T> kind) {
  return [kind](std::string_view text) {
    T v = kind.parse(text);
    if (kind.check) kind.check(v);
    return v;
  };
}
}  // namespace detail

template <class Config>
Setting& SettingsTable<Config>::declare(SettingInfo info, std::string type_name, FileShape shape, bool list) {
  detail::check_new_setting(list_, info);
  Setting s;
  s.env_ = info.flag.empty() ? std::string() : list_.env_for(info.flag);
  s.info_ = std::move(info);
  s.type_name_ = std::move(type_name);
  s.file_shape_ = shape;
  s.list_ = list;
  list_.items_.push_back(std::move(s));
  return list_.items_.back();
}

template <class Config>
template <class T>
void SettingsTable<Config>::add(SettingInfo info, Field<Config, T> f, ValueKind<T> kind) {
  const std::string key = info.key;
  Setting& s = declare(std::move(info), kind.type_name, kind.file_shape, false);
  auto parse = detail::checked_parser(kind);
  s.check_text_ = [parse](std::string_view text) { (void)parse(text); };
  s.apply_ = [key, parse, f](void* c, const std::vector<std::string>& texts) {
    try {
      if (texts.size() != 1) throw ValueError("expected one value, got " + std::to_string(texts.size()));
      f.set(*static_cast<Config*>(c), parse(texts.front()));
    } catch (const ValueError& e) {
      detail::throw_keyed(key, e);
    }
  };
  s.texts_ = [f, kind](const void* c) {
    return std::vector<std::string>{kind.format(f.get(*static_cast<const Config*>(c)))};
  };
  s.check_ = [key, f, kind](const void* c) {
    try {
      if (kind.check) kind.check(f.get(*static_cast<const Config*>(c)));
    } catch (const ValueError& e) {
      detail::throw_keyed(key, e);
    }
  };
}

template <class Config>
template <class T>
void SettingsTable<Config>::add(SettingInfo info, Field<Config, std::vector<T>> f, ValueKind<T> item) {
  const std::string key = info.key;
  Setting& s = declare(std::move(info), item.type_name, item.file_shape, true);
  auto parse = detail::checked_parser(item);
  auto item_key = [key](std::size_t i) { return key + "[" + std::to_string(i) + "]"; };
  s.check_text_ = [parse](std::string_view text) { (void)parse(text); };
  s.apply_ = [parse, f, item_key](void* c, const std::vector<std::string>& texts) {
    std::vector<T> out;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      try {
        out.push_back(parse(texts[i]));
      } catch (const ValueError& e) {
        detail::throw_keyed(item_key(i), e);
      }
    }
    f.set(*static_cast<Config*>(c), std::move(out));
  };
  s.texts_ = [f, item](const void* c) {
    std::vector<std::string> out;
    for (const auto& v : f.get(*static_cast<const Config*>(c))) out.push_back(item.format(v));
    return out;
  };
  s.check_ = [f, item, item_key](const void* c) {
    if (!item.check) return;
    const auto values = f.get(*static_cast<const Config*>(c));
    for (std::size_t i = 0; i < values.size(); ++i) {
      try {
        item.check(values[i]);
      } catch (const ValueError& e) {
        detail::throw_keyed(item_key(i), e);
      }
    }
  };
}

}  // namespace userkey
