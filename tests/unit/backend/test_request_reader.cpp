// Unit tests for lib/backend/request_reader: the framing checks and the
// 100-continue decision on request heads.
#include <doctest/doctest.h>

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/fields.hpp>

#include "backend/request_reader.hpp"

namespace http = boost::beast::http;
using userkey::detail::expects_continue;
using userkey::detail::framing_error;

TEST_CASE("request framing: one Content-Length or a Transfer-Encoding is fine, both or two lengths are not") {
  http::fields none;
  CHECK_FALSE(framing_error(none));

  http::fields one;
  one.insert(http::field::content_length, "5");
  CHECK_FALSE(framing_error(one));

  http::fields chunked;
  chunked.insert(http::field::transfer_encoding, "chunked");
  CHECK_FALSE(framing_error(chunked));

  http::fields two = one;
  two.insert(http::field::content_length, "5");
  CHECK(framing_error(two) == http::error::bad_content_length);

  http::fields both = one;
  both.insert(http::field::transfer_encoding, "chunked");
  CHECK(framing_error(both) == http::error::bad_content_length);
}

TEST_CASE("100-continue: sent only when the client asks for it (any case)") {
  http::fields plain;
  CHECK_FALSE(expects_continue(plain));
  http::fields asks;
  asks.insert(http::field::expect, "100-Continue");
  CHECK(expects_continue(asks));
  http::fields other;
  other.insert(http::field::expect, "something-else");
  CHECK_FALSE(expects_continue(other));
}
