// Admission steps: see admission.hpp.
#include "admission.hpp"

#include <stdexcept>
#include <string>

namespace userkey::lb::engine {

namespace {

Cidr parse_cidr(const std::string& s) {
  std::string err;
  auto c = Cidr::parse(s, &err);
  if (!c) throw std::invalid_argument("bad CIDR '" + s + "': " + err);
  return *c;
}

IpFilter make_filter(const LimitsConfig& limits) {
  IpFilter filter;
  for (const auto& a : limits.allow) filter.add_allow(parse_cidr(a));
  for (const auto& d : limits.deny) filter.add_deny(parse_cidr(d));
  return filter;
}

}  // namespace

std::optional<Refusal> ip_filter_step(const IpFilter& filter, std::string_view ip) {
  if (filter.allowed(ip)) return std::nullopt;
  return Refusal{Rejection::denied, 403, "forbidden"};
}

std::optional<Refusal> connection_cap_step(ConnectionLimiter& limiter, std::string_view ip, ConnectionPass& pass) {
  const auto admit = limiter.try_acquire(ip);
  if (admit == ConnectionLimiter::Admit::refused)
    return Refusal{Rejection::too_many_conns, 429, "too many connections from this address", std::chrono::seconds(1)};
  if (admit == ConnectionLimiter::Admit::counted) pass = ConnectionPass(limiter, ip);
  return std::nullopt;
}

std::optional<Refusal> rate_limit_step(RateLimiter& limiter, std::string_view ip, TimePoint now) {
  const auto d = limiter.try_acquire(ip, now);
  if (d.allowed) return std::nullopt;
  auto secs = std::chrono::ceil<std::chrono::seconds>(d.retry_after);
  if (secs.count() < 1) secs = std::chrono::seconds(1);
  return Refusal{Rejection::rate_limited, 429, "rate limit exceeded", secs};
}

Admission::Admission(const LimitsConfig& limits, std::span<const std::string> trusted_proxies,
                     RealIpHeader real_ip_header)
    : filter_(make_filter(limits)),
      rate_(limits.rate, limits.burst, std::chrono::seconds(60), limits.ipv6_prefix),
      connections_(limits.max_conns_per_ip, limits.ipv6_prefix),
      trusted_(trusted_proxies, real_ip_header) {}

}  // namespace userkey::lb::engine
