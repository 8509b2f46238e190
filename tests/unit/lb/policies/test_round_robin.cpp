// Unit tests for lib/lb/policies/round_robin.cpp.
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
#include "userkey/lb/policies/round_robin.hpp"

namespace lb = userkey::lb;
using policy_test::pick;
using policy_test::Pool;
using policy_test::ScriptedRandom;

TEST_CASE("round_robin visits all upstreams in order") {
  Pool pool({1, 1, 1});
  lb::RoundRobinPolicy rr;
  rr.rebuild(pool.all());
  std::vector<std::size_t> seq;
  for (int i = 0; i < 6; ++i) seq.push_back(pick(rr, pool));
  CHECK(seq == std::vector<std::size_t>{0, 1, 2, 0, 1, 2});
  CHECK(rr.name() == "round_robin");
}

TEST_CASE("round_robin skips ineligible upstreams and reports none eligible") {
  Pool pool({1, 1, 1});
  lb::RoundRobinPolicy rr;
  pool.set_eligible(1, false);
  std::map<std::size_t, int> counts;
  for (int i = 0; i < 30; ++i) counts[pick(rr, pool)]++;
  CHECK(counts.count(1) == 0);
  CHECK(counts[0] > 0);
  CHECK(counts[2] > 0);
  CHECK(counts[0] + counts[2] == 30);

  pool.set_eligible(0, false);
  pool.set_eligible(2, false);
  CHECK_FALSE(rr.choose(pool.candidates(), {}).has_value());

  Pool empty({});
  CHECK_FALSE(rr.choose(empty.candidates(), {}).has_value());
}

TEST_CASE("round_robin is exactly fair under concurrent callers") {
  Pool pool({1, 1, 1, 1});
  lb::RoundRobinPolicy rr;
  std::array<std::atomic<int>, 4> counts{};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        auto r = rr.choose(pool.candidates(), {});
        if (r) counts[*r].fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (auto& c : counts) CHECK(c.load() == 5000);
}
