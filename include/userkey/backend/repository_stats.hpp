// What repositories count about themselves, as plain values: a cache's hits
// and misses, a database's errors by kind and its client pool. A scrape
// (BackendServer's /metrics) asks the repository it serves for them with
// UserRepository::collect_stats(); a decorator (CachingRepository) adds its
// own and asks the repository it wraps, so each counter is kept once, by
// its owner, and read from there.
//
// Thread-safety: plain values, copied out of the owners' relaxed atomics.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace userkey {

/// CachingRepository's counters (CachingRepository::stats()).
struct CacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t evictions = 0;
  std::uint64_t coalesced = 0;  ///< misses answered by another caller's query
  std::uint64_t stale = 0;      ///< expired keys answered because the store failed
  std::size_t size = 0;         ///< entries held now
  std::size_t capacity = 0;     ///< the configured capacity
};

/// Why a database operation failed, as MongoRepository counts it.
enum class DatabaseError : std::size_t {
  unreachable,   ///< no usable server within the server-selection timeout (down, refusing, hung)
  network,       ///< a connection broke or a socket read timed out mid-operation (the login included)
  unauthorized,  ///< the server refused our credentials (not: a login that timed out)
  pool_timeout,  ///< every pooled client stayed busy for the pool's wait
  other,         ///< anything else the driver or server reported (a failed command)
  count_
};

/// "unreachable", "network", "unauthorized", "pool_timeout", "other".
std::string_view to_string(DatabaseError e);

/// MongoRepository's counters (MongoRepository::stats()).
struct DatabaseStats {
  /// Failed operations (lookups, readiness checks, admin writes) by kind.
  std::array<std::uint64_t, static_cast<std::size_t>(DatabaseError::count_)> errors{};
  std::uint32_t pool_in_use = 0;  ///< clients checked out of the pool now
  std::uint32_t pool_size = 0;    ///< the most that can be checked out at once

  std::uint64_t error_count(DatabaseError e) const { return errors[static_cast<std::size_t>(e)]; }
};

/// Everything a repository chain reports; a part it does not have stays empty
/// (no cache in front of the embedded dump, no database behind it).
struct RepositoryStats {
  std::optional<CacheStats> cache;
  std::optional<DatabaseStats> database;
};

}  // namespace userkey
