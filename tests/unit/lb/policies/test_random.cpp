// Unit tests for lib/lb/policies/random.cpp.
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
#include "userkey/lb/policies/random.hpp"

namespace lb = userkey::lb;
using policy_test::pick;
using policy_test::Pool;
using policy_test::ScriptedRandom;

TEST_CASE("random is weighted, deterministic for a seed, and skips ineligible") {
  Pool pool({3, 1});
  lb::SplitMixRandom rng(42);
  lb::RandomPolicy rp(rng);
  std::array<int, 2> counts{};
  const int n = 40000;
  for (int i = 0; i < n; ++i) counts[pick(rp, pool)]++;
  CHECK(static_cast<double>(counts[0]) / n == doctest::Approx(0.75).epsilon(0.03));

  lb::SplitMixRandom a(7), b(7);
  lb::RandomPolicy pa(a), pb(b);
  for (int i = 0; i < 100; ++i) CHECK(pick(pa, pool) == pick(pb, pool));

  pool.set_eligible(0, false);
  for (int i = 0; i < 50; ++i) CHECK(pick(rp, pool) == 1);
  pool.set_eligible(1, false);
  CHECK_FALSE(rp.choose(pool.candidates(), {}).has_value());
}
