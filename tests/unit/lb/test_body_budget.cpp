// Unit tests for the lb-wide bound on request-body bytes (lib/lb/body_budget.hpp).
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <utility>

#include "lb/body_budget.hpp"

using userkey::lb::engine::BodyLease;

TEST_CASE("body budget: reservations up to the limit succeed, one past it takes nothing, leases give back") {
  std::atomic<std::uint64_t> used{0};
  auto a = BodyLease::reserve(used, 100, 60);
  CHECK(static_cast<bool>(a));
  CHECK(used == 60);
  auto refused = BodyLease::reserve(used, 100, 41);
  CHECK_FALSE(refused);
  CHECK(used == 60);
  {
    auto b = BodyLease::reserve(used, 100, 40);
    CHECK(static_cast<bool>(b));
    CHECK(used == 100);
  }
  CHECK(used == 60);
  CHECK_FALSE(BodyLease::reserve(used, 100, 1000));  // more than the whole bound
  BodyLease moved = std::move(a);
  CHECK(used == 60);
  moved.reset();
  CHECK(used == 0);
  moved.reset();  // twice: nothing more given back
  CHECK(used == 0);
}

TEST_CASE("body budget: a limit of 0 is unbounded") {
  std::atomic<std::uint64_t> used{0};
  auto big = BodyLease::reserve(used, 0, std::uint64_t{1} << 40);
  CHECK(static_cast<bool>(big));
  CHECK(used == std::uint64_t{1} << 40);
}
