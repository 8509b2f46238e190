// The settings table of ProxyConfig, validate() and the reload rules. See
// userkey/lb/proxy_settings.hpp.
#include "userkey/lb/proxy_settings.hpp"

#include <optional>
#include <set>

#include "lb/proxy_settings_internal.hpp"
#include "userkey/core/value_kinds.hpp"
#include "userkey/lb/hash_key.hpp"
#include "userkey/lb/ip_filter.hpp"

namespace userkey::lb {

namespace {

using std::chrono::milliseconds;
using u32 = std::uint32_t;
using u64 = std::uint64_t;

// ---------------------------------------------------------------------------
// The lb's own value kinds
// ---------------------------------------------------------------------------

ValueKind<UpstreamConfig> upstream_spec() {
  ValueKind<UpstreamConfig> k;
  k.type_name = "TEXT:HOST:PORT[,weight=N][,max_conns=N][,tls=on]";
  k.parse = [](std::string_view text) {
    std::string err;
    auto u = parse_upstream(text, &err);
    if (!u) throw ValueError(err);
    return *u;
  };
  k.check = [](const UpstreamConfig& u) {
    if (auto broken = check_upstream(u)) throw ValueError(broken->message());
  };
  k.format = [](const UpstreamConfig& u) { return format_upstream(u); };
  return k;
}

ValueKind<std::string> cidr() {
  return kinds::text("CIDR", [](const std::string& v) {
    std::string err;
    if (!Cidr::parse(v, &err)) throw ValueError(err.empty() ? "bad CIDR '" + v + "'" : err);
  });
}

ValueKind<std::string> hash_key_spec() {
  return kinds::text("query:NAME|header:NAME|ip|path", [](const std::string& v) {
    std::string err;
    if (!HashKeySpec::parse(v, &err)) throw ValueError(err);
  });
}

ValueKind<std::string> url_path() {
  return kinds::text({}, [](const std::string& v) {
    if (v.empty() || v.front() != '/') throw ValueError("must start with '/'");
  });
}

ValueKind<RealIpHeader> real_ip_header() {
  ValueKind<RealIpHeader> k;
  k.type_name = "TEXT:{x-forwarded-for,forwarded}";
  k.parse = [](std::string_view t) {
    if (t == "x-forwarded-for") return RealIpHeader::x_forwarded_for;
    if (t == "forwarded") return RealIpHeader::forwarded;
    throw ValueError("must be one of x-forwarded-for, forwarded; got '" + std::string(t) + "'");
  };
  k.format = [](const RealIpHeader& h) {
    return std::string(h == RealIpHeader::forwarded ? "forwarded" : "x-forwarded-for");
  };
  return k;
}

ValueKind<AccessLogFormat> access_log_format() {
  ValueKind<AccessLogFormat> k;
  k.type_name = "TEXT:{text,json}";
  k.parse = [](std::string_view t) {
    if (t == "text") return AccessLogFormat::text;
    if (t == "json") return AccessLogFormat::json;
    throw ValueError("must be one of text, json; got '" + std::string(t) + "'");
  };
  k.format = [](const AccessLogFormat& f) { return std::string(f == AccessLogFormat::json ? "json" : "text"); };
  return k;
}

// An address that may be off (an empty host), kept as a host and a port
// member of the part of ProxyConfig that `part` picks (given a const or a
// mutable ProxyConfig, it returns that part likewise).
template <class PartOf, class Part>
Field<ProxyConfig, std::optional<HostPort>> optional_address(PartOf part, std::string Part::*host,
                                                             std::uint16_t Part::*port) {
  return {[part, host, port](const ProxyConfig& c) {
            const Part& p = part(c);
            return (p.*host).empty() ? std::nullopt : std::optional<HostPort>(HostPort{p.*host, p.*port});
          },
          [part, host, port](ProxyConfig& c, std::optional<HostPort> hp) {
            Part& p = part(c);
            p.*host = hp ? std::move(hp->host) : std::string();
            p.*port = hp ? hp->port : 0;
          }};
}

constexpr auto whole_config = [](auto& c) -> auto& { return c; };
constexpr auto tls_part = [](auto& c) -> auto& { return c.tls; };

ValueKind<std::string> file_path() { return kinds::text("FILE"); }

// ---------------------------------------------------------------------------
// The table, in --help order
// ---------------------------------------------------------------------------

SettingsTable<ProxyConfig> make_table(ValueKind<std::string> policy) {
  using C = ProxyConfig;
  using Passive = PassiveHealthConfig;
  using Active = ActiveHealthConfig;
  using Outlier = OutlierLimits;
  using L = LimitsConfig;
  using Tls = TlsConfig;
  const auto duration = kinds::duration(false);
  const auto positive_duration = kinds::duration(true);
  SettingsTable<C> t("USERKEY_LB_");

  t.add({.key = "listen", .flag = "--listen", .help = "Address to serve plain HTTP on, or off (then --tls-listen)"},
        optional_address(whole_config, &C::listen_host, &C::listen_port), kinds::host_port_or_off());
  t.add({.key = "upstreams",
         .flag = "--upstream",
         .help = "Backend, repeatable (space-separated in the environment); replaces the file's list",
         .reloadable = true,
         .delimiter = ' '},
        field(&C::upstreams), upstream_spec());
  t.add({.key = "policy", .flag = "--policy", .help = "Balancing policy", .reloadable = true}, field(&C::policy),
        std::move(policy));
  t.add({.key = "hash_key", .flag = "--hash-key", .help = "What consistent_hash keys on", .reloadable = true},
        field(&C::hash_key), hash_key_spec());
  t.add({.key = "retries",
         .flag = "--retries",
         .help = "Extra attempts on another upstream for idempotent requests (0..10)",
         .reloadable = true},
        field(&C::retries), kinds::whole<u32>(0, kMaxRetries));
  t.add({.key = "threads", .flag = "--threads", .help = "Event-loop threads; 0 = one per core, at most 4"},
        field(&C::threads), kinds::whole<u32>(0, kMaxThreads));
  t.add({.key = "admin", .flag = "--admin", .help = "Admin endpoint (/metrics, /status), or off"},
        optional_address(whole_config, &C::admin_host, &C::admin_port), kinds::host_port_or_off());

  // [health]: passive, then active
  t.add({.key = "health.max_fails",
         .flag = "--max-fails",
         .help = "Passive health: failures within --fail-timeout that take an upstream out; 0 = off",
         .reloadable = true},
        field(&C::passive, &Passive::max_fails), kinds::whole<u32>(0, kMaxFails));
  t.add({.key = "health.fail_timeout",
         .flag = "--fail-timeout",
         .help = "Passive health window and time out",
         .reloadable = true},
        field(&C::passive, &Passive::fail_timeout), duration);
  t.add({.key = "health.max_ejection_percent",
         .flag = "--max-ejection-percent",
         .help = "Passive health takes out at most this share of the upstreams at once (at least one); 0 = none",
         .reloadable = true},
        field(&C::outlier, &Outlier::max_ejection_percent), kinds::whole<u32>(0, kMaxPercent));
  t.add({.key = "health.panic_threshold_percent",
         .flag = "--panic-threshold-percent",
         .help = "Below this share of available upstreams, passive verdicts are ignored (panic); 0 = never",
         .reloadable = true},
        field(&C::outlier, &Outlier::panic_threshold_percent), kinds::whole<u32>(0, kMaxPercent));
  t.add({.key = "health.path", .flag = "--health-path", .help = "Active health probe path", .reloadable = true},
        field(&C::active, &Active::path), url_path());
  t.add({.key = "health.interval", .flag = "--health-interval", .help = "Time between probes", .reloadable = true},
        field(&C::active, &Active::interval), duration);
  t.add({.key = "health.timeout", .flag = "--health-timeout", .help = "Probe timeout", .reloadable = true},
        field(&C::active, &Active::timeout), duration);
  t.add({.key = "health.rise",
         .flag = "--rise",
         .help = "Good probes that bring an upstream back",
         .reloadable = true},
        field(&C::active, &Active::rise), kinds::whole<u32>(1, kMaxRiseFall));
  t.add({.key = "health.fall",
         .flag = "--fall",
         .help = "Failed probes that take an upstream out",
         .reloadable = true},
        field(&C::active, &Active::fall), kinds::whole<u32>(1, kMaxRiseFall));
  t.add({.key = "health.active",
         .flag = "--no-active-health",
         .help = "Disable active health probes",
         .reloadable = true,
         .negating_flag = true},
        field(&C::active, &Active::enabled), kinds::boolean());

  // [limits]
  t.add({.key = "limits.rate", .flag = "--rate", .help = "Requests per second per client IP; 0 = unlimited"},
        field(&C::limits, &L::rate), kinds::non_negative_number());
  t.add({.key = "limits.burst", .flag = "--burst", .help = "Rate-limit burst; 0 = same as --rate"},
        field(&C::limits, &L::burst), kinds::non_negative_number());
  t.add({.key = "limits.max_conns_per_ip",
         .flag = "--max-conns-per-ip",
         .help = "Concurrent connections per client IP; 0 = unlimited"},
        field(&C::limits, &L::max_conns_per_ip), kinds::whole<u32>());
  t.add({.key = "limits.ipv6_prefix",
         .flag = "--ipv6-prefix",
         .help = "IPv6 clients count as one per /N network for --rate and --max-conns-per-ip"},
        field(&C::limits, &L::ipv6_prefix), kinds::whole<u32>(1, 128));
  t.add({.key = "limits.allow",
         .flag = "--allow",
         .help = "Admit only these clients, repeatable; replaces the file's list"},
        field(&C::limits, &L::allow), cidr());
  t.add({.key = "limits.deny",
         .flag = "--deny",
         .help = "Reject these clients (wins over --allow), repeatable; replaces the file's list"},
        field(&C::limits, &L::deny), cidr());
  t.add({.key = "limits.max_header_bytes",
         .flag = "--max-header-bytes",
         .help = "Request line + headers limit (431 beyond)"},
        field(&C::limits, &L::max_header_bytes), kinds::whole<u32>(kMinHeaderBytes, kMaxHeaderBytes));
  t.add({.key = "limits.max_body_bytes",
         .flag = "--max-body-bytes",
         .help = "Request body limit at the lb (413 beyond, not forwarded); default = userkey-backend's own"},
        field(&C::limits, &L::max_body_bytes), kinds::whole<u64>());
  t.add({.key = "limits.header_timeout", .flag = "--header-timeout", .help = "Time to receive a request head"},
        field(&C::limits, &L::header_timeout), positive_duration);
  t.add({.key = "limits.idle_timeout",
         .flag = "--idle-timeout",
         .help = "Idle keep-alive client connections are closed after (the next head then has --header-timeout)"},
        field(&C::limits, &L::idle_timeout), positive_duration);
  t.add({.key = "limits.body_timeout",
         .flag = "--body-timeout",
         .help = "Time to receive a request body's first 64 KiB (all of a shorter one) once its head is in, "
                 "then each further piece as the upstream takes it (408 beyond)"},
        field(&C::limits, &L::body_timeout), positive_duration);
  t.add({.key = "limits.max_buffered_body_bytes",
         .flag = "--max-buffered-body-bytes",
         .help = "Request-body bytes the lb holds at once, all clients together (a body up to 64 KiB reserves "
                 "its length, a longer, streamed one 64 KiB + a read buffer; 503 beyond); 0 = unlimited"},
        field(&C::limits, &L::max_buffered_body_bytes), kinds::whole<u64>());
  t.add({.key = "limits.max_connections",
         .flag = "--max-connections",
         .help = "Client connections open at once (503 + close beyond); 0 = unlimited"},
        field(&C::limits, &L::max_connections), kinds::whole<u32>());
  t.add({.key = "limits.tunnel_idle_timeout",
         .flag = "--tunnel-idle-timeout",
         .help = "A WebSocket tunnel with no byte either way for this long is closed"},
        field(&C::limits, &L::tunnel_idle_timeout), positive_duration);

  // [tls]: TLS termination on a second listener
  t.add({.key = "tls.listen",
         .flag = "--tls-listen",
         .help = "Address to serve HTTPS on (TLS 1.2/1.3), or off; needs --tls-cert and --tls-key"},
        optional_address(tls_part, &Tls::listen_host, &Tls::listen_port), kinds::host_port_or_off());
  t.add({.key = "tls.cert",
         .flag = "--tls-cert",
         .help = "PEM certificate chain for --tls-listen: the server's certificate first, then intermediates; "
                 "reread on SIGHUP (new connections get it, a file that does not load keeps the running one)",
         .reloadable = true},
        field(&C::tls, &Tls::cert_file), file_path());
  t.add({.key = "tls.key",
         .flag = "--tls-key",
         .help = "PEM private key of --tls-cert (unencrypted); reread on SIGHUP with it",
         .reloadable = true},
        field(&C::tls, &Tls::key_file), file_path());
  t.add({.key = "tls.ticket_rotate",
         .flag = "--tls-ticket-rotate",
         .help = "A new session-ticket key this often; tickets under the one before still resume (renewed), "
                 "older ones get a full handshake; 0 = one key for the process's life"},
        field(&C::tls, &Tls::ticket_rotate), duration);
  t.add({.key = "tls.upstream_ca",
         .flag = "--tls-upstream-ca",
         .help = "PEM CA certificates to verify upstreams with tls=on against; empty = the system's trust store"},
        field(&C::tls, &Tls::upstream_ca_file), file_path());

  // The real client address
  t.add({.key = "proxy_protocol",
         .flag = "--proxy-protocol",
         .help = "Every client connection starts with a PROXY protocol v1/v2 header naming the client (true/false)"},
        field(&C::proxy_protocol), kinds::boolean());
  t.add({.key = "trusted_proxies",
         .flag = "--trusted-proxies",
         .help = "Believe --real-ip-header, and with --proxy-protocol the PROXY header, only from these peers; "
                 "repeatable (comma-separated)"},
        field(&C::trusted_proxies), cidr());
  t.add({.key = "real_ip_header",
         .flag = "--real-ip-header",
         .help = "The header a trusted proxy names the client in; the other one is never read"},
        field(&C::real_ip_header), real_ip_header());

  // Upstream connections, queueing, lifecycle
  t.add({.key = "connect_timeout", .flag = "--connect-timeout", .help = "Upstream connect timeout"},
        field(&C::connect_timeout), positive_duration);
  t.add({.key = "upstream_timeout", .flag = "--upstream-timeout", .help = "Time for each step of an upstream exchange: connect to response head, each body write and read"},
        field(&C::upstream_timeout), positive_duration);
  t.add({.key = "upstream_idle_timeout",
         .flag = "--upstream-idle-timeout",
         .help = "Pooled upstream connections idle longer are closed"},
        field(&C::upstream_idle_timeout), duration);
  t.add({.key = "queue_size",
         .flag = "--queue-size",
         .help = "Requests waiting for a slot at a max_conns upstream (per thread)"},
        field(&C::queue_size), kinds::whole<u32>());
  t.add({.key = "queue_timeout", .flag = "--queue-timeout", .help = "Longest wait in that queue (503 after)"},
        field(&C::queue_timeout), duration);
  t.add({.key = "drain_timeout", .flag = "--drain-timeout", .help = "SIGTERM: time in-flight requests get to finish"},
        field(&C::drain_timeout), duration);
  t.add({.key = "resolve_interval",
         .flag = "--resolve-interval",
         .help = "Upstream names are resolved again this often; 0 = at start and reload",
         .reloadable = true},
        field(&C::resolve_interval), duration);
  t.add({.key = "access_log", .flag = "--access-log", .help = "One log line per request (true/false)"},
        field(&C::access_log), kinds::boolean());
  t.add({.key = "access_log_format",
         .flag = "--access-log-format",
         .help = "text (the log line) or json (one object per line on stdout)"},
        field(&C::access_log_format), access_log_format());
  t.add({.key = "request_id",
         .flag = "--request-id",
         .help = "Keep a well-formed X-Request-Id or make one, and a valid traceparent's trace or start one; send "
                 "both upstream, echo the id (on/off)"},
        field(&C::request_id), kinds::boolean());
  t.add({.key = "log_level", .flag = "--log-level", .help = "Log level"}, field(&C::log_level), kinds::log_level());
  t.add({.key = "log_file",
         .flag = "--log-file",
         .help = "Write the log to this file (appended to; reopened on SIGUSR1) instead of stderr"},
        field(&C::log_file), kinds::text());
  t.add({.key = "access_log_file",
         .flag = "--access-log-file",
         .help = "Write access log lines to this file (appended to; reopened on SIGUSR1) instead of the log (text) "
                 "or stdout (json)"},
        field(&C::access_log_file), kinds::text());
  return t;
}

[[noreturn]] void invalid(const std::string& key, const std::string& what) { throw ConfigError(key + ": " + what); }

void check_positive(const std::string& key, milliseconds d) {
  if (d.count() <= 0) invalid(key, "must be greater than zero");
}

}  // namespace

const SettingsTable<ProxyConfig>& proxy_settings() {
  static const SettingsTable<ProxyConfig> table = make_table(kinds::non_empty_text());
  return table;
}

SettingsTable<ProxyConfig> proxy_settings(const std::vector<std::string>& policy_names) {
  return make_table(kinds::one_of(policy_names));
}

void validate(const ProxyConfig& cfg) {
  if (cfg.upstreams.empty()) invalid("upstream", "at least one upstream is required");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) {
    const auto& u = cfg.upstreams[i];
    const std::string key = "upstream[" + std::to_string(i) + "]";
    if (auto broken = check_upstream(u)) invalid(key + "." + broken->field, broken->what);
    if (!seen.insert(u.address()).second) invalid(key + ".address", "duplicate upstream '" + u.address() + "'");
  }
  proxy_settings().check(cfg);
  if (cfg.listen_host.empty() && cfg.tls.listen_host.empty())
    invalid("listen", "listen and tls.listen are both off: nothing to serve on");
  if (!cfg.tls.listen_host.empty()) {
    if (cfg.tls.cert_file.empty()) invalid("tls.cert", "required with tls.listen");
    if (cfg.tls.key_file.empty()) invalid("tls.key", "required with tls.listen");
  }
  if (cfg.passive.max_fails > 0) check_positive("health.fail_timeout", cfg.passive.fail_timeout);
  if (cfg.active.enabled) {
    check_positive("health.interval", cfg.active.interval);
    check_positive("health.timeout", cfg.active.timeout);
  }
}

std::vector<std::string> settings_needing_restart(const ProxyConfig& running, const ProxyConfig& next) {
  const auto& table = proxy_settings();
  std::vector<std::string> out;
  for (auto& key : table.changed(running, next))
    if (!table.find(key)->reloadable()) out.push_back(std::move(key));
  return out;
}

}  // namespace userkey::lb
