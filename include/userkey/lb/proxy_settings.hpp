// The settings table of ProxyConfig: every setting of userkey-lb declared
// once (config-file key, flag, environment name USERKEY_LB_<FLAG>, help,
// value kind and range, whether SIGHUP applies it). The TOML loader, the
// flags and environment, --help (and so docs/configuration.md), validate()
// and settings_needing_restart() are all driven by it.
//
// Defaults are those of a default-constructed ProxyConfig.
//
// Thread-safety: the tables are immutable; the functions are pure.
#pragma once

#include <string>
#include <vector>

#include "userkey/core/settings.hpp"
#include "userkey/lb/proxy_config.hpp"

namespace userkey::lb {

/// Errors of loading and checking a ProxyConfig (userkey::ConfigError).
using ConfigError = userkey::ConfigError;

/// The table. `policy` takes any non-empty name here: whether the policy
/// exists is ProxyServer's check (its registry may hold policies of the
/// embedding program).
const SettingsTable<ProxyConfig>& proxy_settings();

/// The same table with `policy` limited to `policy_names` (for the command
/// line, so --help lists them and a wrong name is a usage error).
SettingsTable<ProxyConfig> proxy_settings(const std::vector<std::string>& policy_names);

/// Checks a complete configuration: each setting's own rule (ranges,
/// positive timeouts, addresses, hash key syntax, CIDRs, log level), at
/// least one upstream with no duplicate address and weights 1..1000, and the
/// rules between settings (a positive health.fail_timeout when
/// health.max_fails > 0; positive health.interval and health.timeout when
/// active checks are on; listen and tls.listen not both off; tls.cert and
/// tls.key given with tls.listen). Whether those files make a usable TLS
/// server is checked when ProxyServer is built (it reads them). Throws
/// ConfigError; messages use the file keys.
void validate(const ProxyConfig& config);

/// File keys of settings that differ between `running` and `next` but that
/// ProxyServer::reload() does not apply (those not declared reloadable:
/// listen, admin, threads, limits, timeouts, ...): they take effect only
/// after a restart. Empty when a reload applies everything that changed.
std::vector<std::string> settings_needing_restart(const ProxyConfig& running, const ProxyConfig& next);

}  // namespace userkey::lb
