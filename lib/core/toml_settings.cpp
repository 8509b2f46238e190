// Reading settings tables from TOML. See userkey/core/settings_file.hpp and
// toml_settings.hpp.
#include "core/toml_settings.hpp"

#include "core/toml_input_guard.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "userkey/core/settings_file.hpp"

namespace userkey {

namespace detail {

namespace {

// Edit distance, for "did you mean" on unknown keys (keys are short).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Built by appending: GCC 12 at -O3 warns falsely (-Wrestrict) on "'" + std::string(s).
std::string in_quotes(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.append("'").append(s).append("'");
  return out;
}

std::string join_key(std::string_view prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : std::string(prefix) + "." + std::string(name);
}

// The names directly under table `prefix` that file settings or hooks use.
std::vector<std::string> names_under(const std::string& prefix, const SettingList& settings,
                                     const TomlSettingsReader::Hooks& hooks) {
  std::set<std::string> out;
  auto add = [&](const std::string& key) {
    if (!prefix.empty() && key.rfind(prefix + ".", 0) != 0) return;
    const std::string rest = prefix.empty() ? key : key.substr(prefix.size() + 1);
    out.insert(rest.substr(0, rest.find('.')));
  };
  for (const auto& s : settings)
    if (s.info().in_file) add(s.key());
  for (const auto& [key, hook] : hooks) add(key);
  return {out.begin(), out.end()};
}

bool is_table_of_settings(const std::string& key, const SettingList& settings) {
  return std::any_of(settings.begin(), settings.end(),
                     [&](const Setting& s) { return s.info().in_file && s.key().rfind(key + ".", 0) == 0; });
}

}  // namespace

toml::table TomlSettingsReader::parse(std::string_view text) const {
  // Debian's toml++ 3.3 has undefined behaviour on some non-ASCII input
  // (core/toml_input_guard.hpp): it only ever sees ASCII.
  text = detail::without_utf8_bom(text);
  if (const auto line = detail::first_non_ascii_line(text)) {
    std::string msg = source_;  // appended, not concatenated: GCC 12 -O3 warns falsely (-Wrestrict) on the latter
    msg.append(":").append(std::to_string(*line));
    msg.append(": non-ASCII character (the config file must be ASCII, comments included)");
    throw ConfigError(msg);
  }
  try {
    return toml::parse(text, source_);
  } catch (const toml::parse_error& e) {
    std::string msg = source_;
    if (e.source().begin.line > 0) msg += ":" + std::to_string(e.source().begin.line);
    throw ConfigError(msg + ": invalid TOML: " + std::string(e.description()));
  }
}

void TomlSettingsReader::fail(const toml::source_region& where, std::string_view key, std::string_view what) const {
  std::string msg = source_;
  if (where.begin.line > 0) msg += ":" + std::to_string(where.begin.line);
  msg += ": ";
  if (!key.empty()) msg += std::string(key) + ": ";
  throw ConfigError(msg + std::string(what));
}

void TomlSettingsReader::unknown(const toml::key& k, const std::string& full,
                                 const std::vector<std::string>& known) const {
  std::string what = "unknown key " + in_quotes(full);
  std::string best;
  std::size_t best_d = 3;
  for (const auto& name : known) {
    const auto d = edit_distance(k.str(), name);
    if (d < best_d) best_d = d, best = name;
  }
  if (!best.empty()) what += " (did you mean " + in_quotes(best) + "?)";
  fail(k.source(), "", what);
}

std::string TomlSettingsReader::type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time: return "a date/time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::none: break;
  }
  return "nothing";
}

std::string TomlSettingsReader::text_of(const toml::node& n, const std::string& key, FileShape shape) const {
  switch (shape) {
    case FileShape::string:
      if (const auto* s = n.as_string()) return s->get();
      fail(n.source(), key, "expected a string, got " + type_name(n));
    case FileShape::boolean:
      if (const auto* b = n.as_boolean()) return b->get() ? "true" : "false";
      fail(n.source(), key, "expected true or false, got " + type_name(n));
    case FileShape::integer:
      if (const auto* i = n.as_integer()) return std::to_string(i->get());
      fail(n.source(), key, "expected an integer, got " + type_name(n));
    case FileShape::number: {
      if (const auto* i = n.as_integer()) return std::to_string(i->get());
      if (const auto* f = n.as_floating_point()) {
        char buf[64];
        const auto [p, ec] = std::to_chars(buf, buf + sizeof buf, f->get());
        return ec == std::errc{} ? std::string(buf, p) : std::string("nan");
      }
      fail(n.source(), key, "expected a number, got " + type_name(n));
    }
    case FileShape::duration:
      if (const auto* i = n.as_integer()) return std::to_string(i->get());  // whole seconds
      if (const auto* s = n.as_string()) return s->get();
      fail(n.source(), key,
           "expected a duration string such as \"250ms\" or an integer number of seconds, got " + type_name(n));
  }
  fail(n.source(), key, "unsupported value shape");
}

void TomlSettingsReader::dispatch(const toml::table& table, std::string_view prefix, const Hooks& handlers) const {
  std::vector<std::string> known;
  for (const auto& [name, h] : handlers) known.push_back(name);
  for (auto&& [k, v] : table) {
    const std::string full = join_key(prefix, k.str());
    auto it = handlers.find(k.str());
    if (it == handlers.end()) unknown(k, full, known);
    it->second(v, full);
  }
}

SettingValues TomlSettingsReader::read(const toml::table& root, const SettingList& settings,
                                       const Hooks& hooks) const {
  SettingValues out;
  walk(root, "", settings, hooks, out);
  for (const auto& s : settings) {
    if (!out.contains(s.key())) continue;
    for (const auto& other : s.info().excludes) {
      if (!out.contains(other)) continue;
      const toml::node* n = root.at_path(s.key()).node();
      fail(n != nullptr ? n->source() : toml::source_region{}, s.key(),
           "use either " + in_quotes(s.key()) + " or " + in_quotes(other) + ", not both");
    }
  }
  return out;
}

void TomlSettingsReader::walk(const toml::table& table, const std::string& prefix, const SettingList& settings,
                              const Hooks& hooks, SettingValues& out) const {
  for (auto&& [k, v] : table) {
    const std::string full = join_key(prefix, k.str());
    if (auto h = hooks.find(full); h != hooks.end()) {
      h->second(v, full);
      continue;
    }
    const Setting* s = settings.find(full);
    if (s != nullptr && s->info().in_file) {
      auto checked = [&](const toml::node& n, const std::string& key) {
        std::string text = text_of(n, key, s->file_shape());
        try {
          s->check_text(text);
        } catch (const ValueError& e) {
          fail(n.source(), key, e.what());
        }
        return text;
      };
      if (!s->is_list()) {
        out.set(full, checked(v, full));
        continue;
      }
      const auto* arr = v.as_array();
      if (arr == nullptr) fail(v.source(), full, "expected an array, got " + type_name(v));
      std::vector<std::string> items;
      for (std::size_t i = 0; i < arr->size(); ++i)
        items.push_back(checked((*arr)[i], full + "[" + std::to_string(i) + "]"));
      out.set_list(full, std::move(items));
      continue;
    }
    if (is_table_of_settings(full, settings)) {
      const auto* sub = v.as_table();
      if (sub == nullptr) fail(v.source(), full, "expected a table [" + full + "], got " + type_name(v));
      walk(*sub, full, settings, hooks, out);
      continue;
    }
    unknown(k, full, names_under(prefix, settings, hooks));
  }
}

}  // namespace detail

SettingValues read_settings_toml(std::string_view toml_text, std::string_view source, const SettingList& settings) {
  detail::TomlSettingsReader reader{std::string(source)};
  return reader.read(reader.parse(toml_text), settings);
}

std::string read_config_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(file.string() + ": cannot open config file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(file.string() + ": cannot read config file");
  return std::move(text).str();
}

}  // namespace userkey
