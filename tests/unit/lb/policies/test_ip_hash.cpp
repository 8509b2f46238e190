// Unit tests for lib/lb/policies/ip_hash.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "policy_fixture.hpp"
#include "userkey/lb/policies/ip_hash.hpp"

namespace lb = userkey::lb;
using policy_test::pick;
using policy_test::Pool;
using policy_test::ScriptedRandom;

TEST_CASE("ip_hash is stable per client and spreads clients") {
  Pool pool({1, 1, 1, 1});
  lb::IpHashPolicy ih;
  lb::RequestInfo req;
  req.client_ip = "192.0.2.17";
  const auto first = pick(ih, pool, req);
  for (int i = 0; i < 20; ++i) CHECK(pick(ih, pool, req) == first);

  std::map<std::size_t, int> counts;
  std::map<std::string, std::size_t> before;
  for (int i = 0; i < 1000; ++i) {
    const std::string ip = "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    lb::RequestInfo r;
    r.client_ip = ip;
    before[ip] = pick(ih, pool, r);
    counts[before[ip]]++;
  }
  REQUIRE(counts.size() == 4);
  for (auto& [idx, c] : counts) CHECK(c > 150);

  // Marking one ineligible only moves its own clients.
  pool.set_eligible(2, false);
  for (auto& [ip, idx] : before) {
    lb::RequestInfo r;
    r.client_ip = ip;
    const auto now = pick(ih, pool, r);
    if (idx != 2) CHECK(now == idx);
    else CHECK(now == 3);  // walks forward to the next eligible
  }
}
