// At most one log line per interval for an event that a client can cause at
// will (a refused connection, a bad header): the event is still counted in a
// metric each time; the log says it happened, and how often since its last
// line, without letting a flood of them fill the disk.
//
// Thread-safe (atomics, no lock): loops on several threads share one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

namespace userkey {

class LogThrottle {
public:
  using Clock = std::chrono::steady_clock;

  explicit LogThrottle(std::chrono::milliseconds interval = std::chrono::seconds(10)) : interval_(interval) {}

  /// True when a line may be written at `now` (the first event, or the
  /// first one an interval after the last line); `held_back` is then set to
  /// the events since that last line that wrote none. False otherwise (the
  /// event is counted for the next line).
  bool allow(Clock::time_point now, std::uint64_t& held_back) {
    const std::int64_t t = now.time_since_epoch().count();
    std::int64_t next = next_.load(std::memory_order_relaxed);
    if (t >= next && next_.compare_exchange_strong(next, t + step(), std::memory_order_relaxed)) {
      held_back = held_.exchange(0, std::memory_order_relaxed);
      return true;
    }
    held_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }

private:
  std::int64_t step() const {
    return std::chrono::duration_cast<Clock::duration>(interval_).count();
  }

  std::chrono::milliseconds interval_;
  std::atomic<std::int64_t> next_{std::numeric_limits<std::int64_t>::min()};
  std::atomic<std::uint64_t> held_{0};
};

}  // namespace userkey
