// UserRepository: where a user's key is looked up by id.
//
// Implementations: BsonFileRepository (a mongodump .bson file loaded into
// memory), MongoRepository (MongoDB through mongo-c-driver) and
// CachingRepository (an LRU+TTL decorator over any other).
//
// Errors are values: a lookup never throws for a missing user, a bad id or an
// unreachable database; the LookupStatus tells the caller which it was.
// Thread-safety: every implementation is safe to call from many threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace userkey {

/// User ids are integers; documents store them as int32 (see docs/storage.md).
using UserId = std::int64_t;

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

  bool ok() const { return status == LookupStatus::found; }
  static LookupResult found(std::string key) { return {LookupStatus::found, std::move(key), {}}; }
  static LookupResult not_found() { return {LookupStatus::not_found, {}, {}}; }
  static LookupResult error(LookupStatus s, std::string detail) { return {s, {}, std::move(detail)}; }
};

/// Result of a readiness check: found means "reachable and usable".
using ReadyResult = LookupResult;

class UserRepository {
public:
  virtual ~UserRepository() = default;

  /// The key of user `id`.
  virtual LookupResult find_key(UserId id) = 0;

  /// Whether the store is reachable now (for /readyz). status is `found` when
  /// ready, `unavailable` or `unauthorized` otherwise.
  virtual ReadyResult ready() = 0;

  /// Short description for logs ("bson-file:dump/myusers/users.bson (7 users)").
  /// Never contains credentials.
  virtual std::string describe() const = 0;
};

}  // namespace userkey
