#include "userkey/lb/policies/weighted_round_robin.hpp"

namespace userkey::lb {

void WeightedRoundRobinPolicy::rebuild(std::span<Upstream* const> all) {
  std::lock_guard lock(mu_);
  current_.assign(all.size(), 0);
}

std::optional<std::size_t> WeightedRoundRobinPolicy::choose(const Candidates& c, const RequestInfo& /*req*/) {
  const std::size_t n = c.size();
  std::lock_guard lock(mu_);
  // Defensive: rebuild() should have sized the state; allocate only if not.
  if (current_.size() != n) current_.assign(n, 0);

  std::int64_t total = 0;
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < n; ++i) {
    if (!c.eligible(i)) continue;
    const auto w = static_cast<std::int64_t>(c[i].weight());
    current_[i] += w;
    total += w;
    if (!best || current_[i] > current_[*best]) best = i;
  }
  if (best) current_[*best] -= total;
  return best;
}

}  // namespace userkey::lb
