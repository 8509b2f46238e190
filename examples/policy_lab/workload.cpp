#include "workload.hpp"

#include <algorithm>
#include <cmath>

#include "userkey/lb/upstream.hpp"

namespace policy_lab {
namespace {

/// Uniform double in [0, 1) from the top 53 bits of a draw.
double unit_uniform(userkey::lb::RandomSource& rng) { return static_cast<double>(rng.next() >> 11) * 0x1.0p-53; }

/// Exponential with mean 1.
double unit_exponential(userkey::lb::RandomSource& rng) { return -std::log1p(-unit_uniform(rng)); }

/// Draws ranks 1..n with P(k) proportional to 1/k^s, by binary search in the
/// cumulative distribution (O(n) memory, O(log n) per draw).
class ZipfSampler {
public:
  ZipfSampler(std::uint32_t n, double s) : cdf_(n) {
    double total = 0;
    for (std::uint32_t k = 1; k <= n; ++k) cdf_[k - 1] = total += std::pow(static_cast<double>(k), -s);
    for (double& c : cdf_) c /= total;
  }
  std::uint32_t sample(double u) const {
    const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    return static_cast<std::uint32_t>(std::min<std::ptrdiff_t>(it - cdf_.begin(), std::ssize(cdf_) - 1)) + 1;
  }

private:
  std::vector<double> cdf_;
};

/// Arrival rate (per ms) in force at time t, and when that rate next changes.
struct RateSegment {
  double per_ms;
  double ends_ms;
};

RateSegment rate_at(const LabOptions& o, double t_ms) {
  const double base = o.rate / 1000.0;
  if (!o.burst) return {base, INFINITY};
  const double period_start = std::floor(t_ms / o.burst->period_ms) * o.burst->period_ms;
  const double burst_end = period_start + o.burst->length_ms;
  if (t_ms < burst_end) return {base * o.burst->factor, burst_end};
  return {base, period_start + o.burst->period_ms};
}

/// Time of the next arrival after `t_ms` in a Poisson process whose rate is
/// piecewise constant: spend one unit-exponential amount of "hazard" across
/// the rate segments (exact, because the exponential is memoryless).
double next_arrival(const LabOptions& o, double t_ms, userkey::lb::RandomSource& rng) {
  double hazard = unit_exponential(rng);
  for (;;) {
    const RateSegment seg = rate_at(o, t_ms);
    const double needed = hazard / seg.per_ms;
    if (t_ms + needed <= seg.ends_ms) return t_ms + needed;
    hazard -= (seg.ends_ms - t_ms) * seg.per_ms;
    t_ms = seg.ends_ms;
  }
}

}  // namespace

std::vector<SimRequest> generate_workload(const LabOptions& o) {
  userkey::lb::SplitMixRandom rng(o.seed);
  const ZipfSampler users(o.users, o.zipf_s);
  std::vector<SimRequest> out;
  out.reserve(o.requests);
  double t_ms = 0;
  for (std::uint64_t i = 0; i < o.requests; ++i) {
    t_ms = next_arrival(o, t_ms, rng);
    const std::uint32_t user = users.sample(unit_uniform(rng));
    out.push_back({t_ms, user, unit_exponential(rng)});
  }
  return out;
}

}  // namespace policy_lab
