// Loading, merging and validating a ProxyConfig: the TOML config file of
// userkey-lb, the overrides its flags and environment variables give, and the
// checks both go through. The app stays a thin shell around build_proxy_config().
//
// TOML layout (every key optional; defaults are those of ProxyConfig; see
// docker/lb.example.toml for a commented example):
//
//   listen                = "127.0.0.1:8080"   # HOST:PORT or [V6]:PORT; port 0 = any free port
//   admin                 = "127.0.0.1:9100"   # /metrics + /status; "off" (or "") disables
//   policy                = "round_robin"      # a PolicyRegistry name (checked by ProxyServer)
//   hash_key              = "query:user_id"    # HashKeySpec: query:NAME | header:NAME | ip | path
//   retries               = 2                  # 0..10
//   threads               = 1                  # 0..256; 0 = one per core (at most 4)
//   access_log            = true
//   log_level             = "info"             # trace debug info warn error critical off
//   connect_timeout       = "1s"               # durations: "250ms" "2s" "1.5s" "5m" "1h",
//   upstream_timeout      = "10s"              #   or an integer number of seconds
//   upstream_idle_timeout = "2s"
//   queue_size            = 1024
//   queue_timeout         = "2s"
//   drain_timeout         = "10s"
//
//   upstreams = ["127.0.0.1:5001,weight=2", "127.0.0.1:5002"]   # lb::parse_upstream specs, or:
//   [[upstream]]
//   address   = "127.0.0.1:5001"   # required
//   weight    = 1                  # 1..1000
//   max_conns = 0                  # 0 = unlimited
//
//   [health]
//   max_fails = 1        # passive: 0..1000, 0 disables
//   fail_timeout = "10s"
//   active = true        # active probes on/off
//   path = "/healthz"
//   interval = "1s"
//   timeout = "500ms"
//   rise = 2             # 1..1000
//   fall = 2             # 1..1000
//
//   [limits]
//   rate = 0.0               # requests/s per client IP (integer or float); 0 = off
//   burst = 0.0              # bucket size; 0 = same as rate
//   max_conns_per_ip = 0     # 0 = unlimited
//   allow = ["10.0.0.0/8"]   # CIDRs; a non-empty list admits only its members
//   deny  = []               # CIDRs; deny wins
//   max_header_bytes = 8192  # 1024..65535
//   max_body_bytes = 1048576
//   header_timeout = "5s"
//   idle_timeout = "30s"
//
// A file uses either `upstreams` or `[[upstream]]`, not both. Unknown keys and
// values of the wrong type are errors, so a typo is never silently ignored.
//
// Errors: every function here throws ConfigError, whose message names the
// source, the line when known, the dotted key and what is wrong, e.g.
//   lb.toml:7: health.rise: must be between 1 and 1000, got 0
//   lb.toml:3: unknown key 'helth' (did you mean 'health'?)
//
// Thread-safety: plain functions over values; no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "userkey/lb/proxy_config.hpp"

namespace userkey::lb {

/// A configuration that cannot be read or is invalid.
class ConfigError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Reads and validates a TOML config file (layout above); keys the file does
/// not set keep ProxyConfig's defaults.
ProxyConfig load_proxy_config_toml(const std::filesystem::path& file);

/// Same, from TOML text; `source` names it in error messages.
ProxyConfig load_proxy_config_toml_from_string(std::string_view toml_text, std::string_view source = "<config>");

/// Checks a complete configuration: addresses, at least one upstream (no
/// duplicate addresses), weights 1..1000, hash key syntax, CIDRs, non-empty
/// policy name (whether the policy exists is ProxyServer's check), numeric
/// ranges as documented above, positive timeouts where zero makes no sense.
/// Messages use the TOML key names.
void validate(const ProxyConfig& config);

/// Settings given outside the config file (command-line flags, environment
/// variables). Each engaged member replaces the corresponding ProxyConfig
/// field; each is named after its TOML key. Values with a textual syntax stay
/// text here and are parsed by apply_overrides() with the same parsers the
/// TOML loader uses.
struct ProxyConfigOverrides {
  std::optional<std::string> listen;  ///< "HOST:PORT"
  std::optional<std::string> admin;   ///< "HOST:PORT" or "off"
  /// lb::parse_upstream specs; replaces the whole upstream list.
  std::optional<std::vector<std::string>> upstreams;
  std::optional<std::string> policy;
  std::optional<std::string> hash_key;
  std::optional<std::uint32_t> retries;
  std::optional<std::uint32_t> threads;
  std::optional<bool> access_log;
  std::optional<std::string> log_level;
  std::optional<std::chrono::milliseconds> connect_timeout;
  std::optional<std::chrono::milliseconds> upstream_timeout;
  std::optional<std::chrono::milliseconds> upstream_idle_timeout;
  std::optional<std::uint32_t> queue_size;
  std::optional<std::chrono::milliseconds> queue_timeout;
  std::optional<std::chrono::milliseconds> drain_timeout;
  std::optional<std::chrono::milliseconds> resolve_interval;

  // [health]
  std::optional<std::uint32_t> max_fails;
  std::optional<std::chrono::milliseconds> fail_timeout;
  std::optional<bool> active_health;
  std::optional<std::string> health_path;
  std::optional<std::chrono::milliseconds> health_interval;
  std::optional<std::chrono::milliseconds> health_timeout;
  std::optional<std::uint32_t> rise;
  std::optional<std::uint32_t> fall;

  // [limits]
  std::optional<double> rate;
  std::optional<double> burst;
  std::optional<std::uint32_t> max_conns_per_ip;
  std::optional<std::vector<std::string>> allow;  ///< replaces the list
  std::optional<std::vector<std::string>> deny;   ///< replaces the list
  std::optional<std::uint32_t> max_header_bytes;
  std::optional<std::uint64_t> max_body_bytes;
  std::optional<std::chrono::milliseconds> header_timeout;
  std::optional<std::chrono::milliseconds> idle_timeout;
};

/// Applies every engaged override to `config`. Throws ConfigError for an
/// override that does not parse (listen, admin, upstreams); does not run
/// validate().
void apply_overrides(ProxyConfig& config, const ProxyConfigOverrides& overrides);

/// The whole merge: defaults < `file` (when given) < `overrides`, then
/// validate(). Called at start and again on every reload.
ProxyConfig build_proxy_config(const std::optional<std::filesystem::path>& file,
                               const ProxyConfigOverrides& overrides);

/// TOML key names of settings that differ between `running` and `next` but
/// that ProxyServer::reload() does not apply (listen, admin, threads, limits,
/// timeouts, ...): they take effect only after a restart. Empty when a reload
/// applies everything that changed.
std::vector<std::string> settings_needing_restart(const ProxyConfig& running, const ProxyConfig& next);

}  // namespace userkey::lb
