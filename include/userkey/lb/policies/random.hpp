// random: weighted random selection.
//
// Each eligible upstream is chosen with probability weight / (sum of eligible
// weights), using the injected RandomSource (PolicyContext::random), so tests
// can make it deterministic. This is plain roulette-wheel selection: draw
// r in [0, total) and walk the cumulative weights.
//
// Thread-safety: stateless apart from the RandomSource, which must itself be
// thread-safe. O(n), no allocation.
#pragma once

#include "userkey/lb/balancing_policy.hpp"

namespace userkey::lb {

class RandomPolicy final : public BalancingPolicy {
public:
  static constexpr std::string_view kName = "random";

  /// `random` must outlive the policy.
  explicit RandomPolicy(RandomSource& random) : random_(random) {}

  std::string_view name() const override { return kName; }
  std::optional<std::size_t> choose(const Candidates& c, const RequestInfo& req) override;

private:
  RandomSource& random_;
};

}  // namespace userkey::lb
