// UserRepository: where a user's key is looked up by id.
//
// Implementations: BsonFileRepository (a mongodump .bson file loaded into
// memory), MongoRepository (MongoDB through mongo-c-driver) and
// CachingRepository (an LRU+TTL decorator over any other).
//
// Errors are values: a lookup never throws for a missing user, a bad id or an
// unreachable database; the LookupStatus tells the caller which it was.
// Operations that yield no value (a readiness check, an admin write) return a
// StoreStatus: ok, or why not.
// Thread-safety: every implementation is safe to call from many threads.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "userkey/core/user_id.hpp"

namespace userkey {

struct RepositoryStats;  // repository_stats.hpp

/// One user document: what a dump holds and what an admin write stores.
struct UserRecord {
  UserId user_id = 0;
  std::string user_key;
};

enum class LookupStatus {
  found,         ///< key holds the user's key
  not_found,     ///< no such user
  invalid_id,    ///< the id can never exist in this store (out of range)
  unavailable,   ///< the store could not be reached or timed out
  unauthorized,  ///< the store refused our credentials
};

std::string_view to_string(LookupStatus s);

struct LookupResult {
  LookupStatus status = LookupStatus::not_found;
  std::string key;     ///< set when status == found
  std::string detail;  ///< human-readable reason for the other statuses; never a secret
  /// found, but the store failed and this is the last key it gave (a cache's
  /// stale-if-error answer).
  bool stale = false;

  bool ok() const { return status == LookupStatus::found; }
  static LookupResult found(std::string key) { return {LookupStatus::found, std::move(key), {}, false}; }
  static LookupResult not_found() { return {LookupStatus::not_found, {}, {}, false}; }
  static LookupResult error(LookupStatus s, std::string detail) { return {s, {}, std::move(detail), false}; }
};

/// The outcome of a store operation that yields no value: a readiness check
/// or an admin write. Either ok, or failed with a kind and a reason.
struct StoreStatus {
  enum class Code {
    ok,
    invalid_id,    ///< the write names an id the store cannot hold
    unavailable,   ///< the store could not be reached or timed out
    unauthorized,  ///< the store refused our credentials
    empty,         ///< reachable, but holds no users (e.g. the collection is missing): not ready
  };

  Code code = Code::ok;
  std::string detail;  ///< human-readable reason when not ok; never a secret

  StoreStatus() = default;
  StoreStatus(Code c, std::string why) : code(c), detail(std::move(why)) {}
  /// For stores written when ready() returned a LookupResult (found meant
  /// "ready"): found becomes ok, every other status a failure of that kind.
  StoreStatus(const LookupResult& r);  // NOLINT(google-explicit-constructor): keeps that code compiling

  bool ok() const { return code == Code::ok; }
  static StoreStatus success() { return {}; }
  static StoreStatus error(Code c, std::string why) { return {c, std::move(why)}; }
};

std::string_view to_string(StoreStatus::Code c);

/// What ready() returns.
using ReadyResult = StoreStatus;

class UserRepository {
public:
  virtual ~UserRepository() = default;

  /// The key of user `id`.
  virtual LookupResult find_key(UserId id) = 0;

  /// Whether the store can answer lookups now (for /readyz): ok, or
  /// unavailable / unauthorized / empty with the reason.
  virtual ReadyResult ready() = 0;

  /// Short description for logs ("bson-file:dump/myusers/users.bson (7 users)").
  /// Never contains credentials.
  virtual std::string describe() const = 0;

  /// Adds what this repository counts about itself (a cache's hits, a
  /// database's errors and pool) to `out`, for /metrics; a decorator adds its
  /// own and then asks the repository it wraps. Called on a scrape, never on
  /// the request path. The default adds nothing.
  virtual void collect_stats(RepositoryStats& out) const { (void)out; }
};

}  // namespace userkey
