// Unit tests for the backend's counters and its /metrics page: the values it
// shows, the exposition format (read back with the same checker the
// end-to-end tests use), and where the repository counters come from.
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include <userkey/backend/backend_metrics.hpp>
#include <userkey/backend/caching_repository.hpp>
#include <userkey/core/build_info.hpp>

#include "fake_repository.hpp"
#include "support/prometheus_text.hpp"

using namespace std::chrono_literals;
using userkey::BackendMetrics;
using userkey::DatabaseError;
using userkey::RepositoryStats;
using userkey::render_backend_metrics;
using userkey::test::parse_exposition;

TEST_CASE("a fresh page: every family with HELP and TYPE, listed status codes at 0, no repository families") {
  BackendMetrics m;
  const auto page = render_backend_metrics(m, RepositoryStats{});
  const auto e = parse_exposition(page);
  REQUIRE_MESSAGE(e.errors.empty(), e.error_text() << page);
  CHECK(e.types.at("userkey_backend_requests_total") == "counter");
  CHECK(e.types.at("userkey_backend_lookup_latency_seconds") == "histogram");
  CHECK(e.types.at("userkey_backend_lookup_timeouts_total") == "counter");
  CHECK(e.types.at("userkey_build_info") == "gauge");
  CHECK(e.value("userkey_build_info", "version=\"" + std::string(userkey::build_version()) + "\",commit=\"" +
                                          std::string(userkey::build_commit()) + "\"") == 1.0);
  for (int code : BackendMetrics::kListedStatuses) {
    CAPTURE(code);
    CHECK(e.value("userkey_backend_requests_total", "code=\"" + std::to_string(code) + "\"") == 0.0);
  }
  CHECK_FALSE(e.value("userkey_backend_requests_total", "code=\"418\""));
  CHECK(e.value("userkey_backend_lookup_latency_seconds_count") == 0.0);
  CHECK(e.value("userkey_backend_lookup_latency_seconds_bucket", "le=\"+Inf\"") == 0.0);
  // No cache, no database (the embedded dump): their families are absent.
  CHECK(e.types.count("userkey_backend_cache_hits_total") == 0);
  CHECK(e.types.count("userkey_backend_db_errors_total") == 0);
}

TEST_CASE("responses are counted by status; codes outside 100..599 count as 500") {
  BackendMetrics m;
  for (int i = 0; i < 3; ++i) m.count_response(200);
  m.count_response(400);
  m.count_response(418);  // not listed: appears once sent
  m.count_response(42);
  m.count_response(1000);
  CHECK(m.responses(200) == 3);
  CHECK(m.responses(500) == 2);
  const auto e = parse_exposition(render_backend_metrics(m, {}));
  REQUIRE_MESSAGE(e.errors.empty(), e.error_text());
  CHECK(e.value("userkey_backend_requests_total", "code=\"200\"") == 3.0);
  CHECK(e.value("userkey_backend_requests_total", "code=\"400\"") == 1.0);
  CHECK(e.value("userkey_backend_requests_total", "code=\"418\"") == 1.0);
  CHECK(e.value("userkey_backend_requests_total", "code=\"500\"") == 2.0);
  CHECK(e.total("userkey_backend_requests_total") == 7.0);
}

TEST_CASE("the lookup histogram: an observation on a bound is in that bucket; cumulative; +Inf == _count; _sum") {
  BackendMetrics m;
  m.observe_lookup(50us);
  m.observe_lookup(100us);  // on the first bound: le="0.0001"
  m.observe_lookup(101us);
  m.observe_lookup(2ms);
  m.observe_lookup(3s);  // beyond the last bound (2.5 s): +Inf only
  m.observe_lookup(-5us);  // a clock oddity counts as zero
  m.count_lookup_timeout();
  const auto page = render_backend_metrics(m, {});
  const auto e = parse_exposition(page);
  REQUIRE_MESSAGE(e.errors.empty(), e.error_text() << page);
  const std::string h = "userkey_backend_lookup_latency_seconds";
  CHECK(e.value(h + "_bucket", "le=\"0.0001\"") == 3.0);
  CHECK(e.value(h + "_bucket", "le=\"0.00025\"") == 4.0);
  CHECK(e.value(h + "_bucket", "le=\"0.001\"") == 4.0);
  CHECK(e.value(h + "_bucket", "le=\"0.0025\"") == 5.0);
  CHECK(e.value(h + "_bucket", "le=\"1\"") == 5.0);
  CHECK(e.value(h + "_bucket", "le=\"2.5\"") == 5.0);
  CHECK(e.value(h + "_bucket", "le=\"+Inf\"") == 6.0);
  CHECK(e.value(h + "_count") == 6.0);
  CHECK(e.value(h + "_sum") == doctest::Approx(3.002251));
  CHECK(page.find(h + "_sum 3.002251\n") != std::string::npos);
  CHECK(e.value("userkey_backend_lookup_timeouts_total") == 1.0);
  // Every configured bound is on the page, ascending (the checker verifies order).
  CHECK(e.samples.count(h + "_bucket{le=\"0.0005\"}") == 1);
  CHECK(e.samples.count(h + "_bucket{le=\"0.25\"}") == 1);
}

TEST_CASE("cache and database stats: their families, every error kind listed, pool in use") {
  RepositoryStats repo;
  repo.cache = userkey::CacheStats{.hits = 10, .misses = 4, .evictions = 1, .coalesced = 2, .stale = 3, .size = 5,
                                   .capacity = 100};
  userkey::DatabaseStats db;
  db.errors[static_cast<std::size_t>(DatabaseError::unreachable)] = 7;
  db.errors[static_cast<std::size_t>(DatabaseError::pool_timeout)] = 1;
  db.pool_in_use = 3;
  db.pool_size = 128;
  repo.database = db;
  const auto page = render_backend_metrics(BackendMetrics{}, repo);
  const auto e = parse_exposition(page);
  REQUIRE_MESSAGE(e.errors.empty(), e.error_text() << page);
  CHECK(e.value("userkey_backend_cache_hits_total") == 10.0);
  CHECK(e.value("userkey_backend_cache_misses_total") == 4.0);
  CHECK(e.value("userkey_backend_cache_coalesced_total") == 2.0);
  CHECK(e.value("userkey_backend_cache_stale_total") == 3.0);
  CHECK(e.value("userkey_backend_cache_evictions_total") == 1.0);
  CHECK(e.value("userkey_backend_cache_entries") == 5.0);
  CHECK(e.value("userkey_backend_cache_capacity") == 100.0);
  CHECK(e.types.at("userkey_backend_cache_entries") == "gauge");
  for (const char* kind : {"unreachable", "network", "unauthorized", "pool_timeout", "other"}) {
    CAPTURE(kind);
    CHECK(e.value("userkey_backend_db_errors_total", std::string("kind=\"") + kind + "\"").has_value());
  }
  CHECK(e.value("userkey_backend_db_errors_total", "kind=\"unreachable\"") == 7.0);
  CHECK(e.value("userkey_backend_db_errors_total", "kind=\"pool_timeout\"") == 1.0);
  CHECK(e.total("userkey_backend_db_errors_total") == 8.0);
  CHECK(e.value("userkey_backend_db_pool_in_use") == 3.0);
  CHECK(e.value("userkey_backend_db_pool_size") == 128.0);
  CHECK(e.types.at("userkey_backend_db_pool_in_use") == "gauge");
}

TEST_CASE("CachingRepository reports its own counters and asks the repository it wraps") {
  auto inner = std::make_shared<userkey::test::FakeRepository>();
  inner->put(1, "one");
  userkey::CachingRepository cache(inner, {.capacity = 10});
  RepositoryStats none;
  inner->collect_stats(none);  // a repository that counts nothing adds nothing
  CHECK_FALSE(none.cache);
  CHECK_FALSE(none.database);

  cache.find_key(1);  // miss
  cache.find_key(1);  // hit
  cache.find_key(2);  // miss (unknown, cached negatively)
  cache.find_key(2);  // hit
  RepositoryStats repo;
  cache.collect_stats(repo);
  REQUIRE(repo.cache);
  CHECK(repo.cache->hits == 2);
  CHECK(repo.cache->misses == 2);
  CHECK(repo.cache->size == 2);
  CHECK(repo.cache->capacity == 10);
  CHECK_FALSE(repo.database);  // the fake is no database
}

TEST_CASE("counting from several threads loses nothing (relaxed atomics)") {
  BackendMetrics m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&m] {
      for (int i = 0; i < 10'000; ++i) {
        m.count_response(200);
        m.observe_lookup(std::chrono::microseconds(i));
      }
    });
  for (auto& t : threads) t.join();
  CHECK(m.responses(200) == 40'000);
  const auto c = m.lookup_latency().counts();
  CHECK(c.count == 40'000);
  std::uint64_t in_buckets = 0;
  for (auto b : c.buckets) in_buckets += b;
  CHECK(in_buckets == 40'000);
}

TEST_CASE("to_string(DatabaseError) names every kind") {
  CHECK(userkey::to_string(DatabaseError::unreachable) == "unreachable");
  CHECK(userkey::to_string(DatabaseError::network) == "network");
  CHECK(userkey::to_string(DatabaseError::unauthorized) == "unauthorized");
  CHECK(userkey::to_string(DatabaseError::pool_timeout) == "pool_timeout");
  CHECK(userkey::to_string(DatabaseError::other) == "other");
}
