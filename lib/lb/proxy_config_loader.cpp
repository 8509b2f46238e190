// The lb's TOML file and the merge with flags and environment. The settings
// themselves are the table's (proxy_settings.cpp); this file adds only what a
// table cannot say: the [[upstream]] array of tables and the rule that a file
// uses it or `upstreams`, not both. See proxy_config_loader.hpp.
#include "userkey/lb/proxy_config_loader.hpp"

#include <map>

#include "core/toml_settings.hpp"
#include "lb/proxy_settings_internal.hpp"
#include "userkey/core/settings_file.hpp"
#include "userkey/core/value_kinds.hpp"

namespace userkey::lb {

namespace {

using Reader = detail::TomlSettingsReader;

// One [[upstream]] table: each key read in its TOML type, then the record's
// field rules (check_upstream, as for a flag), reported at the broken key.
UpstreamConfig read_upstream_table(const Reader& reader, const toml::table& t, const std::string& prefix) {
  UpstreamConfig u;
  std::map<std::string, toml::source_region, std::less<>> where;
  const auto at = [&](const toml::node& n, const std::string& key) { where[key.substr(prefix.size() + 1)] = n.source(); };
  reader.dispatch(
      t, prefix,
      {{"address",
        [&](const toml::node& n, const std::string& key) {
          auto hp = reader.value(n, key, kinds::host_port());  // the same HOST:PORT syntax as a flag's
          u.host = std::move(hp.host);
          u.port = hp.port;
          at(n, key);
        }},
       {"weight",
        [&](const toml::node& n, const std::string& key) {
          u.weight = reader.value(n, key, kinds::whole<std::uint32_t>());
          at(n, key);
        }},
       {"max_conns",
        [&](const toml::node& n, const std::string& key) {
          u.max_conns = reader.value(n, key, kinds::whole<std::uint32_t>());
          at(n, key);
        }},
       {"tls",
        [&](const toml::node& n, const std::string& key) {
          u.tls = reader.value(n, key, kinds::boolean());
          at(n, key);
        }}});
  if (!where.contains("address")) reader.fail(t.source(), prefix, "missing 'address = \"HOST:PORT\"'");
  if (auto broken = check_upstream(u)) {
    const auto w = where.find(broken->field);
    reader.fail(w != where.end() ? w->second : t.source(), prefix + "." + broken->field, broken->what);
  }
  return u;
}

// Parses TOML text into a ProxyConfig, checking each key as it is read but
// not the rules between settings (the upstreams may still come from flags).
ProxyConfig read_toml(std::string_view text, std::string_view source) {
  const Reader reader{std::string(source)};
  const toml::table root = reader.parse(text);
  if (root.contains("upstreams") && root.contains("upstream"))
    reader.fail(root["upstream"].node()->source(), "upstream",
                "use either 'upstreams = [...]' or '[[upstream]]' tables, not both");

  std::optional<std::vector<UpstreamConfig>> tables;
  const Reader::Hooks hooks{{"upstream", [&](const toml::node& n, const std::string& key) {
                               const auto* arr = n.as_array();
                               if (arr == nullptr || !arr->is_array_of_tables())
                                 reader.fail(n.source(), key, "expected [[upstream]] tables (an array of tables)");
                               tables.emplace();
                               for (std::size_t i = 0; i < arr->size(); ++i)
                                 tables->push_back(read_upstream_table(reader, *(*arr)[i].as_table(),
                                                                       key + "[" + std::to_string(i) + "]"));
                             }}};
  const auto& table = proxy_settings();
  ProxyConfig cfg;
  table.apply(cfg, reader.read(root, table.settings(), hooks));
  if (tables) cfg.upstreams = std::move(*tables);
  return cfg;
}

}  // namespace

ProxyConfig load_proxy_config_toml_from_string(std::string_view toml_text, std::string_view source) {
  ProxyConfig cfg = read_toml(toml_text, source);
  try {
    validate(cfg);  // a rule between settings (no upstream, duplicates) still names the file
  } catch (const ConfigError& e) {
    throw ConfigError(std::string(source) + ": " + e.what());
  }
  return cfg;
}

ProxyConfig load_proxy_config_toml(const std::filesystem::path& file) {
  return load_proxy_config_toml_from_string(read_config_file(file), file.string());
}

ProxyConfig build_proxy_config(const std::optional<std::filesystem::path>& file, const SettingValues& overrides) {
  ProxyConfig cfg = file ? read_toml(read_config_file(*file), file->string()) : ProxyConfig{};
  proxy_settings().apply(cfg, overrides);
  validate(cfg);
  return cfg;
}

}  // namespace userkey::lb
