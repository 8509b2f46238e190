// Unit tests for lib/lb/policies/power_of_two.cpp.
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
#include "userkey/lb/policies/power_of_two.hpp"

namespace lb = userkey::lb;
using policy_test::pick;
using policy_test::Pool;
using policy_test::ScriptedRandom;

TEST_CASE("power_of_two takes the less loaded of two distinct draws") {
  SUBCASE("exact draws") {
    Pool pool({1, 1, 1});
    pool.set_in_flight(0, 5);
    pool.set_in_flight(1, 1);
    pool.set_in_flight(2, 9);
    // Draw 0 -> index 0; draw uniform(2)=1 -> skips the first -> index 2. 5 < 9.
    ScriptedRandom script({0, 1});
    lb::PowerOfTwoPolicy p2c(script);
    CHECK(pick(p2c, pool) == 0);
    // Draws 2 and 0 -> indices 2 and 0 -> 0 again; never the unsampled best (1).
    ScriptedRandom script2({2, 0});
    lb::PowerOfTwoPolicy p2c2(script2);
    CHECK(pick(p2c2, pool) == 0);
    // Draws 1 and 1 -> indices 1 and 2 -> 1.
    ScriptedRandom script3({1, 1});
    lb::PowerOfTwoPolicy p2c3(script3);
    CHECK(pick(p2c3, pool) == 1);
  }
  SUBCASE("two upstreams: always the less loaded") {
    Pool pool({1, 1});
    pool.set_in_flight(0, 10);
    lb::SplitMixRandom rng(1);
    lb::PowerOfTwoPolicy p2c(rng);
    for (int i = 0; i < 50; ++i) CHECK(pick(p2c, pool) == 1);
  }
  SUBCASE("load is normalised by weight") {
    Pool pool({1, 3});
    pool.set_in_flight(0, 4);  // 4 per unit
    pool.set_in_flight(1, 6);  // 2 per unit
    lb::SplitMixRandom rng(3);
    lb::PowerOfTwoPolicy p2c(rng);
    for (int i = 0; i < 20; ++i) CHECK(pick(p2c, pool) == 1);
  }
  SUBCASE("the idle upstream wins whenever it is sampled (2/3 of the time of 3)") {
    Pool pool({1, 1, 1});
    pool.set_in_flight(1, 5);
    pool.set_in_flight(2, 5);
    lb::SplitMixRandom rng(99);
    lb::PowerOfTwoPolicy p2c(rng);
    int zero = 0;
    const int n = 30000;
    for (int i = 0; i < n; ++i) zero += pick(p2c, pool) == 0 ? 1 : 0;
    CHECK(static_cast<double>(zero) / n == doctest::Approx(2.0 / 3.0).epsilon(0.03));
  }
  SUBCASE("one or no eligible") {
    Pool pool({1, 1, 1});
    lb::SplitMixRandom rng(5);
    lb::PowerOfTwoPolicy p2c(rng);
    pool.set_eligible(0, false);
    pool.set_eligible(2, false);
    CHECK(pick(p2c, pool) == 1);
    pool.set_eligible(1, false);
    CHECK_FALSE(p2c.choose(pool.candidates(), {}).has_value());
    CHECK(p2c.name() == "power_of_two");
  }
}
