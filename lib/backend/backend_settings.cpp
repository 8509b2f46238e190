// The backend's settings table. See userkey/backend/backend_settings.hpp.
#include "userkey/backend/backend_settings.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "userkey/core/value_kinds.hpp"

namespace userkey {

namespace {

Field<BackendConfig, HostPort> listen_address() {
  return {[](const BackendConfig& c) { return HostPort{c.server.host, c.server.port}; },
          [](BackendConfig& c, HostPort hp) {
            c.server.host = std::move(hp.host);
            c.server.port = hp.port;
          }};
}

SettingsTable<BackendConfig> make_table() {
  using C = BackendConfig;
  using S = BackendServerConfig;
  SettingsTable<C> t("USERKEY_");
  t.add({.key = "listen", .flag = "--listen", .help = "Address to serve on"}, listen_address(), kinds::host_port());
  t.add({.key = "admin",
         .flag = "--admin",
         .help = "Serve /metrics (Prometheus) on this address only, instead of on --listen; off = on --listen"},
        field(&C::server, &S::admin), kinds::host_port_or_off());
  t.add({.key = "name", .flag = "--name", .help = "Name shown in responses (default: backend-PORT)"},
        field(&C::name), kinds::text());
  t.add({.key = "dump",
         .flag = "--dump",
         .help = "Embedded store: a mongodump .bson file, or a dump directory holding myusers/users.bson"},
        field(&C::dump), kinds::text());
  t.add({.key = "mongo_uri",
         .flag = "--mongo-uri",
         .help = "Read from MongoDB at this URI instead of the dump; credentials from mongo_user / mongo_pass when "
                 "the URI has none",
         .excludes = {"dump"}},
        field(&C::mongo_uri), kinds::text());
  t.add({.key = "db", .flag = "--db", .help = "MongoDB database"}, field(&C::database), kinds::text());
  t.add({.key = "collection", .flag = "--collection", .help = "MongoDB collection"}, field(&C::collection),
        kinds::text());
  t.add({.key = "mongo_timeout",
         .flag = "--mongo-timeout",
         .help = "Connect, server-selection and socket timeout for MongoDB: a lookup answers 503 within it when the "
                 "database is down or hung"},
        field(&C::mongo_timeout), kinds::duration(true));
  t.add({.key = "mongo_pool",
         .flag = "--mongo-pool",
         .help = "Most MongoDB operations at once (clients in the pool); further lookups wait up to --mongo-timeout "
                 "for a client"},
        field(&C::mongo_pool), kinds::whole<std::size_t>(1, 4096));
  t.add({.key = "cache_ttl", .flag = "--cache-ttl", .help = "How long a found key is cached; 0 disables the cache"},
        field(&C::cache, &CacheConfig::ttl), kinds::duration());
  t.add({.key = "negative_ttl", .flag = "--negative-ttl", .help = "How long an unknown id is cached"},
        field(&C::cache, &CacheConfig::negative_ttl), kinds::duration());
  t.add({.key = "stale_ttl",
         .flag = "--stale-ttl",
         .help = "While MongoDB is unavailable, answer a cached key for up to this long past its --cache-ttl "
                 "(stale-if-error); 0 = off"},
        field(&C::cache, &CacheConfig::stale_ttl), kinds::duration());
  t.add({.key = "cache_size", .flag = "--cache-size", .help = "Cache capacity in entries; 0 disables the cache"},
        field(&C::cache, &CacheConfig::capacity), kinds::whole<std::size_t>());
  t.add({.key = "threads", .flag = "--threads", .help = "Worker threads for lookups (connections are served by one event loop)"},
        field(&C::server, &S::threads), kinds::whole<std::size_t>(1, 4096));
  t.add({.key = "backlog", .flag = "--backlog", .help = "Listen backlog"}, field(&C::server, &S::backlog),
        kinds::whole<int>(1, 65535));
  t.add({.key = "access_log", .flag = "--access-log", .help = "One log line per request (true/false)"},
        field(&C::server, &S::access_log), kinds::boolean());
  t.add({.key = "log_level", .flag = "--log-level", .help = "trace, debug, info, warn, error or off"},
        field(&C::log_level), kinds::log_level());
  t.add({.key = "log_file",
         .flag = "--log-file",
         .help = "Write the log, access log lines included, to this file (appended to; reopened on SIGUSR1) "
                 "instead of stderr"},
        field(&C::log_file), kinds::text());
  return t;
}

}  // namespace

const SettingsTable<BackendConfig>& backend_settings() {
  static const SettingsTable<BackendConfig> table = make_table();
  return table;
}

RepositoryOptions repository_options(const BackendConfig& config, const EnvLookup& env) {
  RepositoryOptions out;
  out.dump = config.dump;
  out.cache = config.cache;
  if (!config.mongo_uri.empty()) {
    MongoConfig mc;
    mc.uri = config.mongo_uri;
    mc.database = config.database;
    mc.collection = config.collection;
    mc.server_selection_timeout = mc.socket_timeout = mc.connect_timeout = config.mongo_timeout;
    // Fewer clients than workers: extra lookups queue here (the server's
    // lookup deadline, mongo_timeout + a margin, still bounds the whole wait).
    mc.max_pool_size = static_cast<std::uint32_t>(config.mongo_pool);
    mc.pool_wait_timeout = config.mongo_timeout;
    out.mongo = mongo_config_from_env(mc, /*uri_given=*/true, env);
  }
  return out;
}

BackendServerConfig server_config(const BackendConfig& config) {
  BackendServerConfig out = config.server;
  if (!config.mongo_uri.empty() && out.lookup_timeout.count() == 0)
    out.lookup_timeout = config.mongo_timeout + kLookupDeadlineMargin;
  return out;
}

}  // namespace userkey
