// Unit tests for the generic settings machinery: value kinds, a table over a
// small config struct, SettingValues and the TOML reader.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "userkey/core/settings.hpp"
#include "userkey/core/settings_file.hpp"
#include "userkey/core/value_kinds.hpp"
#include "unit/core/toy_settings.hpp"

using namespace std::chrono_literals;
using userkey::ConfigError;
using userkey::SettingValues;
using userkey::ValueError;
namespace kinds = userkey::kinds;
using userkey::test::Inner;
using userkey::test::Toy;
using userkey::test::toy_table;

namespace {

template <class T>
std::string parse_error(const userkey::ValueKind<T>& kind, std::string_view text) {
  try {
    T v = kind.parse(text);
    if (kind.check) kind.check(v);
  } catch (const ValueError& e) {
    return e.what();
  }
  return "";
}

std::string toml_error(const std::string& text) {
  try {
    (void)userkey::read_settings_toml(text, "toy.toml", toy_table().settings());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("whole numbers: ranges, messages and --help type") {
  const auto k = kinds::whole<std::uint32_t>(1, 1000);
  CHECK(k.parse("7") == 7);
  CHECK(parse_error(k, "0") == "must be between 1 and 1000, got 0");
  CHECK(parse_error(k, "1001") == "must be between 1 and 1000, got 1001");
  CHECK(parse_error(k, "-1") == "must be between 1 and 1000, got -1");
  CHECK(parse_error(k, "1.5") == "expected a whole number, got '1.5'");
  CHECK(parse_error(k, "") == "expected a whole number, got ''");
  CHECK(k.type_name == "UINT:INT in [1 - 1000]");
  CHECK(kinds::whole<std::uint32_t>().type_name == "UINT");
  CHECK(kinds::whole<int>(1, 65535).type_name == "INT:INT in [1 - 65535]");
  CHECK(parse_error(kinds::whole<int>(1, 65535), "-4") == "must be between 1 and 65535, got -4");
  const auto u64 = kinds::whole<std::uint64_t>();
  CHECK(u64.parse("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
  CHECK(parse_error(u64, "-1") == "must not be negative, got -1");
  CHECK_FALSE(parse_error(u64, "18446744073709551616").empty());
}

TEST_CASE("durations, numbers, booleans, choices, addresses") {
  const auto d = kinds::duration(true);
  CHECK(d.parse("250ms") == 250ms);
  CHECK(d.parse("3") == 3s);
  CHECK(parse_error(d, "0") == "must be greater than zero");
  CHECK(parse_error(d, "-1s") == "must not be negative");
  CHECK(parse_error(kinds::duration(false), "0").empty());
  CHECK(d.format(1500ms) == "1500ms");
  CHECK(d.format(120s) == "2m");

  const auto n = kinds::non_negative_number();
  CHECK(n.parse("12.5") == doctest::Approx(12.5));
  CHECK_FALSE(parse_error(n, "-1").empty());
  CHECK_FALSE(parse_error(n, "inf").empty());
  CHECK_FALSE(parse_error(n, "x").empty());
  for (double v : {0.0, 0.1, 12.5, 1e-9, 123456789.125}) CHECK(n.parse(n.format(v)) == v);

  const auto b = kinds::boolean();
  for (const char* t : {"true", "TRUE", "yes", "on", "1"}) CHECK(b.parse(t));
  for (const char* t : {"false", "No", "off", "0"}) CHECK_FALSE(b.parse(t));
  CHECK(parse_error(b, "maybe") == "expected true or false, got 'maybe'");

  const auto level = kinds::log_level();
  CHECK(level.type_name == "TEXT:{trace,debug,info,warn,error,critical,off}");
  CHECK(parse_error(level, "loud") == "must be one of trace, debug, info, warn, error, critical, off; got 'loud'");

  const auto hp = kinds::host_port();
  CHECK(hp.format(hp.parse("[::1]:80")) == "[::1]:80");
  CHECK_FALSE(parse_error(hp, "nohost").empty());
  const auto off = kinds::host_port_or_off();
  CHECK_FALSE(off.parse("off").has_value());
  CHECK_FALSE(off.parse("").has_value());
  CHECK(off.format(std::nullopt) == "off");
  CHECK(off.format(off.parse("0.0.0.0:9100")) == "0.0.0.0:9100");
}

TEST_CASE("a table applies, prints, checks and compares settings") {
  const auto t = toy_table();
  Toy c;
  SettingValues v;
  v.set("name", "other").set("listen", "[::1]:81").set("timeout", "2s").set("inner.rise", "4");
  v.set_list("tags", {"a", "c"});
  t.apply(c, v);
  CHECK(c.name == "other");
  CHECK(c.listen.host == "::1");
  CHECK(c.timeout == 2s);
  CHECK(c.inner.rise == 4);
  CHECK(c.tags == std::vector<std::string>{"a", "c"});

  SUBCASE("values_of round-trips every setting") {
    Toy other;
    t.apply(other, t.values_of(c));
    CHECK(t.changed(c, other).empty());
    CHECK(t.values_of(other) == t.values_of(c));
    CHECK(t.values_of(Toy{}).find("timeout")->front() == "1500ms");
  }
  SUBCASE("errors name the key, and the item of a list") {
    Toy x;
    CHECK_THROWS_WITH_AS(t.apply(x, SettingValues().set("inner.rise", "0")),
                         "inner.rise: must be between 1 and 10, got 0", ConfigError);
    CHECK_THROWS_WITH_AS(t.apply(x, SettingValues().set_list("tags", {"a", "z"})),
                         doctest::Contains("tags[1]: must be one of a, b, c"), ConfigError);
    CHECK_THROWS_WITH_AS(t.apply(x, SettingValues().set("nope", "1")), "unknown setting 'nope'", ConfigError);
  }
  SUBCASE("check() applies each rule to values set in code") {
    Toy x;
    CHECK_NOTHROW(t.check(x));
    x.inner.rise = 11;
    CHECK_THROWS_WITH_AS(t.check(x), "inner.rise: must be between 1 and 10, got 11", ConfigError);
    x.inner.rise = 1;
    x.tags = {"b", "q"};
    CHECK_THROWS_WITH_AS(t.check(x), doctest::Contains("tags[1]"), ConfigError);
    x.tags.clear();
    x.timeout = 0ms;
    CHECK_THROWS_WITH_AS(t.check(x), "timeout: must be greater than zero", ConfigError);
  }
  SUBCASE("changed() lists differing keys in table order") {
    Toy a, b;
    b.inner.enabled = false;
    b.name = "x";
    b.rate = 0.25;
    CHECK(t.changed(a, b) == std::vector<std::string>{"name", "rate", "inner.enabled"});
  }
}

TEST_CASE("declarations: environment names come from flags; duplicates are refused") {
  const auto t = toy_table();
  CHECK(t.find("inner.rise")->env() == "TOY_RISE");
  CHECK(t.find("inner.enabled")->env() == "TOY_NO_INNER");
  CHECK(t.find("tags")->is_list());
  userkey::SettingsTable<Toy> dup("X_");
  dup.add({.key = "name", .flag = "--name"}, userkey::field(&Toy::name), kinds::text());
  CHECK_THROWS_AS(dup.add({.key = "name", .flag = "--other"}, userkey::field(&Toy::name), kinds::text()),
                  std::logic_error);
  CHECK_THROWS_AS(dup.add({.key = "other", .flag = "--name"}, userkey::field(&Toy::name), kinds::text()),
                  std::logic_error);
}

TEST_CASE("TOML: keys, nested tables, shapes, located errors") {
  const auto v = userkey::read_settings_toml(
      "name = \"n\"\ntimeout = 3\nrate = 2\ntags = [\"b\"]\n[inner]\nrise = 5\nenabled = false\n", "toy.toml",
      toy_table().settings());
  Toy c;
  toy_table().apply(c, v);
  CHECK(c.name == "n");
  CHECK(c.timeout == 3s);
  CHECK(c.rate == 2.0);
  CHECK(c.tags == std::vector<std::string>{"b"});
  CHECK(c.inner.rise == 5);
  CHECK_FALSE(c.inner.enabled);

  CHECK(toml_error("\n[inner]\nrise = 0\n") == "toy.toml:3: inner.rise: must be between 1 and 10, got 0");
  CHECK(toml_error("naem = \"x\"\n") == "toy.toml:1: unknown key 'naem' (did you mean 'name'?)");
  CHECK(toml_error("[iner]\nrise = 1\n") == "toy.toml:1: unknown key 'iner' (did you mean 'inner'?)");
  CHECK(toml_error("[inner]\nrize = 1\n") == "toy.toml:2: unknown key 'inner.rize' (did you mean 'rise'?)");
  CHECK(toml_error("inner = 3\n") == "toy.toml:1: inner: expected a table [inner], got an integer");
  CHECK(toml_error("name = 3\n") == "toy.toml:1: name: expected a string, got an integer");
  CHECK(toml_error("timeout = 1.5\n") ==
        "toy.toml:1: timeout: expected a duration string such as \"250ms\" or an integer number of seconds, got a float");
  CHECK(toml_error("tags = \"a\"\n") == "toy.toml:1: tags: expected an array, got a string");
  CHECK(toml_error("tags = [\"a\",\n \"q\"]\n").rfind("toy.toml:2: tags[1]: must be one of", 0) == 0);
  CHECK(toml_error("[inner]\nenabled = \"no\"\n") == "toy.toml:2: inner.enabled: expected true or false, got a string");
  CHECK(toml_error("dump = \"d\"\n").find("unknown key 'dump'") != std::string::npos);  // not a file setting
  CHECK(toml_error("name = \n").rfind("toy.toml:1: invalid TOML", 0) == 0);
}
