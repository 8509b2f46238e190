// Upstream servers and the health model every balancing policy shares.
//
// An Upstream is one backend address plus its live state: in-flight request
// count, passive health (nginx's max_fails / fail_timeout) and active health
// (HAProxy's rise / fall over periodic probes). State lives in atomics so the
// proxy's event-loop threads read it without locks; only the rare failure
// path takes a per-upstream mutex.
//
// Policies never look at health themselves: the proxy builds a Candidates view
// (healthy and not yet tried for this request) and asks the policy to choose
// within it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace userkey::lb {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

/// Source of "now", injected so health and rate limiting are testable.
class TimeSource {
public:
  virtual ~TimeSource() = default;
  virtual TimePoint now() const = 0;
};

/// The real steady clock.
class SystemTimeSource final : public TimeSource {
public:
  TimePoint now() const override { return SteadyClock::now(); }
};

/// A clock tests move by hand.
class ManualTimeSource final : public TimeSource {
public:
  explicit ManualTimeSource(TimePoint start = TimePoint{} + std::chrono::hours(1))
      : now_(start.time_since_epoch().count()) {}
  TimePoint now() const override {
    return TimePoint{SteadyClock::duration{now_.load(std::memory_order_relaxed)}};
  }
  void advance(SteadyClock::duration d) { now_.fetch_add(d.count(), std::memory_order_relaxed); }

private:
  std::atomic<SteadyClock::rep> now_;
};

/// Source of randomness, injected so random policies are deterministic in tests.
/// Implementations must be safe to call from several threads.
class RandomSource {
public:
  virtual ~RandomSource() = default;
  /// Uniform 64-bit value.
  virtual std::uint64_t next() = 0;
  /// Uniform in [0, bound); bound > 0.
  std::uint64_t uniform(std::uint64_t bound) { return next() % bound; }
};

/// splitmix64 generator (Steele, Lea, Flood, OOPSLA 2014): a seeded,
/// deterministic RandomSource. Thread-safe and lock-free (the state is one
/// atomic counter; each next() claims a distinct step), so it serves both as
/// the production source (seed it from std::random_device) and as the
/// reproducible source in tests. Not cryptographic.
class SplitMixRandom final : public RandomSource {
public:
  explicit SplitMixRandom(std::uint64_t seed = 0x5eed5eed5eed5eedULL) : state_(seed) {}
  std::uint64_t next() override {
    std::uint64_t z = state_.fetch_add(0x9e3779b97f4a7c15ULL, std::memory_order_relaxed) +
                      0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

private:
  std::atomic<std::uint64_t> state_;
};

/// Passive health settings (nginx semantics): `max_fails` failures within
/// `fail_timeout` mark the upstream down for `fail_timeout`. max_fails == 0
/// disables passive health.
struct PassiveHealthConfig {
  std::uint32_t max_fails = 1;
  std::chrono::milliseconds fail_timeout{10'000};
};

/// Limits on passive health across a cluster (Envoy's outlier detection
/// terms). Passive health takes out at most `max_ejection_percent` of the
/// upstreams at once (rounded down, but at least one when above 0); and when
/// fewer than `panic_threshold_percent` of them are available, requests are
/// spread over every upstream that active health has not taken out, ignoring
/// passive verdicts ("panic"), rather than answered 503.
struct OutlierLimits {
  std::uint32_t max_ejection_percent = 50;
  std::uint32_t panic_threshold_percent = 50;
};

/// How many of `upstreams` passive health may take out at once.
constexpr std::size_t max_ejections(std::size_t upstreams, std::uint32_t max_ejection_percent) {
  if (max_ejection_percent == 0 || upstreams == 0) return 0;
  const std::size_t n = upstreams * max_ejection_percent / 100;
  return n == 0 ? 1 : n;
}

/// What a reported failure did to an upstream's passive state.
enum class FailureVerdict {
  counted,    ///< counted (or ignored while already down); still in
  taken_out,  ///< this failure took it out for fail_timeout
  kept_in,    ///< it would have been taken out, but the caller's budget was spent
};

/// Active health settings (HAProxy semantics): an upstream that is up goes down
/// after `fall` consecutive failed probes; one that is down comes up after
/// `rise` consecutive good probes.
struct ActiveHealthConfig {
  bool enabled = true;
  std::string path = "/healthz";
  std::chrono::milliseconds interval{1'000};
  std::chrono::milliseconds timeout{500};
  std::uint32_t rise = 2;
  std::uint32_t fall = 2;
};

struct UpstreamConfig {
  std::string host;
  std::uint16_t port = 0;
  std::uint32_t weight = 1;
  /// Upper bound on open connections to this upstream (requests beyond wait
  /// in the proxy's queue); 0 = unlimited. The default suits a
  /// thread-per-connection backend with more than 64 worker threads.
  std::uint32_t max_conns = 64;
  /// Speak HTTPS to it: TLS 1.2+, the certificate verified against
  /// upstream_tls_ca (or the system's trust store) and checked to name
  /// `host` (a DNS name, sent as SNI, or an IP address).
  bool tls = false;

  /// "host:port", used as the upstream's identity in logs and metrics.
  std::string address() const { return host + ":" + std::to_string(port); }

  bool operator==(const UpstreamConfig&) const = default;
};

// The upstream record's one set of rules. Flags, the environment, a file's
// `upstreams = [...]` strings, its [[upstream]] tables and validate() all go
// through these, so a record means the same and an error reads the same
// whichever source it came from (each source adds only where: the flag, the
// file and line, the list index).

/// One broken rule of an upstream record: the field as a file names it
/// ("address", "weight", "max_conns", "tls") and what is wrong with it.
struct UpstreamFieldError {
  std::string field;
  std::string what;
  /// "FIELD: WHAT", the text every source reports.
  std::string message() const { return field + ": " + what; }
};

/// The field rules: a host that is not empty and has no space, control
/// character, '/', '[', ']', '=' or ','; a port in 1..65535; a weight in
/// 1..1000 (max_conns and tls take any value). nullopt when all hold,
/// else the first one broken.
std::optional<UpstreamFieldError> check_upstream(const UpstreamConfig& u);

/// Parses "HOST:PORT[,weight=N][,max_conns=N][,tls=on|off]" (an IPv6 host in
/// brackets) and applies check_upstream(). Returns nullopt and sets `error`
/// to "upstream 'SPEC': FIELD: WHAT" on malformed input.
std::optional<UpstreamConfig> parse_upstream(std::string_view spec, std::string* error = nullptr);

/// The text parse_upstream() reads back as `u`, every field written
/// ("HOST:PORT,weight=N,max_conns=N" and ",tls=on" when on).
std::string format_upstream(const UpstreamConfig& u);

/// One upstream and its live state. Thread-safe.
class Upstream {
public:
  Upstream(UpstreamConfig config, PassiveHealthConfig passive);

  const UpstreamConfig& config() const { return config_; }
  const PassiveHealthConfig& passive() const { return passive_; }
  const std::string& address() const { return address_; }
  std::uint32_t weight() const { return config_.weight; }

  /// True when neither passive nor active health has taken it out at `now`.
  bool available(TimePoint now) const;
  /// Active-health view only (for metrics and /status).
  bool active_up() const { return active_up_.load(std::memory_order_relaxed); }
  /// Passive view only: true while taken out by max_fails.
  bool passively_down(TimePoint now) const;

  /// A request completed with a response from this upstream.
  void report_success(TimePoint now);
  /// A connect error, reset or timeout before a response (passive health).
  /// `may_take_out` false: the failure is counted, but the upstream stays in
  /// even when it reaches max_fails (the cluster's ejection budget is spent);
  /// a later failure may take it out once the budget allows.
  FailureVerdict report_failure(TimePoint now, bool may_take_out = true);
  /// Outcome of one active probe; returns true when it changed active_up().
  /// A good probe also clears a passive take-down: the upstream answered.
  bool report_probe(bool ok, const ActiveHealthConfig& cfg);
  /// Force the active state (e.g. starting state before the first probe).
  void set_active_up(bool up) { active_up_.store(up, std::memory_order_relaxed); }

  /// Requests currently being proxied to this upstream (used by least_connections / P2C).
  std::int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  void begin_request() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void end_request() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  /// One request counted in in_flight() for as long as it lives, however
  /// its scope is left (return, exception, a coroutine frame destroyed).
  class InFlight {
  public:
    explicit InFlight(Upstream& u) : u_(u) { u_.begin_request(); }
    ~InFlight() { u_.end_request(); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

  private:
    Upstream& u_;
  };

private:
  UpstreamConfig config_;
  std::string address_;
  PassiveHealthConfig passive_;
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<bool> active_up_{true};
  std::atomic<SteadyClock::rep> down_until_{0};  // passive; ticks since epoch
  std::uint32_t probe_streak_ = 0;                // guarded by mu_
  std::uint32_t fails_ = 0;                       // guarded by mu_
  TimePoint window_start_{};                      // guarded by mu_
  mutable std::mutex mu_;
};

/// The request attributes a policy may key on. Views stay valid for the call.
struct RequestInfo {
  std::string_view client_ip;
  std::string_view target;  // path and query, as on the request line
  /// Value of the configured hash key (e.g. the user_id query parameter),
  /// extracted by the proxy with HashKeySpec; empty when absent.
  std::string_view hash_key;
};

/// The upstreams a policy may choose from for one request: the full set in a
/// stable order (indices are stable until the set is replaced) plus, per
/// index, whether it is eligible (healthy and not already tried).
class Candidates {
public:
  Candidates(std::span<Upstream* const> all, std::span<const bool> eligible)
      : all_(all), eligible_(eligible) {}
  std::size_t size() const { return all_.size(); }
  Upstream& operator[](std::size_t i) const { return *all_[i]; }
  bool eligible(std::size_t i) const { return eligible_[i]; }
  std::size_t eligible_count() const {
    std::size_t n = 0;
    for (bool e : eligible_) n += e ? 1 : 0;
    return n;
  }

private:
  std::span<Upstream* const> all_;
  std::span<const bool> eligible_;
};

}  // namespace userkey::lb
