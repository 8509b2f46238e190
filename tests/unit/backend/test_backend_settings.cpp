// Unit tests for the backend's settings table: the flags, environment names
// and defaults userkey-backend has always had, from one declaration each.
#include <doctest/doctest.h>

#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "userkey/backend/backend_settings.hpp"
#include "userkey/core/command_line.hpp"

using namespace std::chrono_literals;
using userkey::BackendConfig;
using userkey::backend_settings;

namespace {

std::string help_text() {
  userkey::CommandLine cli("backend", 34);
  cli.add_settings(backend_settings());
  const char* argv[] = {"userkey-backend", "--help"};
  std::ostringstream out, err;
  REQUIRE(cli.parse(2, argv, out, err) == 0);
  return out.str();
}

}  // namespace

TEST_CASE("the backend's flags and USERKEY_ environment names, in --help order") {
  std::vector<std::string> flags;
  std::set<std::string> keys, envs;
  for (const auto& s : backend_settings().settings()) {
    flags.push_back(s.flag());
    CHECK(keys.insert(s.key()).second);
    CHECK(envs.insert(s.env()).second);
    CHECK_FALSE(s.help().empty());
  }
  CHECK(flags == std::vector<std::string>{"--listen", "--admin", "--name", "--dump", "--mongo-uri", "--db", "--collection",
                                          "--mongo-timeout", "--mongo-pool", "--cache-ttl", "--negative-ttl", "--stale-ttl", "--cache-size",
                                          "--threads", "--backlog", "--access-log", "--log-level", "--log-file"});
  CHECK(backend_settings().find("listen")->env() == "USERKEY_LISTEN");
  CHECK(backend_settings().find("mongo_uri")->env() == "USERKEY_MONGO_URI");
}

TEST_CASE("--help shows the defaults of BackendConfig, the exclusion and where credentials come from") {
  const auto help = help_text();
  for (const char* line :
       {"--listen TEXT:HOST:PORT=127.0.0.1:5001 (Env:USERKEY_LISTEN)", "--name TEXT (Env:USERKEY_NAME)",
        "--dump TEXT=dump (Env:USERKEY_DUMP) Excludes: --mongo-uri", "--mongo-uri TEXT (Env:USERKEY_MONGO_URI) Excludes: --dump",
        "--db TEXT=myusers (Env:USERKEY_DB)", "--collection TEXT=users (Env:USERKEY_COLLECTION)",
        "--mongo-timeout TEXT:DURATION=400ms (Env:USERKEY_MONGO_TIMEOUT)",
        "--mongo-pool UINT:INT in [1 - 4096]=16 (Env:USERKEY_MONGO_POOL)", "--cache-ttl TEXT:DURATION=30s",
        "--negative-ttl TEXT:DURATION=2s", "--stale-ttl TEXT:DURATION=5m (Env:USERKEY_STALE_TTL)", "--cache-size UINT=10000", "--threads UINT:INT in [1 - 4096]=128",
        "--backlog INT:INT in [1 - 65535]=4096", "--admin TEXT:HOST:PORT|off=off (Env:USERKEY_ADMIN)", "--access-log BOOLEAN=true", "--log-level TEXT:{trace,", "mongo_user / mongo_pass"}) {
    CAPTURE(line);
    CHECK(help.find(line) != std::string::npos);
  }
}

TEST_CASE("the table covers every field and round-trips") {
  const auto& t = backend_settings();
  BackendConfig c;
  c.server.host = "0.0.0.0";
  c.server.admin = userkey::HostPort{"127.0.0.1", 9200};
  c.name = "b";
  c.dump = "d";
  c.mongo_uri = "mongodb://h/";
  c.database = "x";
  c.collection = "y";
  c.mongo_timeout = 1s;
  c.mongo_pool = 3;
  c.cache.ttl = 0s;
  c.cache.negative_ttl = 1s;
  c.cache.stale_ttl = 0s;
  c.cache.capacity = 5;
  c.server.threads = 4;
  c.server.backlog = 16;
  c.server.access_log = false;
  c.log_level = "warn";
  c.log_file = "/var/log/userkey/backend.log";
  CHECK(t.changed(BackendConfig{}, c).size() == t.settings().size());
  BackendConfig back;
  t.apply(back, t.values_of(c));
  CHECK(t.changed(back, c).empty());
  CHECK(back.server.admin->port == 9200);
  CHECK_THROWS_WITH_AS(t.apply(back, userkey::SettingValues().set("mongo_timeout", "0")),
                       "mongo_timeout: must be greater than zero", userkey::ConfigError);
}

TEST_CASE("repository_options: the dump, or MongoDB with the timeout and credentials from the environment") {
  BackendConfig c;
  auto r = userkey::repository_options(c, [](const char*) -> const char* { return nullptr; });
  CHECK_FALSE(r.mongo);
  CHECK(r.dump == "dump");
  CHECK(r.cache.capacity == 10000);
  c.mongo_uri = "mongodb://db:27017/";
  c.mongo_timeout = 900ms;
  r = userkey::repository_options(c, [](const char* name) -> const char* {
    return std::strcmp(name, "mongo_user") == 0 ? "u" : std::strcmp(name, "mongo_pass") == 0 ? "p" : nullptr;
  });
  REQUIRE(r.mongo);
  CHECK(r.mongo->uri == "mongodb://db:27017/");
  CHECK(r.mongo->database == "myusers");
  CHECK(r.mongo->server_selection_timeout == 900ms);
  CHECK(r.mongo->socket_timeout == 900ms);
  CHECK(r.mongo->connect_timeout == 900ms);  // a hung server's handshake is bounded too
  CHECK(r.mongo->username == "u");
  CHECK(r.mongo->password == "p");
  // 16 operations at once, whatever the worker count; the others wait for a
  // client as long as one operation may take.
  CHECK(r.mongo->max_pool_size == 16);
  CHECK(r.mongo->pool_wait_timeout == 900ms);
  c.server.threads = 1000;
  c.mongo_pool = 4;
  CHECK(userkey::repository_options(c).mongo->max_pool_size == 4);
}

TEST_CASE("server_config: a lookup deadline just past --mongo-timeout in front of MongoDB, none on the dump") {
  BackendConfig c;
  c.server.threads = 7;
  CHECK(userkey::server_config(c).lookup_timeout == 0ms);
  CHECK(userkey::server_config(c).threads == 7);
  c.mongo_uri = "mongodb://db:27017/";
  c.mongo_timeout = 900ms;
  CHECK(userkey::server_config(c).lookup_timeout == 900ms + userkey::kLookupDeadlineMargin);
  c.server.lookup_timeout = 5s;  // one set already is kept
  CHECK(userkey::server_config(c).lookup_timeout == 5s);
}

TEST_CASE("--admin: off (the default) serves /metrics on --listen; HOST:PORT moves it") {
  const auto& t = backend_settings();
  BackendConfig c;
  CHECK_FALSE(c.server.admin);
  t.apply(c, userkey::SettingValues().set("admin", "127.0.0.1:9201"));
  REQUIRE(c.server.admin);
  CHECK(c.server.admin->host == "127.0.0.1");
  CHECK(c.server.admin->port == 9201);
  CHECK(userkey::server_config(c).admin->port == 9201);
  t.apply(c, userkey::SettingValues().set("admin", "off"));
  CHECK_FALSE(c.server.admin);
  CHECK_THROWS_AS(t.apply(c, userkey::SettingValues().set("admin", "nowhere")), userkey::ConfigError);
}
