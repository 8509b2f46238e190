// TOML loading, overrides and validation of ProxyConfig. See proxy_config_loader.hpp.
#include "userkey/lb/proxy_config_loader.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "core/toml_input_guard.hpp"
#include "userkey/core/config_values.hpp"
#include "userkey/lb/hash_key.hpp"
#include "userkey/lb/ip_filter.hpp"

namespace userkey::lb {

namespace {

using std::chrono::milliseconds;

// Documented ranges, shared by the loader and validate().
constexpr std::uint32_t kMaxWeight = 1000;
constexpr std::uint32_t kMaxRetries = 10;
constexpr std::uint32_t kMaxThreads = 256;
constexpr std::uint32_t kMaxFailsLimit = 1000;
constexpr std::uint32_t kMaxRiseFall = 1000;
constexpr std::uint32_t kMinHeaderBytes = 1024;
// Beast stores a field value in at most 65535 bytes and throws beyond it.
constexpr std::uint32_t kMaxHeaderBytes = 65535;
constexpr std::array<std::string_view, 7> kLogLevels{"trace", "debug", "info", "warn", "error", "critical", "off"};

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

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

// ---------------------------------------------------------------------------
// Validation (shared by both paths). Messages use the TOML key names.
// ---------------------------------------------------------------------------

[[noreturn]] void invalid(std::string_view key, std::string_view what) {
  throw ConfigError(std::string(key) + ": " + std::string(what));
}

void check_range(std::string_view key, std::uint64_t value, std::uint64_t lo, std::uint64_t hi) {
  if (value < lo || value > hi)
    invalid(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                     std::to_string(value));
}

void check_duration(std::string_view key, milliseconds d, bool positive) {
  if (d.count() < 0) invalid(key, "must not be negative");
  if (positive && d.count() == 0) invalid(key, "must be greater than zero");
}

void check_rate(std::string_view key, double v) {
  if (!std::isfinite(v) || v < 0) invalid(key, "must be a finite number >= 0, got " + std::to_string(v));
}

bool known_log_level(std::string_view level) {
  return std::find(kLogLevels.begin(), kLogLevels.end(), level) != kLogLevels.end();
}

std::string unknown_log_level(std::string_view level) {
  return "unknown log level " + in_quotes(level) + " (trace, debug, info, warn, error, critical, off)";
}

// ---------------------------------------------------------------------------
// Text values shared by TOML and overrides. Each returns the parsed value or
// throws the message without a key; callers add where it came from.
// ---------------------------------------------------------------------------

struct ValueError {
  std::string message;
};

HostPort host_port_value(std::string_view text) {
  std::string err;
  auto hp = parse_host_port(text, &err);
  if (!hp) throw ValueError{err};
  return *hp;
}

milliseconds duration_value(std::string_view text) {
  std::string err;
  auto d = parse_duration(text, &err);
  if (!d) throw ValueError{err};
  return *d;
}

UpstreamConfig upstream_value(std::string_view text) {
  std::string err;
  auto u = parse_upstream(text, &err);
  if (!u) throw ValueError{err.empty() ? "malformed upstream " + in_quotes(text) : err};
  return *u;
}

void set_admin(ProxyConfig& cfg, std::string_view text) {
  if (text.empty() || text == "off") {
    cfg.admin_host.clear();
    cfg.admin_port = 0;
    return;
  }
  auto hp = host_port_value(text);
  cfg.admin_host = std::move(hp.host);
  cfg.admin_port = hp.port;
}

// ---------------------------------------------------------------------------
// TOML reading
// ---------------------------------------------------------------------------

class TomlReader {
public:
  explicit TomlReader(std::string source) : source_(std::move(source)) {}

  ProxyConfig read(const toml::table& root) {
    ProxyConfig cfg;
    read_top(root, cfg);
    return cfg;
  }

  [[noreturn]] void fail(const toml::source_region& where, std::string_view key, std::string_view what) const {
    std::string msg = source_;
    if (where.begin.line > 0) msg += ":" + std::to_string(where.begin.line);
    msg += ": ";
    if (!key.empty()) msg += std::string(key) + ": ";
    msg += what;
    throw ConfigError(msg);
  }
  // Runs `parse`; a ValueError from it becomes a ConfigError at `where`.
  template <class F>
  void located(const toml::source_region& where, const std::string& key, F&& parse) const {
    try {
      parse();
    } catch (const ValueError& e) {
      fail(where, key, e.message);
    }
  }


private:
  using Handler = std::function<void(const toml::node&, const std::string& key)>;

  // Calls the handler of every key of `table`; an unknown key is an error.
  void dispatch(const toml::table& table, std::string_view prefix, const std::map<std::string, Handler>& handlers) {
    for (auto&& [k, v] : table) {
      const std::string name(k.str());
      const std::string full = prefix.empty() ? name : std::string(prefix) + "." + name;
      auto it = handlers.find(name);
      if (it == handlers.end()) {
        std::string what = "unknown key " + in_quotes(full);
        std::string best;
        std::size_t best_d = 3;
        for (const auto& [known, h] : handlers) {
          (void)h;
          const auto d = edit_distance(name, known);
          if (d < best_d) best_d = d, best = known;
        }
        if (!best.empty()) what += " (did you mean " + in_quotes(best) + "?)";
        fail(k.source(), "", what);
      }
      it->second(v, full);
    }
  }

  std::string string_of(const toml::node& n, const std::string& key) const {
    if (const auto* s = n.as_string()) return s->get();
    fail(n.source(), key, "expected a string, got " + type_name(n));
  }

  bool bool_of(const toml::node& n, const std::string& key) const {
    if (const auto* b = n.as_boolean()) return b->get();
    fail(n.source(), key, "expected true or false, got " + type_name(n));
  }

  std::uint64_t uint_of(const toml::node& n, const std::string& key, std::uint64_t lo, std::uint64_t hi) const {
    const auto* i = n.as_integer();
    if (i == nullptr) fail(n.source(), key, "expected an integer, got " + type_name(n));
    const std::int64_t v = i->get();
    if (v < 0 || static_cast<std::uint64_t>(v) < lo || static_cast<std::uint64_t>(v) > hi)
      fail(n.source(), key,
           "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + std::to_string(v));
    return static_cast<std::uint64_t>(v);
  }

  std::uint32_t u32_of(const toml::node& n, const std::string& key, std::uint32_t lo = 0,
                       std::uint32_t hi = std::numeric_limits<std::uint32_t>::max()) const {
    return static_cast<std::uint32_t>(uint_of(n, key, lo, hi));
  }

  double number_of(const toml::node& n, const std::string& key) const {
    double v = 0;
    if (const auto* i = n.as_integer()) v = static_cast<double>(i->get());
    else if (const auto* f = n.as_floating_point()) v = f->get();
    else fail(n.source(), key, "expected a number, got " + type_name(n));
    if (!std::isfinite(v) || v < 0) fail(n.source(), key, "must be a finite number >= 0");
    return v;
  }

  // `positive`: zero is rejected too (timeouts where 0 makes no sense).
  milliseconds duration_of(const toml::node& n, const std::string& key, bool positive = false) const {
    const milliseconds d = duration_any(n, key);
    if (positive && d.count() == 0) fail(n.source(), key, "must be greater than zero");
    return d;
  }

  milliseconds duration_any(const toml::node& n, const std::string& key) const {
    if (const auto* i = n.as_integer()) {
      const std::int64_t secs = i->get();
      if (secs < 0) fail(n.source(), key, "must not be negative");
      if (secs > 1'000'000'000) fail(n.source(), key, "is too large");
      return std::chrono::seconds(secs);
    }
    if (const auto* s = n.as_string()) {
      try {
        return duration_value(s->get());
      } catch (const ValueError& e) {
        fail(n.source(), key, e.message);
      }
    }
    fail(n.source(), key,
         "expected a duration string such as \"250ms\" or an integer number of seconds, got " + type_name(n));
  }

  std::vector<std::string> strings_of(const toml::node& n, const std::string& key) const {
    const auto* arr = n.as_array();
    if (arr == nullptr) fail(n.source(), key, "expected an array of strings, got " + type_name(n));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < arr->size(); ++i)
      out.push_back(string_of((*arr)[i], key + "[" + std::to_string(i) + "]"));
    return out;
  }

  std::vector<std::string> cidrs_of(const toml::node& n, const std::string& key) const {
    auto list = strings_of(n, key);
    const auto& arr = *n.as_array();
    for (std::size_t i = 0; i < list.size(); ++i) {
      std::string err;
      if (!Cidr::parse(list[i], &err))
        fail(arr[i].source(), key + "[" + std::to_string(i) + "]", err.empty() ? "bad CIDR " + in_quotes(list[i]) : err);
    }
    return list;
  }

  static std::string type_name(const toml::node& n) {
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

  void read_top(const toml::table& root, ProxyConfig& cfg) {
    const bool has_list = root.contains("upstreams");
    const bool has_tables = root.contains("upstream");
    if (has_list && has_tables)
      fail(root["upstream"].node()->source(), "upstream",
           "use either 'upstreams = [...]' or '[[upstream]]' tables, not both");

    std::map<std::string, Handler> h;
    h["listen"] = [&](const toml::node& n, const std::string& key) {
      located(n.source(), key, [&] {
        auto hp = host_port_value(string_of(n, key));
        cfg.listen_host = std::move(hp.host);
        cfg.listen_port = hp.port;
      });
    };
    h["admin"] = [&](const toml::node& n, const std::string& key) {
      located(n.source(), key, [&] { set_admin(cfg, string_of(n, key)); });
    };
    h["policy"] = [&](const toml::node& n, const std::string& key) {
      cfg.policy = string_of(n, key);
      if (cfg.policy.empty()) fail(n.source(), key, "must not be empty");
    };
    h["hash_key"] = [&](const toml::node& n, const std::string& key) {
      cfg.hash_key = string_of(n, key);
      std::string err;
      if (!HashKeySpec::parse(cfg.hash_key, &err)) fail(n.source(), key, err);
    };
    h["retries"] = [&](const toml::node& n, const std::string& key) { cfg.retries = u32_of(n, key, 0, kMaxRetries); };
    h["threads"] = [&](const toml::node& n, const std::string& key) { cfg.threads = u32_of(n, key, 0, kMaxThreads); };
    h["access_log"] = [&](const toml::node& n, const std::string& key) { cfg.access_log = bool_of(n, key); };
    h["log_level"] = [&](const toml::node& n, const std::string& key) {
      cfg.log_level = string_of(n, key);
      if (!known_log_level(cfg.log_level)) fail(n.source(), key, unknown_log_level(cfg.log_level));
    };
    h["connect_timeout"] = [&](const toml::node& n, const std::string& key) { cfg.connect_timeout = duration_of(n, key, true); };
    h["upstream_timeout"] = [&](const toml::node& n, const std::string& key) { cfg.upstream_timeout = duration_of(n, key, true); };
    h["upstream_idle_timeout"] = [&](const toml::node& n, const std::string& key) {
      cfg.upstream_idle_timeout = duration_of(n, key);
    };
    h["queue_size"] = [&](const toml::node& n, const std::string& key) { cfg.queue_size = u32_of(n, key); };
    h["queue_timeout"] = [&](const toml::node& n, const std::string& key) { cfg.queue_timeout = duration_of(n, key); };
    h["drain_timeout"] = [&](const toml::node& n, const std::string& key) { cfg.drain_timeout = duration_of(n, key); };
    h["resolve_interval"] = [&](const toml::node& n, const std::string& key) {
      cfg.resolve_interval = duration_of(n, key);
    };
    h["upstreams"] = [&](const toml::node& n, const std::string& key) {
      const auto specs = strings_of(n, key);
      const auto& arr = *n.as_array();
      for (std::size_t i = 0; i < specs.size(); ++i) {
        located(arr[i].source(), key + "[" + std::to_string(i) + "]",
                [&] { cfg.upstreams.push_back(upstream_value(specs[i])); });
      }
    };
    h["upstream"] = [&](const toml::node& n, const std::string& key) {
      const auto* arr = n.as_array();
      if (arr == nullptr || !arr->is_array_of_tables())
        fail(n.source(), key, "expected [[upstream]] tables (an array of tables)");
      for (std::size_t i = 0; i < arr->size(); ++i)
        cfg.upstreams.push_back(read_upstream(*(*arr)[i].as_table(), key + "[" + std::to_string(i) + "]"));
    };
    h["health"] = [&](const toml::node& n, const std::string& key) { read_health(table_of(n, key), key, cfg); };
    h["limits"] = [&](const toml::node& n, const std::string& key) { read_limits(table_of(n, key), key, cfg.limits); };
    dispatch(root, "", h);
  }

  const toml::table& table_of(const toml::node& n, const std::string& key) const {
    if (const auto* t = n.as_table()) return *t;
    fail(n.source(), key, "expected a table [" + key + "], got " + type_name(n));
  }

  UpstreamConfig read_upstream(const toml::table& t, const std::string& prefix) {
    UpstreamConfig u;
    bool have_address = false;
    std::map<std::string, Handler> h;
    h["address"] = [&](const toml::node& n, const std::string& key) {
      located(n.source(), key, [&] {
        auto hp = host_port_value(string_of(n, key));
        u.host = std::move(hp.host);
        u.port = hp.port;
        have_address = true;
      });
      if (u.port == 0) fail(n.source(), key, "port must be 1..65535");
    };
    h["weight"] = [&](const toml::node& n, const std::string& key) { u.weight = u32_of(n, key, 1, kMaxWeight); };
    h["max_conns"] = [&](const toml::node& n, const std::string& key) { u.max_conns = u32_of(n, key); };
    dispatch(t, prefix, h);
    if (!have_address) fail(t.source(), prefix, "missing 'address = \"HOST:PORT\"'");
    return u;
  }

  void read_health(const toml::table& t, const std::string& prefix, ProxyConfig& cfg) {
    std::map<std::string, Handler> h;
    h["max_fails"] = [&](const toml::node& n, const std::string& key) {
      cfg.passive.max_fails = u32_of(n, key, 0, kMaxFailsLimit);
    };
    h["fail_timeout"] = [&](const toml::node& n, const std::string& key) { cfg.passive.fail_timeout = duration_of(n, key); };
    h["active"] = [&](const toml::node& n, const std::string& key) { cfg.active.enabled = bool_of(n, key); };
    h["path"] = [&](const toml::node& n, const std::string& key) {
      cfg.active.path = string_of(n, key);
      if (cfg.active.path.empty() || cfg.active.path.front() != '/') fail(n.source(), key, "must start with '/'");
    };
    h["interval"] = [&](const toml::node& n, const std::string& key) { cfg.active.interval = duration_of(n, key); };
    h["timeout"] = [&](const toml::node& n, const std::string& key) { cfg.active.timeout = duration_of(n, key); };
    h["rise"] = [&](const toml::node& n, const std::string& key) { cfg.active.rise = u32_of(n, key, 1, kMaxRiseFall); };
    h["fall"] = [&](const toml::node& n, const std::string& key) { cfg.active.fall = u32_of(n, key, 1, kMaxRiseFall); };
    dispatch(t, prefix, h);
  }

  void read_limits(const toml::table& t, const std::string& prefix, LimitsConfig& lim) {
    std::map<std::string, Handler> h;
    h["rate"] = [&](const toml::node& n, const std::string& key) { lim.rate = number_of(n, key); };
    h["burst"] = [&](const toml::node& n, const std::string& key) { lim.burst = number_of(n, key); };
    h["max_conns_per_ip"] = [&](const toml::node& n, const std::string& key) { lim.max_conns_per_ip = u32_of(n, key); };
    h["allow"] = [&](const toml::node& n, const std::string& key) { lim.allow = cidrs_of(n, key); };
    h["deny"] = [&](const toml::node& n, const std::string& key) { lim.deny = cidrs_of(n, key); };
    h["max_header_bytes"] = [&](const toml::node& n, const std::string& key) {
      lim.max_header_bytes = u32_of(n, key, kMinHeaderBytes, kMaxHeaderBytes);
    };
    h["max_body_bytes"] = [&](const toml::node& n, const std::string& key) {
      lim.max_body_bytes = uint_of(n, key, 0, std::numeric_limits<std::int64_t>::max());
    };
    h["header_timeout"] = [&](const toml::node& n, const std::string& key) { lim.header_timeout = duration_of(n, key, true); };
    h["idle_timeout"] = [&](const toml::node& n, const std::string& key) { lim.idle_timeout = duration_of(n, key, true); };
    dispatch(t, prefix, h);
  }

  std::string source_;
};

std::string read_text_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(file.string() + ": cannot open config file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(file.string() + ": cannot read config file");
  return std::move(text).str();
}

// Parses TOML text into a ProxyConfig, checking each key as it is read but
// not the cross-field rules (an upstream list may still come from overrides).
ProxyConfig read_toml(std::string_view text, std::string_view source) {
  text = detail::without_utf8_bom(text);
  if (const auto line = detail::first_non_ascii_line(text))
    throw ConfigError(std::string(source) + ":" + std::to_string(*line) +
                      ": non-ASCII character (the config file must be ASCII, comments included)");
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::string msg(source);
    if (e.source().begin.line > 0) msg += ":" + std::to_string(e.source().begin.line);
    msg += ": invalid TOML: " + std::string(e.description());
    throw ConfigError(msg);
  }
  return TomlReader(std::string(source)).read(root);
}

// Runs validate() and prefixes its message with the source name, so a
// cross-field error (no upstream, duplicates) still says which file.
void validate_from(std::string_view source, const ProxyConfig& cfg) {
  try {
    validate(cfg);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string(source) + ": " + e.what());
  }
}

}  // namespace

// ---------------------------------------------------------------------------

ProxyConfig load_proxy_config_toml_from_string(std::string_view toml_text, std::string_view source) {
  ProxyConfig cfg = read_toml(toml_text, source);
  validate_from(source, cfg);
  return cfg;
}

ProxyConfig load_proxy_config_toml(const std::filesystem::path& file) {
  return load_proxy_config_toml_from_string(read_text_file(file), file.string());
}

void validate(const ProxyConfig& cfg) {
  if (cfg.listen_host.empty()) invalid("listen", "host must not be empty");

  if (cfg.upstreams.empty())
    invalid("upstream", "at least one upstream is required");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) {
    const auto& u = cfg.upstreams[i];
    const std::string key = "upstream[" + std::to_string(i) + "]";
    if (u.host.empty()) invalid(key + ".address", "host must not be empty");
    if (u.port == 0) invalid(key + ".address", "port must be 1..65535");
    check_range(key + ".weight", u.weight, 1, kMaxWeight);
    if (!seen.insert(u.address()).second) invalid(key + ".address", "duplicate upstream " + in_quotes(u.address()));
  }

  if (cfg.policy.empty()) invalid("policy", "must not be empty");
  {
    std::string err;
    if (!HashKeySpec::parse(cfg.hash_key, &err)) invalid("hash_key", err);
  }
  check_range("retries", cfg.retries, 0, kMaxRetries);
  check_range("threads", cfg.threads, 0, kMaxThreads);
  if (!known_log_level(cfg.log_level)) invalid("log_level", unknown_log_level(cfg.log_level));
  check_duration("connect_timeout", cfg.connect_timeout, true);
  check_duration("upstream_timeout", cfg.upstream_timeout, true);
  check_duration("upstream_idle_timeout", cfg.upstream_idle_timeout, false);
  check_duration("queue_timeout", cfg.queue_timeout, false);
  check_duration("drain_timeout", cfg.drain_timeout, false);
  check_duration("resolve_interval", cfg.resolve_interval, false);

  check_range("health.max_fails", cfg.passive.max_fails, 0, kMaxFailsLimit);
  check_duration("health.fail_timeout", cfg.passive.fail_timeout, cfg.passive.max_fails > 0);
  if (cfg.active.path.empty() || cfg.active.path.front() != '/') invalid("health.path", "must start with '/'");
  check_duration("health.interval", cfg.active.interval, cfg.active.enabled);
  check_duration("health.timeout", cfg.active.timeout, cfg.active.enabled);
  check_range("health.rise", cfg.active.rise, 1, kMaxRiseFall);
  check_range("health.fall", cfg.active.fall, 1, kMaxRiseFall);

  const auto& lim = cfg.limits;
  check_rate("limits.rate", lim.rate);
  check_rate("limits.burst", lim.burst);
  for (std::size_t i = 0; i < lim.allow.size(); ++i) {
    std::string err;
    if (!Cidr::parse(lim.allow[i], &err)) invalid("limits.allow[" + std::to_string(i) + "]", err);
  }
  for (std::size_t i = 0; i < lim.deny.size(); ++i) {
    std::string err;
    if (!Cidr::parse(lim.deny[i], &err)) invalid("limits.deny[" + std::to_string(i) + "]", err);
  }
  check_range("limits.max_header_bytes", lim.max_header_bytes, kMinHeaderBytes, kMaxHeaderBytes);
  check_duration("limits.header_timeout", lim.header_timeout, true);
  check_duration("limits.idle_timeout", lim.idle_timeout, true);
}

void apply_overrides(ProxyConfig& cfg, const ProxyConfigOverrides& o) {
  auto parse_or_throw = [](std::string_view key, auto&& fn) {
    try {
      fn();
    } catch (const ValueError& e) {
      invalid(key, e.message);
    }
  };
  if (o.listen) parse_or_throw("listen", [&] {
      auto hp = host_port_value(*o.listen);
      cfg.listen_host = std::move(hp.host);
      cfg.listen_port = hp.port;
    });
  if (o.admin) parse_or_throw("admin", [&] { set_admin(cfg, *o.admin); });
  if (o.upstreams) {
    std::vector<UpstreamConfig> list;
    for (std::size_t i = 0; i < o.upstreams->size(); ++i)
      parse_or_throw("upstream[" + std::to_string(i) + "]",
                     [&] { list.push_back(upstream_value((*o.upstreams)[i])); });
    cfg.upstreams = std::move(list);
  }
  if (o.policy) cfg.policy = *o.policy;
  if (o.hash_key) cfg.hash_key = *o.hash_key;
  if (o.retries) cfg.retries = *o.retries;
  if (o.threads) cfg.threads = *o.threads;
  if (o.access_log) cfg.access_log = *o.access_log;
  if (o.log_level) cfg.log_level = *o.log_level;
  if (o.connect_timeout) cfg.connect_timeout = *o.connect_timeout;
  if (o.upstream_timeout) cfg.upstream_timeout = *o.upstream_timeout;
  if (o.upstream_idle_timeout) cfg.upstream_idle_timeout = *o.upstream_idle_timeout;
  if (o.queue_size) cfg.queue_size = *o.queue_size;
  if (o.queue_timeout) cfg.queue_timeout = *o.queue_timeout;
  if (o.drain_timeout) cfg.drain_timeout = *o.drain_timeout;
  if (o.resolve_interval) cfg.resolve_interval = *o.resolve_interval;

  if (o.max_fails) cfg.passive.max_fails = *o.max_fails;
  if (o.fail_timeout) cfg.passive.fail_timeout = *o.fail_timeout;
  if (o.active_health) cfg.active.enabled = *o.active_health;
  if (o.health_path) cfg.active.path = *o.health_path;
  if (o.health_interval) cfg.active.interval = *o.health_interval;
  if (o.health_timeout) cfg.active.timeout = *o.health_timeout;
  if (o.rise) cfg.active.rise = *o.rise;
  if (o.fall) cfg.active.fall = *o.fall;

  auto& lim = cfg.limits;
  if (o.rate) lim.rate = *o.rate;
  if (o.burst) lim.burst = *o.burst;
  if (o.max_conns_per_ip) lim.max_conns_per_ip = *o.max_conns_per_ip;
  if (o.allow) lim.allow = *o.allow;
  if (o.deny) lim.deny = *o.deny;
  if (o.max_header_bytes) lim.max_header_bytes = *o.max_header_bytes;
  if (o.max_body_bytes) lim.max_body_bytes = *o.max_body_bytes;
  if (o.header_timeout) lim.header_timeout = *o.header_timeout;
  if (o.idle_timeout) lim.idle_timeout = *o.idle_timeout;
}

ProxyConfig build_proxy_config(const std::optional<std::filesystem::path>& file,
                               const ProxyConfigOverrides& overrides) {
  ProxyConfig cfg = file ? read_toml(read_text_file(*file), file->string()) : ProxyConfig{};
  apply_overrides(cfg, overrides);
  validate(cfg);
  return cfg;
}

std::vector<std::string> settings_needing_restart(const ProxyConfig& a, const ProxyConfig& b) {
  std::vector<std::string> out;
  auto diff = [&](const char* key, const auto& x, const auto& y) {
    if (!(x == y)) out.emplace_back(key);
  };
  diff("listen", std::tie(a.listen_host, a.listen_port), std::tie(b.listen_host, b.listen_port));
  diff("admin", std::tie(a.admin_host, a.admin_port), std::tie(b.admin_host, b.admin_port));
  diff("threads", a.threads, b.threads);
  diff("access_log", a.access_log, b.access_log);
  diff("log_level", a.log_level, b.log_level);
  diff("connect_timeout", a.connect_timeout, b.connect_timeout);
  diff("upstream_timeout", a.upstream_timeout, b.upstream_timeout);
  diff("upstream_idle_timeout", a.upstream_idle_timeout, b.upstream_idle_timeout);
  diff("queue_size", a.queue_size, b.queue_size);
  diff("queue_timeout", a.queue_timeout, b.queue_timeout);
  diff("drain_timeout", a.drain_timeout, b.drain_timeout);
  const auto& la = a.limits;
  const auto& lb = b.limits;
  diff("limits.rate", la.rate, lb.rate);
  diff("limits.burst", la.burst, lb.burst);
  diff("limits.max_conns_per_ip", la.max_conns_per_ip, lb.max_conns_per_ip);
  diff("limits.allow", la.allow, lb.allow);
  diff("limits.deny", la.deny, lb.deny);
  diff("limits.max_header_bytes", la.max_header_bytes, lb.max_header_bytes);
  diff("limits.max_body_bytes", la.max_body_bytes, lb.max_body_bytes);
  diff("limits.header_timeout", la.header_timeout, lb.header_timeout);
  diff("limits.idle_timeout", la.idle_timeout, lb.idle_timeout);
  return out;
}

}  // namespace userkey::lb
