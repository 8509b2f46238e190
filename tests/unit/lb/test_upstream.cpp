// Unit tests for lib/lb/upstream.cpp: the upstream record (parse_upstream,
// format_upstream and check_upstream, and that a flag, the environment and
// the TOML file, both upstream forms, report a broken field in the same
// words), and an Upstream's health (passive nginx-style, active HAProxy-style).
#include <doctest/doctest.h>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "userkey/core/command_line.hpp"
#include "userkey/lb/proxy_config_loader.hpp"
#include "userkey/lb/upstream.hpp"

namespace lb = userkey::lb;
using namespace std::chrono_literals;

namespace {

lb::UpstreamConfig record(std::string host, std::uint16_t port, std::uint32_t weight, std::uint32_t max_conns,
                          bool tls) {
  lb::UpstreamConfig u;
  u.host = std::move(host);
  u.port = port;
  u.weight = weight;
  u.max_conns = max_conns;
  u.tls = tls;
  return u;
}

// The message userkey-lb's command line gives for `--upstream SPEC`.
std::string flag_error(const std::string& spec) {
  userkey::CommandLine cli("lb", 40);
  cli.add_settings(lb::proxy_settings());
  const char* args[] = {"userkey-lb", "--upstream", spec.c_str()};
  std::ostringstream out, err;
  const auto rc = cli.parse(3, args, out, err);
  CHECK(rc.has_value());
  return err.str();
}

std::string toml_error(const std::string& text) {
  try {
    (void)lb::load_proxy_config_toml_from_string(text, "up.toml");
  } catch (const lb::ConfigError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("format_upstream: parse(format(x)) == x for every field") {
  const std::vector<lb::UpstreamConfig> records{
      record("10.0.0.5", 8080, 1, 64, false),             // the defaults
      record("10.0.0.5", 1, 1000, 0, false),               // edges: port 1, weight 1000, max_conns 0 (unlimited)
      record("backend-2.internal", 65535, 7, 4294967295U, false),  // a name; the largest max_conns
      record("api.internal", 443, 3, 100, true),           // tls=on
      record("::1", 9000, 2, 5, true),                     // IPv6, written in brackets
      record("fe80::1%eth0", 80, 1, 64, false),            // IPv6 with a zone
      record("2001:db8::42", 5001, 999, 1, true),
      record("localhost", 5002, 1, 64, true),
  };
  for (const auto& x : records) {
    const std::string text = lb::format_upstream(x);
    CAPTURE(text);
    CHECK_FALSE(lb::check_upstream(x).has_value());
    std::string err;
    const auto back = lb::parse_upstream(text, &err);
    REQUIRE_MESSAGE(back.has_value(), err);
    CHECK(*back == x);
    CHECK(back->host == x.host);
    CHECK(back->port == x.port);
    CHECK(back->weight == x.weight);
    CHECK(back->max_conns == x.max_conns);
    CHECK(back->tls == x.tls);
    CHECK(lb::format_upstream(*back) == text);  // and the text is stable
  }
  CHECK(lb::format_upstream(record("::1", 9000, 2, 5, true)) == "[::1]:9000,weight=2,max_conns=5,tls=on");
  CHECK(lb::format_upstream(record("h", 1, 1, 64, false)) == "h:1,weight=1,max_conns=64");
}

TEST_CASE("the settings table formats upstreams with format_upstream (tls=on kept)") {
  const auto* s = lb::proxy_settings().find("upstreams");
  REQUIRE(s != nullptr);
  lb::ProxyConfig c;
  c.upstreams = {record("api.internal", 443, 3, 100, true), record("::1", 5001, 1, 64, false)};
  const auto values = lb::proxy_settings().values_of(c);
  const auto* texts = values.find("upstreams");
  REQUIRE(texts != nullptr);
  REQUIRE(texts->size() == 2);
  CHECK((*texts)[0] == "api.internal:443,weight=3,max_conns=100,tls=on");
  lb::ProxyConfig back;
  lb::proxy_settings().apply(back, values);
  CHECK(back.upstreams == c.upstreams);
}

TEST_CASE("check_upstream: each field rule") {
  CHECK_FALSE(lb::check_upstream(record("h", 1, 1, 0, false)).has_value());
  const struct {
    lb::UpstreamConfig u;
    const char* field;
  } bad[] = {
      {record("", 80, 1, 64, false), "address"},
      {record("bad host", 80, 1, 64, false), "address"},
      {record("a,b", 80, 1, 64, false), "address"},
      {record("a/b", 80, 1, 64, false), "address"},
      {record("h", 0, 1, 64, false), "address"},
      {record("h", 80, 0, 64, false), "weight"},
      {record("h", 80, 1001, 64, false), "weight"},
  };
  for (const auto& b : bad) {
    CAPTURE(b.u.host);
    const auto e = lb::check_upstream(b.u);
    REQUIRE(e.has_value());
    CHECK(e->field == b.field);
    CHECK_FALSE(e->what.empty());
    CHECK(e->message() == e->field + ": " + e->what);
  }
}

TEST_CASE("a broken field reads the same from a flag, the upstreams list, an [[upstream]] table and validate()") {
  const struct {
    const char* spec;   // as a flag and in `upstreams = [...]`
    const char* table;  // the same record as an [[upstream]] table
    lb::UpstreamConfig record;  // the same record as parsed fields
  } cases[] = {
      {"10.0.0.5:80,weight=0", "address = \"10.0.0.5:80\"\nweight = 0\n", record("10.0.0.5", 80, 0, 64, false)},
      {"10.0.0.5:80,weight=1001", "address = \"10.0.0.5:80\"\nweight = 1001\n", record("10.0.0.5", 80, 1001, 64, false)},
      {"10.0.0.5:0", "address = \"10.0.0.5:0\"\n", record("10.0.0.5", 0, 1, 64, false)},
      // (not a space: a flag splits the list on spaces, as the environment does)
      {"bad/host:80,tls=on", "address = \"bad/host:80\"\ntls = true\n", record("bad/host", 80, 1, 64, true)},
  };
  for (const auto& c : cases) {
    CAPTURE(c.spec);
    const auto broken = lb::check_upstream(c.record);
    REQUIRE(broken.has_value());
    const std::string said = broken->message();  // "FIELD: WHAT"

    const auto from_flag = flag_error(c.spec);
    CHECK(contains(from_flag, said));
    CHECK(contains(from_flag, "--upstream"));  // where it came from

    const auto from_list = toml_error(std::string("upstreams = [\"") + c.spec + "\"]\n");
    CHECK(contains(from_list, said));
    CHECK(contains(from_list, "up.toml:1: upstreams[0]"));

    const auto from_table = toml_error(std::string("[[upstream]]\n") + c.table);
    CHECK(contains(from_table, "upstream[0]." + said));
    CHECK(contains(from_table, "up.toml:"));

    lb::ProxyConfig cfg;
    cfg.upstreams = {c.record};
    try {
      lb::validate(cfg);
      FAIL("validate() accepted a broken upstream");
    } catch (const lb::ConfigError& e) {
      CHECK(std::string(e.what()) == "upstream[0]." + said);
    }
  }
  // The table's error names the line of the broken key.
  CHECK(contains(toml_error("[[upstream]]\naddress = \"10.0.0.5:80\"\nweight = 0\n"), "up.toml:3: upstream[0].weight:"));
}

TEST_CASE("parse_upstream: valid specs") {
  std::string err;
  auto a = lb::parse_upstream("10.0.0.5:8080", &err);
  REQUIRE(a);
  CHECK(a->host == "10.0.0.5");
  CHECK(a->port == 8080);
  CHECK(a->weight == 1);
  CHECK(a->max_conns == 64);  // the default
  CHECK(a->address() == "10.0.0.5:8080");

  auto b = lb::parse_upstream("backend-2.internal:9000,weight=5,max_conns=100");
  REQUIRE(b);
  CHECK(b->host == "backend-2.internal");
  CHECK(b->port == 9000);
  CHECK(b->weight == 5);
  CHECK(b->max_conns == 100);

  auto c = lb::parse_upstream("localhost:1,max_conns=7,weight=1000");
  REQUIRE(c);
  CHECK(c->weight == 1000);
  CHECK(c->max_conns == 7);

  auto d = lb::parse_upstream("[::1]:65535,weight=2");
  REQUIRE(d);
  CHECK(d->host == "::1");
  CHECK(d->port == 65535);
  CHECK(d->weight == 2);
  CHECK_FALSE(d->tls);  // the default

  auto e = lb::parse_upstream("api.internal:443,tls=on,weight=3");
  REQUIRE(e);
  CHECK(e->tls);
  CHECK(e->weight == 3);
  CHECK(e->address() == "api.internal:443");  // the identity does not change with tls
  auto f = lb::parse_upstream("api.internal:443,tls=off");
  REQUIRE(f);
  CHECK_FALSE(f->tls);
}

TEST_CASE("parse_upstream: errors") {
  const char* bad[] = {
      "",                        // empty
      "10.0.0.5",                // no port
      ":8080",                   // no host
      "10.0.0.5:",               // empty port
      "10.0.0.5:0",              // port 0
      "10.0.0.5:65536",          // port too big
      "10.0.0.5:80x",            // junk in port
      "10.0.0.5:-1",             // negative
      "10.0.0.5:80,weight=0",    // weight too small
      "10.0.0.5:80,weight=1001", // weight too big
      "10.0.0.5:80,weight=",     // empty weight
      "10.0.0.5:80,weight=2,weight=3",
      "10.0.0.5:80,max_conns=-4",
      "10.0.0.5:80,backup=1",    // unknown option
      "10.0.0.5:80,weight",      // no '='
      "10.0.0.5:80,",            // empty option
      "::1:80",                  // IPv6 without brackets
      "[::1:80",                 // unterminated bracket
      "[::1]80",                 // missing ':'
      "bad host:80",             // space
      "10.0.0.5:80,tls=yes",     // on or off only
      "10.0.0.5:80,tls=on,tls=off",
  };
  for (const char* spec : bad) {
    CAPTURE(spec);
    std::string err;
    CHECK_FALSE(lb::parse_upstream(spec, &err).has_value());
    CHECK_FALSE(err.empty());
  }
  std::string err;
  lb::parse_upstream("10.0.0.5:80,weight=1001", &err);
  CHECK(err.find("weight") != std::string::npos);
  CHECK(err.find("between 1 and 1000") != std::string::npos);
  lb::parse_upstream("10.0.0.5:99999", &err);
  CHECK(err.find("port") != std::string::npos);
  // No error pointer: must not crash.
  CHECK_FALSE(lb::parse_upstream("nope").has_value());
}

namespace {

// An upstream with these passive health settings.
lb::Upstream make_upstream(std::uint32_t max_fails, std::chrono::milliseconds fail_timeout) {
  lb::UpstreamConfig cfg;
  cfg.host = "10.0.0.1";
  cfg.port = 9000;
  return lb::Upstream(cfg, lb::PassiveHealthConfig{max_fails, fail_timeout});
}

}  // namespace

TEST_CASE("passive health: max_fails within fail_timeout takes the upstream down, back after fail_timeout") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(3, 10s);
  CHECK(u.available(clock.now()));

  u.report_failure(clock.now());
  clock.advance(1s);
  u.report_failure(clock.now());
  CHECK(u.available(clock.now()));  // 2 of 3
  clock.advance(1s);
  u.report_failure(clock.now());    // 3 within 10 s
  CHECK(u.passively_down(clock.now()));
  CHECK_FALSE(u.available(clock.now()));

  clock.advance(10s - 1ms);
  CHECK_FALSE(u.available(clock.now()));
  clock.advance(1ms);
  CHECK(u.available(clock.now()));
  CHECK_FALSE(u.passively_down(clock.now()));
}

TEST_CASE("passive health: failures spread beyond the window do not trip") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(3, 10s);
  for (int i = 0; i < 10; ++i) {
    u.report_failure(clock.now());
    CHECK(u.available(clock.now()));
    clock.advance(6s);  // at most 2 failures ever fall in one 10 s window
  }
}

TEST_CASE("passive health: success does not end a down period early") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(1, 5s);
  u.report_failure(clock.now());
  CHECK_FALSE(u.available(clock.now()));
  u.report_success(clock.now());
  clock.advance(2s);
  u.report_success(clock.now());
  CHECK_FALSE(u.available(clock.now()));
  clock.advance(3s);
  CHECK(u.available(clock.now()));
}

TEST_CASE("passive health: failures while down do not extend the down period") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(2, 10s);
  u.report_failure(clock.now());
  u.report_failure(clock.now());
  CHECK_FALSE(u.available(clock.now()));
  clock.advance(9s);
  u.report_failure(clock.now());  // a request that was already in flight
  clock.advance(1s);
  CHECK(u.available(clock.now()));
}

TEST_CASE("passive health: probation after a down period") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(3, 10s);
  for (int i = 0; i < 3; ++i) u.report_failure(clock.now());
  clock.advance(10s);
  REQUIRE(u.available(clock.now()));

  SUBCASE("first outcome a failure: down again immediately") {
    u.report_failure(clock.now());
    CHECK_FALSE(u.available(clock.now()));
    clock.advance(10s);
    CHECK(u.available(clock.now()));
  }
  SUBCASE("first outcome a success: fully recovered, needs max_fails again") {
    u.report_success(clock.now());
    u.report_failure(clock.now());
    u.report_failure(clock.now());
    CHECK(u.available(clock.now()));
    u.report_failure(clock.now());
    CHECK_FALSE(u.available(clock.now()));
  }
}

TEST_CASE("passive health: max_fails == 0 disables it") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(0, 10s);
  for (int i = 0; i < 100; ++i) u.report_failure(clock.now());
  CHECK(u.available(clock.now()));
  CHECK_FALSE(u.passively_down(clock.now()));
}

TEST_CASE("active health: fall consecutive failures take it down, rise consecutive successes bring it back") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(1, 10s);
  lb::ActiveHealthConfig cfg;
  cfg.rise = 2;
  cfg.fall = 3;
  REQUIRE(u.active_up());

  CHECK_FALSE(u.report_probe(false, cfg));
  CHECK_FALSE(u.report_probe(false, cfg));
  CHECK_FALSE(u.report_probe(true, cfg));   // streak broken
  CHECK_FALSE(u.report_probe(false, cfg));
  CHECK_FALSE(u.report_probe(false, cfg));
  CHECK(u.active_up());
  CHECK(u.report_probe(false, cfg));        // third in a row: flips
  CHECK_FALSE(u.active_up());
  CHECK_FALSE(u.available(clock.now()));
  CHECK_FALSE(u.report_probe(false, cfg));  // already down: no change

  CHECK_FALSE(u.report_probe(true, cfg));
  CHECK_FALSE(u.report_probe(false, cfg));  // streak broken
  CHECK_FALSE(u.report_probe(true, cfg));
  CHECK(u.report_probe(true, cfg));         // second in a row: flips
  CHECK(u.active_up());
  CHECK(u.available(clock.now()));
  CHECK_FALSE(u.report_probe(true, cfg));
}

TEST_CASE("active health: starting down, rise/fall of 1, and independence from passive") {
  lb::ManualTimeSource clock;
  auto u = make_upstream(1, 10s);
  lb::ActiveHealthConfig cfg;
  cfg.rise = 1;
  cfg.fall = 1;
  u.set_active_up(false);
  CHECK_FALSE(u.available(clock.now()));
  CHECK(u.report_probe(true, cfg));
  CHECK(u.available(clock.now()));
  CHECK(u.report_probe(false, cfg));
  CHECK_FALSE(u.active_up());

  // rise/fall of 0 behave as 1.
  cfg.rise = 0;
  CHECK(u.report_probe(true, cfg));

  // Passively down but actively up: not available; active_up() still true.
  u.report_failure(clock.now());
  CHECK(u.active_up());
  CHECK_FALSE(u.available(clock.now()));
}

TEST_CASE("in-flight accounting") {
  auto u = make_upstream(1, 1s);
  CHECK(u.in_flight() == 0);
  u.begin_request();
  u.begin_request();
  CHECK(u.in_flight() == 2);
  u.end_request();
  CHECK(u.in_flight() == 1);
  CHECK(u.address() == "10.0.0.1:9000");
  CHECK(u.weight() == 1);
}

TEST_CASE("active health coming back up clears a passive take-down") {
  using namespace std::chrono_literals;
  userkey::lb::ManualTimeSource clock;
  userkey::lb::UpstreamConfig cfg;
  cfg.host = "127.0.0.1";
  cfg.port = 1;
  userkey::lb::Upstream up(cfg, {1, 10s});
  userkey::lb::ActiveHealthConfig active;
  active.rise = 2;
  active.fall = 2;
  up.report_failure(clock.now());
  CHECK_FALSE(up.available(clock.now()));
  CHECK_FALSE(up.report_probe(false, active));
  CHECK(up.report_probe(false, active));  // fall: down
  CHECK_FALSE(up.report_probe(true, active));
  CHECK(up.report_probe(true, active));  // rise: up
  clock.advance(1s);                     // well within fail_timeout
  CHECK(up.available(clock.now()));
}

TEST_CASE("in-flight: counted while a request's scope lives, however it is left") {
  lb::Upstream u(record("10.0.0.1", 9000, 1, 0, false), lb::PassiveHealthConfig{});
  try {
    const lb::Upstream::InFlight counted(u);
    CHECK(u.in_flight() == 1);
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  CHECK(u.in_flight() == 0);
}
