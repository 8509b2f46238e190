// Unit tests for the request id rule (lib/core/request_id.hpp) both
// processes share: which X-Request-Id values are well-formed, and the one a
// request's fields carry.
#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <doctest/doctest.h>

#include <boost/beast/http/fields.hpp>

#include <string>
#include <vector>

#include "core/request_id.hpp"

namespace http = boost::beast::http;

TEST_CASE("request id: well-formed is 1-128 characters of letters, digits and . _ : -") {
  CHECK(userkey::valid_request_id("a"));
  CHECK(userkey::valid_request_id("0123456789abcdef0123456789abcdef"));
  CHECK(userkey::valid_request_id("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"));  // a UUID
  CHECK(userkey::valid_request_id("01ARZ3NDEKTSV4RRFFQ69G5FAV"));            // a ULID
  CHECK(userkey::valid_request_id("svc.front:req_42-b"));
  CHECK(userkey::valid_request_id(std::string(128, 'x')));
  static_assert(userkey::valid_request_id("constexpr-ok"));

  CHECK_FALSE(userkey::valid_request_id(""));
  CHECK_FALSE(userkey::valid_request_id(std::string(129, 'x')));
  for (const std::string& bad : std::vector<std::string>{"a b", "a\tb", "a,b", "a;b", "a\"b", "a\\b", "a/b", "a=b", "{}",
                                                         "a\r\nX-Evil: 1", "caf\xc3\xa9", std::string("a\0b", 3),
                                                         "a\x7f"})
    CHECK_MESSAGE(!userkey::valid_request_id(bad), bad);
}

TEST_CASE("request id: a request's is its one well-formed X-Request-Id field, else none") {
  http::fields one;
  one.set("x-request-id", "edge-1");  // field names are case-insensitive
  CHECK(userkey::request_id_of(one) == "edge-1");
  CHECK(userkey::single_field(one, "X-REQUEST-ID") == "edge-1");

  http::fields none;
  none.set("X-Other", "x");
  CHECK(userkey::request_id_of(none).empty());
  CHECK(userkey::single_field(none, "X-Request-Id").empty());

  http::fields several;
  several.insert("X-Request-Id", "one");
  several.insert("X-Request-Id", "one");
  CHECK(userkey::request_id_of(several).empty());
  CHECK(userkey::single_field(several, "X-Request-Id").empty());

  for (const std::string& bad : {std::string(""), std::string("has space"), std::string(129, 'x')}) {
    http::fields f;
    f.set("X-Request-Id", bad);
    CHECK(userkey::request_id_of(f).empty());
  }
}
