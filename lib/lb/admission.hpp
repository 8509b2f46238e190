// Admission of clients: the small steps a session runs before serving.
//
// Owns: the IP filter step (CIDR allow / deny -> 403), the per-IP connection
// cap step (-> 429, Retry-After 1; the connection stays counted while its
// ConnectionPass lives), the per-IP rate-limit step (token bucket -> 429 with
// the bucket's Retry-After), building the three from LimitsConfig, and
// sweeping idle rate buckets, and holding the trusted proxies (real_ip.hpp)
// a session resolves a request's client with. Each step is a plain function of its table and
// the client's address, with no I/O.
//
// Leaves to others: writing a refusal and counting it (downstream_session),
// the tables' own logic (ip_filter, token_bucket).
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "core/log_throttle.hpp"
#include "real_ip.hpp"
#include "userkey/lb/ip_filter.hpp"
#include "userkey/lb/proxy_config.hpp"
#include "userkey/lb/proxy_metrics.hpp"
#include "userkey/lb/token_bucket.hpp"
#include "userkey/lb/upstream.hpp"

namespace userkey::lb::engine {

/// A client turned away: the answer, and the reason it is counted under.
struct Refusal {
  Rejection reason;
  unsigned status;
  std::string_view message;
  std::chrono::seconds retry_after{0};
};

/// One connection counted against its address's cap, until destroyed (or
/// reset). Keeps a view of the address text, which must outlive it.
class ConnectionPass {
public:
  ConnectionPass() = default;
  ConnectionPass(ConnectionPass&& other) noexcept
      : limiter_(std::exchange(other.limiter_, nullptr)), ip_(other.ip_) {}
  ConnectionPass& operator=(ConnectionPass&& other) noexcept {
    if (this != &other) {
      reset();
      limiter_ = std::exchange(other.limiter_, nullptr);
      ip_ = other.ip_;
    }
    return *this;
  }
  ~ConnectionPass() { reset(); }

  /// True while it holds a count.
  bool counted() const { return limiter_ != nullptr; }
  void reset() {
    if (auto* l = std::exchange(limiter_, nullptr)) l->release(ip_);
  }

private:
  friend std::optional<Refusal> connection_cap_step(ConnectionLimiter&, std::string_view, ConnectionPass&);
  ConnectionPass(ConnectionLimiter& limiter, std::string_view ip) : limiter_(&limiter), ip_(ip) {}
  ConnectionLimiter* limiter_ = nullptr;
  std::string_view ip_;
};

/// 403 unless `filter` admits `ip`.
std::optional<Refusal> ip_filter_step(const IpFilter& filter, std::string_view ip);
/// 429 when `ip` is at the cap; otherwise `pass` holds the new count.
std::optional<Refusal> connection_cap_step(ConnectionLimiter& limiter, std::string_view ip, ConnectionPass& pass);
/// 429 when `ip`'s bucket is empty at `now`.
std::optional<Refusal> rate_limit_step(RateLimiter& limiter, std::string_view ip, TimePoint now);

/// The steps as configured; a step that is off costs one branch.
class Admission {
public:
  /// Throws std::invalid_argument for a bad CIDR in limits.allow / deny or
  /// `trusted_proxies`.
  explicit Admission(const LimitsConfig& limits, std::span<const std::string> trusted_proxies = {},
                     RealIpHeader real_ip_header = RealIpHeader::x_forwarded_for);

  /// Before a connection is served: the IP filter, then the per-client cap.
  std::optional<Refusal> admit_connection(std::string_view ip, ConnectionPass& pass) {
    if (!filter_.empty()) {
      if (auto refused = ip_filter_step(filter_, ip)) return refused;
    }
    if (connections_.cap() > 0) return connection_cap_step(connections_, ip, pass);
    return std::nullopt;
  }
  /// Before each request: the IP filter when `forwarded` (a trusted proxy
  /// named the client, whom the connection's check did not see), then the
  /// rate limit.
  std::optional<Refusal> admit_request(std::string_view ip, bool forwarded = false) {
    if (forwarded && !filter_.empty()) {
      if (auto refused = ip_filter_step(filter_, ip)) return refused;
    }
    if (!rate_.enabled()) return std::nullopt;
    return rate_limit_step(rate_, ip, SteadyClock::now());
  }

  bool rate_limited() const { return rate_.enabled(); }
  /// Whose X-Forwarded-For / Forwarded are believed.
  const TrustedProxies& trusted_proxies() const { return trusted_; }
  /// Whether a connection from `peer` may name its client in a PROXY
  /// header: from a trusted proxy, or from anyone when none is listed.
  bool proxy_header_trusted(std::string_view peer) const { return trusted_.empty() || trusted_.trusted(peer); }
  /// The log lines about connections refused for an untrusted PROXY peer.
  LogThrottle& untrusted_proxy_notices() { return untrusted_proxy_notices_; }
  /// Drops rate buckets that are full and idle.
  void sweep(TimePoint now) { rate_.sweep(now); }

private:
  IpFilter filter_;
  RateLimiter rate_;
  ConnectionLimiter connections_;
  TrustedProxies trusted_;
  LogThrottle untrusted_proxy_notices_;
};

}  // namespace userkey::lb::engine
