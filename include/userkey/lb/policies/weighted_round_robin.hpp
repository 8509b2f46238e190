// weighted_round_robin: nginx's "smooth weighted round robin".
//
// Algorithm (nginx, ngx_http_upstream_round_robin.c, introduced in 1.3.1):
// each upstream keeps a `current` weight. On every pick, each eligible
// upstream's current is increased by its weight, the one with the largest
// current is chosen (first one on ties), and the sum of the eligible weights
// is subtracted from the chosen one's current. Over any window of
// sum(weights) picks each upstream is chosen exactly `weight` times, and the
// picks are interleaved rather than bunched: weights a=5, b=1, c=1 give
// a a b a c a a, repeating.
//
// Ineligible upstreams are skipped and their current weight is left alone.
// (Unlike nginx, weights are not reduced after failures: passive health
// already removes failing upstreams from the candidate set.)
//
// Thread-safety: every pick updates every upstream's current weight, so
// choose() takes a short mutex; it is O(n) and allocation-free. rebuild()
// resets the state.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "userkey/lb/balancing_policy.hpp"

namespace userkey::lb {

class WeightedRoundRobinPolicy final : public BalancingPolicy {
public:
  static constexpr std::string_view kName = "weighted_round_robin";

  std::string_view name() const override { return kName; }
  void rebuild(std::span<Upstream* const> all) override;
  std::optional<std::size_t> choose(const Candidates& c, const RequestInfo& req) override;

private:
  std::mutex mu_;
  std::vector<std::int64_t> current_;  // guarded by mu_; one per upstream
};

}  // namespace userkey::lb
