#include "userkey/lb/token_bucket.hpp"

#include <algorithm>
#include <cmath>


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

RateLimiter::RateLimiter(double rate_per_sec, double burst, std::chrono::milliseconds idle_ttl, unsigned v6_prefix,
                         std::size_t max_clients)
    : rate_(rate_per_sec > 0 ? rate_per_sec : 0),
      burst_(std::max(1.0, burst > 0 ? burst : rate_per_sec)),
      idle_ttl_(idle_ttl),
      v6_prefix_(v6_prefix),
      table_(max_clients) {}

bool RateLimiter::expendable(const TokenBucket& b, TimePoint now) const {
  return now - b.last_update() > idle_ttl_ && b.full(now);
}

RateLimiter::Decision RateLimiter::try_acquire(std::string_view ip, TimePoint now) {
  if (!enabled()) return {};
  ClientKeyBuffer buf;
  const std::string_view key = client_key(ip, v6_prefix_, buf);
  return table_.with_shard(key, [&](auto& buckets) -> Decision {
    TokenBucket* bucket = buckets.find(key);
    if (bucket == nullptr) {
      // O(1) whatever the shard holds: the fullest of its least recently
      // used buckets makes room (an idle, expendable one is full: it ranks
      // highest); whole-shard sweeps are sweep()'s, off the request path.
      if (buckets.full()) buckets.evict_one([&](const TokenBucket& b) { return b.tokens(now); });
      bucket = &buckets.insert(key, TokenBucket(rate_, burst_));
    }
    if (bucket->try_take(now)) return {};
    return Decision{false, std::max(std::chrono::milliseconds{1}, bucket->retry_after(now))};
  });
}

std::size_t RateLimiter::sweep(TimePoint now) {
  return table_.erase_if([&](const TokenBucket& b) { return expendable(b, now); });
}

}  // namespace userkey::lb
