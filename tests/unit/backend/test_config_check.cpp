// Unit tests for lib/backend/config_check.cpp: userkey-backend
// --check-config. The dump is the committed one; MongoDB URIs point at
// closed ports: a check never contacts the server.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <string>

#include "support/process.hpp"
#include "userkey/backend/config_check.hpp"

using userkey::BackendConfig;
using userkey::check_backend_config;
using userkey::ConfigError;
using userkey::SettingValues;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// An environment with only `vars` (mongo_user / mongo_pass).
userkey::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

std::string failure(const SettingValues& given, const userkey::EnvLookup& env = env_of({})) {
  try {
    check_backend_config(given, env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("the embedded dump: read whole, its users counted in the summary") {
  SettingValues given;
  given.set("dump", userkey::test::dump_dir().string()).set("listen", "127.0.0.1:5001").set("name", "backend-1");
  const auto summary = check_backend_config(given, env_of({}));
  CHECK(summary == "listen 127.0.0.1:5001, metrics on listen, name backend-1, store bson-file:" +
                       (userkey::test::dump_dir() / "myusers" / "users.bson").string() + " (7 users)");
  given.set("admin", "127.0.0.1:9101");
  CHECK(contains(check_backend_config(given, env_of({})), "metrics on admin 127.0.0.1:9101"));
}

TEST_CASE("a dump that is missing or does not parse: the setting key and the file") {
  userkey::test::TempDir dir;
  SettingValues given;
  given.set("dump", (dir.path() / "none.bson").string());
  CHECK(failure(given) == "dump: dump file " + (dir.path() / "none.bson").string() + " does not exist");
  std::ofstream(dir.path() / "bad.bson") << "not bson at all";
  given.set("dump", (dir.path() / "bad.bson").string());
  const auto bad = failure(given);
  CHECK(bad.rfind("dump: dump file " + (dir.path() / "bad.bson").string() + " is corrupt", 0) == 0);
  given.set("dump", dir.path().string());  // a directory without users.bson
  CHECK(contains(failure(given), "holds neither"));
}

TEST_CASE("MongoDB: the URI parsed, the server not contacted, no password in the summary") {
  SettingValues given;
  given.set("mongo_uri", "mongodb://reader:s3cret-pw@127.0.0.1:1/?authSource=admin");
  const auto t0 = std::chrono::steady_clock::now();
  const auto summary = check_backend_config(given, env_of({}));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));  // no server selection timeout waited
  CHECK(contains(summary, "mongodb://reader:****@127.0.0.1:1/"));
  CHECK(contains(summary, "the server is not contacted"));
  CHECK_FALSE(contains(summary, "s3cret"));
  // Credentials from mongo_user / mongo_pass never show either.
  given.set("mongo_uri", "mongodb://127.0.0.1:1/");
  const auto from_env = check_backend_config(given, env_of({{"mongo_user", "reader"}, {"mongo_pass", "hunter2-pw"}}));
  CHECK_FALSE(contains(from_env, "hunter2"));
  // A raw '@' in the password (the driver accepts it): none of it shows.
  given.set("mongo_uri", "mongodb://reader:s3c@ret-pw@127.0.0.1:1/");
  const auto raw_at = check_backend_config(given, env_of({}));
  CHECK_FALSE(contains(raw_at, "s3c"));
  CHECK_FALSE(contains(raw_at, "ret-pw"));
}

TEST_CASE("a MongoDB URI that does not parse: the setting key, and the URI never quoted") {
  SettingValues given;
  given.set("mongo_uri", "mongodb://reader:pw-secret@host:notaport/");
  const auto what = failure(given);
  CHECK(what.rfind("mongo_uri: invalid MongoDB URI", 0) == 0);
  CHECK_FALSE(contains(what, "pw-secret"));
  given.set("mongo_uri", "http://nope");
  CHECK(failure(given).rfind("mongo_uri: invalid MongoDB URI", 0) == 0);
}

TEST_CASE("a log file a start could not open fails the check; settings are checked by their rules") {
  userkey::test::TempDir dir;
  SettingValues given;
  given.set("dump", userkey::test::dump_dir().string()).set("log_file", (dir.path() / "no" / "b.log").string());
  CHECK(failure(given).rfind("log_file: cannot open log file", 0) == 0);
  BackendConfig cfg;
  cfg.dump = userkey::test::dump_dir().string();
  cfg.server.threads = 0;  // set in code, past the flag's rule
  CHECK_THROWS_AS(check_backend_config(cfg, env_of({})), ConfigError);
}
