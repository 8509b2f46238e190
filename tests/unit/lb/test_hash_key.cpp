// Unit tests for HashKeySpec.
#include <doctest/doctest.h>

#include <cctype>
#include <string>
#include <string_view>

#include "userkey/lb/hash_key.hpp"

namespace lb = userkey::lb;

namespace {

std::string_view no_headers(std::string_view) { return {}; }

}  // namespace

TEST_CASE("HashKeySpec::parse accepts the four kinds") {
  auto q = lb::HashKeySpec::parse("query:user_id");
  REQUIRE(q);
  CHECK(q->kind() == lb::HashKeySpec::Kind::query);
  CHECK(q->name() == "user_id");
  CHECK(q->to_string() == "query:user_id");

  auto h = lb::HashKeySpec::parse("header:X-User-Id");
  REQUIRE(h);
  CHECK(h->kind() == lb::HashKeySpec::Kind::header);
  CHECK(h->name() == "X-User-Id");
  CHECK(h->to_string() == "header:X-User-Id");

  auto ip = lb::HashKeySpec::parse("ip");
  REQUIRE(ip);
  CHECK(ip->kind() == lb::HashKeySpec::Kind::ip);
  CHECK(ip->to_string() == "ip");

  auto path = lb::HashKeySpec::parse("path");
  REQUIRE(path);
  CHECK(path->kind() == lb::HashKeySpec::Kind::path);
  CHECK(path->to_string() == "path");
}

TEST_CASE("HashKeySpec::parse rejects everything else with a message") {
  const char* bad[] = {"", "IP", "Path", "query", "query:", "header:", "cookie:sid", "ip:x",
                       "header:X User", "query:a=b", "query:a&b", "user_id"};
  for (const char* s : bad) {
    CAPTURE(s);
    std::string err;
    CHECK_FALSE(lb::HashKeySpec::parse(s, &err).has_value());
    CHECK_FALSE(err.empty());
  }
  std::string err;
  lb::HashKeySpec::parse("cookie:sid", &err);
  CHECK(err.find("cookie") != std::string::npos);
}

TEST_CASE("query extraction finds the first name= parameter, raw") {
  auto spec = *lb::HashKeySpec::parse("query:user_id");
  auto ex = [&](std::string_view target) { return spec.extract(target, no_headers, "1.2.3.4"); };
  CHECK(ex("/v1/keys?user_id=42&x=1") == "42");
  CHECK(ex("/v1/keys?x=1&user_id=7") == "7");
  CHECK(ex("/v1/keys?user_id=1&user_id=2") == "1");
  CHECK(ex("/v1/keys?user_idx=5&user_id=6") == "6");   // whole-name match only
  CHECK(ex("/v1/keys?xuser_id=5") == "");
  CHECK(ex("/v1/keys?user_id&user_id=9") == "9");      // bare name is not name=
  CHECK(ex("/v1/keys?user_id=") == "");                // empty value
  CHECK(ex("/v1/keys?user_id=a%40b+c") == "a%40b+c");  // not decoded
  CHECK(ex("/v1/keys?user_id=3#frag") == "3");
  CHECK(ex("/v1/keys") == "");
  CHECK(ex("/v1/keys?") == "");
  CHECK(ex("/v1/user_id=4") == "");                    // path is not the query
  CHECK(lb::query_param("/a?b=c&d=e", "d") == "e");
}

TEST_CASE("header, ip and path extraction") {
  auto h = *lb::HashKeySpec::parse("header:X-User");
  auto lookup = [](std::string_view name) -> std::string_view {
    // Case-insensitive matching is the caller's job; emulate it here.
    std::string lower(name);
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return lower == "x-user" ? std::string_view("alice") : std::string_view{};
  };
  CHECK(h.extract("/x", lookup, "1.2.3.4") == "alice");
  auto h2 = *lb::HashKeySpec::parse("header:X-Other");
  CHECK(h2.extract("/x", lookup, "1.2.3.4") == "");

  auto ip = *lb::HashKeySpec::parse("ip");
  CHECK(ip.extract("/x?user_id=1", no_headers, "2001:db8::1") == "2001:db8::1");

  auto path = *lb::HashKeySpec::parse("path");
  CHECK(path.extract("/v1/keys/abc?x=1", no_headers, "1.2.3.4") == "/v1/keys/abc");
  CHECK(path.extract("/v1/keys", no_headers, "1.2.3.4") == "/v1/keys");
}
