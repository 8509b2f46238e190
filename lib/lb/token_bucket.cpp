#include "userkey/lb/token_bucket.hpp"

#include <algorithm>
#include <cmath>

#include "hash.hpp"

namespace userkey::lb {

namespace {
// Tokens are doubles; refills of (elapsed * rate) accumulate rounding error,
// so "one token" is compared with a little slack in both directions.
constexpr double kEpsilon = 1e-9;
}  // namespace

// ---------------------------------------------------------------------------
// TokenBucket
// ---------------------------------------------------------------------------

TokenBucket::TokenBucket(double rate_per_sec, double burst)
    : rate_(rate_per_sec), burst_(std::max(1.0, burst)), tokens_(burst_) {}

void TokenBucket::refill(TimePoint now) {
  if (!started_) {
    started_ = true;
    last_ = now;
    return;
  }
  if (now <= last_) return;  // no time passed (or a clock going backwards)
  tokens_ = tokens(now);
  last_ = now;
}

double TokenBucket::tokens(TimePoint now) const {
  if (!started_ || now <= last_) return tokens_;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  return std::min(burst_, tokens_ + elapsed * rate_);
}

bool TokenBucket::try_take(TimePoint now) {
  refill(now);
  if (tokens_ < 1.0 - kEpsilon) return false;
  tokens_ = std::max(0.0, tokens_ - 1.0);
  return true;
}

std::chrono::milliseconds TokenBucket::retry_after(TimePoint now) {
  refill(now);
  if (tokens_ >= 1.0 - kEpsilon) return std::chrono::milliseconds{0};
  if (rate_ <= 0) return std::chrono::milliseconds::max();
  const double ms = (1.0 - tokens_) / rate_ * 1000.0;
  return std::chrono::milliseconds{static_cast<std::int64_t>(std::ceil(ms - 1e-6))};
}

// ---------------------------------------------------------------------------
// RateLimiter
// ---------------------------------------------------------------------------

std::size_t RateLimiter::StringHash::operator()(std::string_view s) const noexcept {
  return static_cast<std::size_t>(detail::hash64(s));
}

RateLimiter::RateLimiter(double rate_per_sec, double burst, std::chrono::milliseconds idle_ttl)
    : rate_(rate_per_sec > 0 ? rate_per_sec : 0),
      burst_(std::max(1.0, burst > 0 ? burst : rate_per_sec)),
      idle_ttl_(idle_ttl) {}

RateLimiter::Shard& RateLimiter::shard_for(std::string_view ip) {
  // Top bits for the shard; the map uses the full hash (low bits) internally.
  return shards_[static_cast<std::size_t>(detail::hash64(ip) >> 60) % kShards];
}

RateLimiter::Decision RateLimiter::try_acquire(std::string_view ip, TimePoint now) {
  if (!enabled()) return {};
  Shard& s = shard_for(ip);
  std::lock_guard lock(s.mu);
  auto it = s.buckets.find(ip);
  if (it == s.buckets.end()) {
    if (++s.created_since_sweep >= kSweepEvery) sweep_shard(s, now);
    it = s.buckets.emplace(std::string(ip), TokenBucket(rate_, burst_)).first;
  }
  if (it->second.try_take(now)) return {};
  return Decision{false, std::max(std::chrono::milliseconds{1}, it->second.retry_after(now))};
}

std::size_t RateLimiter::sweep_shard(Shard& s, TimePoint now) {
  s.created_since_sweep = 0;
  return std::erase_if(s.buckets, [&](auto& entry) {
    const TokenBucket& b = entry.second;
    const bool idle = now - b.last_update() > idle_ttl_;
    return idle && b.full(now);
  });
}

std::size_t RateLimiter::sweep(TimePoint now) {
  std::size_t dropped = 0;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    dropped += sweep_shard(s, now);
  }
  return dropped;
}

std::size_t RateLimiter::size() const {
  std::size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.buckets.size();
  }
  return n;
}

}  // namespace userkey::lb
