// The settings of a userkey backend (userkey-backend), declared once in a
// settings table: flag, environment name USERKEY_<FLAG>, help, value kind.
// The app's command line, --help and so docs/configuration.md come from it.
//
// MongoDB credentials are not settings: they come from the URI or from the
// mongo_user / mongo_pass environment variables (repository_options()), so
// they never show in --help, a default or a log.
//
// Thread-safety: the table is immutable; the functions are pure (apart from
// reading the environment in repository_options()).
#pragma once

#include <chrono>
#include <string>

#include "userkey/backend/backend_server.hpp"
#include "userkey/backend/caching_repository.hpp"
#include "userkey/core/settings.hpp"
#include "userkey/backend/mongo_repository.hpp"
#include "userkey/backend/repository_factory.hpp"

namespace userkey {

/// Everything a backend is configured with; the defaults are the built-in
/// ones (those of the structs it is made of).
struct BackendConfig {
  /// Listen address, worker threads, backlog, access log.
  BackendServerConfig server;
  /// Shown in responses; empty = "backend-PORT".
  std::string name;
  /// The embedded store, used when mongo_uri is empty.
  std::string dump = RepositoryOptions{}.dump;
  std::string mongo_uri;
  std::string database = MongoConfig{}.database;
  std::string collection = MongoConfig{}.collection;
  /// Server-selection and socket timeout (more than zero: the driver reads
  /// zero as "forever").
  std::chrono::milliseconds mongo_timeout = MongoConfig{}.server_selection_timeout;
  /// Most MongoDB operations at once (the client pool's size). Lookups beyond
  /// it wait for a client, up to mongo_timeout, instead of opening more
  /// connections: a burst on a cold pool would otherwise open one connection
  /// (and one login) per worker at once, and a database on a few cores slows
  /// down past the timeout under that many.
  std::size_t mongo_pool = 16;
  /// In front of MongoDB only.
  CacheConfig cache;
  std::string log_level = "info";
  /// The log (access log lines included): this file, appended to and
  /// reopened on SIGUSR1, instead of stderr.
  std::string log_file;
};

/// The table (keys such as "listen", "cache_ttl"; environment prefix
/// "USERKEY_").
const SettingsTable<BackendConfig>& backend_settings();

/// The store `config` names: the dump, or MongoDB with credentials from
/// mongo_user / mongo_pass (through `env`) when the URI has none. Every
/// MongoDB timeout is `mongo_timeout`; the client pool holds `mongo_pool`
/// clients, and a lookup waits up to `mongo_timeout` for one.
RepositoryOptions repository_options(const BackendConfig& config, const EnvLookup& env = {});

/// How far past `mongo_timeout` a lookup waiting for a worker is answered
/// 503 (the store's own timeout fires first when a worker is free).
inline constexpr std::chrono::milliseconds kLookupDeadlineMargin{150};

/// The server's configuration: `config.server`, with a lookup deadline of
/// `mongo_timeout` + kLookupDeadlineMargin in front of MongoDB (unless one
/// is set already), so that a hung database is answered in time however
/// many lookups queue behind the workers. The dump needs none.
BackendServerConfig server_config(const BackendConfig& config);

}  // namespace userkey
