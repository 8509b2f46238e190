// Unit tests for the admission steps a client session runs
// (lib/lb/admission): IP filter, per-IP connection cap, rate limit.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "lb/admission.hpp"

namespace lb = userkey::lb;
namespace engine = userkey::lb::engine;
using namespace std::chrono_literals;

namespace {

lb::IpFilter filter(std::vector<std::string> allow, std::vector<std::string> deny) {
  std::string err;
  auto f = lb::IpFilter::parse(allow, deny, &err);
  INFO(err);
  REQUIRE(f.has_value());
  return *f;
}

}  // namespace

TEST_CASE("admission: the IP filter step answers 403 to denied addresses") {
  const auto f = filter({"10.0.0.0/8"}, {"10.0.0.1/32"});
  CHECK_FALSE(engine::ip_filter_step(f, "10.0.0.2").has_value());
  for (const char* ip : {"10.0.0.1", "192.0.2.1", "not an address"}) {
    CAPTURE(ip);
    const auto r = engine::ip_filter_step(f, ip);
    REQUIRE(r.has_value());
    CHECK(r->status == 403);
    CHECK(r->message == "forbidden");
    CHECK(r->reason == lb::Rejection::denied);
    CHECK(r->retry_after == 0s);
  }
}

TEST_CASE("admission: the connection cap step counts a connection until its pass ends") {
  lb::ConnectionLimiter limiter(2);
  const std::string ip = "192.0.2.7";
  engine::ConnectionPass a, b, c;
  CHECK_FALSE(engine::connection_cap_step(limiter, ip, a).has_value());
  CHECK(a.counted());
  CHECK_FALSE(engine::connection_cap_step(limiter, ip, b).has_value());
  CHECK(limiter.count(ip) == 2);

  const auto refused = engine::connection_cap_step(limiter, ip, c);
  REQUIRE(refused.has_value());
  CHECK(refused->status == 429);
  CHECK(refused->message == "too many connections from this address");
  CHECK(refused->reason == lb::Rejection::too_many_conns);
  CHECK(refused->retry_after == 1s);
  CHECK_FALSE(c.counted());
  CHECK(limiter.count(ip) == 2);

  // Another address has its own count.
  engine::ConnectionPass other;
  CHECK_FALSE(engine::connection_cap_step(limiter, "192.0.2.8", other).has_value());

  // Moving a pass moves the count (released once); destroying it releases.
  engine::ConnectionPass moved = std::move(a);
  CHECK(moved.counted());
  CHECK_FALSE(a.counted());
  CHECK(limiter.count(ip) == 2);
  moved.reset();
  CHECK(limiter.count(ip) == 1);
  { engine::ConnectionPass gone = std::move(b); }
  CHECK(limiter.count(ip) == 0);
  CHECK_FALSE(engine::connection_cap_step(limiter, ip, c).has_value());
  CHECK(limiter.count(ip) == 1);
}

TEST_CASE("admission: the rate limit step answers 429 with a Retry-After of at least a second") {
  lb::RateLimiter limiter(2, 2);  // 2 per second, burst 2
  const auto t0 = lb::SteadyClock::now();
  CHECK_FALSE(engine::rate_limit_step(limiter, "192.0.2.1", t0).has_value());
  CHECK_FALSE(engine::rate_limit_step(limiter, "192.0.2.1", t0).has_value());
  const auto refused = engine::rate_limit_step(limiter, "192.0.2.1", t0);
  REQUIRE(refused.has_value());
  CHECK(refused->status == 429);
  CHECK(refused->message == "rate limit exceeded");
  CHECK(refused->reason == lb::Rejection::rate_limited);
  CHECK(refused->retry_after == 1s);  // half a second to the next token, rounded up
  CHECK_FALSE(engine::rate_limit_step(limiter, "192.0.2.2", t0).has_value());  // per address
  CHECK_FALSE(engine::rate_limit_step(limiter, "192.0.2.1", t0 + 500ms).has_value());

  lb::RateLimiter slow(0.25, 1);  // one token every 4 s
  CHECK_FALSE(engine::rate_limit_step(slow, "192.0.2.1", t0).has_value());
  const auto later = engine::rate_limit_step(slow, "192.0.2.1", t0);
  REQUIRE(later.has_value());
  CHECK(later->retry_after == 4s);
}

TEST_CASE("admission: steps as configured, in order") {
  lb::LimitsConfig limits;
  limits.allow = {"127.0.0.0/8"};
  limits.deny = {"127.0.0.2/32"};
  limits.max_conns_per_ip = 1;
  engine::Admission admission(limits);

  engine::ConnectionPass pass;
  CHECK_FALSE(admission.admit_connection("127.0.0.1", pass).has_value());
  CHECK(pass.counted());
  engine::ConnectionPass second;
  auto r = admission.admit_connection("127.0.0.1", second);
  REQUIRE(r.has_value());
  CHECK(r->reason == lb::Rejection::too_many_conns);
  // The filter runs first: a denied address is not counted against the cap.
  r = admission.admit_connection("127.0.0.2", second);
  REQUIRE(r.has_value());
  CHECK(r->reason == lb::Rejection::denied);
  CHECK_FALSE(second.counted());
  pass.reset();
  CHECK_FALSE(admission.admit_connection("127.0.0.1", second).has_value());

  // No rate configured: every request passes and nothing is tracked.
  CHECK_FALSE(admission.rate_limited());
  for (int i = 0; i < 100; ++i) CHECK_FALSE(admission.admit_request("127.0.0.1").has_value());
}

TEST_CASE("admission: nothing configured admits everyone without counting") {
  engine::Admission admission(lb::LimitsConfig{});
  engine::ConnectionPass pass;
  CHECK_FALSE(admission.admit_connection("192.0.2.1", pass).has_value());
  CHECK_FALSE(pass.counted());

  lb::LimitsConfig rate;
  rate.rate = 1;
  rate.burst = 1;
  engine::Admission limited(rate);
  CHECK(limited.rate_limited());
  CHECK_FALSE(limited.admit_request("192.0.2.1").has_value());
  const auto r = limited.admit_request("192.0.2.1");
  REQUIRE(r.has_value());
  CHECK(r->status == 429);
}

TEST_CASE("admission: a bad CIDR is a construction error naming it") {
  lb::LimitsConfig limits;
  limits.deny = {"10.0.0.0/33"};
  CHECK_THROWS_WITH_AS(engine::Admission{limits}, doctest::Contains("bad CIDR '10.0.0.0/33'"),
                       std::invalid_argument);
}
