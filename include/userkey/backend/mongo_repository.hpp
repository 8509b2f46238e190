// MongoRepository: user keys read from MongoDB (or any server speaking its
// wire protocol, such as FerretDB) through mongo-c-driver's client pool.
//
// Queries are built as BSON with typed values -- {user_id: {$in: [<int64>,
// "<digits>"]}} -- so a user-supplied id is never parsed as a query. Numeric
// ids of any BSON number type compare by value; the string form is accepted
// for documents written by hand. The admin helpers (upsert, list,
// ensure_index) back the userkey-admin tool.
//
// Failure is a value: an unreachable or timed-out server gives
// LookupStatus::unavailable within the configured timeouts (defaults answer a
// dead server in well under a second), refused credentials give
// LookupStatus::unauthorized. Messages never include the password. Every
// failure is also counted by kind (stats(): unreachable, network,
// unauthorized, pool_timeout, other), with the clients checked out of the pool.
//
// Thread-safety: all members are safe to call concurrently; each call borrows
// a client from the pool. On first use per process it installs a driver log
// handler that keeps only errors (the driver would otherwise log a warning
// for every failed authentication), runs mongoc_init(), and registers
// mongoc_cleanup() with std::atexit, so that the driver's shared-memory
// counters segment (/dev/shm/mongoc-<pid>) is removed at a normal exit also
// with driver builds that do not clean up by themselves. A process killed
// outright leaves its segment behind; set MONGOC_DISABLE_SHM=1 in the
// environment of processes that may be killed and whose counters nobody reads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "userkey/backend/bson_file_repository.hpp"
#include "userkey/backend/repository_stats.hpp"
#include "userkey/backend/user_repository.hpp"

namespace userkey {

struct MongoConfig {
  /// mongodb:// URI. Credentials may be in it or given below.
  std::string uri = "mongodb://127.0.0.1:27017/";
  std::string database = "myusers";
  std::string collection = "users";
  /// Used when the URI carries no credentials; authSource defaults to
  /// "admin" unless the URI names one.
  std::optional<std::string> username;
  std::optional<std::string> password;
  /// Applied unless the URI sets the matching option. With all three
  /// timeouts equal to T, one lookup of a hung or dead server fails within
  /// about T (plus the pool wait below): connecting (TCP + handshake) is
  /// bounded by connect_timeout, finding a usable server by
  /// server_selection_timeout, each read by socket_timeout, and there is no
  /// retry.
  std::chrono::milliseconds server_selection_timeout{400};
  std::chrono::milliseconds connect_timeout{300};
  std::chrono::milliseconds socket_timeout{500};
  std::chrono::milliseconds heartbeat_frequency{500};
  /// retryReads: off unless the URI turns it on, because a retried read after
  /// a timeout takes a second timeout (and server selection) on top.
  bool retry_reads = false;
  /// Clients in the pool; a caller waits at most pool_wait_timeout for a free
  /// one and otherwise gets `unavailable` (every client busy that long means
  /// the server is slow or hung; waiting longer only queues callers behind
  /// it).
  std::uint32_t max_pool_size = 100;
  std::chrono::milliseconds pool_wait_timeout{100};
  std::string app_name = "userkey";
};

/// Environment lookup, injectable for tests (defaults to std::getenv).
using EnvLookup = std::function<const char*(const char*)>;

/// Fills `base` from the seed's environment: USERKEY_MONGO_URI (a full URI)
/// when `uri_given` is false, and mongo_user / mongo_pass as credentials.
MongoConfig mongo_config_from_env(MongoConfig base, bool uri_given, const EnvLookup& env = {});

/// The URI with any password replaced by "****", for logs: everything from
/// the first ':' after "scheme://" to the last '@' (a raw '@' or '/' in the
/// password stays hidden too).
std::string redact_uri(const std::string& uri);

class MongoRepository final : public UserRepository {
public:
  /// Throws std::invalid_argument for a malformed URI (a start-up error); does
  /// not contact the server.
  explicit MongoRepository(MongoConfig config);
  ~MongoRepository() override;
  MongoRepository(const MongoRepository&) = delete;
  MongoRepository& operator=(const MongoRepository&) = delete;

  LookupResult find_key(UserId id) override;
  /// Counts (at most) one document of the collection: needs the server and
  /// working credentials; a missing or empty collection is Code::empty.
  ReadyResult ready() override;
  std::string describe() const override;

  /// Failed operations by kind and the client pool's use; counted with
  /// relaxed atomics, so reading them costs the request path nothing.
  DatabaseStats stats() const;
  /// stats() as `out.database`.
  void collect_stats(RepositoryStats& out) const override;

  /// Admin: inserts or replaces user `r.user_id`; ok = written.
  StoreStatus upsert(const UserRecord& r);
  /// Admin: every user, ordered by id; `status`, when given, says whether
  /// the listing is complete (on failure the result is empty).
  std::vector<UserRecord> list(StoreStatus* status = nullptr);
  /// Admin: creates the unique index on user_id (idempotent).
  StoreStatus ensure_index();

private:
  class ErrorCounters;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace userkey
