// Upstream health state and the upstream record's rules. See upstream.hpp.
#include "userkey/lb/upstream.hpp"

#include <charconv>
#include <limits>
#include <utility>

#include "lb/proxy_settings_internal.hpp"
#include "userkey/core/config_values.hpp"

namespace userkey::lb {

namespace {

SteadyClock::rep ticks(TimePoint t) { return t.time_since_epoch().count(); }

void set_error(std::string* error, std::string msg) {
  if (error != nullptr) *error = std::move(msg);
}

// Parses a whole decimal string into [lo, hi]; false on anything else
// (sign, spaces, trailing junk, overflow).
bool parse_uint(std::string_view s, std::uint64_t lo, std::uint64_t hi, std::uint64_t& out) {
  if (s.empty()) return false;
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return false;
  if (v < lo || v > hi) return false;
  out = v;
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------
// Upstream
//
// Passive health, modelled on nginx's max_fails / fail_timeout:
//  * The first failure opens a window of length fail_timeout; failures inside
//    it are counted. A failure after the window has expired opens a new one.
//  * When the count reaches max_fails the upstream is down until
//    now + fail_timeout ("tripped"). down_until_ != 0 marks the tripped state.
//  * Successes never end a down period early.
//  * Once the down period has passed the upstream is offered traffic again but
//    stays on probation (as in nginx, where the fail count is only cleared by
//    a success): the next success clears the state, while a failure before
//    any success takes it down for another fail_timeout straight away.
//  * Failures reported while it is down (requests that were already in
//    flight) are ignored; they do not extend the down period.
//  * A good active probe clears the passive state as well (and so does the
//    rise that brings an actively-down upstream back): the upstream has just
//    answered its health path, which is stronger evidence than a failed
//    request, whose cause may be the request itself.
//  * The caller may refuse a take-down (may_take_out false: the cluster's
//    ejection budget is spent). The failure is still counted, so the next
//    one takes it out once the budget allows.
// ---------------------------------------------------------------------------

Upstream::Upstream(UpstreamConfig config, PassiveHealthConfig passive)
    : config_(std::move(config)), address_(config_.address()), passive_(passive) {}

bool Upstream::passively_down(TimePoint now) const {
  if (passive_.max_fails == 0) return false;
  return ticks(now) < down_until_.load(std::memory_order_acquire);
}

bool Upstream::available(TimePoint now) const { return active_up() && !passively_down(now); }

void Upstream::report_success(TimePoint now) {
  // Hot path (every proxied request): lock-free unless the upstream is on
  // probation after a down period.
  if (passive_.max_fails == 0) return;
  const auto until = down_until_.load(std::memory_order_acquire);
  if (until == 0 || ticks(now) < until) return;  // not tripped, or still down
  std::lock_guard lock(mu_);
  if (down_until_.load(std::memory_order_relaxed) != 0 &&
      ticks(now) >= down_until_.load(std::memory_order_relaxed)) {
    fails_ = 0;
    down_until_.store(0, std::memory_order_release);
  }
}

FailureVerdict Upstream::report_failure(TimePoint now, bool may_take_out) {
  if (passive_.max_fails == 0) return FailureVerdict::counted;
  const auto timeout = std::chrono::duration_cast<SteadyClock::duration>(passive_.fail_timeout);
  std::lock_guard lock(mu_);
  const auto until = down_until_.load(std::memory_order_relaxed);
  if (until != 0) {
    if (ticks(now) < until) return FailureVerdict::counted;  // already down: late reports don't extend it
    // On probation after a down period: one failure is enough.
    if (!may_take_out) return FailureVerdict::kept_in;
    down_until_.store(ticks(now + timeout), std::memory_order_release);
    return FailureVerdict::taken_out;
  }
  if (fails_ == 0 || now - window_start_ >= timeout) {
    window_start_ = now;
    fails_ = 0;
  }
  ++fails_;
  if (fails_ < passive_.max_fails) return FailureVerdict::counted;
  if (!may_take_out) return FailureVerdict::kept_in;
  // Guard against a zero tick value being mistaken for "not tripped".
  const auto down = ticks(now + timeout);
  down_until_.store(down == 0 ? 1 : down, std::memory_order_release);
  return FailureVerdict::taken_out;
}

// Active health, HAProxy rise/fall: probe_streak_ counts consecutive probe
// results that contradict the current state; reaching `fall` (while up) or
// `rise` (while down) flips it. A result agreeing with the state resets the
// streak. rise/fall of 0 are treated as 1.
bool Upstream::report_probe(bool ok, const ActiveHealthConfig& cfg) {
  std::lock_guard lock(mu_);
  if (ok && down_until_.load(std::memory_order_relaxed) != 0) {
    // It answered its health path: a passive take-down (or probation) ends.
    fails_ = 0;
    down_until_.store(0, std::memory_order_release);
  }
  const bool up = active_up_.load(std::memory_order_relaxed);
  if (ok == up) {
    probe_streak_ = 0;
    return false;
  }
  ++probe_streak_;
  const std::uint32_t need = up ? (cfg.fall == 0 ? 1 : cfg.fall) : (cfg.rise == 0 ? 1 : cfg.rise);
  if (probe_streak_ < need) return false;
  probe_streak_ = 0;
  active_up_.store(!up, std::memory_order_relaxed);
  if (!up) {
    // Health checks have just proven it back: forget the passive verdict
    // too, rather than keep a recovered upstream out for the rest of
    // fail_timeout.
    fails_ = 0;
    down_until_.store(0, std::memory_order_release);
  }
  return true;
}

// ---------------------------------------------------------------------------
// The upstream record: check_upstream, parse_upstream, format_upstream
// ---------------------------------------------------------------------------

std::optional<UpstreamFieldError> check_upstream(const UpstreamConfig& u) {
  if (u.host.empty()) return UpstreamFieldError{"address", "host must not be empty"};
  for (const char ch : u.host) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || ch == '/' || ch == '[' || ch == ']' || ch == '=' || ch == ',')
      return UpstreamFieldError{"address", "invalid character in host '" + u.host + "'"};
  }
  if (u.port == 0) return UpstreamFieldError{"address", "port must be 1..65535, got 0"};
  if (u.weight < 1 || u.weight > kMaxWeight)
    return UpstreamFieldError{"weight", "must be between 1 and " + std::to_string(kMaxWeight) + ", got " +
                                            std::to_string(u.weight)};
  return std::nullopt;
}

std::optional<UpstreamConfig> parse_upstream(std::string_view spec, std::string* error) {
  const auto fail = [&](const UpstreamFieldError& e) -> std::optional<UpstreamConfig> {
    set_error(error, "upstream '" + std::string(spec) + "': " + e.message());
    return std::nullopt;
  };
  if (spec.empty()) return fail({"address", "empty, expected HOST:PORT[,weight=N][,max_conns=N][,tls=on]"});

  const auto comma = spec.find(',');
  std::string why;
  const auto hp = parse_host_port(spec.substr(0, comma), &why);
  if (!hp) return fail({"address", why});
  UpstreamConfig cfg;
  cfg.host = hp->host;
  cfg.port = hp->port;

  bool seen_weight = false;
  bool seen_max_conns = false;
  bool seen_tls = false;
  std::string_view options = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
  while (comma != std::string_view::npos) {
    const auto next = options.find(',');
    const std::string_view opt = options.substr(0, next);
    const auto eq = opt.find('=');
    if (eq == std::string_view::npos) return fail({"options", "'" + std::string(opt) + "' must be NAME=VALUE"});
    const std::string key(opt.substr(0, eq));
    const std::string_view val = opt.substr(eq + 1);
    bool* seen = key == "weight" ? &seen_weight : key == "max_conns" ? &seen_max_conns : key == "tls" ? &seen_tls : nullptr;
    if (seen == nullptr) return fail({"options", "unknown option '" + key + "' (expected weight, max_conns or tls)"});
    if (*seen) return fail({key, "given twice"});
    *seen = true;
    if (key == "tls") {
      if (val != "on" && val != "off") return fail({key, "must be on or off, got '" + std::string(val) + "'"});
      cfg.tls = val == "on";
    } else {
      std::uint64_t v = 0;
      if (!parse_uint(val, 0, std::numeric_limits<std::uint32_t>::max(), v))
        return fail({key, "must be a whole number, got '" + std::string(val) + "'"});
      (key == "weight" ? cfg.weight : cfg.max_conns) = static_cast<std::uint32_t>(v);
    }
    if (next == std::string_view::npos) break;
    options = options.substr(next + 1);
  }
  if (auto broken = check_upstream(cfg)) return fail(*broken);
  return cfg;
}

std::string format_upstream(const UpstreamConfig& u) {
  return format_host_port({u.host, u.port}) + ",weight=" + std::to_string(u.weight) +
         ",max_conns=" + std::to_string(u.max_conns) + (u.tls ? ",tls=on" : "");
}

}  // namespace userkey::lb
