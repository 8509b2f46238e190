// Unit tests for the lb's settings table: one declaration per setting, from
// which the file keys, flags, environment names, defaults and reload rules
// all come.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "userkey/core/command_line.hpp"
#include "userkey/core/settings_file.hpp"
#include "userkey/lb/proxy_config_loader.hpp"
#include "userkey/lb/proxy_settings.hpp"

namespace lb = userkey::lb;
using namespace std::chrono_literals;

namespace {

// A configuration in which every setting differs from its default.
lb::ProxyConfig everything_changed() {
  lb::ProxyConfig c;
  c.listen_port = 8081;
  c.upstreams = {lb::UpstreamConfig{"127.0.0.1", 5001, 2, 3}};
  c.policy = "random";
  c.hash_key = "ip";
  c.retries = 3;
  c.threads = 2;
  c.admin_host.clear();
  c.admin_port = 0;
  c.passive.max_fails = 4;
  c.passive.fail_timeout = 11s;
  c.active.path = "/readyz";
  c.active.interval = 2s;
  c.active.timeout = 600ms;
  c.active.rise = 3;
  c.active.fall = 4;
  c.active.enabled = false;
  c.outlier.max_ejection_percent = 30;
  c.outlier.panic_threshold_percent = 20;
  c.limits.rate = 1.5;
  c.limits.burst = 3;
  c.limits.max_conns_per_ip = 9;
  c.limits.ipv6_prefix = 56;
  c.limits.allow = {"10.0.0.0/8"};
  c.limits.deny = {"10.1.0.0/16"};
  c.limits.max_header_bytes = 4096;
  c.limits.max_body_bytes = 77;
  c.limits.header_timeout = 6s;
  c.limits.idle_timeout = 31s;
  c.limits.body_timeout = 32s;
  c.limits.max_buffered_body_bytes = 1234567;
  c.limits.max_connections = 12;
  c.limits.tunnel_idle_timeout = 5min;
  c.connect_timeout = 2s;
  c.upstream_timeout = 11s;
  c.upstream_idle_timeout = 3s;
  c.queue_size = 5;
  c.queue_timeout = 3s;
  c.drain_timeout = 1s;
  c.resolve_interval = 0s;
  c.access_log = false;
  c.access_log_format = lb::AccessLogFormat::json;
  c.request_id = false;
  c.log_level = "warn";
  c.log_file = "/var/log/userkey/lb.log";
  c.access_log_file = "/var/log/userkey/access.log";
  c.tls.listen_host = "127.0.0.1";
  c.tls.listen_port = 8443;
  c.tls.cert_file = "/etc/lb/chain.pem";
  c.tls.key_file = "/etc/lb/key.pem";
  c.tls.ticket_rotate = 30min;
  c.tls.upstream_ca_file = "/etc/lb/upstream-ca.pem";
  c.proxy_protocol = true;
  c.trusted_proxies = {"10.0.0.0/8", "192.0.2.1"};
  c.real_ip_header = lb::RealIpHeader::forwarded;
  return c;
}

// The lb's command line, as userkey-lb builds it; returns what was given.
userkey::SettingValues parse(std::vector<const char*> args, std::string* help = nullptr) {
  userkey::CommandLine cli("lb", 40);
  cli.add_settings(lb::proxy_settings({"round_robin", "random"}));
  args.insert(args.begin(), "userkey-lb");
  std::ostringstream out, err;
  const auto rc = cli.parse(static_cast<int>(args.size()), args.data(), out, err);
  if (help != nullptr) *help = out.str();
  REQUIRE_MESSAGE((!rc || help != nullptr), err.str());
  return cli.given();
}

}  // namespace

TEST_CASE("every lb setting has a unique key, flag and USERKEY_LB_ environment name, and help") {
  std::set<std::string> keys, flags, envs;
  for (const auto& s : lb::proxy_settings().settings()) {
    CAPTURE(s.key());
    CHECK(keys.insert(s.key()).second);
    CHECK(flags.insert(s.flag()).second);
    CHECK(envs.insert(s.env()).second);
    CHECK(s.flag().rfind("--", 0) == 0);
    CHECK(s.env().rfind("USERKEY_LB_", 0) == 0);
    CHECK_FALSE(s.help().empty());
    CHECK(s.info().in_file);
  }
  CHECK(keys.size() == 52);
  CHECK(lb::proxy_settings().find("health.rise")->flag() == "--rise");
  CHECK(lb::proxy_settings().find("health.rise")->env() == "USERKEY_LB_RISE");
  CHECK(lb::proxy_settings().find("upstreams")->env() == "USERKEY_LB_UPSTREAM");
}

TEST_CASE("the table covers every field: a config with everything changed differs in every setting") {
  const auto& t = lb::proxy_settings();
  const auto changed = t.changed(lb::ProxyConfig{}, everything_changed());
  CHECK(changed.size() == t.settings().size());
}

TEST_CASE("defaults and values round-trip through text") {
  const auto& t = lb::proxy_settings();
  const lb::ProxyConfig d;
  lb::ProxyConfig c = everything_changed();
  t.apply(c, t.values_of(d));
  CHECK(t.changed(c, d).empty());
  lb::ProxyConfig back;
  t.apply(back, t.values_of(everything_changed()));
  CHECK(t.changed(back, everything_changed()).empty());
  CHECK(back.upstreams.front().max_conns == 3);

  // The defaults are what a default ProxyConfig holds, and pass every rule.
  const auto v = t.values_of(d);
  CHECK(v.find("listen")->front() == "127.0.0.1:8080");
  CHECK(v.find("admin")->front() == "127.0.0.1:9100");
  CHECK(v.find("health.fail_timeout")->front() == "10s");
  CHECK(v.find("health.timeout")->front() == "500ms");
  CHECK(v.find("limits.rate")->front() == "0");
  CHECK(v.find("tls.ticket_rotate")->front() == "60m");
  CHECK(v.find("upstreams")->empty());
  CHECK_NOTHROW(t.check(d));
}

TEST_CASE("reloadable settings are exactly what ProxyServer::reload applies") {
  // reload(): upstreams, policy, hash key, health (passive and active),
  // retries, resolve_interval and the TLS certificate and key; everything
  // else needs a restart.
  const std::set<std::string> expected{"upstreams",          "policy",          "hash_key",       "retries",
                                       "resolve_interval",   "health.max_fails", "health.fail_timeout",
                                       "health.active",      "health.path",     "health.interval", "health.timeout",
                                       "health.rise",        "health.fall",     "health.max_ejection_percent",
                                       "health.panic_threshold_percent", "tls.cert", "tls.key"};
  std::set<std::string> reloadable;
  for (const auto& s : lb::proxy_settings().settings())
    if (s.reloadable()) reloadable.insert(s.key());
  CHECK(reloadable == expected);

  // settings_needing_restart() lists every other setting when all change.
  const auto pending = lb::settings_needing_restart(lb::ProxyConfig{}, everything_changed());
  CHECK(pending.size() == lb::proxy_settings().settings().size() - expected.size());
  for (const auto& key : pending) CHECK(expected.count(key) == 0);
}

TEST_CASE("the policy names of a registry make the policy setting a choice") {
  const auto t = lb::proxy_settings({"round_robin", "random"});
  CHECK(t.find("policy")->type_name() == "TEXT:{round_robin,random}");
  CHECK_NOTHROW(t.find("policy")->check_text("random"));
  CHECK_THROWS_AS(t.find("policy")->check_text("fastest"), userkey::ValueError);
  CHECK_NOTHROW(lb::proxy_settings().find("policy")->check_text("my_own_policy"));
  CHECK_THROWS_AS(lb::proxy_settings().find("policy")->check_text(""), userkey::ValueError);
}

TEST_CASE("--help lists every setting's flag, type, default and environment name") {
  std::string help;
  (void)parse({"--help"}, &help);
  const auto& t = lb::proxy_settings();
  const auto defaults = t.values_of(lb::ProxyConfig{});
  for (const auto& s : t.settings()) {
    CAPTURE(s.key());
    const auto* d = defaults.find(s.key());
    std::string expected = s.flag();
    if (!s.info().negating_flag) {
      expected += " " + (s.key() == "policy" ? std::string("TEXT:{round_robin,random}") : s.type_name());
      if (!d->empty() && !d->front().empty()) expected += "=" + d->front();  // (an empty default is not shown)
      if (s.is_list()) expected += " ...";
    }
    expected += " (Env:" + s.env() + ")";
    CHECK(help.find(expected) != std::string::npos);
    CHECK(help.find(s.help()) != std::string::npos);
  }
  CHECK(help.find("--max-header-bytes UINT:INT in [1024 - 65535]=8192 (Env:USERKEY_LB_MAX_HEADER_BYTES)") !=
        std::string::npos);
}

TEST_CASE("flags win over the environment, which wins over the file") {
  const auto file = std::filesystem::temp_directory_path() /
                    ("userkey-test-precedence-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(file) << "upstreams = [\"127.0.0.1:5001\"]\nretries = 1\nthreads = 3\n[health]\nrise = 3\n";
  ::setenv("USERKEY_LB_RETRIES", "2", 1);
  ::setenv("USERKEY_LB_RISE", "4", 1);
  ::setenv("USERKEY_LB_UPSTREAM", "127.0.0.1:6001 127.0.0.1:6002,weight=2", 1);
  ::setenv("USERKEY_LB_NO_ACTIVE_HEALTH", "true", 1);
  const auto given = parse({"--rise", "5", "--policy", "random"});
  for (const char* name : {"USERKEY_LB_RETRIES", "USERKEY_LB_RISE", "USERKEY_LB_UPSTREAM", "USERKEY_LB_NO_ACTIVE_HEALTH"})
    ::unsetenv(name);
  const auto c = lb::build_proxy_config(file, given);
  std::filesystem::remove(file);
  CHECK(c.threads == 3);       // file over default
  CHECK(c.retries == 2);       // environment over file
  CHECK(c.active.rise == 5);   // flag over environment over file
  CHECK(c.policy == "random");  // flag over default
  CHECK_FALSE(c.active.enabled);
  REQUIRE(c.upstreams.size() == 2);  // the environment's list replaces the file's
  CHECK(c.upstreams[1].address() == "127.0.0.1:6002");
  CHECK(c.upstreams[1].weight == 2);
}

#ifdef USERKEY_SOURCE_DIR
TEST_CASE("docker/lb.example.toml spells out every setting") {
  const auto path = std::filesystem::path(USERKEY_SOURCE_DIR) / "docker" / "lb.example.toml";
  const auto& t = lb::proxy_settings();
  // The example uses [[upstream]] tables; read the rest as table settings.
  std::string text = userkey::read_config_file(path);
  text = text.substr(0, text.find("\n[[upstream]]")) + text.substr(text.find("\n[health]"));
  const auto v = userkey::read_settings_toml(text, path.string(), t.settings());
  for (const auto& s : t.settings()) {
    CAPTURE(s.key());
    CHECK((v.contains(s.key()) || s.key() == "upstreams"));
  }
}

// scripts/gen-configuration-doc.py writes these lists from its reading of the
// table's source (the docs_configuration_current test); this checks the
// written lists against the compiled table's reloadable() marks.
TEST_CASE("The reload lists in docs/operations.md and docker/lb.example.toml follow the settings table") {
  const auto block = [](const std::string& file, const std::string& begin, const std::string& end) {
    const std::string text = userkey::read_config_file(std::filesystem::path(USERKEY_SOURCE_DIR) / file);
    const auto b = text.find(begin);
    const auto e = text.find(end);
    REQUIRE(b != std::string::npos);
    REQUIRE(e != std::string::npos);
    return text.substr(b, e - b);
  };
  struct Lists {
    std::string file, applied, restart;
  };
  const std::string md = block("docs/operations.md", "<!-- begin reload lists", "<!-- end reload lists");
  const std::string toml = block("docker/lb.example.toml", "# (begin reload lists", "# (end reload lists");
  const auto split_at = [](const std::string& text, const std::string& at) {
    const auto i = text.find(at);
    REQUIRE(i != std::string::npos);
    return std::pair(text.substr(0, i), text.substr(i));
  };
  const auto [md_applied, md_restart] = split_at(md, "* Logged as");
  const auto [toml_applied, toml_restart] = split_at(toml, "# Need a restart");
  const std::vector<Lists> lists = {{"docs/operations.md", md_applied, md_restart},
                                    {"docker/lb.example.toml", toml_applied, toml_restart}};
  const auto has = [](const std::string& text, const std::string& key, bool quoted) {
    const std::string word = quoted ? "`" + key + "`" : " " + key;
    for (auto at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
      const char after = at + word.size() < text.size() ? text[at + word.size()] : '\n';
      if (quoted || after == ',' || after == '.') return true;
    }
    return false;
  };
  for (const auto& l : lists) {
    const bool quoted = l.file.ends_with(".md");
    for (const auto& s : lb::proxy_settings().settings()) {
      const std::string key = s.key() == "upstreams" ? "[[upstream]]" : s.key();
      CAPTURE(l.file);
      CAPTURE(key);
      CHECK(has(s.reloadable() ? l.applied : l.restart, key, quoted));
      CHECK_FALSE(has(s.reloadable() ? l.restart : l.applied, key, quoted));
    }
  }
}
#endif

TEST_CASE("access_log_format is text or json; request_id is a boolean (on/off)") {
  const auto& t = lb::proxy_settings();
  lb::ProxyConfig c;
  CHECK(c.access_log_format == lb::AccessLogFormat::text);
  CHECK(c.request_id);
  t.apply(c, userkey::SettingValues().set("access_log_format", "json").set("request_id", "off"));
  CHECK(c.access_log_format == lb::AccessLogFormat::json);
  CHECK_FALSE(c.request_id);
  CHECK(t.values_of(c).find("access_log_format")->front() == "json");
  t.apply(c, userkey::SettingValues().set("request_id", "on"));
  CHECK(c.request_id);
  CHECK_THROWS_AS(t.apply(c, userkey::SettingValues().set("access_log_format", "xml")), userkey::ConfigError);
  CHECK_THROWS_AS(t.apply(c, userkey::SettingValues().set("access_log_format", "JSON")), userkey::ConfigError);
  CHECK(t.find("access_log_format")->env() == "USERKEY_LB_ACCESS_LOG_FORMAT");
  CHECK(t.find("request_id")->env() == "USERKEY_LB_REQUEST_ID");
}

TEST_CASE("TLS: --tls-listen, --tls-cert, --tls-key (and [tls] in the file); listen may be off, not both") {
  const auto& t = lb::proxy_settings();
  CHECK(t.find("tls.listen")->flag() == "--tls-listen");
  CHECK(t.find("tls.listen")->env() == "USERKEY_LB_TLS_LISTEN");
  CHECK(t.find("tls.cert")->env() == "USERKEY_LB_TLS_CERT");
  CHECK(t.find("tls.key")->env() == "USERKEY_LB_TLS_KEY");
  lb::ProxyConfig c;
  c.upstreams = {lb::UpstreamConfig{"127.0.0.1", 5001, 1, 0}};
  CHECK(c.tls.listen_host.empty());  // off by default
  CHECK(t.values_of(c).find("tls.listen")->front() == "off");
  t.apply(c, parse({"--tls-listen", "127.0.0.1:8443", "--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--listen",
                    "off"}));
  CHECK(c.tls.listen_host == "127.0.0.1");
  CHECK(c.tls.listen_port == 8443);
  CHECK(c.tls.cert_file == "/c.pem");
  CHECK(c.tls.key_file == "/k.pem");
  CHECK(c.listen_host.empty());
  CHECK_NOTHROW(lb::validate(c));

  auto without = [&](auto change) {
    lb::ProxyConfig d = c;
    change(d);
    return d;
  };
  CHECK_THROWS_WITH_AS(lb::validate(without([](lb::ProxyConfig& d) { d.tls.cert_file.clear(); })),
                       doctest::Contains("tls.cert: required with tls.listen"), lb::ConfigError);
  CHECK_THROWS_WITH_AS(lb::validate(without([](lb::ProxyConfig& d) { d.tls.key_file.clear(); })),
                       doctest::Contains("tls.key: required with tls.listen"), lb::ConfigError);
  CHECK_THROWS_WITH_AS(lb::validate(without([](lb::ProxyConfig& d) { d.tls.listen_host.clear(); })),
                       doctest::Contains("listen: listen and tls.listen are both off"), lb::ConfigError);
  // Without a TLS listener the files are not needed.
  CHECK_NOTHROW(lb::validate(without([](lb::ProxyConfig& d) {
    d.tls = {};
    d.listen_host = "127.0.0.1";
  })));
}
