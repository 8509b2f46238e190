// Per-client state of the lb's limits, owned once for both of them
// (ConnectionLimiter: open connections; RateLimiter: token buckets).
//
// client_key() says who a client is: an IPv4 address as it is, an IPv6
// address as its /N network (default /64: one allocation, whose owner can use
// any of its 2^64 addresses, is one client; rotating addresses within it
// evades nothing).
//
// ClientTable<Value> owns one Value per client key, in kShards shards chosen
// by a hash of the key, so threads serving different clients rarely contend.
// A shard is a mutex, a list of its entries in order of use (most recently
// used first) and a hash index of that list by key; find() moves an entry to
// the front. The table is bounded: each shard holds at most
// ceil(max_entries / kShards). What to do at the bound is the owner's rule
// (RateLimiter evicts with evict_one(), ConnectionLimiter stops tracking);
// either way a new key costs O(1), however many clients are tracked:
// evict_one() looks at the kEvictSample least recently used entries only,
// and insert() into a full shard drops its least recently used entry.
// Only erase_if() (a periodic sweep) walks a shard.
//
// Thread-safety: every member of ClientTable is safe to call concurrently. A
// Shard is only reached through with_shard() / erase_if(), under its lock;
// the callbacks must not call back into the table nor keep the Shard or a
// pointer into it after they return.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

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
  /// How many of the least recently used entries evict_one() compares.
  static constexpr std::size_t kEvictSample = 8;

  struct Hash {
    std::size_t operator()(std::string_view s) const noexcept { return static_cast<std::size_t>(client_key_hash(s)); }
  };

  /// One shard's entries, handed to with_shard()'s callback under the
  /// shard's lock (and only usable there). Every operation is O(1) (average,
  /// hashing): it never walks the shard, except erase_if().
  class Shard {
  public:
    /// `key`'s value, marked as the most recently used; nullptr if absent.
    Value* find(std::string_view key) {
      auto it = index_.find(key);
      if (it == index_.end()) return nullptr;
      order_.splice(order_.begin(), order_, it->second);
      return &it->second->value;
    }
    /// `key`'s value, leaving the order alone; nullptr if absent.
    const Value* peek(std::string_view key) const {
      auto it = index_.find(key);
      return it == index_.end() ? nullptr : &it->second->value;
    }

    /// True when a new key must first make room (evict_one()).
    bool full() const { return order_.size() >= capacity_; }
    std::size_t size() const { return order_.size(); }

    /// Adds `key` (absent) as the most recently used. A full shard first drops
    /// its least recently used entry, so the bound always holds.
    Value& insert(std::string_view key, Value value) {
      if (full()) erase_at(std::prev(order_.end()));
      order_.push_front(Entry{std::string(key), std::move(value)});
      try {
        index_.emplace(order_.front().key, order_.begin());
      } catch (...) {
        order_.pop_front();
        throw;
      }
      return order_.front().value;
    }

    /// Removes `key` if present.
    void erase(std::string_view key) {
      auto it = index_.find(key);
      if (it == index_.end()) return;
      auto pos = it->second;
      index_.erase(it);
      order_.erase(pos);
    }

    /// Erases, among the kEvictSample least recently used entries, the one
    /// `expendability` (value -> a number, higher = less worth keeping) ranks
    /// highest; the older on a tie. Does nothing when empty.
    template <class Rank>
    void evict_one(Rank expendability) {
      if (order_.empty()) return;
      auto victim = std::prev(order_.end());
      auto best = expendability(victim->value);
      auto it = victim;
      for (std::size_t seen = 1; seen < kEvictSample && it != order_.begin(); ++seen) {
        --it;
        const auto rank = expendability(it->value);
        if (rank > best) {
          best = rank;
          victim = it;
        }
      }
      erase_at(victim);
    }

    /// Erases the entries `pred(value)` holds for; returns how many. Walks the
    /// whole shard: for periodic sweeps, not per request.
    template <class Pred>
    std::size_t erase_if(Pred pred) {
      std::size_t n = 0;
      for (auto it = order_.begin(); it != order_.end();) {
        auto next = std::next(it);
        if (pred(static_cast<const Value&>(it->value))) {
          erase_at(it);
          ++n;
        }
        it = next;
      }
      return n;
    }

  private:
    friend class ClientTable;
    struct Entry {
      std::string key;  // index_ views it: a list node never moves
      Value value;
    };
    using Order = std::list<Entry>;

    void erase_at(typename Order::iterator pos) {
      index_.erase(std::string_view(pos->key));
      order_.erase(pos);
    }

    mutable std::mutex mu_;
    std::size_t capacity_ = 1;
    Order order_;  // most recently used first
    std::unordered_map<std::string_view, typename Order::iterator, Hash> index_;
  };

  /// At most `max_entries` (rounded up to a multiple of kShards; at least one per shard).
  explicit ClientTable(std::size_t max_entries = kDefaultMaxClients)
      : per_shard_(std::max<std::size_t>(1, (max_entries + kShards - 1) / kShards)) {
    for (Shard& s : shards_) s.capacity_ = per_shard_;
  }

  /// fn(shard) on `key`'s shard, under its lock; returns what fn returns.
  template <class Fn>
  decltype(auto) with_shard(std::string_view key, Fn&& fn) {
    Shard& s = shards_[shard_index(key)];
    std::lock_guard lock(s.mu_);
    return fn(s);
  }
  template <class Fn>
  decltype(auto) with_shard(std::string_view key, Fn&& fn) const {
    const Shard& s = shards_[shard_index(key)];
    std::lock_guard lock(s.mu_);
    return fn(s);
  }

  /// The shard `key` belongs to, 0..kShards-1.
  static std::size_t shard_index(std::string_view key) {
    return static_cast<std::size_t>(client_key_hash(key) >> 60) % kShards;
  }

  /// Most entries a shard holds.
  std::size_t shard_capacity() const { return per_shard_; }

  /// Erases, in every shard, the entries `pred(value)` holds for.
  template <class Pred>
  std::size_t erase_if(Pred pred) {
    std::size_t n = 0;
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu_);
      n += s.erase_if(pred);
    }
    return n;
  }

  /// Entries in every shard (approximate under concurrency).
  std::size_t size() const {
    std::size_t n = 0;
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu_);
      n += s.size();
    }
    return n;
  }

private:
  std::size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace userkey::lb
