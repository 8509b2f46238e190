// End-to-end: the real userkey-lb's --version, its userkey_build_info gauge,
// and --check-config (a good configuration, a bad TOML value, a missing TLS
// key file, an upstream name that does not resolve, a bad environment
// value): exit code, stdout and stderr apart, nothing started or written.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <userkey/core/build_info.hpp>

#include "support/lb_process.hpp"
#include "support/process.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using Outcome = RunOutcome;

// Runs the lb with `args` to its exit; stdout and stderr apart.
Outcome lb(const std::vector<std::string>& args, std::map<std::string, std::string> env = {}) {
  std::vector<std::string> argv{USERKEY_LB_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_to_exit(argv, std::move(env));
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("lb --version: name, version and commit on stdout, exit 0") {
  const auto o = lb({"--version"});
  CHECK(o.rc == 0);
  CHECK(o.out == userkey::version_line("userkey-lb") + "\n");
  CHECK(o.out.rfind("userkey-lb 0.", 0) == 0);
  CHECK(o.err.empty());
  CHECK(lb({"--upstream", "127.0.0.1:1", "--version"}).out == o.out);  // whatever else is given
}

TEST_CASE("lb /metrics: userkey_build_info{version,commit} 1") {
  LbProcess p({"--upstream", "127.0.0.1:1", "--no-active-health"});
  const std::string sample = "userkey_build_info{version=\"" + std::string(userkey::build_version()) +
                             "\",commit=\"" + std::string(userkey::build_commit()) + "\"} 1\n";
  const auto text = p.metrics();
  CHECK_MESSAGE(contains(text, "# TYPE userkey_build_info gauge\n"), text);
  CHECK_MESSAGE(contains(text, sample), text);
}

TEST_CASE("lb --check-config: a good configuration from file, environment and flags is exit 0 and one line") {
  TempDir dir;
  const auto file = dir.path() / "lb.toml";
  std::ofstream(file) << "policy = \"least_connections\"\n"
                         "access_log_file = \"" << (dir.path() / "access.log").string() << "\"\n"
                         "[[upstream]]\naddress = \"127.0.0.1:5001\"\n"
                         "[[upstream]]\naddress = \"localhost:5002\"\n"
                         "[[upstream]]\naddress = \"127.0.0.1:5003\"\nweight = 2\n";
  const auto port = free_port();
  const auto log = dir.path() / "lb.log";
  const auto o = lb({"--check-config", "--config", file.string(), "--listen", "127.0.0.1:" + std::to_string(port),
                     "--log-file", log.string()},
                    {{"USERKEY_LB_ADMIN", "off"}});
  CHECK_MESSAGE(o.rc == 0, o.err);
  CHECK(o.out == "userkey-lb: configuration OK (3 upstreams, policy least_connections, listen 127.0.0.1:" +
                     std::to_string(port) + ", TLS off, admin off)\n");
  CHECK(o.err.empty());
  // Nothing was started or written: no log file, no access log file.
  CHECK_FALSE(fs::exists(log));
  CHECK_FALSE(fs::exists(dir.path() / "access.log"));
}

TEST_CASE("lb --check-config: a bad TOML value is exit 2 naming file:line and the key, on stderr") {
  TempDir dir;
  const auto file = dir.path() / "lb.toml";
  std::ofstream(file) << "upstreams = [\"127.0.0.1:5001\"]\n"
                         "retries = 2\n"
                         "\n"
                         "[health]\n"
                         "interval = \"soon\"\n";
  const auto o = lb({"--check-config", "--config", file.string()});
  CHECK(o.rc == 2);
  CHECK(o.out.empty());
  CHECK_MESSAGE(contains(o.err, "userkey-lb: invalid configuration: " + file.string() + ":5: health.interval: "),
                o.err);
}

TEST_CASE("lb --check-config: a missing TLS key file is exit 2 naming the file") {
  TempDir dir;
  const auto cert = dir.path() / "cert.pem";
  std::ofstream(cert) << "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
  const auto key = dir.path() / "missing.key";
  const auto o = lb({"--check-config", "--upstream", "127.0.0.1:5001", "--tls-listen", "127.0.0.1:8443",
                     "--tls-cert", cert.string(), "--tls-key", key.string()});
  CHECK(o.rc == 2);
  CHECK(o.out.empty());
  CHECK_MESSAGE(contains(o.err, "tls.key: '" + key.string() + "': cannot read"), o.err);
}

TEST_CASE("lb --check-config: an upstream name that does not resolve is exit 2 naming it") {
  const auto o = lb({"--check-config", "--upstream", "127.0.0.1:5001", "--upstream", "backend-9.userkey.invalid:5000"});
  CHECK(o.rc == 2);
  CHECK(o.out.empty());
  CHECK_MESSAGE(contains(o.err, "cannot resolve upstream backend-9.userkey.invalid:5000"), o.err);
}

TEST_CASE("lb --check-config: a bad flag names the flag, a bad environment value the variable") {
  auto o = lb({"--check-config", "--upstream", "127.0.0.1:5001", "--retries", "99"});
  CHECK(o.rc == 2);
  CHECK_MESSAGE(contains(o.err, "--retries: must be between 0 and 10, got 99"), o.err);
  o = lb({"--check-config", "--upstream", "127.0.0.1:5001"}, {{"USERKEY_LB_RETRIES", "99"}});
  CHECK(o.rc == 2);
  CHECK_MESSAGE(contains(o.err, "USERKEY_LB_RETRIES (--retries): must be between 0 and 10, got 99"), o.err);
  // The same words as a start gets, and the same exit code.
  const auto start = lb({"--upstream", "127.0.0.1:5001"}, {{"USERKEY_LB_RETRIES", "99"}});
  CHECK(start.rc == 2);
  CHECK(start.err == o.err);
}
