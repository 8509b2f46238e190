#include "userkey/lb/policies/round_robin.hpp"

namespace userkey::lb {

std::optional<std::size_t> RoundRobinPolicy::choose(const Candidates& c, const RequestInfo& /*req*/) {
  const std::size_t n = c.size();
  if (n == 0) return std::nullopt;
  const std::size_t start = static_cast<std::size_t>(next_.fetch_add(1, std::memory_order_relaxed) % n);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (start + k) % n;
    if (c.eligible(i)) return i;
  }
  return std::nullopt;
}

}  // namespace userkey::lb
