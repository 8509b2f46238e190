// Unit tests for request ids (lib/lb/request_id): which client ids are kept,
// and the fresh ones each loop makes.
#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <doctest/doctest.h>

#include <boost/beast/http/fields.hpp>

#include <set>
#include <string>
#include <vector>

#include "lb/request_id.hpp"

namespace engine = userkey::lb::engine;

namespace {

bool all_lower_hex(std::string_view s) {
  for (const char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

TEST_CASE("request id: well-formed is 1-128 characters of letters, digits and . _ : -") {
  CHECK(engine::valid_request_id("a"));
  CHECK(engine::valid_request_id("0123456789abcdef0123456789abcdef"));
  CHECK(engine::valid_request_id("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"));  // a UUID
  CHECK(engine::valid_request_id("01ARZ3NDEKTSV4RRFFQ69G5FAV"));            // a ULID
  CHECK(engine::valid_request_id("svc.front:req_42-b"));
  CHECK(engine::valid_request_id(std::string(128, 'x')));

  CHECK_FALSE(engine::valid_request_id(""));
  CHECK_FALSE(engine::valid_request_id(std::string(129, 'x')));
  for (const std::string& bad : std::vector<std::string>{"a b", "a\tb", "a,b", "a;b", "a\"b", "a\\b", "a/b", "a=b", "{}", "a\r\nX-Evil: 1",
                                "caf\xc3\xa9", std::string("a\0b", 3), "a\x7f"})
    CHECK_MESSAGE(!engine::valid_request_id(bad), bad);
}

TEST_CASE("request id: the generator gives 32 lower-case hex digits, different every time") {
  engine::RequestIdGenerator gen;
  engine::RequestId id;
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    gen.next(id);
    REQUIRE(id.view().size() == 32);
    REQUIRE(all_lower_hex(id.view()));
    CHECK(engine::valid_request_id(id.view()));
    seen.emplace(id.view());
  }
  CHECK(seen.size() == 10000);

  // Two generators (two loops) seeded from std::random_device do not repeat each other.
  engine::RequestIdGenerator other;
  engine::RequestId a, b;
  gen.next(a);
  other.next(b);
  CHECK(a.view() != b.view());

  // A fixed seed gives a fixed sequence; every hex digit turns up.
  engine::RequestIdGenerator s1(42), s2(42);
  std::set<char> digits;
  for (int i = 0; i < 100; ++i) {
    s1.next(a);
    s2.next(b);
    CHECK(a.view() == b.view());
    digits.insert(a.view().begin(), a.view().end());
  }
  CHECK(digits.size() == 16);
}

TEST_CASE("request id: a client's single well-formed id is kept; none, several or malformed get a fresh one") {
  engine::RequestIdGenerator gen(7);
  engine::RequestId id;
  namespace http = boost::beast::http;

  http::fields given;
  given.set("X-Request-Id", "client.id-1");
  CHECK(engine::take_request_id(given, gen, id));
  CHECK(id.view() == "client.id-1");

  http::fields lower;  // field names are case-insensitive
  lower.set("x-request-id", std::string(128, 'k'));
  CHECK(engine::take_request_id(lower, gen, id));
  CHECK(id.view() == std::string(128, 'k'));

  http::fields none;
  none.set("X-Other", "x");
  CHECK_FALSE(engine::take_request_id(none, gen, id));
  CHECK(id.view().size() == 32);
  CHECK(all_lower_hex(id.view()));

  http::fields repeated;
  repeated.insert("X-Request-Id", "one");
  repeated.insert("X-Request-Id", "two");
  CHECK_FALSE(engine::take_request_id(repeated, gen, id));
  CHECK(id.view().size() == 32);

  for (const std::string& bad : std::vector<std::string>{"", "has space", "quote\"d", std::string(129, 'x'), "%41", "caf\xc3\xa9"}) {
    http::fields f;
    f.set("X-Request-Id", bad);
    CHECK_FALSE(engine::take_request_id(f, gen, id));
    CHECK(id.view().size() == 32);
    CHECK(id.view() != bad);
  }

  // The holder keeps at most 128 characters and can be emptied.
  id.assign(std::string(200, 'z'));
  CHECK(id.view().size() == 128);
  id.clear();
  CHECK(id.empty());
}
