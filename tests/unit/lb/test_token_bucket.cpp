// Unit tests for TokenBucket and RateLimiter.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "userkey/lb/token_bucket.hpp"

namespace lb = userkey::lb;
using namespace std::chrono_literals;

TEST_CASE("TokenBucket: burst, then refill at rate, with retry_after") {
  lb::ManualTimeSource clock;
  lb::TokenBucket b(/*rate*/ 1.0, /*burst*/ 5.0);
  for (int i = 0; i < 5; ++i) CHECK(b.try_take(clock.now()));
  CHECK_FALSE(b.try_take(clock.now()));
  CHECK(b.retry_after(clock.now()) == 1000ms);

  clock.advance(500ms);
  CHECK_FALSE(b.try_take(clock.now()));
  CHECK(b.retry_after(clock.now()) == 500ms);

  clock.advance(500ms);
  CHECK(b.retry_after(clock.now()) == 0ms);
  CHECK(b.try_take(clock.now()));
  CHECK_FALSE(b.try_take(clock.now()));

  clock.advance(3s);
  CHECK(b.tokens(clock.now()) == doctest::Approx(3.0));
  for (int i = 0; i < 3; ++i) CHECK(b.try_take(clock.now()));
  CHECK_FALSE(b.try_take(clock.now()));
}

TEST_CASE("TokenBucket: refill is capped at burst") {
  lb::ManualTimeSource clock;
  lb::TokenBucket b(100.0, 3.0);
  CHECK(b.try_take(clock.now()));
  clock.advance(1h);
  CHECK(b.full(clock.now()));
  int taken = 0;
  while (b.try_take(clock.now())) ++taken;
  CHECK(taken == 3);
}

TEST_CASE("TokenBucket: fractional rates and rounding up of retry_after") {
  lb::ManualTimeSource clock;
  lb::TokenBucket fast(10.0, 1.0);
  CHECK(fast.try_take(clock.now()));
  CHECK(fast.retry_after(clock.now()) == 100ms);
  clock.advance(99ms);
  CHECK_FALSE(fast.try_take(clock.now()));
  CHECK(fast.retry_after(clock.now()) == 1ms);
  clock.advance(1ms);
  CHECK(fast.try_take(clock.now()));

  lb::TokenBucket slow(0.5, 1.0);  // one every 2 s
  CHECK(slow.try_take(clock.now()));
  CHECK(slow.retry_after(clock.now()) == 2000ms);
  clock.advance(1s);
  CHECK(slow.retry_after(clock.now()) == 1000ms);

  lb::TokenBucket odd(3.0, 1.0);  // 333.33 ms per token -> rounded up
  CHECK(odd.try_take(clock.now()));
  CHECK(odd.retry_after(clock.now()) == 334ms);
}

TEST_CASE("TokenBucket: a clock going backwards adds nothing") {
  lb::ManualTimeSource clock;
  const auto t0 = clock.now();
  lb::TokenBucket b(1.0, 1.0);
  CHECK(b.try_take(t0));
  CHECK_FALSE(b.try_take(t0 - 10s));
  CHECK_FALSE(b.try_take(t0));
}

TEST_CASE("RateLimiter: rate 0 disables limiting") {
  lb::ManualTimeSource clock;
  lb::RateLimiter rl(0, 0);
  CHECK_FALSE(rl.enabled());
  for (int i = 0; i < 1000; ++i) {
    auto d = rl.try_acquire("10.0.0.1", clock.now());
    CHECK(d.allowed);
    CHECK(d.retry_after == 0ms);
  }
  CHECK(rl.size() == 0);
}

TEST_CASE("RateLimiter: independent buckets per IP with retry_after") {
  lb::ManualTimeSource clock;
  lb::RateLimiter rl(1.0, 2.0);
  CHECK(rl.enabled());
  CHECK(rl.try_acquire("10.0.0.1", clock.now()).allowed);
  CHECK(rl.try_acquire("10.0.0.1", clock.now()).allowed);
  auto denied = rl.try_acquire("10.0.0.1", clock.now());
  CHECK_FALSE(denied.allowed);
  CHECK(denied.retry_after == 1000ms);

  CHECK(rl.try_acquire("10.0.0.2", clock.now()).allowed);
  CHECK(rl.try_acquire("2001:db8::1", clock.now()).allowed);
  CHECK(rl.size() == 3);

  clock.advance(1s);
  CHECK(rl.try_acquire("10.0.0.1", clock.now()).allowed);
  CHECK_FALSE(rl.try_acquire("10.0.0.1", clock.now()).allowed);
}

TEST_CASE("RateLimiter: burst 0 means burst = rate") {
  lb::ManualTimeSource clock;
  lb::RateLimiter rl(3.0, 0);
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += rl.try_acquire("c", clock.now()).allowed ? 1 : 0;
  CHECK(allowed == 3);
}

TEST_CASE("RateLimiter: sweep drops only idle, full buckets") {
  lb::ManualTimeSource clock;
  lb::RateLimiter rl(1.0, 2.0, 30s);
  for (int i = 0; i < 100; ++i) rl.try_acquire("10.1.0." + std::to_string(i), clock.now());
  CHECK(rl.size() == 100);

  clock.advance(10s);
  rl.try_acquire("10.1.0.7", clock.now());  // keeps this one fresh
  CHECK(rl.sweep(clock.now()) == 0);        // nothing idle > 30 s yet

  clock.advance(25s);                       // others idle 35 s, 10.1.0.7 idle 25 s
  CHECK(rl.sweep(clock.now()) == 99);
  CHECK(rl.size() == 1);

  clock.advance(31s);
  CHECK(rl.sweep(clock.now()) == 1);
  CHECK(rl.size() == 0);

  // A dropped client starts again with a full bucket.
  CHECK(rl.try_acquire("10.1.0.1", clock.now()).allowed);
  CHECK(rl.try_acquire("10.1.0.1", clock.now()).allowed);
  CHECK_FALSE(rl.try_acquire("10.1.0.1", clock.now()).allowed);
}

TEST_CASE("RateLimiter: a bucket still refilling is kept even when idle") {
  lb::ManualTimeSource clock;
  lb::RateLimiter rl(0.01, 5.0, 1s);  // 100 s per token
  for (int i = 0; i < 5; ++i) rl.try_acquire("slow", clock.now());
  clock.advance(10s);
  CHECK(rl.sweep(clock.now()) == 0);  // dropping it would hand out a free burst
  clock.advance(500s);
  CHECK(rl.sweep(clock.now()) == 1);
}

TEST_CASE("RateLimiter: exact under concurrent callers") {
  lb::ManualTimeSource clock;
  lb::RateLimiter rl(1.0, 100.0);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (rl.try_acquire("shared", clock.now()).allowed) allowed.fetch_add(1);
        rl.try_acquire("own-" + std::to_string(t), clock.now());
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(allowed.load() == 100);
  CHECK(rl.size() == 5);
}

namespace {
// `n` IPv4 clients whose buckets share one shard of a RateLimiter's table.
std::vector<std::string> clients_in_one_shard(std::size_t n) {
  using Table = lb::ClientTable<lb::TokenBucket>;
  std::vector<std::string> out;
  for (int i = 0; out.size() < n; ++i) {
    std::string ip = "203.0." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    if (Table::shard_index(ip) == 0) out.push_back(std::move(ip));
  }
  return out;
}
int allowed_in_a_row(lb::RateLimiter& rl, const std::string& ip, lb::TimePoint now) {
  int n = 0;
  while (n < 100 && rl.try_acquire(ip, now).allowed) ++n;
  return n;
}
}  // namespace

TEST_CASE("RateLimiter: at the bound, the least recently used of equal buckets goes; a client asking again stays") {
  const auto c = clients_in_one_shard(3);
  const std::size_t bound = 2 * lb::ClientTable<lb::TokenBucket>::kShards;  // 2 buckets per shard
  lb::ManualTimeSource clock;
  const auto now = clock.now();
  lb::RateLimiter rl(0.001, 5.0, 1h, 64, bound);  // a token every 1000 s: nothing refills here
  CHECK(rl.try_acquire(c[0], now).allowed);       // c0: 4 tokens
  CHECK(rl.try_acquire(c[1], now).allowed);
  CHECK(rl.try_acquire(c[1], now).allowed);       // c1: 3 tokens
  CHECK(rl.try_acquire(c[0], now).allowed);       // c0: 3 tokens, and the most recently used
  CHECK(rl.try_acquire(c[2], now).allowed);       // a new client in the full shard: c1 goes
  CHECK(rl.size() == 2);
  CHECK(allowed_in_a_row(rl, c[0], now) == 3);  // c0 kept its bucket (a new one would allow 5)
  CHECK(allowed_in_a_row(rl, c[1], now) == 5);  // c1 starts again: it was the one evicted
  CHECK(rl.size() == 2);
}

TEST_CASE("RateLimiter: at the bound, the fullest of the least recently used buckets goes, not a limited one") {
  const auto c = clients_in_one_shard(4);
  const std::size_t bound = 2 * lb::ClientTable<lb::TokenBucket>::kShards;
  lb::ManualTimeSource clock;
  const auto now = clock.now();
  lb::RateLimiter rl(0.001, 5.0, 1h, 64, bound);
  CHECK(rl.try_acquire(c[0], now).allowed);        // c0: 4 tokens, the least recently used
  CHECK(allowed_in_a_row(rl, c[1], now) == 5);     // c1: limited
  CHECK(rl.try_acquire(c[2], now).allowed);        // c0 goes, though older: it holds more
  CHECK_FALSE(rl.try_acquire(c[1], now).allowed);  // c1 is still limited
  CHECK(rl.try_acquire(c[3], now).allowed);        // then c2, again not the limited one
  CHECK_FALSE(rl.try_acquire(c[1], now).allowed);
  CHECK(rl.size() == 2);
}

TEST_CASE("RateLimiter: clients rotating addresses never take the table past its bound") {
  const std::size_t bound = 8 * lb::ClientTable<lb::TokenBucket>::kShards;
  lb::ManualTimeSource clock;
  lb::RateLimiter rl(1.0, 2.0, 60s, 64, bound);
  for (int i = 0; i < 20'000; ++i) {
    CHECK(rl.try_acquire("2001:db8:" + std::to_string(i / 1000) + ":" + std::to_string(i % 1000) + "::9",
                         clock.now()).allowed);  // every newcomer gets its burst
    clock.advance(1ms);
    REQUIRE(rl.size() <= bound);
  }
  CHECK(rl.size() == bound);
  CHECK(rl.sweep(clock.now() + 2min) == bound);  // the periodic sweep still empties an idle table
  CHECK(rl.size() == 0);
}
