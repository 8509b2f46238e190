// Unit tests for lib/core/toml_input_guard.cpp (the loader's use of it is
// tested in tests/unit/lb/test_proxy_config_loader.cpp).
#include <doctest/doctest.h>

#include <string>

#include "core/toml_input_guard.hpp"

using userkey::detail::first_non_ascii_line;
using userkey::detail::without_utf8_bom;
using namespace std::string_view_literals;

TEST_CASE("toml guard: the first non-ASCII byte, by line") {
  CHECK_FALSE(first_non_ascii_line("retries = 1\n# plain comment\n"));
  CHECK(first_non_ascii_line("\xcc\x8cu\x01") == 1u);  // fuzz_lb_config's first find
  CHECK(first_non_ascii_line("a = 1\nx = 1 # caf\xc3\xa9\n") == 2u);
  CHECK(first_non_ascii_line("a = 1\n\nupstreams = +\"12.\x01\x00.0\xd1\x96mm$/"sv) == 3u);  // its second
  CHECK(without_utf8_bom("\xEF\xBB\xBFretries = 1") == "retries = 1");
  CHECK(without_utf8_bom("retries = 1") == "retries = 1");
}
