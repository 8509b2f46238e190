// power_of_two: "power of two choices" (P2C).
//
// Pick two distinct eligible upstreams uniformly at random and send the
// request to the less loaded one, load being in_flight / weight (compared by
// cross-multiplication, no division). On a tie the first draw wins.
//
// Source: Michael Mitzenmacher, "The Power of Two Choices in Randomized Load
// Balancing", PhD thesis, University of California, Berkeley, 1996. Sampling
// two choices instead of one reduces the maximum load from
// Theta(log n / log log n) to Theta(log log n) with high probability, and,
// unlike least_connections, it avoids a herd of concurrent balancers all
// piling onto the single least-loaded upstream with stale counts.
//
// With one eligible upstream it is chosen; with none, nullopt.
//
// Thread-safety: stateless apart from the thread-safe RandomSource. O(n) to
// map the draws to indices, no allocation.
#pragma once

#include "userkey/lb/balancing_policy.hpp"

namespace userkey::lb {

class PowerOfTwoPolicy final : public BalancingPolicy {
public:
  static constexpr std::string_view kName = "power_of_two";

  /// `random` must outlive the policy.
  explicit PowerOfTwoPolicy(RandomSource& random) : random_(random) {}

  std::string_view name() const override { return kName; }
  std::optional<std::size_t> choose(const Candidates& c, const RequestInfo& req) override;

private:
  RandomSource& random_;
};

}  // namespace userkey::lb
