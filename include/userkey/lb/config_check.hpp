// `userkey-lb --check-config`: everything a start does with a
// configuration, short of listening and serving, so a deploy can test a
// config file (with the flags and environment it will run with) first.
//
// Checked, in a start's order: the merge defaults < TOML file < environment
// < flags and validate() (build_proxy_config()); the log and access log
// files can be opened for appending (check_log_file(): nothing is created or
// written); the TLS certificate and key load and belong together, the
// upstream CA file loads; CIDR lists, hash key and policy (of `registry`);
// every upstream host name resolves; the listen addresses are IP addresses
// (as start() requires) and an admin host name resolves. Nothing listens,
// no thread is started, nothing is written.
//
// Errors: the exception a start would give, whose message names where the
// fault is: "lb.toml:7: health.rise: ..." for a file value, the setting key
// ("tls.key: '/etc/lb/key.pem': cannot read ...") for a file it names,
// "cannot resolve upstream NAME:PORT" for a name. A value given by flag or
// environment is already rejected by CommandLine (naming the flag or the
// variable).
//
// Thread-safety: plain functions; `resolver` is called on the caller's thread.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "userkey/core/settings.hpp"
#include "userkey/lb/balancing_policy.hpp"
#include "userkey/lb/proxy_config.hpp"
#include "userkey/lb/proxy_server.hpp"

namespace userkey::lb {

/// Checks `config` as a start would build it (see above); returns the
/// summary line's text, e.g. "3 upstreams, policy round_robin, listen
/// 127.0.0.1:8080, TLS off, admin 127.0.0.1:9100". Throws ConfigError,
/// std::invalid_argument (what ProxyServer's constructor throws).
/// `resolver` defaults to system_resolve.
std::string check_proxy_config(const ProxyConfig& config, const PolicyRegistry& registry, HostResolver resolver = {});

/// The whole check of the app: build_proxy_config(file, overrides), then
/// the above.
std::string check_proxy_config(const std::optional<std::filesystem::path>& file, const SettingValues& overrides,
                               const PolicyRegistry& registry, HostResolver resolver = {});

}  // namespace userkey::lb
