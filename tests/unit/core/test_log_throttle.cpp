// Unit tests for LogThrottle (lib/core/log_throttle.hpp): one line per
// interval, and the count of the events that wrote none.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>

#include "core/log_throttle.hpp"

using namespace std::chrono_literals;

TEST_CASE("LogThrottle: the first event logs; the next ones within the interval are held back and counted") {
  userkey::LogThrottle throttle(10s);
  const auto t0 = userkey::LogThrottle::Clock::time_point{} + 1h;
  std::uint64_t held = 99;
  CHECK(throttle.allow(t0, held));
  CHECK(held == 0);
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(throttle.allow(t0 + 1s, held));
  CHECK_FALSE(throttle.allow(t0 + 9999ms, held));
  CHECK(throttle.allow(t0 + 10s, held));
  CHECK(held == 1001);
  CHECK_FALSE(throttle.allow(t0 + 11s, held));
  CHECK(throttle.allow(t0 + 1h, held));
  CHECK(held == 1);
}
