// least_connections: send the request to the upstream with the fewest
// requests in flight (the "least connections" scheduler of LVS/IPVS, nginx's
// least_conn and HAProxy's leastconn).
//
// Selection among eligible upstreams, in order of precedence:
//   1. fewest Upstream::in_flight();
//   2. on equal in_flight, the larger weight (i.e. the lower
//      in_flight / weight, the weight-normalised load);
//   3. on a full tie, round robin: the scan starts at a rotating offset, so a
//      set of idle upstreams is not always resolved to index 0.
//
// Thread-safety: lock-free (reads atomics, one relaxed fetch_add for the
// rotation); safe to call concurrently. in_flight is sampled without a
// snapshot, which is the usual and harmless race for this policy.
// O(n), no allocation.
#pragma once

#include <atomic>
#include <cstdint>

#include "userkey/lb/balancing_policy.hpp"

namespace userkey::lb {

class LeastConnectionsPolicy final : public BalancingPolicy {
public:
  static constexpr std::string_view kName = "least_connections";

  std::string_view name() const override { return kName; }
  std::optional<std::size_t> choose(const Candidates& c, const RequestInfo& req) override;

private:
  std::atomic<std::uint64_t> rotation_{0};
};

}  // namespace userkey::lb
