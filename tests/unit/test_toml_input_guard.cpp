#include <doctest/doctest.h>

#include <string>

#include "core/toml_input_guard.hpp"
#include "userkey/lb/proxy_config_loader.hpp"

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

TEST_CASE("the lb's config loader refuses non-ASCII text with a located error instead of parsing it") {
  const std::string text = "retries = 1\n\xcc\x8c = 2\n";
  CHECK_THROWS_WITH_AS((void)userkey::lb::load_proxy_config_toml_from_string(text, "lb.toml"),
                       doctest::Contains("lb.toml:2: non-ASCII"), userkey::lb::ConfigError);
  CHECK(userkey::lb::load_proxy_config_toml_from_string("\xEF\xBB\xBFupstreams = [\"127.0.0.1:5001\"]\n", "lb.toml")
            .upstreams.size() == 1);
}
