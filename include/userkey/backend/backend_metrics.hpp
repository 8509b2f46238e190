// BackendMetrics: what a backend counts about the requests it answers, and
// its /metrics page (Prometheus text exposition format 0.0.4).
//
// BackendServer owns one and counts into it: every answer by status code,
// and the latency of every lookup (GET /) from its request read to its answer
// ready, as a histogram. The repository's own counters (a cache's hits, a
// database's errors and pool, see repository_stats.hpp) stay with their
// owners; render_backend_metrics() puts both on one page.
//
// Cost on the request path: a few relaxed fetch_adds on counters only the
// server's event-loop thread writes, so no cache line bounces between cores;
// no lock, no allocation.
//
// Thread-safety: counting and reading may happen on any threads at once; a
// reader sees each counter monotonic, the page as a whole slightly torn (as
// Prometheus expects).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "userkey/backend/repository_stats.hpp"

namespace userkey {

/// Upper bounds of the lookup latency buckets, in microseconds (100 µs …
/// 2.5 s: a cache hit is well under a millisecond, a database timeout is
/// --mongo-timeout); +Inf is implied.
inline constexpr std::array<std::uint32_t, 14> kLookupLatencyBucketsUs = {
    100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000};

/// The media type of the /metrics page.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

/// A latency histogram over kLookupLatencyBucketsUs.
class LookupLatencyHistogram {
public:
  /// Counts one observation (negative durations count as zero).
  void observe(std::chrono::microseconds d) noexcept;

  /// A copy of the counts. `buckets[i]` counts observations in bucket i alone
  /// (not cumulative); the last is the +Inf bucket.
  struct Counts {
    std::array<std::uint64_t, kLookupLatencyBucketsUs.size() + 1> buckets{};
    std::uint64_t count = 0;
    std::uint64_t sum_us = 0;
  };
  Counts counts() const;

private:
  std::array<std::atomic<std::uint64_t>, kLookupLatencyBucketsUs.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

class BackendMetrics {
public:
  /// Status codes always on the page (at 0 until they happen), so alerts on
  /// them have a series to read; other codes appear once they were sent.
  static constexpr std::array<int, 9> kListedStatuses = {200, 400, 404, 405, 413, 414, 431, 500, 503};

  /// One answer sent (or refused before routing) with `status` (100..599;
  /// anything else is counted as 500).
  void count_response(int status) noexcept {
    const auto i = status >= 100 && status <= 599 ? static_cast<std::size_t>(status - 100) : std::size_t{400};
    responses_[i].fetch_add(1, std::memory_order_relaxed);
  }
  /// How long one lookup (GET /) took, request read to answer ready.
  void observe_lookup(std::chrono::microseconds d) noexcept { lookup_latency_.observe(d); }
  /// A lookup answered 503 at the server's lookup deadline (a hung store).
  void count_lookup_timeout() noexcept { lookup_timeouts_.fetch_add(1, std::memory_order_relaxed); }

  std::uint64_t responses(int status) const;
  std::uint64_t lookup_timeouts() const { return lookup_timeouts_.load(std::memory_order_relaxed); }
  const LookupLatencyHistogram& lookup_latency() const { return lookup_latency_; }

private:
  std::array<std::atomic<std::uint64_t>, 500> responses_{};  // index: status - 100
  std::atomic<std::uint64_t> lookup_timeouts_{0};
  LookupLatencyHistogram lookup_latency_;
};

/// The /metrics page: userkey_build_info (userkey/core/build_info.hpp),
/// userkey_backend_requests_total{code}, the lookup
/// latency histogram and lookup timeouts; with `repo.cache` the cache's
/// hits, misses, stale answers, coalesced misses, evictions and size; with
/// `repo.database` errors by kind and the client pool in use. Each family
/// has its HELP and TYPE lines; docs/operations.md lists them all.
std::string render_backend_metrics(const BackendMetrics& metrics, const RepositoryStats& repo);

}  // namespace userkey
