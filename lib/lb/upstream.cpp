// Upstream health state and upstream-spec parsing. See upstream.hpp.
#include "userkey/lb/upstream.hpp"

#include <charconv>
#include <limits>
#include <utility>

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
// parse_upstream
// ---------------------------------------------------------------------------

std::optional<UpstreamConfig> parse_upstream(std::string_view spec, std::string* error) {
  const std::string quoted = "upstream '" + std::string(spec) + "': ";
  if (spec.empty()) {
    set_error(error, "upstream: empty specification, expected HOST:PORT[,weight=N][,max_conns=N][,tls=on]");
    return std::nullopt;
  }

  const auto comma = spec.find(',');
  const std::string_view hostport = spec.substr(0, comma);
  std::string_view options = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);

  UpstreamConfig cfg;
  std::string_view host;
  std::string_view port;
  if (!hostport.empty() && hostport.front() == '[') {
    // [IPv6]:PORT; the brackets are not part of the stored host.
    const auto close = hostport.find(']');
    if (close == std::string_view::npos) {
      set_error(error, quoted + "missing ']' after IPv6 address");
      return std::nullopt;
    }
    host = hostport.substr(1, close - 1);
    if (close + 1 >= hostport.size() || hostport[close + 1] != ':') {
      set_error(error, quoted + "missing ':PORT' after ']'");
      return std::nullopt;
    }
    port = hostport.substr(close + 2);
  } else {
    const auto colon = hostport.rfind(':');
    if (colon == std::string_view::npos) {
      set_error(error, quoted + "missing ':PORT'");
      return std::nullopt;
    }
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      set_error(error, quoted + "IPv6 addresses must be written as [ADDR]:PORT");
      return std::nullopt;
    }
  }
  if (host.empty()) {
    set_error(error, quoted + "empty host");
    return std::nullopt;
  }
  for (char ch : host) {
    if (ch == ' ' || ch == '\t' || ch == '/' || ch == '[' || ch == ']' || ch == '=') {
      set_error(error, quoted + "invalid character in host");
      return std::nullopt;
    }
  }
  std::uint64_t v = 0;
  if (!parse_uint(port, 1, 65535, v)) {
    set_error(error, quoted + "port must be a number in 1..65535, got '" + std::string(port) + "'");
    return std::nullopt;
  }
  cfg.host = std::string(host);
  cfg.port = static_cast<std::uint16_t>(v);

  bool seen_weight = false;
  bool seen_max_conns = false;
  bool seen_tls = false;
  while (comma != std::string_view::npos) {
    const auto next = options.find(',');
    const std::string_view opt = options.substr(0, next);
    const auto eq = opt.find('=');
    if (eq == std::string_view::npos) {
      set_error(error, quoted + "option '" + std::string(opt) + "' must be NAME=VALUE");
      return std::nullopt;
    }
    const std::string_view key = opt.substr(0, eq);
    const std::string_view val = opt.substr(eq + 1);
    if (key == "weight") {
      if (seen_weight) {
        set_error(error, quoted + "weight given twice");
        return std::nullopt;
      }
      if (!parse_uint(val, 1, 1000, v)) {
        set_error(error, quoted + "weight must be a number in 1..1000, got '" + std::string(val) + "'");
        return std::nullopt;
      }
      cfg.weight = static_cast<std::uint32_t>(v);
      seen_weight = true;
    } else if (key == "max_conns") {
      if (seen_max_conns) {
        set_error(error, quoted + "max_conns given twice");
        return std::nullopt;
      }
      if (!parse_uint(val, 0, std::numeric_limits<std::uint32_t>::max(), v)) {
        set_error(error, quoted + "max_conns must be a non-negative number, got '" + std::string(val) + "'");
        return std::nullopt;
      }
      cfg.max_conns = static_cast<std::uint32_t>(v);
      seen_max_conns = true;
    } else if (key == "tls") {
      if (seen_tls) {
        set_error(error, quoted + "tls given twice");
        return std::nullopt;
      }
      if (val != "on" && val != "off") {
        set_error(error, quoted + "tls must be on or off, got '" + std::string(val) + "'");
        return std::nullopt;
      }
      cfg.tls = val == "on";
      seen_tls = true;
    } else {
      set_error(error, quoted + "unknown option '" + std::string(key) + "' (expected weight, max_conns or tls)");
      return std::nullopt;
    }
    if (next == std::string_view::npos) break;
    options = options.substr(next + 1);
  }
  return cfg;
}

}  // namespace userkey::lb
