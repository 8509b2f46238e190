// End-to-end: the real userkey-backend's --version, its userkey_build_info
// gauge, and --check-config (the embedded dump read whole, a missing dump,
// a MongoDB URI that parses while no server is up, bad values by flag and
// environment): exit code, stdout and stderr apart, no password shown.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <userkey/core/build_info.hpp>

#include "support/backend_process.hpp"
#include "support/process.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using Outcome = RunOutcome;

// Runs the backend with `args` to its exit; stdout and stderr apart.
Outcome backend(const std::vector<std::string>& args, std::map<std::string, std::string> env = {}) {
  std::vector<std::string> argv{USERKEY_BACKEND_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  env.try_emplace("MONGOC_DISABLE_SHM", "1");
  return run_to_exit(argv, std::move(env));
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("backend --version: name, version and commit on stdout, exit 0") {
  const auto o = backend({"--version"});
  CHECK(o.rc == 0);
  CHECK(o.out == userkey::version_line("userkey-backend") + "\n");
  CHECK(o.err.empty());
}

TEST_CASE("backend /metrics: userkey_build_info{version,commit} 1") {
  BackendProcess b({"--dump", dump_dir().string(), "--access-log", "false"});
  const std::string sample = "userkey_build_info{version=\"" + std::string(userkey::build_version()) +
                             "\",commit=\"" + std::string(userkey::build_commit()) + "\"} 1\n";
  const auto text = http_get(b.port, "/metrics").body;
  CHECK_MESSAGE(contains(text, "# TYPE userkey_build_info gauge\n"), text);
  CHECK_MESSAGE(contains(text, sample), text);
}

TEST_CASE("backend --check-config: the embedded dump read whole, exit 0 and one line; nothing started") {
  TempDir dir;
  const auto port = free_port();
  const auto log = dir.path() / "backend.log";
  const auto o = backend({"--check-config", "--listen", "127.0.0.1:" + std::to_string(port), "--log-file",
                          log.string()},
                         {{"USERKEY_DUMP", dump_dir().string()}, {"USERKEY_NAME", "backend-7"}});
  CHECK_MESSAGE(o.rc == 0, o.err);
  CHECK(o.out == "userkey-backend: configuration OK (listen 127.0.0.1:" + std::to_string(port) +
                     ", metrics on listen, name backend-7, store bson-file:" +
                     (dump_dir() / "myusers" / "users.bson").string() + " (7 users))\n");
  CHECK(o.err.empty());
  CHECK_FALSE(fs::exists(log));
}

TEST_CASE("backend --check-config: a dump that is missing is exit 2 naming it") {
  const auto o = backend({"--check-config", "--dump", "/no/such/dump.bson"});
  CHECK(o.rc == 2);
  CHECK(o.out.empty());
  CHECK(o.err == "userkey-backend: invalid configuration: dump: dump file /no/such/dump.bson does not exist\n");
}

TEST_CASE("backend --check-config: a MongoDB URI parses while no server is up; no password in the output") {
  const auto closed = free_port();  // nothing listens there
  const auto t0 = std::chrono::steady_clock::now();
  auto o = backend({"--check-config", "--mongo-uri",
                    "mongodb://reader:uri-s3cret@127.0.0.1:" + std::to_string(closed) + "/?authSource=admin"});
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  CHECK_MESSAGE(o.rc == 0, o.err);
  CHECK_MESSAGE(contains(o.out, "mongodb://reader:****@127.0.0.1:" + std::to_string(closed)), o.out);
  CHECK(contains(o.out, "the server is not contacted"));
  CHECK_FALSE(contains(o.out + o.err, "uri-s3cret"));
  // Credentials from mongo_user / mongo_pass, and a URI that does not parse.
  o = backend({"--check-config", "--mongo-uri", "mongodb://127.0.0.1:" + std::to_string(closed) + "/"},
              {{"mongo_user", "reader"}, {"mongo_pass", "env-s3cret"}});
  CHECK(o.rc == 0);
  CHECK_FALSE(contains(o.out + o.err, "env-s3cret"));
  o = backend({"--check-config"}, {{"USERKEY_MONGO_URI", "mongodb://reader:bad-s3cret@host:port/"}});
  CHECK(o.rc == 2);
  CHECK(o.out.empty());
  CHECK_MESSAGE(contains(o.err, "userkey-backend: invalid configuration: mongo_uri: invalid MongoDB URI"), o.err);
  CHECK_FALSE(contains(o.out + o.err, "bad-s3cret"));
}

TEST_CASE("backend --check-config: a bad flag names the flag, a bad environment value the variable") {
  auto o = backend({"--check-config", "--threads", "0"});
  CHECK(o.rc == 2);
  CHECK_MESSAGE(contains(o.err, "--threads: must be between 1 and 4096, got 0"), o.err);
  o = backend({"--check-config"}, {{"USERKEY_THREADS", "0"}});
  CHECK(o.rc == 2);
  CHECK_MESSAGE(contains(o.err, "USERKEY_THREADS (--threads): must be between 1 and 4096, got 0"), o.err);
}
