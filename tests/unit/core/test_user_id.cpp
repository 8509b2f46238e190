// Unit tests for lib/core/user_id.cpp.
#include <doctest/doctest.h>

#include <userkey/core/user_id.hpp>

using userkey::parse_user_id;

TEST_CASE("user_id: decimal digits within int32 parse to the integer") {
  CHECK(parse_user_id("1") == 1);
  CHECK(parse_user_id("007") == 7);
  CHECK(parse_user_id("0") == 0);
  CHECK(parse_user_id("2147483647") == 2147483647);
}

TEST_CASE("user_id: everything else is rejected with a message") {
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "abc", "2147483648", "99999999999",
                          "{\"$ne\":null}", "{\"$gt\":\"\"}", "$where", "1;drop"}) {
    CAPTURE(bad);
    userkey::UserIdError err;
    CHECK_FALSE(parse_user_id(bad, &err).has_value());
    CHECK_FALSE(err.message.empty());
  }
}
