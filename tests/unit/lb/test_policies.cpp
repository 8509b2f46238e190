// Unit tests for the balancing policies and the PolicyRegistry.
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

#include "userkey/lb/balancing_policy.hpp"
#include "userkey/lb/policies/consistent_hash.hpp"
#include "userkey/lb/policies/ip_hash.hpp"
#include "userkey/lb/policies/least_connections.hpp"
#include "userkey/lb/policies/power_of_two.hpp"
#include "userkey/lb/policies/random.hpp"
#include "userkey/lb/policies/round_robin.hpp"
#include "userkey/lb/policies/weighted_round_robin.hpp"

namespace lb = userkey::lb;

namespace {

// A set of upstreams plus the per-request eligibility array a Candidates view needs.
struct Pool {
  std::vector<std::unique_ptr<lb::Upstream>> owned;
  std::vector<lb::Upstream*> ptrs;
  std::unique_ptr<bool[]> elig;

  explicit Pool(const std::vector<std::uint32_t>& weights, int first_octet = 1) {
    for (std::size_t i = 0; i < weights.size(); ++i) add(weights[i], first_octet);
  }
  void add(std::uint32_t weight, int first_octet = 1) {
    lb::UpstreamConfig cfg;
    cfg.host = std::to_string(first_octet) + ".0.0." + std::to_string(owned.size() + 1);
    cfg.port = 8080;
    cfg.weight = weight;
    owned.push_back(std::make_unique<lb::Upstream>(cfg, lb::PassiveHealthConfig{}));
    ptrs.push_back(owned.back().get());
    auto e = std::make_unique<bool[]>(ptrs.size());
    for (std::size_t i = 0; i < ptrs.size(); ++i) e[i] = true;
    elig = std::move(e);
  }
  std::size_t size() const { return ptrs.size(); }
  std::span<lb::Upstream* const> all() const { return {ptrs.data(), ptrs.size()}; }
  lb::Candidates candidates() const { return lb::Candidates(all(), std::span<const bool>(elig.get(), ptrs.size())); }
  void set_eligible(std::size_t i, bool e) { elig[i] = e; }
  void set_in_flight(std::size_t i, int n) {
    while (owned[i]->in_flight() < n) owned[i]->begin_request();
    while (owned[i]->in_flight() > n) owned[i]->end_request();
  }
};

std::size_t pick(lb::BalancingPolicy& p, const Pool& pool, const lb::RequestInfo& req = {}) {
  auto r = p.choose(pool.candidates(), req);
  REQUIRE(r.has_value());
  REQUIRE(*r < pool.size());
  REQUIRE(pool.elig[*r]);
  return *r;
}

// Replays a fixed list of values (cycling), for exact control of random draws.
class ScriptedRandom final : public lb::RandomSource {
public:
  explicit ScriptedRandom(std::vector<std::uint64_t> v) : values_(std::move(v)) {}
  std::uint64_t next() override { return values_[pos_++ % values_.size()]; }

private:
  std::vector<std::uint64_t> values_;
  std::size_t pos_ = 0;
};

}  // namespace

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

TEST_CASE("PolicyRegistry: builtins, unknown names, custom policies") {
  lb::SplitMixRandom rng(1);
  lb::ManualTimeSource clock;
  lb::PolicyContext ctx{&rng, &clock};
  auto reg = lb::PolicyRegistry::with_builtins();

  const std::vector<std::string> builtins = {"consistent_hash", "ip_hash", "least_connections", "power_of_two",
                                             "random", "round_robin", "weighted_round_robin"};
  CHECK(reg.names() == builtins);  // std::map keeps them sorted
  for (const auto& name : builtins) {
    CAPTURE(name);
    CHECK(reg.contains(name));
    auto p = reg.create(name, ctx);
    REQUIRE(p != nullptr);
    CHECK(p->name() == name);
    Pool pool({1, 2});
    p->rebuild(pool.all());
    lb::RequestInfo r;
    r.client_ip = "10.1.1.1";
    CHECK(p->choose(pool.candidates(), r).has_value());
  }

  CHECK_FALSE(reg.contains("fastest"));
  CHECK(reg.create("fastest", ctx) == nullptr);

  struct AlwaysLast final : lb::BalancingPolicy {
    std::string_view name() const override { return "always_last"; }
    std::optional<std::size_t> choose(const lb::Candidates& c, const lb::RequestInfo&) override {
      for (std::size_t i = c.size(); i-- > 0;) {
        if (c.eligible(i)) return i;
      }
      return std::nullopt;
    }
  };
  reg.add("always_last", [](const lb::PolicyContext&) { return std::make_unique<AlwaysLast>(); });
  CHECK(reg.contains("always_last"));
  auto custom = reg.create("always_last", ctx);
  REQUIRE(custom != nullptr);
  Pool pool({1, 1, 1});
  CHECK(pick(*custom, pool) == 2);

  // add() replaces an existing name.
  reg.add("round_robin", [](const lb::PolicyContext&) { return std::make_unique<AlwaysLast>(); });
  CHECK(reg.create("round_robin", ctx)->name() == "always_last");

  // An empty registry knows nothing.
  lb::PolicyRegistry none;
  CHECK(none.names().empty());
  CHECK(none.create("round_robin", ctx) == nullptr);
}
