// Unit tests for lib/core/query_string.cpp.
#include <doctest/doctest.h>

#include <userkey/core/query_string.hpp>

using namespace userkey;

TEST_CASE("split_target separates path and query, dropping a fragment") {
  auto p = split_target("/a/b?x=1&y=2#frag");
  CHECK(p.path == "/a/b");
  CHECK(p.query == "x=1&y=2");
  CHECK(split_target("/").query.empty());
}

TEST_CASE("percent_decode handles escapes, plus and malformed input") {
  CHECK(percent_decode("%31%32") == "12");
  CHECK(percent_decode("a+b") == "a b");
  CHECK(percent_decode("%7B%22%24ne%22%3Anull%7D") == "{\"$ne\":null}");
  CHECK_FALSE(percent_decode("%").has_value());
  CHECK_FALSE(percent_decode("%4").has_value());
  CHECK_FALSE(percent_decode("%zz").has_value());
}

TEST_CASE("find_query_param counts occurrences and matches encoded names") {
  auto q = find_query_param("a=1&user_id=5&b=2", "user_id");
  CHECK(q.count == 1);
  CHECK(q.raw == "5");
  CHECK(find_query_param("user_id=1&user_id=2", "user_id").count == 2);
  CHECK(find_query_param("user%5Fid=3", "user_id").raw == "3");
  CHECK(find_query_param("user_idx=3", "user_id").count == 0);
  CHECK(find_query_param("user_id", "user_id").raw.empty());
  bool bad = false;
  find_query_param("%zz=1&user_id=2", "user_id", &bad);
  CHECK(bad);
}
