#include "userkey/lb/policies/random.hpp"

namespace userkey::lb {

std::optional<std::size_t> RandomPolicy::choose(const Candidates& c, const RequestInfo& /*req*/) {
  const std::size_t n = c.size();
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (c.eligible(i)) total += c[i].weight() == 0 ? 1 : c[i].weight();
  }
  if (total == 0) return std::nullopt;
  std::uint64_t r = random_.uniform(total);
  for (std::size_t i = 0; i < n; ++i) {
    if (!c.eligible(i)) continue;
    const std::uint64_t w = c[i].weight() == 0 ? 1 : c[i].weight();
    if (r < w) return i;
    r -= w;
  }
  return std::nullopt;  // unreachable: r < total
}

}  // namespace userkey::lb
