// Unit tests for lib/lb/policies/least_connections.cpp.
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
#include "userkey/lb/policies/least_connections.hpp"

namespace lb = userkey::lb;
using policy_test::pick;
using policy_test::Pool;
using policy_test::ScriptedRandom;

TEST_CASE("least_connections picks the fewest in flight") {
  Pool pool({1, 1, 1});
  lb::LeastConnectionsPolicy lc;
  pool.set_in_flight(0, 3);
  pool.set_in_flight(1, 1);
  pool.set_in_flight(2, 2);
  for (int i = 0; i < 5; ++i) CHECK(pick(lc, pool) == 1);

  pool.set_eligible(1, false);
  for (int i = 0; i < 5; ++i) CHECK(pick(lc, pool) == 2);
  CHECK(lc.name() == "least_connections");
}

TEST_CASE("least_connections breaks ties by weight, then round robin") {
  SUBCASE("equal load: higher weight wins") {
    Pool pool({1, 3, 1});
    lb::LeastConnectionsPolicy lc;
    pool.set_in_flight(0, 2);
    pool.set_in_flight(1, 2);
    pool.set_in_flight(2, 2);
    for (int i = 0; i < 5; ++i) CHECK(pick(lc, pool) == 1);
  }
  SUBCASE("full tie: rotates instead of always picking index 0") {
    Pool pool({1, 1, 1});
    lb::LeastConnectionsPolicy lc;
    std::set<std::size_t> seen;
    for (int i = 0; i < 3; ++i) seen.insert(pick(lc, pool));
    CHECK(seen.size() == 3);
  }
  SUBCASE("counts follow begin/end_request") {
    Pool pool({1, 1});
    lb::LeastConnectionsPolicy lc;
    // Simulate a stream of long requests: each chosen upstream stays busy.
    std::array<int, 2> counts{};
    for (int i = 0; i < 10; ++i) {
      const auto idx = pick(lc, pool);
      pool.owned[idx]->begin_request();
      counts[idx]++;
    }
    CHECK(counts[0] == 5);
    CHECK(counts[1] == 5);
  }
}
