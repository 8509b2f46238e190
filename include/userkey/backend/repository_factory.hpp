// Builds the repository a backend serves from its options: the embedded dump
// or MongoDB, optionally behind a cache.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "userkey/backend/caching_repository.hpp"
#include "userkey/backend/mongo_repository.hpp"

namespace userkey {

struct RepositoryOptions {
  /// Use MongoDB when set, else the dump file.
  std::optional<MongoConfig> mongo;
  std::string dump = "dump";
  /// In front of MongoDB only (the dump is already in memory); capacity 0 or
  /// ttl 0 = no cache.
  CacheConfig cache;
};

/// Throws LoadError (dump) or std::invalid_argument (URI) on a start-up error.
std::shared_ptr<UserRepository> make_repository(const RepositoryOptions& opts);

}  // namespace userkey
