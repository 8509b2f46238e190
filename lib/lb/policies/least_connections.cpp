#include "userkey/lb/policies/least_connections.hpp"

namespace userkey::lb {

std::optional<std::size_t> LeastConnectionsPolicy::choose(const Candidates& c, const RequestInfo& /*req*/) {
  const std::size_t n = c.size();
  if (n == 0) return std::nullopt;
  const std::size_t start = static_cast<std::size_t>(rotation_.fetch_add(1, std::memory_order_relaxed) % n);

  std::optional<std::size_t> best;
  std::int64_t best_load = 0;
  std::uint32_t best_weight = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (start + k) % n;
    if (!c.eligible(i)) continue;
    const std::int64_t load = c[i].in_flight();
    const std::uint32_t weight = c[i].weight();
    // Strictly better only, so the first candidate in rotation order wins ties.
    if (!best || load < best_load || (load == best_load && weight > best_weight)) {
      best = i;
      best_load = load;
      best_weight = weight;
    }
  }
  return best;
}

}  // namespace userkey::lb
