#include "backend/mongo_uri.hpp"

#include <cstring>
#include <stdexcept>
#include <string_view>

namespace userkey::detail {

namespace {

// Whether the URI itself says where the user is defined. The driver's
// mongoc_uri_get_auth_source() cannot tell: without an authSource option it
// answers the URI's database, or "admin" when there is none.
bool names_auth_source(const mongoc_uri_t* u) {
  bson_iter_t it;
  const bson_t* creds = mongoc_uri_get_credentials(u);
  return creds && bson_iter_init_find_case(&it, creds, MONGOC_URI_AUTHSOURCE);
}

// SCRAM (and the legacy MONGODB-CR) look users up in a database of the
// server; the other mechanisms authenticate against "$external".
bool uses_database_users(const mongoc_uri_t* u) {
  const char* mech = mongoc_uri_get_auth_mechanism(u);
  if (!mech) return true;
  const std::string_view m(mech);
  return m.starts_with("SCRAM-") || m == "MONGODB-CR";
}

}  // namespace

UriPtr build_mongo_uri(const MongoConfig& cfg) {
  bson_error_t err;
  UriPtr uri(mongoc_uri_new_with_error(cfg.uri.c_str(), &err));
  if (!uri)
    throw std::invalid_argument(
        "invalid MongoDB URI (mongodb://[user:password@]host[:port][/db][?options]; characters such as "
        "':', '/' and '@' in the user name or password must be percent-encoded)");
  mongoc_uri_t* u = uri.get();

  if (!mongoc_uri_get_username(u) && cfg.username) {
    mongoc_uri_set_username(u, cfg.username->c_str());
    if (cfg.password) mongoc_uri_set_password(u, cfg.password->c_str());
  }
  if (mongoc_uri_get_username(u) && !names_auth_source(u) && uses_database_users(u))
    mongoc_uri_set_auth_source(u, "admin");

  auto set_default = [u](const char* opt, std::chrono::milliseconds v) {
    if (!mongoc_uri_has_option(u, opt)) mongoc_uri_set_option_as_int32(u, opt, static_cast<int32_t>(v.count()));
  };
  set_default(MONGOC_URI_SERVERSELECTIONTIMEOUTMS, cfg.server_selection_timeout);
  set_default(MONGOC_URI_CONNECTTIMEOUTMS, cfg.connect_timeout);
  set_default(MONGOC_URI_SOCKETTIMEOUTMS, cfg.socket_timeout);
  set_default(MONGOC_URI_HEARTBEATFREQUENCYMS, cfg.heartbeat_frequency);
  if (!mongoc_uri_has_option(u, MONGOC_URI_RETRYREADS)) mongoc_uri_set_option_as_bool(u, MONGOC_URI_RETRYREADS, cfg.retry_reads);
  if (!mongoc_uri_has_option(u, MONGOC_URI_APPNAME)) mongoc_uri_set_appname(u, cfg.app_name.c_str());
  return uri;
}

}  // namespace userkey::detail
