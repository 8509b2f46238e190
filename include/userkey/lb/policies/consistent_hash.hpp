// consistent_hash: a consistent-hash ring with weighted virtual nodes.
//
// Algorithm: consistent hashing (Karger et al., "Consistent Hashing and Random
// Trees", STOC 1997), as used by ketama / nginx's `hash ... consistent`. Each
// upstream owns kPointsPerWeight * weight points on a 64-bit ring; point i of
// an upstream is derived from its address and i only, so it does not depend
// on the other upstreams. A request key (RequestInfo::hash_key, or client_ip
// when that is empty) is hashed and looked up by binary search for the first
// point clockwise; if that point's upstream is ineligible the lookup keeps
// walking clockwise to the first eligible one.
//
// Why a ring and not Maglev (Eisenbud et al., NSDI 2016)? Maglev gives a more
// even spread and O(1) lookup, but its table is rebuilt on every membership
// change and a small fraction of keys on *surviving* backends move too. The
// ring gives exact minimal disruption, which matters for per-user affinity:
//   * when an upstream leaves, only the keys that were on it move (each to
//     the next point clockwise, spread over the others in proportion to
//     their points);
//   * when an upstream joins, keys move only *to* it;
//   * marking an upstream down (health) needs no rebuild at all: the walk
//     simply skips it, and its keys come back when it is eligible again.
//
// Ring size: kPointsPerWeight points per unit of weight as long as the ring
// stays within kMaxPoints; for larger total weights the points per unit are
// scaled down uniformly (at least one point per upstream). Point i of an
// upstream is the same at every scale, so rescaling only moves keys whose
// points were added or removed.
//
// Thread-safety: rebuild() writes the ring and is not concurrent with
// choose() (BalancingPolicy contract); choose() only reads it, so concurrent
// choose() calls are safe. Lookup is O(log P) plus the walk past ineligible
// points; no allocation. If choose() is called before rebuild() (empty ring)
// it falls back to ip_hash-style hash-mod-n so it still returns an answer.
#pragma once

#include <cstdint>
#include <vector>

#include "userkey/lb/balancing_policy.hpp"

namespace userkey::lb {

class ConsistentHashPolicy final : public BalancingPolicy {
public:
  static constexpr std::string_view kName = "consistent_hash";
  /// Virtual nodes per unit of weight.
  static constexpr std::uint32_t kPointsPerWeight = 160;
  /// Upper bound on the total number of ring points (bounds memory to ~4 MiB).
  static constexpr std::size_t kMaxPoints = 1u << 18;

  std::string_view name() const override { return kName; }
  void rebuild(std::span<Upstream* const> all) override;
  std::optional<std::size_t> choose(const Candidates& c, const RequestInfo& req) override;

  /// Number of points on the ring (for tests and /status).
  std::size_t ring_size() const { return ring_.size(); }

private:
  struct Point {
    std::uint64_t hash;
    std::uint32_t index;  // into the upstream list given to rebuild()
  };
  std::vector<Point> ring_;  // sorted by hash
};

}  // namespace userkey::lb
