// Unit tests for lib/lb/config_check.cpp: userkey-lb --check-config. Names
// resolve through a fake resolver; nothing listens or connects.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "userkey/lb/config_check.hpp"

namespace lb = userkey::lb;
using userkey::SettingValues;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// backend-N.local resolves to 10.0.0.N; nothing else does. Counts lookups.
struct FakeDns {
  std::vector<std::string> asked;
  lb::HostResolver resolver() {
    return [this](const std::string& host, std::uint16_t) -> std::vector<std::string> {
      asked.push_back(host);
      if (host.rfind("backend-", 0) == 0 && host.ends_with(".local")) return {"10.0.0." + host.substr(8, 1)};
      return {};
    };
  }
};

std::string check(const std::optional<std::filesystem::path>& file, const SettingValues& given, FakeDns& dns) {
  return lb::check_proxy_config(file, given, lb::PolicyRegistry::with_builtins(), dns.resolver());
}

template <class F>
std::string failure(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("a good configuration: every source merged, names resolved, the summary") {
  userkey::test::TempDir dir;
  const auto file = dir.path() / "lb.toml";
  std::ofstream(file) << "policy = \"least_connections\"\n"
                         "upstreams = [\"backend-1.local:5000\", \"backend-2.local:5000\", \"127.0.0.1:5003\"]\n";
  FakeDns dns;
  CHECK(check(file, {}, dns) ==
        "3 upstreams, policy least_connections, listen 127.0.0.1:8080, TLS off, admin 127.0.0.1:9100");
  CHECK(dns.asked == std::vector<std::string>{"backend-1.local", "backend-2.local"});  // IP literals never asked
  // Flags and environment (CommandLine::given()) on top of the file.
  SettingValues given;
  given.set("policy", "random").set("listen", "[::1]:8081").set("admin", "off").set_list("upstreams",
                                                                                        {"127.0.0.1:1"});
  CHECK(check(file, given, dns) == "1 upstream, policy random, listen [::1]:8081, TLS off, admin off");
}

TEST_CASE("a bad value in the file: file:line and the key") {
  userkey::test::TempDir dir;
  const auto file = dir.path() / "lb.toml";
  std::ofstream(file) << "upstreams = [\"127.0.0.1:1\"]\n\n[health]\nrise = 0\n";
  FakeDns dns;
  CHECK(failure([&] { check(file, {}, dns); }) ==
        file.string() + ":4: health.rise: must be between 1 and 1000, got 0");
}

TEST_CASE("an upstream name that does not resolve fails the check") {
  FakeDns dns;
  SettingValues given;
  given.set_list("upstreams", {"backend-1.local:5000", "nowhere.invalid:5000"});
  CHECK(failure([&] { check(std::nullopt, given, dns); }) == "cannot resolve upstream nowhere.invalid:5000");
}

TEST_CASE("TLS files are loaded: a missing key or an unusable certificate names the setting and the file") {
  userkey::test::TempDir dir;
  const auto cert = dir.path() / "cert.pem";
  std::ofstream(cert) << "not a certificate\n";
  const auto missing_key = dir.path() / "missing-key.pem";
  FakeDns dns;
  SettingValues given;
  given.set_list("upstreams", {"127.0.0.1:1"})
      .set("tls.listen", "127.0.0.1:8443")
      .set("tls.cert", cert.string())
      .set("tls.key", missing_key.string());
  const auto what = failure([&] { check(std::nullopt, given, dns); });
  CHECK_MESSAGE(what.rfind("tls.key: '" + missing_key.string() + "': cannot read", 0) == 0, what);
  const auto key = dir.path() / "key.pem";
  std::ofstream(key) << "not a key either\n";
  given.set("tls.key", key.string());
  const auto unusable = failure([&] { check(std::nullopt, given, dns); });
  CHECK_MESSAGE(unusable.rfind("tls.cert: '" + cert.string() + "': not a usable", 0) == 0, unusable);
  given.set("tls.key", "");
  CHECK(failure([&] { check(std::nullopt, given, dns); }) == "tls.key: required with tls.listen");
}

TEST_CASE("what start() would refuse: a listen host name, an unresolvable admin name, a bad log file") {
  userkey::test::TempDir dir;
  FakeDns dns;
  lb::ProxyConfig cfg;
  cfg.upstreams.push_back({});
  cfg.upstreams.back().host = "127.0.0.1";
  cfg.upstreams.back().port = 1;
  const auto registry = lb::PolicyRegistry::with_builtins();
  cfg.listen_host = "backend-1.local";
  CHECK(failure([&] { lb::check_proxy_config(cfg, registry, dns.resolver()); }) ==
        "listen: 'backend-1.local' is not an IP address");
  cfg.listen_host = "127.0.0.1";
  cfg.admin_host = "backend-2.local";  // a name is fine where it resolves
  CHECK(contains(lb::check_proxy_config(cfg, registry, dns.resolver()), "admin backend-2.local:9100"));
  cfg.admin_host = "nowhere.invalid";
  CHECK(failure([&] { lb::check_proxy_config(cfg, registry, dns.resolver()); }) ==
        "admin: cannot resolve 'nowhere.invalid'");
  cfg.admin_host = "127.0.0.1";
  cfg.access_log_file = (dir.path() / "access.log").string();
  CHECK_FALSE(lb::check_proxy_config(cfg, registry, dns.resolver()).empty());
  CHECK_FALSE(std::filesystem::exists(cfg.access_log_file));  // a check creates no file
  cfg.log_file = (dir.path() / "no" / "lb.log").string();
  CHECK(failure([&] { lb::check_proxy_config(cfg, registry, dns.resolver()); }).rfind("log_file: cannot open", 0) ==
        0);
  cfg.log_file.clear();
  cfg.policy = "fastest";  // a config built in code: the registry decides
  CHECK(contains(failure([&] { lb::check_proxy_config(cfg, registry, dns.resolver()); }), "unknown policy 'fastest'"));
}
