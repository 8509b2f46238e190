// Unit tests for lib/lb/policies/weighted_round_robin.cpp.
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
#include "userkey/lb/policies/weighted_round_robin.hpp"

namespace lb = userkey::lb;
using policy_test::pick;
using policy_test::Pool;
using policy_test::ScriptedRandom;

TEST_CASE("weighted_round_robin 5,1,1 yields nginx's smooth sequence") {
  Pool pool({5, 1, 1});
  lb::WeightedRoundRobinPolicy wrr;
  wrr.rebuild(pool.all());
  const std::string expected = "aabacaa";
  std::string got;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 7; ++i) got.push_back(static_cast<char>('a' + pick(wrr, pool)));
  }
  CHECK(got == expected + expected + expected);
  CHECK(wrr.name() == "weighted_round_robin");
}

TEST_CASE("weighted_round_robin honours weights and skips ineligible") {
  Pool pool({3, 2, 1});
  lb::WeightedRoundRobinPolicy wrr;
  wrr.rebuild(pool.all());
  std::array<int, 3> counts{};
  for (int i = 0; i < 60; ++i) counts[pick(wrr, pool)]++;
  CHECK(counts == std::array<int, 3>{30, 20, 10});

  pool.set_eligible(0, false);
  counts = {};
  for (int i = 0; i < 30; ++i) counts[pick(wrr, pool)]++;
  CHECK(counts[0] == 0);
  CHECK(counts[1] == 20);
  CHECK(counts[2] == 10);

  pool.set_eligible(1, false);
  pool.set_eligible(2, false);
  CHECK_FALSE(wrr.choose(pool.candidates(), {}).has_value());
}

TEST_CASE("weighted_round_robin works without rebuild and after the set grows") {
  Pool pool({1, 1});
  lb::WeightedRoundRobinPolicy wrr;
  CHECK(pick(wrr, pool) == 0);
  CHECK(pick(wrr, pool) == 1);
  pool.add(2);
  wrr.rebuild(pool.all());
  std::array<int, 3> counts{};
  for (int i = 0; i < 40; ++i) counts[pick(wrr, pool)]++;
  CHECK(counts == std::array<int, 3>{10, 10, 20});
}
