// Per-client request rate limiting for the load balancer.
//
// TokenBucket is the classic token bucket: it holds up to `burst` tokens,
// refills continuously at `rate` tokens per second, and each request takes
// one token. A client can therefore send `burst` requests at once and then
// `rate` per second on average.
//
// RateLimiter keeps one TokenBucket per client (an IPv4 address, or an IPv6
// /64 network: see client_table.hpp) in a ClientTable, so proxy threads
// serving different clients rarely contend. Memory is bounded twice: sweep()
// drops buckets that are full again and have been idle longer than the idle
// TTL (the proxy calls it periodically); and the table holds at most
// max_clients buckets: a new client in a full shard evicts, among the
// shard's few least recently used buckets, the one holding the most tokens
// (a full bucket is what a new client gets anyway, so that loses the least;
// an idle, expendable bucket is full). That costs the same however many
// clients are tracked, so clients rotating addresses cannot make each new
// key a walk of the shard under its lock; and a client still limited keeps
// its empty bucket while fuller ones are at hand, rather than being pushed
// out by newcomers to come back with a fresh burst. Every request, allowed
// or not, marks its client's bucket as recently used.
//
// Time is always passed in (TimePoint `now`), so both are deterministic in
// tests; callers must pass a non-decreasing clock (steady_clock). A clock
// that goes backwards is treated as "no time passed".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "userkey/lb/client_table.hpp"
#include "userkey/lb/upstream.hpp"

namespace userkey::lb {

/// A single token bucket. Not thread-safe (RateLimiter guards each one with
/// its shard's mutex). A new bucket starts full; its clock starts at the
/// first call.
class TokenBucket {
public:
  /// `rate_per_sec` > 0 and `burst` >= 1 are expected; burst < 1 is raised
  /// to 1 (so a bucket can always eventually admit a request).
  TokenBucket(double rate_per_sec, double burst);

  /// Takes one token if available. Returns false (and takes nothing) when
  /// the bucket is empty.
  bool try_take(TimePoint now);
  /// How long until a token is available (zero when one is available now),
  /// rounded up to whole milliseconds.
  std::chrono::milliseconds retry_after(TimePoint now);
  /// Tokens that would be available at `now` (does not modify the bucket).
  double tokens(TimePoint now) const;
  /// The last time the bucket was refilled/used (epoch if never used).
  TimePoint last_update() const { return last_; }
  bool full(TimePoint now) const { return tokens(now) >= burst_ - 1e-9; }

private:
  void refill(TimePoint now);

  double rate_;
  double burst_;
  double tokens_;
  TimePoint last_{};
  bool started_ = false;
};

/// Per-client rate limiter over a bounded table of TokenBuckets. Thread-safe.
class RateLimiter {
public:
  struct Decision {
    bool allowed = true;
    /// When not allowed: how long the client should wait (Retry-After);
    /// zero when allowed.
    std::chrono::milliseconds retry_after{0};
  };

  /// `rate_per_sec` == 0 disables limiting (every request is allowed and no
  /// state is kept). `burst` is the bucket size (0 means "same as rate",
  /// at least 1). Buckets idle longer than `idle_ttl` (and full) are dropped.
  /// IPv6 clients are keyed per /`v6_prefix`; at most about `max_clients`
  /// buckets are kept.
  RateLimiter(double rate_per_sec, double burst, std::chrono::milliseconds idle_ttl = std::chrono::seconds(60),
              unsigned v6_prefix = 64, std::size_t max_clients = kDefaultMaxClients);

  bool enabled() const { return rate_ > 0; }

  /// Takes a token from `ip`'s client's bucket. No allocation for a client
  /// already tracked.
  Decision try_acquire(std::string_view ip, TimePoint now);

  /// Drops buckets that are full and idle longer than idle_ttl. Returns how
  /// many were dropped.
  std::size_t sweep(TimePoint now);

  /// Number of tracked clients (approximate under concurrency).
  std::size_t size() const { return table_.size(); }

private:
  bool expendable(const TokenBucket& b, TimePoint now) const;

  double rate_;
  double burst_;
  std::chrono::milliseconds idle_ttl_;
  unsigned v6_prefix_;
  ClientTable<TokenBucket> table_;
};

}  // namespace userkey::lb
