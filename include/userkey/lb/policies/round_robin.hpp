// round_robin: the default policy.
//
// Classic round robin: a shared atomic counter picks the starting index and
// the policy walks forward from it to the first eligible upstream, so with
// every upstream eligible consecutive requests visit them in order 0,1,..,n-1.
// Weights are ignored (use weighted_round_robin for that). When an upstream is
// ineligible its turn goes to the next eligible one.
//
// Thread-safety: choose() is lock-free (one relaxed fetch_add) and safe to call
// concurrently; under concurrency the order is round robin over the
// interleaving of the callers. No allocation.
#pragma once

#include <atomic>
#include <cstdint>

#include "userkey/lb/balancing_policy.hpp"

namespace userkey::lb {

class RoundRobinPolicy final : public BalancingPolicy {
public:
  static constexpr std::string_view kName = "round_robin";

  std::string_view name() const override { return kName; }
  std::optional<std::size_t> choose(const Candidates& c, const RequestInfo& req) override;

private:
  std::atomic<std::uint64_t> next_{0};
};

}  // namespace userkey::lb
