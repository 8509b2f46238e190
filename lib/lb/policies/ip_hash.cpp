#include "userkey/lb/policies/ip_hash.hpp"

#include "../hash.hpp"

namespace userkey::lb {

std::optional<std::size_t> IpHashPolicy::choose(const Candidates& c, const RequestInfo& req) {
  const std::size_t n = c.size();
  if (n == 0) return std::nullopt;
  const auto start = static_cast<std::size_t>(detail::hash64(req.client_ip) % n);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (start + k) % n;
    if (c.eligible(i)) return i;
  }
  return std::nullopt;
}

}  // namespace userkey::lb
