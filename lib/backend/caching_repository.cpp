#include "userkey/backend/caching_repository.hpp"

#include <exception>

namespace userkey {

namespace {

// The inner repository's answer; an exception becomes 'unavailable' so that
// it reaches the waiters and the caller as a value (a 503), like any outage.
LookupResult ask(UserRepository& inner, UserId id) {
  try {
    return inner.find_key(id);
  } catch (const std::exception& e) {
    return LookupResult::error(LookupStatus::unavailable, std::string("repository failed: ") + e.what());
  } catch (...) {
    return LookupResult::error(LookupStatus::unavailable, "repository failed");
  }
}

bool store_failed(const LookupResult& r) {
  return r.status == LookupStatus::unavailable || r.status == LookupStatus::unauthorized;
}

}  // namespace

CachingRepository::CachingRepository(std::shared_ptr<UserRepository> inner, CacheConfig config, ClockFn clock)
    : inner_(std::move(inner)),
      config_(config),
      clock_(clock ? std::move(clock) : ClockFn([] { return Clock::now(); })),
      shard_count_(config.capacity >= 1024 ? kShards : 1),
      per_shard_capacity_((config.capacity + shard_count_ - 1) / shard_count_) {}

bool CachingRepository::servable_stale(const Entry& e, Clock::time_point now) const {
  return config_.stale_ttl.count() > 0 && e.result.status == LookupStatus::found && now < e.expires + config_.stale_ttl;
}

LookupResult CachingRepository::find_key(UserId id) {
  if (per_shard_capacity_ == 0) return ask(*inner_, id);
  Shard& s = shard_for(id);
  std::shared_ptr<InFlight> flight;
  {
    std::unique_lock lock(s.mu);
    const auto now = clock_();
    if (auto it = s.index.find(id); it != s.index.end()) {
      if (it->second->expires > now) {
        s.lru.splice(s.lru.begin(), s.lru, it->second);
        hits_.fetch_add(1, std::memory_order_relaxed);
        return it->second->result;
      }
      // Expired: kept while it may still be answered if the store fails.
      if (!servable_stale(*it->second, now)) {
        s.lru.erase(it->second);
        s.index.erase(it);
      }
    }
    misses_.fetch_add(1, std::memory_order_relaxed);
    if (auto f = s.in_flight.find(id); f != s.in_flight.end()) {
      // Someone is already asking: wait for that answer.
      auto other = f->second;
      other->done_cv.wait(lock, [&] { return other->done; });
      coalesced_.fetch_add(1, std::memory_order_relaxed);
      return other->result;
    }
    flight = std::make_shared<InFlight>();
    s.in_flight.emplace(id, flight);
  }

  LookupResult r = ask(*inner_, id);  // no lock held; never throws

  std::lock_guard lock(s.mu);
  const auto now = clock_();
  std::chrono::milliseconds ttl{0};
  if (r.status == LookupStatus::found) ttl = config_.ttl;
  else if (r.status == LookupStatus::not_found) ttl = config_.negative_ttl;
  auto it = s.index.find(id);
  if (ttl.count() > 0) {
    const auto expires = now + ttl;
    if (it != s.index.end()) {
      it->second->result = r;
      it->second->expires = expires;
      s.lru.splice(s.lru.begin(), s.lru, it->second);
    } else {
      s.lru.push_front({id, r, expires});
      s.index.emplace(id, s.lru.begin());
      while (s.lru.size() > per_shard_capacity_) {
        s.index.erase(s.lru.back().id);
        s.lru.pop_back();
        evictions_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  } else if (it != s.index.end() && store_failed(r) && servable_stale(*it->second, now)) {
    // stale-if-error: the store is down, the last key it gave is recent enough.
    r = it->second->result;
    r.stale = true;
    stale_.fetch_add(1, std::memory_order_relaxed);
  }
  flight->result = r;
  flight->done = true;
  s.in_flight.erase(id);
  flight->done_cv.notify_all();
  return r;
}

std::string CachingRepository::describe() const {
  return "cache(" + std::to_string(config_.capacity) + " entries, ttl " + std::to_string(config_.ttl.count()) +
         "ms, stale-if-error " + std::to_string(config_.stale_ttl.count()) + "ms) over " + inner_->describe();
}

CacheStats CachingRepository::stats() const {
  CacheStats st;
  st.hits = hits_.load(std::memory_order_relaxed);
  st.misses = misses_.load(std::memory_order_relaxed);
  st.evictions = evictions_.load(std::memory_order_relaxed);
  st.coalesced = coalesced_.load(std::memory_order_relaxed);
  st.stale = stale_.load(std::memory_order_relaxed);
  st.capacity = config_.capacity;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    st.size += s.lru.size();
  }
  return st;
}

void CachingRepository::collect_stats(RepositoryStats& out) const {
  out.cache = stats();
  inner_->collect_stats(out);
}

}  // namespace userkey
