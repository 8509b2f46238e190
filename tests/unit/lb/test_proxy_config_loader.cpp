// Unit tests for lib/lb/proxy_config_loader.cpp: the ProxyConfig TOML loader,
// overrides (SettingValues) and validation.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "userkey/lb/proxy_config_loader.hpp"

namespace lb = userkey::lb;
using namespace std::chrono_literals;

namespace {

constexpr const char* kFull = R"(
listen = "0.0.0.0:8081"
admin = "127.0.0.1:9200"
policy = "consistent_hash"
hash_key = "header:X-User"
retries = 3
threads = 2
access_log = false
log_level = "debug"
connect_timeout = "250ms"
upstream_timeout = 5
upstream_idle_timeout = "1.5s"
queue_size = 64
queue_timeout = "100ms"
drain_timeout = "1m"
resolve_interval = "30s"

[[upstream]]
address = "127.0.0.1:5001"
weight = 3
max_conns = 10
tls = true

[[upstream]]
address = "[::1]:5002"

[health]
max_fails = 4
fail_timeout = "20s"
active = false
path = "/readyz"
interval = "2s"
timeout = "300ms"
rise = 3
fall = 5

[limits]
rate = 12.5
burst = 40
max_conns_per_ip = 8
allow = ["10.0.0.0/8", "::1"]
deny = ["10.1.0.0/16"]
max_header_bytes = 16384
max_body_bytes = 2048
header_timeout = "3s"
idle_timeout = 60
)";

const char* kMinimal = "upstreams = [\"127.0.0.1:5001\"]\n";

// The ConfigError message of loading `text`, or "" when it loads.
std::string load_error(const std::string& text) {
  try {
    (void)lb::load_proxy_config_toml_from_string(text, "test.toml");
  } catch (const lb::ConfigError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A temporary file removed on scope exit.
struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& text) {
    path = std::filesystem::temp_directory_path() /
           ("userkey-test-proxy-config-" + std::to_string(::getpid()) + ".toml");
    std::ofstream(path) << text;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

}  // namespace

TEST_CASE("full TOML example parses into every field") {
  const auto c = lb::load_proxy_config_toml_from_string(kFull);
  CHECK(c.listen_host == "0.0.0.0");
  CHECK(c.listen_port == 8081);
  CHECK(c.admin_host == "127.0.0.1");
  CHECK(c.admin_port == 9200);
  CHECK(c.policy == "consistent_hash");
  CHECK(c.hash_key == "header:X-User");
  CHECK(c.retries == 3);
  CHECK(c.threads == 2);
  CHECK_FALSE(c.access_log);
  CHECK(c.log_level == "debug");
  CHECK(c.connect_timeout == 250ms);
  CHECK(c.upstream_timeout == 5s);
  CHECK(c.upstream_idle_timeout == 1500ms);
  CHECK(c.queue_size == 64);
  CHECK(c.queue_timeout == 100ms);
  CHECK(c.drain_timeout == 60s);
  CHECK(c.resolve_interval == 30s);

  REQUIRE(c.upstreams.size() == 2);
  CHECK(c.upstreams[0].host == "127.0.0.1");
  CHECK(c.upstreams[0].port == 5001);
  CHECK(c.upstreams[0].weight == 3);
  CHECK(c.upstreams[0].max_conns == 10);
  CHECK(c.upstreams[1].host == "::1");
  CHECK(c.upstreams[1].port == 5002);
  CHECK(c.upstreams[1].weight == 1);
  CHECK(c.upstreams[1].max_conns == 64);  // the default
  CHECK(c.upstreams[0].tls);
  CHECK_FALSE(c.upstreams[1].tls);  // the default

  CHECK(c.passive.max_fails == 4);
  CHECK(c.passive.fail_timeout == 20s);
  CHECK_FALSE(c.active.enabled);
  CHECK(c.active.path == "/readyz");
  CHECK(c.active.interval == 2s);
  CHECK(c.active.timeout == 300ms);
  CHECK(c.active.rise == 3);
  CHECK(c.active.fall == 5);

  CHECK(c.limits.rate == doctest::Approx(12.5));
  CHECK(c.limits.burst == doctest::Approx(40));
  CHECK(c.limits.max_conns_per_ip == 8);
  CHECK(c.limits.allow == std::vector<std::string>{"10.0.0.0/8", "::1"});
  CHECK(c.limits.deny == std::vector<std::string>{"10.1.0.0/16"});
  CHECK(c.limits.max_header_bytes == 16384);
  CHECK(c.limits.max_body_bytes == 2048);
  CHECK(c.limits.header_timeout == 3s);
  CHECK(c.limits.idle_timeout == 60s);
}

TEST_CASE("keys left out keep ProxyConfig's defaults") {
  const auto c = lb::load_proxy_config_toml_from_string(kMinimal);
  const lb::ProxyConfig d;
  CHECK(c.listen_host == d.listen_host);
  CHECK(c.listen_port == d.listen_port);
  CHECK(c.admin_port == d.admin_port);
  CHECK(c.policy == d.policy);
  CHECK(c.hash_key == d.hash_key);
  CHECK(c.active.enabled == d.active.enabled);
  CHECK(c.limits.max_header_bytes == d.limits.max_header_bytes);
}

TEST_CASE("both upstream forms") {
  SUBCASE("upstreams = [spec strings]") {
    const auto c = lb::load_proxy_config_toml_from_string(
        R"(upstreams = ["127.0.0.1:5001,weight=2", "127.0.0.1:5002,max_conns=7", "127.0.0.1:5003"])");
    REQUIRE(c.upstreams.size() == 3);
    CHECK(c.upstreams[0].weight == 2);
    CHECK(c.upstreams[1].max_conns == 7);
    CHECK(c.upstreams[2].address() == "127.0.0.1:5003");
  }
  SUBCASE("[[upstream]] tables") {
    const auto c = lb::load_proxy_config_toml_from_string(
        "[[upstream]]\naddress = \"127.0.0.1:5001\"\nweight = 2\n[[upstream]]\naddress = \"127.0.0.1:5002\"\n");
    REQUIRE(c.upstreams.size() == 2);
    CHECK(c.upstreams[0].weight == 2);
    CHECK(c.upstreams[1].address() == "127.0.0.1:5002");
  }
  SUBCASE("not both") {
    const auto e = load_error("upstreams = [\"127.0.0.1:5001\"]\n[[upstream]]\naddress = \"127.0.0.1:5002\"\n");
    CHECK(contains(e, "not both"));
  }
  SUBCASE("table without address") {
    const auto e = load_error("[[upstream]]\nweight = 2\n");
    CHECK(contains(e, "upstream[0]"));
    CHECK(contains(e, "address"));
  }
}

TEST_CASE("durations: strings with units or integer seconds") {
  auto timeout_of = [](const std::string& v) {
    return lb::load_proxy_config_toml_from_string(std::string(kMinimal) + "connect_timeout = " + v + "\n")
        .connect_timeout;
  };
  CHECK(timeout_of("\"250ms\"") == 250ms);
  CHECK(timeout_of("\"2s\"") == 2s);
  CHECK(timeout_of("\"1.5s\"") == 1500ms);
  CHECK(timeout_of("\"5m\"") == 5min);
  CHECK(timeout_of("3") == 3s);

  for (std::string bad : {"\"10x\"", "\"-1s\"", "-3", "1.5", "true", "\"0\"", "0"}) {
    CAPTURE(bad);
    const auto e = load_error(std::string(kMinimal) + "connect_timeout = " + bad + "\n");
    CHECK(contains(e, "connect_timeout"));
    CHECK(contains(e, "test.toml:2"));
  }
}

TEST_CASE("unknown keys are errors naming the key") {
  auto e = load_error(std::string(kMinimal) + "retires = 3\n");
  CHECK(contains(e, "unknown key 'retires'"));
  CHECK(contains(e, "did you mean 'retries'"));
  CHECK(contains(e, "test.toml:2"));

  e = load_error(std::string(kMinimal) + "[health]\nmax_fail = 3\n");
  CHECK(contains(e, "'health.max_fail'"));

  e = load_error(std::string(kMinimal) + "[limits]\nallowed = []\n");
  CHECK(contains(e, "'limits.allowed'"));

  e = load_error("[[upstream]]\naddress = \"127.0.0.1:5001\"\nwieght = 2\n");
  CHECK(contains(e, "'upstream[0].wieght'"));

  e = load_error(std::string(kMinimal) + "[helth]\nrise = 1\n");
  CHECK(contains(e, "unknown key 'helth'"));
  CHECK(contains(e, "did you mean 'health'"));
}

TEST_CASE("bad values are errors naming the key") {
  struct Case {
    const char* toml;
    const char* key;
  };
  const std::string up = kMinimal;
  for (const Case c : {
           Case{"[limits]\nallow = [\"10.0.0.0/33\"]\n", "limits.allow[0]"},
           Case{"[limits]\ndeny = [\"10.0.0.0/8\", \"nope\"]\n", "limits.deny[1]"},
           Case{"[limits]\nmax_header_bytes = 10\n", "limits.max_header_bytes"},
           Case{"[limits]\nrate = -1\n", "limits.rate"},
           Case{"hash_key = \"cookie:x\"\n", "hash_key"},
           Case{"hash_key = \"query:\"\n", "hash_key"},
           Case{"policy = \"\"\n", "policy"},
           Case{"listen = \"nohost\"\n", "listen"},
           Case{"retries = 99\n", "retries"},
           Case{"retries = \"2\"\n", "retries"},
           Case{"log_level = \"loud\"\n", "log_level"},
           Case{"[health]\nrise = 0\n", "health.rise"},
           Case{"[health]\nfall = 0\n", "health.fall"},
           Case{"[health]\npath = \"healthz\"\n", "health.path"},
           Case{"[health]\nactive = \"yes\"\n", "health.active"},
           Case{"health = 3\n", "health"},
       }) {
    const std::string toml = c.toml;
    CAPTURE(toml);
    const auto e = load_error(up + c.toml);
    CHECK(contains(e, c.key));
    CHECK(contains(e, "test.toml:"));
  }

  for (std::string bad : {"weight = 0", "weight = 1001", "weight = \"2\"", "max_conns = -1", "tls = \"on\""}) {
    CAPTURE(bad);
    const auto e = load_error(std::string("[[upstream]]\naddress = \"127.0.0.1:5001\"\n") + bad + "\n");
    CHECK(contains(e, "upstream[0]."));
  }
  CHECK(contains(load_error(R"(upstreams = ["127.0.0.1:5001,weight=0"])"), "upstreams[0]"));
  CHECK(contains(load_error(R"(upstreams = ["127.0.0.1"])"), "upstreams[0]"));
}

TEST_CASE("no upstream, duplicates and broken TOML are errors") {
  CHECK(contains(load_error(""), "at least one upstream"));
  CHECK(contains(load_error("upstreams = []\n"), "at least one upstream"));
  CHECK(contains(load_error(R"(upstreams = ["127.0.0.1:5001", "127.0.0.1:5001,weight=2"])"), "duplicate"));
  const auto e = load_error("listen = \n");
  CHECK(contains(e, "invalid TOML"));
  CHECK(contains(e, "test.toml:1"));
}

TEST_CASE("admin = off disables the admin endpoint") {
  const auto c = lb::load_proxy_config_toml_from_string(std::string(kMinimal) + "admin = \"off\"\n");
  CHECK(c.admin_host.empty());
}

TEST_CASE("validate() checks configurations built in code") {
  lb::ProxyConfig c;
  CHECK_THROWS_AS(lb::validate(c), lb::ConfigError);  // no upstream
  c.upstreams.push_back(lb::UpstreamConfig{"127.0.0.1", 5001, 1, 0});
  CHECK_NOTHROW(lb::validate(c));
  c.upstreams[0].weight = 0;
  CHECK_THROWS_WITH_AS(lb::validate(c), doctest::Contains("upstream[0].weight"), lb::ConfigError);
  c.upstreams[0].weight = 1;
  c.limits.allow = {"300.0.0.1"};
  CHECK_THROWS_WITH_AS(lb::validate(c), doctest::Contains("limits.allow[0]"), lb::ConfigError);
  c.limits.allow.clear();
  c.connect_timeout = 0ms;
  CHECK_THROWS_WITH_AS(lb::validate(c), doctest::Contains("connect_timeout"), lb::ConfigError);
}

TEST_CASE("overrides are applied on top of file values") {
  TempFile file{std::string(kFull)};

  SUBCASE("no overrides: the file as is") {
    const auto c = lb::build_proxy_config(file.path, {});
    CHECK(c.listen_port == 8081);
    CHECK(c.upstreams.size() == 2);
  }
  SUBCASE("given settings win, the rest keep the file's values") {
    userkey::SettingValues o;
    o.set("listen", "127.0.0.1:0");
    o.set_list("upstreams", {"127.0.0.1:6001,weight=5"});
    o.set("retries", "0");
    o.set("health.active", "true");
    o.set("health.rise", "7");
    o.set("connect_timeout", "40ms");
    o.set("resolve_interval", "0");
    o.set_list("limits.deny", {});
    o.set("admin", "off");
    const auto c = lb::build_proxy_config(file.path, o);
    CHECK(c.listen_port == 0);
    REQUIRE(c.upstreams.size() == 1);
    CHECK(c.upstreams[0].address() == "127.0.0.1:6001");
    CHECK(c.upstreams[0].weight == 5);
    CHECK(c.retries == 0);
    CHECK(c.active.enabled);
    CHECK(c.active.rise == 7);
    CHECK(c.connect_timeout == 40ms);
    CHECK(c.resolve_interval == 0ms);
    CHECK(c.limits.deny.empty());
    CHECK(c.admin_host.empty());
    // untouched
    CHECK(c.policy == "consistent_hash");
    CHECK(c.active.fall == 5);
    CHECK(c.limits.allow.size() == 2);
    CHECK(c.upstream_timeout == 5s);
  }
  SUBCASE("no file: defaults plus overrides; the upstream may come from overrides only") {
    userkey::SettingValues o;
    o.set_list("upstreams", {"127.0.0.1:5001", "127.0.0.1:5002"});
    o.set("policy", "least_connections");
    const auto c = lb::build_proxy_config(std::nullopt, o);
    CHECK(c.upstreams.size() == 2);
    CHECK(c.policy == "least_connections");
    CHECK(c.listen_port == 8080);
  }
  SUBCASE("overrides are parsed and validated too") {
    auto error_of = [&](const char* key, const std::vector<std::string>& texts) {
      userkey::SettingValues o;
      o.set_list(key, texts);
      try {
        (void)lb::build_proxy_config(file.path, o);
      } catch (const lb::ConfigError& e) {
        return std::string(e.what());
      }
      return std::string();
    };
    CHECK(error_of("health.fall", {"0"}) == "health.fall: must be between 1 and 1000, got 0");
    CHECK(contains(error_of("upstreams", {"127.0.0.1:5001", "127.0.0.1:5001,weight=x"}), "upstreams[1]: "));
    CHECK(contains(error_of("resolve_interval", {"-1ms"}), "resolve_interval: must not be negative"));
    CHECK(contains(error_of("hash_key", {"bogus"}), "hash_key: "));
    CHECK(contains(error_of("retries", {"1", "2"}), "retries: expected one value"));
    CHECK(contains(error_of("retires", {"1"}), "unknown setting 'retires'"));
    CHECK(contains(error_of("upstreams", {}), "at least one upstream"));
  }
  SUBCASE("a missing file is a ConfigError naming it") {
    const auto missing = file.path.string() + ".missing";
    CHECK_THROWS_WITH_AS(lb::load_proxy_config_toml(missing), doctest::Contains(missing.c_str()), lb::ConfigError);
  }
}

TEST_CASE("settings_needing_restart lists what reload() does not apply") {
  const auto a = lb::load_proxy_config_toml_from_string(kFull);
  auto b = a;
  CHECK(lb::settings_needing_restart(a, b).empty());
  b.upstreams.pop_back();
  b.policy = "round_robin";
  b.active.rise = 9;
  CHECK(lb::settings_needing_restart(a, b).empty());
  b.listen_port = 1;
  b.limits.allow.clear();
  CHECK(lb::settings_needing_restart(a, b) == std::vector<std::string>{"listen", "limits.allow"});
}

#ifdef USERKEY_SOURCE_DIR
TEST_CASE("docker/lb.example.toml loads and spells out the defaults") {
  const auto c = lb::load_proxy_config_toml(std::filesystem::path(USERKEY_SOURCE_DIR) / "docker" / "lb.example.toml");
  REQUIRE(c.upstreams.size() == 3);
  CHECK(c.upstreams[0].address() == "127.0.0.1:5001");
  CHECK(c.upstreams[2].address() == "127.0.0.1:5003");
  // Apart from the upstreams, the example shows the built-in defaults.
  lb::ProxyConfig d;
  d.upstreams = c.upstreams;
  CHECK(lb::settings_needing_restart(d, c).empty());
  CHECK(c.policy == d.policy);
  CHECK(c.hash_key == d.hash_key);
  CHECK(c.retries == d.retries);
  CHECK(c.passive.max_fails == d.passive.max_fails);
  CHECK(c.passive.fail_timeout == d.passive.fail_timeout);
  CHECK(c.active.enabled == d.active.enabled);
  CHECK(c.active.path == d.active.path);
  CHECK(c.active.interval == d.active.interval);
  CHECK(c.active.timeout == d.active.timeout);
  CHECK(c.active.rise == d.active.rise);
  CHECK(c.active.fall == d.active.fall);
}
#endif

TEST_CASE("the lb's config loader refuses non-ASCII text with a located error instead of parsing it") {
  const std::string text = "retries = 1\n\xcc\x8c = 2\n";
  CHECK_THROWS_WITH_AS((void)userkey::lb::load_proxy_config_toml_from_string(text, "lb.toml"),
                       doctest::Contains("lb.toml:2: non-ASCII"), userkey::lb::ConfigError);
  CHECK(userkey::lb::load_proxy_config_toml_from_string("\xEF\xBB\xBFupstreams = [\"127.0.0.1:5001\"]\n", "lb.toml")
            .upstreams.size() == 1);
}
