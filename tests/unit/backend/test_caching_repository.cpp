// Unit tests for lib/backend/caching_repository.cpp, over the scripted
// FakeRepository (fake_repository.hpp).
#include <doctest/doctest.h>

#include <future>
#include <thread>
#include <vector>

#include <userkey/backend/caching_repository.hpp>

#include "fake_repository.hpp"

using namespace userkey;
using namespace std::chrono_literals;

namespace {
struct Fixture {
  std::shared_ptr<test::FakeRepository> inner = std::make_shared<test::FakeRepository>();
  CachingRepository::Clock::time_point now{};
  CachingRepository make(CacheConfig cfg) {
    return CachingRepository(inner, cfg, [this] { return now; });
  }
};
}  // namespace

TEST_CASE_FIXTURE(Fixture, "found keys are served from cache until the TTL expires") {
  inner->put(1, "one");
  auto cache = make({100, 10s, 1s});
  CHECK(cache.find_key(1).key == "one");
  inner->put(1, "changed");
  now += 9s;
  CHECK(cache.find_key(1).key == "one");
  CHECK(inner->calls == 1);
  now += 2s;
  CHECK(cache.find_key(1).key == "changed");
  CHECK(inner->calls == 2);
  auto st = cache.stats();
  CHECK(st.hits == 1);
  CHECK(st.misses == 2);
}

TEST_CASE_FIXTURE(Fixture, "unknown ids are cached for the shorter negative TTL") {
  auto cache = make({100, 60s, 2s});
  CHECK(cache.find_key(8).status == LookupStatus::not_found);
  inner->put(8, "eight");
  now += 1s;
  CHECK(cache.find_key(8).status == LookupStatus::not_found);
  now += 2s;
  CHECK(cache.find_key(8).key == "eight");
}

TEST_CASE_FIXTURE(Fixture, "failures are never cached") {
  inner->put(1, "one");
  auto cache = make({100, 60s, 2s});
  inner->fail_with = LookupStatus::unavailable;
  CHECK(cache.find_key(1).status == LookupStatus::unavailable);
  inner->fail_with = LookupStatus::found;
  CHECK(cache.find_key(1).key == "one");
}

TEST_CASE_FIXTURE(Fixture, "the least recently used entry is evicted when full") {
  for (int i = 1; i <= 3; ++i) inner->put(i, "k" + std::to_string(i));
  auto cache = make({2, 60s, 2s});
  cache.find_key(1);
  cache.find_key(2);
  cache.find_key(1);  // 2 is now least recent
  cache.find_key(3);  // evicts 2
  CHECK(cache.stats().evictions == 1);
  CHECK(cache.stats().size == 2);
  const int before = inner->calls;
  cache.find_key(1);
  CHECK(inner->calls == before);  // still cached
  cache.find_key(2);
  CHECK(inner->calls == before + 1);  // was evicted
}

TEST_CASE_FIXTURE(Fixture, "capacity 0 disables caching") {
  inner->put(1, "one");
  auto cache = make({0, 60s, 2s});
  cache.find_key(1);
  cache.find_key(1);
  CHECK(inner->calls == 2);
}

TEST_CASE("concurrent use from many threads stays consistent") {
  auto inner = std::make_shared<test::FakeRepository>();
  for (int i = 0; i < 5000; ++i) inner->put(i, "key" + std::to_string(i));
  CachingRepository cache(inner, {2048, 60s, 2s});
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        const int id = (i * 7 + t * 13) % 5000;
        auto r = cache.find_key(id);
        if (!r.ok() || r.key != "key" + std::to_string(id)) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  auto st = cache.stats();
  CHECK(st.hits + st.misses == 160000);
  CHECK(st.size <= 2048);
}

TEST_CASE("concurrent misses for one id cost the inner repository one query") {
  auto inner = std::make_shared<test::FakeRepository>();
  inner->put(7, "seven");
  inner->delay = std::chrono::milliseconds(100);
  CachingRepository cache(inner, {100, 60s, 2s});
  std::vector<std::thread> threads;
  std::atomic<int> right{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] { right += cache.find_key(7).key == "seven" ? 1 : 0; });
  for (auto& th : threads) th.join();
  CHECK(right == 8);
  CHECK(inner->calls == 1);
  CHECK(cache.stats().coalesced + cache.stats().hits == 7);  // waited for the query, or came after it
}

TEST_CASE("a failed query is shared with the waiters but not cached") {
  auto inner = std::make_shared<test::FakeRepository>();
  inner->put(7, "seven");
  inner->delay = std::chrono::milliseconds(50);
  inner->fail_with = LookupStatus::unavailable;
  CachingRepository cache(inner, {100, 60s, 2s});
  std::vector<std::thread> threads;
  std::atomic<int> unavailable{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] { unavailable += cache.find_key(7).status == LookupStatus::unavailable ? 1 : 0; });
  for (auto& th : threads) th.join();
  CHECK(unavailable == 4);
  inner->fail_with = LookupStatus::found;
  CHECK(cache.find_key(7).key == "seven");
}

namespace {

// find_key on a thread of its own: a future that holds the status, or
// "threw". The thread is detached and owns the cache, so a caller that never
// returns fails the test (wait_for) instead of hanging it.
std::future<std::string> lookup_async(std::shared_ptr<CachingRepository> cache, UserId id) {
  std::promise<std::string> p;
  auto f = p.get_future();
  std::thread([cache = std::move(cache), id, p = std::move(p)]() mutable {
    try {
      p.set_value(std::string(to_string(cache->find_key(id).status)));
    } catch (...) {
      p.set_value("threw");
    }
  }).detach();
  return f;
}

}  // namespace

TEST_CASE("a repository that throws: the caller and every waiter get 'unavailable', none waits forever") {
  auto inner = std::make_shared<test::FakeRepository>();
  inner->put(7, "seven");
  inner->delay = std::chrono::milliseconds(100);
  inner->throws = true;
  auto cache = std::make_shared<CachingRepository>(inner, CacheConfig{100, 60s, 2s});
  std::vector<std::future<std::string>> callers;
  for (int t = 0; t < 4; ++t) callers.push_back(lookup_async(cache, 7));
  for (auto& f : callers) {
    REQUIRE_MESSAGE(f.wait_for(5s) == std::future_status::ready, "a lookup of the same id never returned");
    CHECK(f.get() == "unavailable");
  }
  // The failure is not remembered: once the store works, the id is found.
  inner->throws = false;
  inner->delay = std::chrono::milliseconds(0);
  auto after = lookup_async(cache, 7);
  REQUIRE_MESSAGE(after.wait_for(5s) == std::future_status::ready, "the next lookup of the id never returned");
  CHECK(after.get() == "found");
}

TEST_CASE_FIXTURE(Fixture, "stale-if-error: an expired key is served while the store is down, up to stale_ttl") {
  inner->put(1, "one");
  auto cache = make({100, 10s, 1s, 60s});
  REQUIRE(cache.find_key(1).key == "one");
  inner->fail_with = LookupStatus::unavailable;
  now += 11s;  // expired: the store is asked, fails, the last known key is answered
  auto r = cache.find_key(1);
  CHECK(r.status == LookupStatus::found);
  CHECK(r.key == "one");
  CHECK(r.stale);
  CHECK(inner->calls == 2);
  now += 58s;  // 69 s: 59 s past expiry
  CHECK(cache.find_key(1).key == "one");
  inner->fail_with = LookupStatus::unauthorized;  // refused credentials are an outage too
  CHECK(cache.find_key(1).key == "one");
  now += 2s;  // 71 s: more than stale_ttl past expiry
  CHECK(cache.find_key(1).status == LookupStatus::unauthorized);
  CHECK(cache.stats().stale == 3);
}

TEST_CASE_FIXTURE(Fixture, "stale-if-error: a thrown exception counts as an outage; recovery replaces the stale key") {
  inner->put(1, "one");
  auto cache = make({100, 10s, 1s, 60s});
  REQUIRE(cache.find_key(1).key == "one");
  inner->throws = true;
  now += 20s;
  CHECK(cache.find_key(1).key == "one");
  inner->throws = false;
  inner->put(1, "uno");
  auto fresh = cache.find_key(1);
  CHECK(fresh.key == "uno");
  CHECK_FALSE(fresh.stale);
  inner->fail_with = LookupStatus::unavailable;
  CHECK(cache.find_key(1).key == "uno");  // cached again for ttl
}

TEST_CASE_FIXTURE(Fixture, "stale-if-error: off with stale_ttl 0; never for unknown ids") {
  inner->put(1, "one");
  auto off = make({100, 10s, 1s, 0s});
  REQUIRE(off.find_key(1).key == "one");
  auto on = make({100, 10s, 1s, 60s});
  REQUIRE(on.find_key(1).key == "one");
  CHECK(on.find_key(2).status == LookupStatus::not_found);
  inner->fail_with = LookupStatus::unavailable;
  now += 11s;
  CHECK(off.find_key(1).status == LookupStatus::unavailable);
  CHECK(on.find_key(2).status == LookupStatus::unavailable);
}
