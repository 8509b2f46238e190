// Unit tests for lib/lb/policies/consistent_hash.cpp.
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
#include "userkey/lb/policies/consistent_hash.hpp"

namespace lb = userkey::lb;
using policy_test::pick;
using policy_test::Pool;
using policy_test::ScriptedRandom;

TEST_CASE("consistent_hash: ring built from weights, key falls back to client ip") {
  Pool pool({1, 1, 1, 1, 1});
  lb::ConsistentHashPolicy ch;
  ch.rebuild(pool.all());
  CHECK(ch.ring_size() == 5 * lb::ConsistentHashPolicy::kPointsPerWeight);

  lb::RequestInfo by_ip;
  by_ip.client_ip = "198.51.100.4";
  lb::RequestInfo by_key;
  by_key.client_ip = "203.0.113.9";
  by_key.hash_key = "198.51.100.4";
  CHECK(pick(ch, pool, by_ip) == pick(ch, pool, by_key));

  lb::RequestInfo same_user_other_ip;
  same_user_other_ip.client_ip = "203.0.113.10";
  same_user_other_ip.hash_key = "198.51.100.4";
  CHECK(pick(ch, pool, same_user_other_ip) == pick(ch, pool, by_key));
}

TEST_CASE("consistent_hash: minimal disruption on leave and join") {
  constexpr int kKeys = 10000;
  constexpr std::size_t kN = 5;
  Pool pool({1, 1, 1, 1, 1});
  lb::ConsistentHashPolicy ch;
  ch.rebuild(pool.all());

  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back("user-" + std::to_string(i));
  auto assign = [&](lb::ConsistentHashPolicy& p) {
    std::vector<std::size_t> out;
    out.reserve(keys.size());
    for (const auto& k : keys) {
      lb::RequestInfo r;
      r.client_ip = "127.0.0.1";
      r.hash_key = k;
      out.push_back(pick(p, pool, r));
    }
    return out;
  };
  const auto base = assign(ch);

  // Reasonable balance: each of 5 gets 20% +- 6 points with 160 points each.
  std::array<int, kN> counts{};
  for (auto idx : base) counts[idx]++;
  for (int c : counts) {
    CHECK(c > kKeys * 14 / 100);
    CHECK(c < kKeys * 26 / 100);
  }

  SUBCASE("an upstream leaves (marked ineligible): only its keys move") {
    const std::size_t leaving = 2;
    pool.set_eligible(leaving, false);
    const auto after = assign(ch);
    int moved = 0;
    std::set<std::size_t> moved_to;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (base[i] != leaving) {
        CHECK(after[i] == base[i]);
      } else {
        ++moved;
        moved_to.insert(after[i]);
      }
    }
    CHECK(moved == counts[leaving]);
    CHECK(static_cast<double>(moved) / kKeys == doctest::Approx(1.0 / kN).epsilon(0.3));
    CHECK(moved_to.size() >= 3);  // spread over the survivors, not dumped on one
    // Comes back: exactly the original assignment.
    pool.set_eligible(leaving, true);
    CHECK(assign(ch) == base);
  }

  SUBCASE("an upstream joins (rebuild with N+1): keys move only to it") {
    pool.add(1);
    ch.rebuild(pool.all());
    const auto after = assign(ch);
    int moved = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (after[i] != base[i]) {
        ++moved;
        CHECK(after[i] == kN);  // the new upstream
      }
    }
    CHECK(static_cast<double>(moved) / kKeys == doctest::Approx(1.0 / (kN + 1)).epsilon(0.3));
  }
}

TEST_CASE("consistent_hash: weights and degenerate cases") {
  Pool pool({1, 3});
  lb::ConsistentHashPolicy ch;
  ch.rebuild(pool.all());
  CHECK(ch.ring_size() == 4 * lb::ConsistentHashPolicy::kPointsPerWeight);
  int heavy = 0;
  const int n = 8000;
  for (int i = 0; i < n; ++i) {
    const std::string k = "k" + std::to_string(i);
    lb::RequestInfo r;
    r.hash_key = k;
    heavy += pick(ch, pool, r) == 1 ? 1 : 0;
  }
  CHECK(static_cast<double>(heavy) / n == doctest::Approx(0.75).epsilon(0.1));

  pool.set_eligible(0, false);
  pool.set_eligible(1, false);
  CHECK_FALSE(ch.choose(pool.candidates(), {}).has_value());

  // Before rebuild(): still answers (hash mod n), stable.
  lb::ConsistentHashPolicy fresh;
  Pool p2({1, 1, 1});
  lb::RequestInfo r;
  r.hash_key = "abc";
  CHECK(pick(fresh, p2, r) == pick(fresh, p2, r));

  // Huge weights: ring stays bounded.
  Pool big({1000, 1000, 1000});
  lb::ConsistentHashPolicy chb;
  chb.rebuild(big.all());
  CHECK(chb.ring_size() <= lb::ConsistentHashPolicy::kMaxPoints);
  CHECK(chb.ring_size() > 3 * 1000);
}
