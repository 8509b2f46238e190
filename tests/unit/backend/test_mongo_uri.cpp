// Unit tests for lib/backend/mongo_uri.cpp.
//
// How a MongoConfig becomes the driver's URI: where credentials are checked
// (authSource), and which options the config fills in.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "backend/mongo_uri.hpp"

using namespace userkey;

namespace {

MongoConfig with_env_credentials(std::string uri) {
  const std::map<std::string, std::string> env{{"mongo_user", "userkey"}, {"mongo_pass", "pw"}};
  MongoConfig cfg;
  cfg.uri = std::move(uri);
  return mongo_config_from_env(cfg, /*uri_given=*/true, [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

std::string auth_source(const MongoConfig& cfg) {
  return mongoc_uri_get_auth_source(detail::build_mongo_uri(cfg).get());
}

}  // namespace

TEST_CASE("authSource is admin unless the URI names one, also when the URI names a database") {
  CHECK(auth_source(with_env_credentials("mongodb://db.example:27017/")) == "admin");
  CHECK(auth_source(with_env_credentials("mongodb://db.example:27017/myusers")) == "admin");
  CHECK(auth_source(with_env_credentials("mongodb://db.example/myusers?appname=x")) == "admin");
  CHECK(auth_source(with_env_credentials("mongodb://u:p@db.example/myusers")) == "admin");
  // An explicit authSource wins, in any case of the option's name.
  CHECK(auth_source(with_env_credentials("mongodb://db.example/myusers?authSource=myusers")) == "myusers");
  CHECK(auth_source(with_env_credentials("mongodb://db.example/?authsource=users")) == "users");
  // Credentials came from the environment; the URI's database is still only
  // the default database.
  auto uri = detail::build_mongo_uri(with_env_credentials("mongodb://db.example/myusers"));
  CHECK(std::string(mongoc_uri_get_username(uri.get())) == "userkey");
  CHECK(std::string(mongoc_uri_get_password(uri.get())) == "pw");
  CHECK(std::string(mongoc_uri_get_database(uri.get())) == "myusers");
}

TEST_CASE("mechanisms that authenticate against $external keep the driver's choice") {
  auto uri = detail::build_mongo_uri(with_env_credentials("mongodb://ldap-user:pw@db.example/?authMechanism=PLAIN"));
  bson_iter_t it;
  CHECK_FALSE(bson_iter_init_find_case(&it, mongoc_uri_get_credentials(uri.get()), MONGOC_URI_AUTHSOURCE));
}

TEST_CASE("a malformed URI is std::invalid_argument without the password") {
  MongoConfig cfg;
  cfg.uri = "mongodb://user:pa:ss-w0rd@127.0.0.1:1/";
  try {
    detail::build_mongo_uri(cfg);
    FAIL("accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("ss-w0rd") == std::string::npos);
  }
}

TEST_CASE("timeouts and retryReads come from the config unless the URI sets them") {
  MongoConfig cfg;
  cfg.uri = "mongodb://db.example/";
  cfg.connect_timeout = cfg.server_selection_timeout = cfg.socket_timeout = std::chrono::milliseconds(750);
  auto uri = detail::build_mongo_uri(cfg);
  CHECK(mongoc_uri_get_option_as_int32(uri.get(), MONGOC_URI_CONNECTTIMEOUTMS, 0) == 750);
  CHECK(mongoc_uri_get_option_as_int32(uri.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0) == 750);
  CHECK(mongoc_uri_get_option_as_int32(uri.get(), MONGOC_URI_SOCKETTIMEOUTMS, 0) == 750);
  // A retried read would add a second timeout to a hung server's answer.
  CHECK_FALSE(mongoc_uri_get_option_as_bool(uri.get(), MONGOC_URI_RETRYREADS, true));

  cfg.uri = "mongodb://db.example/?connectTimeoutMS=1234&retryReads=true";
  uri = detail::build_mongo_uri(cfg);
  CHECK(mongoc_uri_get_option_as_int32(uri.get(), MONGOC_URI_CONNECTTIMEOUTMS, 0) == 1234);
  CHECK(mongoc_uri_get_option_as_bool(uri.get(), MONGOC_URI_RETRYREADS, false));
}
