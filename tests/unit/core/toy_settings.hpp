// A small config struct and its settings table, for the tests of the
// generic settings machinery.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "userkey/core/settings.hpp"
#include "userkey/core/value_kinds.hpp"

namespace userkey::test {

struct Inner {
  std::uint32_t rise = 2;
  bool enabled = true;
};

struct Toy {
  std::string name = "toy";
  userkey::HostPort listen{"127.0.0.1", 80};
  std::chrono::milliseconds timeout{1500};
  double rate = 0.5;
  std::vector<std::string> tags;
  std::string level = "info";
  Inner inner;
  std::string dump = "dump";
  std::string uri;
};

inline userkey::SettingsTable<Toy> toy_table() {
  userkey::SettingsTable<Toy> t("TOY_");
  t.add({.key = "name", .flag = "--name", .help = "Name", .reloadable = true}, userkey::field(&Toy::name),
        userkey::kinds::non_empty_text());
  t.add({.key = "listen", .flag = "--listen", .help = "Address"}, userkey::field(&Toy::listen), userkey::kinds::host_port());
  t.add({.key = "timeout", .flag = "--timeout", .help = "Timeout"}, userkey::field(&Toy::timeout),
        userkey::kinds::duration(true));
  t.add({.key = "rate", .flag = "--rate", .help = "Rate"}, userkey::field(&Toy::rate), userkey::kinds::non_negative_number());
  t.add({.key = "tags", .flag = "--tag", .help = "Tags", .delimiter = ' '}, userkey::field(&Toy::tags),
        userkey::kinds::one_of({"a", "b", "c"}));
  t.add({.key = "level", .flag = "--level", .help = "Level"}, userkey::field(&Toy::level), userkey::kinds::log_level());
  t.add({.key = "inner.rise", .flag = "--rise", .help = "Rise", .reloadable = true},
        userkey::field(&Toy::inner, &Inner::rise), userkey::kinds::whole<std::uint32_t>(1, 10));
  t.add({.key = "inner.enabled", .flag = "--no-inner", .help = "Off", .negating_flag = true},
        userkey::field(&Toy::inner, &Inner::enabled), userkey::kinds::boolean());
  t.add({.key = "dump", .flag = "--dump", .help = "Dump", .in_file = false}, userkey::field(&Toy::dump),
        userkey::kinds::text());
  t.add({.key = "uri", .flag = "--uri", .help = "URI", .excludes = {"dump"}, .in_file = false},
        userkey::field(&Toy::uri), userkey::kinds::text());
  return t;
}

}  // namespace userkey::test
