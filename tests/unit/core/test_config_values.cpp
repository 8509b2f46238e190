// Unit tests for lib/core/config_values.cpp.
#include <doctest/doctest.h>

#include <userkey/core/config_values.hpp>

using namespace userkey;
using namespace std::chrono_literals;

TEST_CASE("parse_host_port accepts host:port and [v6]:port") {
  auto a = parse_host_port("127.0.0.1:5001");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 5001);
  auto b = parse_host_port("[::1]:80");
  REQUIRE(b);
  CHECK(b->host == "::1");
  std::string err;
  for (const char* bad : {"", "host", ":80", "h:", "h:99999", "h:8o", "::1:80", "[::1]80"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_host_port(bad, &err));
    CHECK_FALSE(err.empty());
  }
}

TEST_CASE("parse_duration understands units; bare numbers are seconds") {
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("2s") == 2000ms);
  CHECK(parse_duration("1.5s") == 1500ms);
  CHECK(parse_duration("3") == 3000ms);
  CHECK(parse_duration("5m") == 300000ms);
  CHECK(parse_duration("1h") == 3600000ms);
  CHECK(parse_duration("0") == 0ms);
  for (const char* bad : {"", "-1s", "s", "10 s", "10x", "1e400", "nan", "inf", "nans"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad));
  }
}
