// Unit tests for Upstream health (passive nginx-style, active HAProxy-style).
// The upstream record (parse_upstream and friends): test_upstream.cpp.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "userkey/lb/upstream.hpp"

namespace lb = userkey::lb;
using namespace std::chrono_literals;

namespace {

lb::Upstream make_upstream(std::uint32_t max_fails, std::chrono::milliseconds fail_timeout) {
  lb::UpstreamConfig cfg;
  cfg.host = "10.0.0.1";
  cfg.port = 9000;
  return lb::Upstream(cfg, lb::PassiveHealthConfig{max_fails, fail_timeout});
}

}  // namespace

TEST_CASE("passive health: max_fails within fail_timeout takes the upstream down, back after fail_timeout") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(3, 10s);
  CHECK(u.available(clock.now()));

  u.report_failure(clock.now());
  clock.advance(1s);
  u.report_failure(clock.now());
  CHECK(u.available(clock.now()));  // 2 of 3
  clock.advance(1s);
  u.report_failure(clock.now());    // 3 within 10 s
  CHECK(u.passively_down(clock.now()));
  CHECK_FALSE(u.available(clock.now()));

  clock.advance(10s - 1ms);
  CHECK_FALSE(u.available(clock.now()));
  clock.advance(1ms);
  CHECK(u.available(clock.now()));
  CHECK_FALSE(u.passively_down(clock.now()));
}

TEST_CASE("passive health: failures spread beyond the window do not trip") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(3, 10s);
  for (int i = 0; i < 10; ++i) {
    u.report_failure(clock.now());
    CHECK(u.available(clock.now()));
    clock.advance(6s);  // at most 2 failures ever fall in one 10 s window
  }
}

TEST_CASE("passive health: success does not end a down period early") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(1, 5s);
  u.report_failure(clock.now());
  CHECK_FALSE(u.available(clock.now()));
  u.report_success(clock.now());
  clock.advance(2s);
  u.report_success(clock.now());
  CHECK_FALSE(u.available(clock.now()));
  clock.advance(3s);
  CHECK(u.available(clock.now()));
}

TEST_CASE("passive health: failures while down do not extend the down period") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(2, 10s);
  u.report_failure(clock.now());
  u.report_failure(clock.now());
  CHECK_FALSE(u.available(clock.now()));
  clock.advance(9s);
  u.report_failure(clock.now());  // a request that was already in flight
  clock.advance(1s);
  CHECK(u.available(clock.now()));
}

TEST_CASE("passive health: probation after a down period") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(3, 10s);
  for (int i = 0; i < 3; ++i) u.report_failure(clock.now());
  clock.advance(10s);
  REQUIRE(u.available(clock.now()));

  SUBCASE("first outcome a failure: down again immediately") {
    u.report_failure(clock.now());
    CHECK_FALSE(u.available(clock.now()));
    clock.advance(10s);
    CHECK(u.available(clock.now()));
  }
  SUBCASE("first outcome a success: fully recovered, needs max_fails again") {
    u.report_success(clock.now());
    u.report_failure(clock.now());
    u.report_failure(clock.now());
    CHECK(u.available(clock.now()));
    u.report_failure(clock.now());
    CHECK_FALSE(u.available(clock.now()));
  }
}

TEST_CASE("passive health: max_fails == 0 disables it") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(0, 10s);
  for (int i = 0; i < 100; ++i) u.report_failure(clock.now());
  CHECK(u.available(clock.now()));
  CHECK_FALSE(u.passively_down(clock.now()));
}

TEST_CASE("active health: fall consecutive failures take it down, rise consecutive successes bring it back") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(1, 10s);
  lb::ActiveHealthConfig cfg;
  cfg.rise = 2;
  cfg.fall = 3;
  REQUIRE(u.active_up());

  CHECK_FALSE(u.report_probe(false, cfg));
  CHECK_FALSE(u.report_probe(false, cfg));
  CHECK_FALSE(u.report_probe(true, cfg));   // streak broken
  CHECK_FALSE(u.report_probe(false, cfg));
  CHECK_FALSE(u.report_probe(false, cfg));
  CHECK(u.active_up());
  CHECK(u.report_probe(false, cfg));        // third in a row: flips
  CHECK_FALSE(u.active_up());
  CHECK_FALSE(u.available(clock.now()));
  CHECK_FALSE(u.report_probe(false, cfg));  // already down: no change

  CHECK_FALSE(u.report_probe(true, cfg));
  CHECK_FALSE(u.report_probe(false, cfg));  // streak broken
  CHECK_FALSE(u.report_probe(true, cfg));
  CHECK(u.report_probe(true, cfg));         // second in a row: flips
  CHECK(u.active_up());
  CHECK(u.available(clock.now()));
  CHECK_FALSE(u.report_probe(true, cfg));
}

TEST_CASE("active health: starting down, rise/fall of 1, and independence from passive") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(1, 10s);
  lb::ActiveHealthConfig cfg;
  cfg.rise = 1;
  cfg.fall = 1;
  u.set_active_up(false);
  CHECK_FALSE(u.available(clock.now()));
  CHECK(u.report_probe(true, cfg));
  CHECK(u.available(clock.now()));
  CHECK(u.report_probe(false, cfg));
  CHECK_FALSE(u.active_up());

  // rise/fall of 0 behave as 1.
  cfg.rise = 0;
  CHECK(u.report_probe(true, cfg));

  // Passively down but actively up: not available; active_up() still true.
  u.report_failure(clock.now());
  CHECK(u.active_up());
  CHECK_FALSE(u.available(clock.now()));
}

TEST_CASE("in-flight accounting") {
  auto u = make_upstream(1, 1s);
  CHECK(u.in_flight() == 0);
  u.begin_request();
  u.begin_request();
  CHECK(u.in_flight() == 2);
  u.end_request();
  CHECK(u.in_flight() == 1);
  CHECK(u.address() == "10.0.0.1:9000");
  CHECK(u.weight() == 1);
}

TEST_CASE("active health coming back up clears a passive take-down") {
  using namespace std::chrono_literals;
  userkey::lb::ManualTimeSource clock;
  userkey::lb::UpstreamConfig cfg;
  cfg.host = "127.0.0.1";
  cfg.port = 1;
  userkey::lb::Upstream up(cfg, {1, 10s});
  userkey::lb::ActiveHealthConfig active;
  active.rise = 2;
  active.fall = 2;
  up.report_failure(clock.now());
  CHECK_FALSE(up.available(clock.now()));
  CHECK_FALSE(up.report_probe(false, active));
  CHECK(up.report_probe(false, active));  // fall: down
  CHECK_FALSE(up.report_probe(true, active));
  CHECK(up.report_probe(true, active));  // rise: up
  clock.advance(1s);                     // well within fail_timeout
  CHECK(up.available(clock.now()));
}
