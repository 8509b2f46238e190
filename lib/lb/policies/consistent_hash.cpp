#include "userkey/lb/policies/consistent_hash.hpp"

#include <algorithm>

#include "../hash.hpp"

namespace userkey::lb {

void ConsistentHashPolicy::rebuild(std::span<Upstream* const> all) {
  std::uint64_t total_weight = 0;
  for (const Upstream* u : all) total_weight += u->weight() == 0 ? 1 : u->weight();

  // Points per unit of weight, scaled down uniformly if the ring would be too big.
  double per_weight = kPointsPerWeight;
  if (total_weight * kPointsPerWeight > kMaxPoints) {
    per_weight = static_cast<double>(kMaxPoints) / static_cast<double>(total_weight);
  }

  ring_.clear();
  std::size_t want = 0;
  for (const Upstream* u : all) {
    want += std::max<std::size_t>(1, static_cast<std::size_t>(per_weight * (u->weight() == 0 ? 1 : u->weight())));
  }
  ring_.reserve(want);
  for (std::size_t idx = 0; idx < all.size(); ++idx) {
    const Upstream* u = all[idx];
    const std::uint32_t w = u->weight() == 0 ? 1 : u->weight();
    const auto points = std::max<std::size_t>(1, static_cast<std::size_t>(per_weight * w));
    const std::uint64_t seed = detail::hash64(u->address());
    for (std::size_t p = 0; p < points; ++p) {
      ring_.push_back(Point{detail::derive64(seed, p), static_cast<std::uint32_t>(idx)});
    }
  }
  // Sort by hash; equal hashes (astronomically unlikely) ordered by index so
  // the ring is a deterministic function of the upstream set.
  std::sort(ring_.begin(), ring_.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.index < b.index;
  });
}

std::optional<std::size_t> ConsistentHashPolicy::choose(const Candidates& c, const RequestInfo& req) {
  const std::size_t n = c.size();
  if (n == 0 || c.eligible_count() == 0) return std::nullopt;
  const std::string_view key = req.hash_key.empty() ? req.client_ip : req.hash_key;
  const std::uint64_t h = detail::hash64(key);

  if (!ring_.empty()) {
    auto it = std::lower_bound(ring_.begin(), ring_.end(), h,
                               [](const Point& p, std::uint64_t v) { return p.hash < v; });
    std::size_t pos = static_cast<std::size_t>(it - ring_.begin());
    for (std::size_t k = 0; k < ring_.size(); ++k) {
      const Point& p = ring_[(pos + k) % ring_.size()];
      if (p.index < n && c.eligible(p.index)) return p.index;
    }
  }
  // No ring (rebuild() not called) or a ring that does not match the
  // candidates: hash-mod-n, walking to the next eligible.
  const auto start = static_cast<std::size_t>(h % n);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (start + k) % n;
    if (c.eligible(i)) return i;
  }
  return std::nullopt;
}

}  // namespace userkey::lb
