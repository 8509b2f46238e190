// Unit tests for client keys (IPv6 clients per /64 or a configured prefix)
// and the bounded per-client tables of ConnectionLimiter and RateLimiter.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "userkey/lb/client_table.hpp"
#include "userkey/lb/ip_filter.hpp"
#include "userkey/lb/token_bucket.hpp"

namespace lb = userkey::lb;
using namespace std::chrono_literals;
using Admit = lb::ConnectionLimiter::Admit;

namespace {
std::string key(std::string_view ip, unsigned prefix = 64) {
  lb::ClientKeyBuffer buf;
  return std::string(lb::client_key(ip, prefix, buf));
}
}  // namespace

TEST_CASE("client_key: IPv4 as it is, IPv6 as its network") {
  CHECK(key("192.0.2.7") == "192.0.2.7");
  CHECK(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
  CHECK(key("2001:db8:1:2::1") != key("2001:db8:1:3::1"));
  CHECK(key("2001:db8:1:2::1", 48) == "2001:db8:1::/48");
  CHECK(key("2001:db8:1:2::1", 128) == "2001:db8:1:2::1/128");
  CHECK(key("2001:db8:1:2::1", 60) == "2001:db8:1::/60");
  CHECK(key("::1") == "::/64");
  CHECK(key("::ffff:192.0.2.7") == "192.0.2.7");  // v4-mapped: the IPv4 client
  CHECK(key("not an address") == "not an address");
}

TEST_CASE("ConnectionLimiter: addresses rotating within one /64 share one count") {
  lb::ConnectionLimiter lim(2);
  CHECK(lim.try_acquire("2001:db8:1:2::1") == Admit::counted);
  CHECK(lim.try_acquire("2001:db8:1:2::2") == Admit::counted);
  CHECK(lim.try_acquire("2001:db8:1:2:dead:beef:0:1") == Admit::refused);
  CHECK(lim.try_acquire("2001:db8:1:3::1") == Admit::counted);  // the next /64 is another client
  CHECK(lim.count("2001:db8:1:2::99") == 2);
  lim.release("2001:db8:1:2::2");  // released under any address of the network
  CHECK(lim.try_acquire("2001:db8:1:2::7") == Admit::counted);

  lb::ConnectionLimiter per_address(1, 128);
  CHECK(per_address.try_acquire("2001:db8:1:2::1") == Admit::counted);
  CHECK(per_address.try_acquire("2001:db8:1:2::2") == Admit::counted);
}

TEST_CASE("ConnectionLimiter: a full table admits new clients untracked and keeps every tracked count") {
  const std::size_t bound = lb::ClientTable<std::uint32_t>::kShards;  // one client per shard
  lb::ConnectionLimiter lim(1, 64, bound);
  int counted = 0, untracked = 0;
  for (int i = 0; i < 200; ++i) {
    const auto a = lim.try_acquire("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250));
    counted += a == Admit::counted;
    untracked += a == Admit::untracked;
  }
  CHECK(lim.size() <= bound);
  CHECK(counted == static_cast<int>(lim.size()));
  CHECK(counted + untracked == 200);
  CHECK(untracked > 0);
}

TEST_CASE("RateLimiter: one bucket per /64, and a bounded table") {
  const auto t0 = lb::SteadyClock::now();
  SUBCASE("rotating addresses within one /64 share the bucket") {
    lb::RateLimiter rl(1.0, 2.0);
    CHECK(rl.try_acquire("2001:db8:5:6::1", t0).allowed);
    CHECK(rl.try_acquire("2001:db8:5:6::2", t0).allowed);
    CHECK_FALSE(rl.try_acquire("2001:db8:5:6:1:2:3:4", t0).allowed);
    CHECK(rl.try_acquire("2001:db8:5:7::1", t0).allowed);
    CHECK(rl.size() == 2);
  }
  SUBCASE("at the bound, the fullest bucket goes; a limited client stays limited") {
    const std::size_t bound = 4 * lb::ClientTable<lb::TokenBucket>::kShards;
    lb::RateLimiter rl(0.001, 10.0, 1h, 64, bound);  // a token every 1000 s
    for (int i = 0; i < 10; ++i) CHECK(rl.try_acquire("192.0.2.1", t0).allowed);
    CHECK_FALSE(rl.try_acquire("192.0.2.1", t0).allowed);
    for (int i = 0; i < 5000; ++i) {  // a flood of new clients, one request each
      rl.try_acquire("2001:db8:" + std::to_string(i) + "::1", t0);
      REQUIRE(rl.size() <= bound);
    }
    CHECK_FALSE(rl.try_acquire("192.0.2.1", t0).allowed);  // never the one evicted
  }
  SUBCASE("at the bound, idle full buckets go first") {
    const std::size_t bound = lb::ClientTable<lb::TokenBucket>::kShards;
    lb::RateLimiter rl(1000.0, 1.0, 1s, 64, bound);
    for (int i = 0; i < 100; ++i) rl.try_acquire("198.51.100." + std::to_string(i), t0);
    CHECK(rl.size() <= bound);
    const auto later = t0 + 2s;  // every bucket is full and idle by now
    for (int i = 0; i < 100; ++i) CHECK(rl.try_acquire("2001:db8:" + std::to_string(i) + "::1", later).allowed);
    CHECK(rl.size() <= bound);
  }
}

namespace {
using IntTable = lb::ClientTable<int>;
bool has(const IntTable::Shard& s, std::string_view k) { return s.peek(k) != nullptr; }
}  // namespace

TEST_CASE("ClientTable: a full shard takes a new key and drops its least recently used one") {
  IntTable table(3 * IntTable::kShards);  // 3 entries per shard
  REQUIRE(table.shard_capacity() == 3);
  table.with_shard("any", [](IntTable::Shard& s) {
    s.insert("a", 1);
    s.insert("b", 2);
    s.insert("c", 3);
    CHECK(s.full());
    REQUIRE(s.find("a") != nullptr);  // a is now the most recently used: b is the least
    CHECK(*s.find("a") == 1);

    s.insert("d", 4);
    CHECK(s.size() == 3);
    CHECK_FALSE(has(s, "b"));
    CHECK(has(s, "a"));
    CHECK(has(s, "c"));
    CHECK(has(s, "d"));

    s.insert("e", 5);  // then c, the least recently used of a, c, d
    CHECK_FALSE(has(s, "c"));
    CHECK(has(s, "a"));
    CHECK(s.size() == 3);
  });
}

TEST_CASE("ClientTable: peek() reads without changing which entry is the least recently used") {
  IntTable table(2 * IntTable::kShards);
  table.with_shard("any", [](IntTable::Shard& s) {
    s.insert("old", 1);
    s.insert("new", 2);
    REQUIRE(s.peek("old") != nullptr);
    CHECK(*s.peek("old") == 1);
    CHECK(s.peek("absent") == nullptr);
    CHECK(s.find("absent") == nullptr);
    s.insert("newest", 3);
    CHECK_FALSE(has(s, "old"));
    CHECK(has(s, "new"));
  });
}

TEST_CASE("ClientTable: evict_one drops the highest ranked of the least recently used entries only") {
  const std::size_t n = 2 * IntTable::kEvictSample;  // 16: the sample is the older half
  IntTable table(n * IntTable::kShards);
  const auto rank = [](int v) { return v; };
  table.with_shard("any", [&](IntTable::Shard& s) {
    for (std::size_t i = 0; i < n; ++i) {  // k0 is the least recently used
      const int value = i == 2 ? 5 : i == 12 ? 9 : 0;
      s.insert("k" + std::to_string(i), value);
    }
    s.evict_one(rank);  // k2 ranks highest among k0..k7; k12 is out of the sample
    CHECK_FALSE(has(s, "k2"));
    CHECK(has(s, "k12"));
    CHECK(s.size() == n - 1);

    s.evict_one(rank);  // the rest of the sample ties at 0: the oldest goes
    CHECK_FALSE(has(s, "k0"));

    REQUIRE(s.find("k1") != nullptr);  // touched: the oldest is k3 now
    s.evict_one(rank);
    CHECK_FALSE(has(s, "k3"));
    CHECK(has(s, "k1"));
    CHECK(has(s, "k12"));
    CHECK(s.size() == n - 3);
  });
  IntTable empty(IntTable::kShards);
  empty.with_shard("any", [&](IntTable::Shard& s) {
    s.evict_one(rank);  // nothing to evict: no-op
    CHECK(s.size() == 0);
  });
}

TEST_CASE("ClientTable: erase and erase_if keep the order of what remains") {
  IntTable table(4 * IntTable::kShards);
  table.with_shard("any", [](IntTable::Shard& s) {
    for (int i = 0; i < 4; ++i) s.insert("k" + std::to_string(i), i);
    s.erase("k0");
    s.erase("absent");
    CHECK(s.size() == 3);
    CHECK(s.erase_if([](int v) { return v == 2; }) == 1);
    CHECK(s.size() == 2);  // k1, k3 left, k1 the least recently used
    s.insert("a", 10);
    s.insert("b", 11);
    CHECK(s.full());
    s.insert("c", 12);
    CHECK_FALSE(has(s, "k1"));
    CHECK(has(s, "k3"));
    CHECK(has(s, "a"));
    CHECK(has(s, "b"));
    CHECK(has(s, "c"));
  });
  CHECK(table.erase_if([](int v) { return v >= 10; }) == 3);
  CHECK(table.size() == 1);
}

TEST_CASE("ClientTable: the bound holds in every shard whatever comes in") {
  IntTable table(4 * IntTable::kShards);
  for (int i = 0; i < 10'000; ++i) {
    const std::string k = "2001:db8:" + std::to_string(i) + "::/64";
    table.with_shard(k, [&](IntTable::Shard& s) {
      if (s.find(k) == nullptr) s.insert(k, i);
      CHECK(s.size() <= table.shard_capacity());
    });
    REQUIRE(table.size() <= 4 * IntTable::kShards);
  }
  CHECK(table.size() == 4 * IntTable::kShards);  // 10,000 keys fill every shard
  CHECK(IntTable::shard_index("2001:db8:1::/64") < IntTable::kShards);
}
