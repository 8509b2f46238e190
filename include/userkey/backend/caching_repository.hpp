// CachingRepository: a bounded LRU cache with time-to-live in front of any
// UserRepository.
//
// Found keys live for `ttl`; "no such user" answers live for the shorter
// `negative_ttl` so a newly added user appears quickly; failures
// (unavailable, unauthorized) are never cached. When full, the least recently
// used entry is evicted. The clock is injected for tests.
//
// Stale-if-error (as a CDN's): once a found key's ttl has passed the store is
// asked again; if it fails (unavailable, unauthorized, or throws), the last
// key is answered (LookupResult::stale set) until `stale_ttl` past its
// expiry. Unknown ids are never answered stale. 0 turns this off.
//
// Concurrent misses for the same id are coalesced: one caller queries the
// inner repository, the others wait for its answer (so a popular key that
// expires costs the database one query, not one per waiting request). An
// exception from the inner repository is caught and becomes 'unavailable'
// for the caller and every waiter alike; find_key itself does not throw.
//
// Thread-safety: safe for concurrent use; a large cache (>= 1024 entries) is
// split into 16 shards, each behind its own mutex (LRU order is then per
// shard), and the inner repository is called without any lock
// held.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "userkey/backend/repository_stats.hpp"
#include "userkey/backend/user_repository.hpp"

namespace userkey {

struct CacheConfig {
  std::size_t capacity = 10'000;                 ///< entries in total; 0 disables caching
  std::chrono::milliseconds ttl{30'000};          ///< found keys
  std::chrono::milliseconds negative_ttl{2'000};  ///< not-found answers
  std::chrono::milliseconds stale_ttl{300'000};   ///< stale-if-error window past ttl; 0 = off
};

class CachingRepository final : public UserRepository {
public:
  using Clock = std::chrono::steady_clock;
  using ClockFn = std::function<Clock::time_point()>;

  CachingRepository(std::shared_ptr<UserRepository> inner, CacheConfig config, ClockFn clock = {});

  LookupResult find_key(UserId id) override;
  ReadyResult ready() override { return inner_->ready(); }
  std::string describe() const override;

  /// Its own counters (CacheStats is in repository_stats.hpp).
  CacheStats stats() const;
  /// stats() as `out.cache`, then the inner repository's.
  void collect_stats(RepositoryStats& out) const override;

private:
  static constexpr std::size_t kShards = 16;
  struct Entry {
    UserId id;
    LookupResult result;
    Clock::time_point expires;
  };
  // A query to the inner repository that other callers for the same id wait on.
  struct InFlight {
    std::condition_variable done_cv;
    bool done = false;
    LookupResult result;
  };
  struct Shard {
    std::mutex mu;
    std::list<Entry> lru;  // front = most recent
    std::unordered_map<UserId, std::list<Entry>::iterator> index;
    std::unordered_map<UserId, std::shared_ptr<InFlight>> in_flight;
  };

  bool servable_stale(const Entry& e, Clock::time_point now) const;
  Shard& shard_for(UserId id) { return shards_[static_cast<std::uint64_t>(id) % shard_count_]; }

  std::shared_ptr<UserRepository> inner_;
  CacheConfig config_;
  ClockFn clock_;
  std::size_t shard_count_;  // 1 for small caches, so their LRU order is exact
  std::size_t per_shard_capacity_;
  mutable std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> hits_{0}, misses_{0}, evictions_{0}, coalesced_{0}, stale_{0};
};

}  // namespace userkey
