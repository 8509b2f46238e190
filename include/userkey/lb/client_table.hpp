// Per-client state of the lb's limits, owned once for both of them
// (ConnectionLimiter: open connections; RateLimiter: token buckets).
//
// client_key() says who a client is: an IPv4 address as it is, an IPv6
// address as its /N network (default /64: one allocation, whose owner can use
// any of its 2^64 addresses, is one client; rotating addresses within it
// evades nothing).
//
// ClientTable<Value> keeps one Value per client key in kShards shards, each a
// mutex and a hash map chosen by a hash of the key, so threads serving
// different clients rarely contend; and it bounds the entries: each shard
// holds at most ceil(max_entries / kShards). What to do at the bound (evict,
// or not track) is the owner's rule; evict_one() is the eviction both use.
//
// Thread-safety: every member is safe to call concurrently; the callbacks run
// under their shard's lock and must not call back into the table.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace userkey::lb {

/// Room for the text of a client key ("ffff:...:ffff/128").
using ClientKeyBuffer = std::array<char, 64>;

/// The key `ip` is counted under: IPv4 text unchanged; IPv6 (not v4-mapped)
/// as "NETWORK/PREFIX" with host bits cleared, written into `buf` (prefix
/// clamped to 1..128); anything else unchanged. The view is valid while
/// `ip` and `buf` are.
std::string_view client_key(std::string_view ip, unsigned v6_prefix, ClientKeyBuffer& buf);

/// The hash that picks a shard (and buckets within it).
std::uint64_t client_key_hash(std::string_view key) noexcept;

/// The default bound of a ClientTable (per limiter, all shards together).
inline constexpr std::size_t kDefaultMaxClients = 100'000;

template <class Value>
class ClientTable {
public:
  static constexpr std::size_t kShards = 16;
  /// How many entries evict_one() compares.
  static constexpr std::size_t kEvictSample = 8;

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return static_cast<std::size_t>(client_key_hash(s)); }
  };
  using Map = std::unordered_map<std::string, Value, Hash, std::equal_to<>>;

  /// At most `max_entries` (rounded up to a multiple of kShards; at least one per shard).
  explicit ClientTable(std::size_t max_entries = kDefaultMaxClients)
      : per_shard_(std::max<std::size_t>(1, (max_entries + kShards - 1) / kShards)) {}

  /// fn(map) on `key`'s shard, under its lock; returns what fn returns.
  template <class Fn>
  decltype(auto) with_shard(std::string_view key, Fn&& fn) {
    Shard& s = shards_[static_cast<std::size_t>(client_key_hash(key) >> 60) % kShards];
    std::lock_guard lock(s.mu);
    return fn(s.map);
  }
  template <class Fn>
  decltype(auto) with_shard(std::string_view key, Fn&& fn) const {
    const Shard& s = shards_[static_cast<std::size_t>(client_key_hash(key) >> 60) % kShards];
    std::lock_guard lock(s.mu);
    return fn(static_cast<const Map&>(s.map));
  }

  /// True when a shard's map may take no new entry.
  bool full(const Map& m) const { return m.size() >= per_shard_; }
  std::size_t shard_capacity() const { return per_shard_; }

  /// Erases the entry among the first kEvictSample of `m` for which
  /// `expendability` (value -> a number, higher = less worth keeping) is
  /// highest. `m` must be a shard's map, under its lock (in with_shard).
  template <class Rank>
  static void evict_one(Map& m, Rank expendability) {
    auto victim = m.begin();
    std::size_t seen = 0;
    for (auto it = m.begin(); it != m.end() && seen < kEvictSample; ++it, ++seen)
      if (expendability(it->second) > expendability(victim->second)) victim = it;
    if (victim != m.end()) m.erase(victim);
  }

  /// Erases, in every shard, the entries `pred(value)` holds for.
  template <class Pred>
  std::size_t erase_if(Pred pred) {
    std::size_t n = 0;
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      n += std::erase_if(s.map, [&](const auto& entry) { return pred(entry.second); });
    }
    return n;
  }

  /// Entries in every shard (approximate under concurrency).
  std::size_t size() const {
    std::size_t n = 0;
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      n += s.map.size();
    }
    return n;
  }

private:
  struct Shard {
    mutable std::mutex mu;
    Map map;
  };
  std::size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace userkey::lb
