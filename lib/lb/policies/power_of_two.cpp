#include "userkey/lb/policies/power_of_two.hpp"

namespace userkey::lb {

namespace {

// Index of the k-th (0-based) eligible candidate.
std::size_t nth_eligible(const Candidates& c, std::size_t k) {
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (!c.eligible(i)) continue;
    if (k == 0) return i;
    --k;
  }
  return c.size();  // unreachable when k < eligible_count()
}

// a is less loaded than b: in_flight(a)/w(a) < in_flight(b)/w(b).
bool less_loaded(const Upstream& a, const Upstream& b) {
  const std::int64_t wa = a.weight() == 0 ? 1 : a.weight();
  const std::int64_t wb = b.weight() == 0 ? 1 : b.weight();
  return a.in_flight() * wb < b.in_flight() * wa;
}

}  // namespace

std::optional<std::size_t> PowerOfTwoPolicy::choose(const Candidates& c, const RequestInfo& /*req*/) {
  const std::size_t k = c.eligible_count();
  if (k == 0) return std::nullopt;
  if (k == 1) return nth_eligible(c, 0);
  // Two distinct draws: the second is uniform over the remaining k-1.
  const auto first = static_cast<std::size_t>(random_.uniform(k));
  auto second = static_cast<std::size_t>(random_.uniform(k - 1));
  if (second >= first) ++second;
  const std::size_t a = nth_eligible(c, first);
  const std::size_t b = nth_eligible(c, second);
  return less_loaded(c[b], c[a]) ? b : a;
}

}  // namespace userkey::lb
