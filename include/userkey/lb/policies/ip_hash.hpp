// ip_hash: client-IP affinity (in the spirit of nginx's ip_hash).
//
// The upstream is hash64(client_ip) mod n over the full, stable upstream
// list; if that one is ineligible the policy walks forward to the next
// eligible index. A given client therefore always reaches the same upstream
// while the set and its health are unchanged. Unlike nginx, the whole address
// string is hashed (not only the first three IPv4 octets), and weights are
// ignored.
//
// Trade-off: modulo hashing remaps most clients when the upstream *list*
// changes size; use consistent_hash when that matters. Marking an upstream
// ineligible only moves the clients that were on it.
//
// Thread-safety: stateless; safe to call concurrently. O(n) worst case, no
// allocation.
#pragma once

#include "userkey/lb/balancing_policy.hpp"

namespace userkey::lb {

class IpHashPolicy final : public BalancingPolicy {
public:
  static constexpr std::string_view kName = "ip_hash";

  std::string_view name() const override { return kName; }
  std::optional<std::size_t> choose(const Candidates& c, const RequestInfo& req) override;
};

}  // namespace userkey::lb
