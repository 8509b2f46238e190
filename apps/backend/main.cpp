// userkey-backend: serves the `/` contract for one backend.
// Configuration (flags win over environment) -> repository -> Router ->
// BackendServer; SIGINT/SIGTERM stop it gracefully.
#include <spdlog/spdlog.h>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>

#include <userkey/backend/backend_server.hpp>
#include <userkey/backend/bson_file_repository.hpp>
#include <userkey/core/logging.hpp>
#include <userkey/backend/repository_factory.hpp>
#include <userkey/core/signal_watcher.hpp>

#include "../cli_support.hpp"

int main(int argc, char** argv) {
  userkey::SignalWatcher signals;
  CLI::App app{"userkey-backend: answers GET /?user_id=N with that user's key, from a mongodump file or MongoDB."};
  app.get_formatter()->column_width(34);

  std::string listen = "127.0.0.1:5001", name, dump = "dump", mongo_uri, db = "myusers", collection = "users";
  std::string cache_ttl = "30s", negative_ttl = "2s", stale_ttl = "5m", mongo_timeout = "400ms", log_level = "info";
  std::size_t cache_size = 10000, threads = 128;
  int backlog = 4096;
  bool access_log = true;
  app.add_option("--listen", listen, "Address to serve on")->envname("USERKEY_LISTEN")->check(userkey::apps::host_port_validator())->capture_default_str();
  app.add_option("--name", name, "Name shown in responses (default: backend-PORT)")->envname("USERKEY_NAME");
  auto* dump_opt = app.add_option("--dump", dump, "Embedded store: a mongodump .bson file, or a dump directory holding myusers/users.bson")->envname("USERKEY_DUMP")->capture_default_str();
  auto* uri_opt = app.add_option("--mongo-uri", mongo_uri, "Read from MongoDB at this URI instead of the dump; credentials from mongo_user / mongo_pass when the URI has none")->envname("USERKEY_MONGO_URI");
  uri_opt->excludes(dump_opt);
  app.add_option("--db", db, "MongoDB database")->envname("USERKEY_DB")->capture_default_str();
  app.add_option("--collection", collection, "MongoDB collection")->envname("USERKEY_COLLECTION")->capture_default_str();
  app.add_option("--mongo-timeout", mongo_timeout, "Connect, server-selection and socket timeout for MongoDB: a lookup answers 503 within it when the database is down or hung")->envname("USERKEY_MONGO_TIMEOUT")->check(userkey::apps::duration_validator())->capture_default_str();
  app.add_option("--cache-ttl", cache_ttl, "How long a found key is cached; 0 disables the cache")->envname("USERKEY_CACHE_TTL")->check(userkey::apps::duration_validator())->capture_default_str();
  app.add_option("--negative-ttl", negative_ttl, "How long an unknown id is cached")->envname("USERKEY_NEGATIVE_TTL")->check(userkey::apps::duration_validator())->capture_default_str();
  app.add_option("--stale-ttl", stale_ttl, "While MongoDB is unavailable, answer a cached key for up to this long past its --cache-ttl (stale-if-error); 0 = off")->envname("USERKEY_STALE_TTL")->check(userkey::apps::duration_validator())->capture_default_str();
  app.add_option("--cache-size", cache_size, "Cache capacity in entries; 0 disables the cache")->envname("USERKEY_CACHE_SIZE")->capture_default_str();
  app.add_option("--threads", threads, "Worker threads for lookups (connections are served by one event loop)")->envname("USERKEY_THREADS")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--backlog", backlog, "Listen backlog")->envname("USERKEY_BACKLOG")->check(CLI::Range(1, 65535))->capture_default_str();
  app.add_option("--access-log", access_log, "One log line per request (true/false)")->envname("USERKEY_ACCESS_LOG")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->envname("USERKEY_LOG_LEVEL")->capture_default_str();
  if (auto rc = userkey::apps::parse_command_line(app, argc, argv)) return *rc;

  std::shared_ptr<spdlog::logger> log;
  try {
    log = userkey::make_logger("backend", log_level);
  } catch (const std::exception& e) {
    std::cerr << "userkey-backend: " << e.what() << "\n";
    return 2;
  }

  const auto hp = *userkey::parse_host_port(listen);
  // Every keep-alive client holds a descriptor: run with the hard limit.
  std::string nofile_error;
  const auto nofile = userkey::raise_open_file_limit(&nofile_error);
  if (!nofile_error.empty()) log->warn("open files limit stays {}: {}", nofile, nofile_error);
  else log->info("open files limit {}", nofile);

  userkey::RepositoryOptions ropts;
  ropts.dump = dump;
  ropts.cache.capacity = cache_size;
  ropts.cache.ttl = *userkey::parse_duration(cache_ttl);
  ropts.cache.negative_ttl = *userkey::parse_duration(negative_ttl);
  ropts.cache.stale_ttl = *userkey::parse_duration(stale_ttl);
  if (!mongo_uri.empty()) {
    userkey::MongoConfig mc;
    mc.uri = mongo_uri;
    mc.database = db;
    mc.collection = collection;
    mc.server_selection_timeout = mc.socket_timeout = mc.connect_timeout = *userkey::parse_duration(mongo_timeout);
    mc.max_pool_size = static_cast<std::uint32_t>(std::max<std::size_t>(mc.max_pool_size, threads));  // a client per worker
    if (mc.socket_timeout.count() == 0) {  // the driver would take 0 as "wait forever"
      std::cerr << "userkey-backend: --mongo-timeout must be more than 0\n";
      return 2;
    }
    ropts.mongo = userkey::mongo_config_from_env(mc, /*uri_given=*/true);
  }

  std::shared_ptr<userkey::UserRepository> repo;
  try {
    repo = userkey::make_repository(ropts);
  } catch (const std::exception& e) {
    log->critical("cannot start: {}", e.what());
    return 1;
  }

  userkey::BackendServerConfig scfg;
  scfg.host = hp.host;
  scfg.port = hp.port;
  scfg.threads = threads;
  scfg.backlog = backlog;
  scfg.access_log = access_log;
  if (ropts.mongo) scfg.lookup_timeout = ropts.mongo->socket_timeout + std::chrono::milliseconds(150);
  userkey::BackendServer server(scfg, log);
  std::string err;
  if (!server.bind(&err)) {
    log->critical("{}", err);
    return 1;
  }
  if (name.empty()) name = "backend-" + std::to_string(server.port());
  auto router = std::make_shared<userkey::Router>(repo, userkey::BackendIdentity{name, server.port()}, log);
  log->info("{} serving http://{}:{}/ from {}", name, hp.host, server.port(), repo->describe());

  std::atomic<bool> stopping{false};
  std::thread stopper([&] {
    int sig = 0;
    while ((sig = signals.wait()) == SIGHUP) log->info("SIGHUP ignored (nothing to reload)");
    stopping = true;
    log->info("signal {} received, finishing in-flight requests", sig);
    server.stop();
  });
  const bool served = server.run(router);
  if (!stopping) pthread_kill(stopper.native_handle(), SIGTERM);  // run() failed: wake the watcher
  stopper.join();
  if (!served) {
    log->critical("{} stopped: the server failed", name);
    return 1;
  }
  log->info("{} stopped", name);
  return 0;
}
