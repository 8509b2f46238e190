// Loading and merging a ProxyConfig: the TOML config file of userkey-lb and
// the settings its flags and environment variables give, layered as
//   ProxyConfig defaults < file < SettingValues (environment < flags)
// and then validated. The app stays a thin shell around build_proxy_config().
//
// The file's keys are those of the settings table (proxy_settings.hpp):
// top-level keys, [health] and [limits]; docker/lb.example.toml shows every
// key with its default and docs/configuration.md lists them with their flags.
// Durations are strings with a unit ("250ms", "2s", "1.5s", "5m", "1h") or an
// integer number of seconds. Upstreams come either as a list of
// lb::parse_upstream specs or as tables, not both:
//
//   upstreams = ["127.0.0.1:5001,weight=2", "127.0.0.1:5002"]
//   # or
//   [[upstream]]
//   address   = "127.0.0.1:5001"   # required
//   weight    = 1                  # 1..1000
//   max_conns = 64                 # 0 = unlimited
//
// Unknown keys and values of the wrong type are errors, so a typo is never
// silently ignored.
//
// Errors: every function here throws ConfigError, whose message names the
// source, the line when known, the dotted key and what is wrong, e.g.
//   lb.toml:7: health.rise: must be between 1 and 1000, got 0
//   lb.toml:3: unknown key 'helth' (did you mean 'health'?)
//
// Thread-safety: plain functions over values; no shared state.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

#include "userkey/core/settings.hpp"
#include "userkey/lb/proxy_config.hpp"
#include "userkey/lb/proxy_settings.hpp"

namespace userkey::lb {

/// Reads and validates a TOML config file; keys the file does not set keep
/// ProxyConfig's defaults.
ProxyConfig load_proxy_config_toml(const std::filesystem::path& file);

/// Same, from TOML text; `source` names it in error messages.
ProxyConfig load_proxy_config_toml_from_string(std::string_view toml_text, std::string_view source = "<config>");

/// The whole merge: defaults < `file` (when given) < `overrides` (settings
/// by key of proxy_settings(), e.g. CommandLine::given()), then validate().
/// Called at start and again on every reload.
ProxyConfig build_proxy_config(const std::optional<std::filesystem::path>& file, const SettingValues& overrides);

}  // namespace userkey::lb
