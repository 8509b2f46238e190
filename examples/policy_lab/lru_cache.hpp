// LruSet: the simulated per-backend cache (the role CachingRepository plays in
// a real userkey backend). Only membership matters to the simulation, so it
// stores keys, not values.
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>

namespace policy_lab {

/// A set of at most `capacity` keys that evicts the least recently used one.
/// Capacity 0 never holds anything. Not thread-safe (the simulation is
/// single-threaded).
class LruSet {
public:
  explicit LruSet(std::size_t capacity) : capacity_(capacity) {}

  /// Marks `key` as just used. Returns true when it was already present (a
  /// cache hit); otherwise inserts it, evicting the oldest key when full.
  bool touch(std::uint32_t key) {
    if (capacity_ == 0) return false;
    if (auto it = where_.find(key); it != where_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return true;
    }
    if (order_.size() == capacity_) {
      where_.erase(order_.back());
      order_.pop_back();
    }
    order_.push_front(key);
    where_.emplace(key, order_.begin());
    return false;
  }

private:
  std::size_t capacity_;
  std::list<std::uint32_t> order_;  // most recent first
  std::unordered_map<std::uint32_t, std::list<std::uint32_t>::iterator> where_;
};

}  // namespace policy_lab
