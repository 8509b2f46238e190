// BsonFileRepository: the embedded store. Reads a mongodump `.bson` file
// (a concatenation of BSON documents, e.g. dump/myusers/users.bson) into
// memory once, then answers lookups from an immutable hash map.
//
// Documents are {user_id: <id>, user_key: <string>}. user_id may be an int32,
// an int64, a double holding an integer, or the id's decimal string without
// leading zeros (what mongo-express or a shell may write; exactly the forms
// MongoRepository matches), from 0 to 2147483647 (the ids a request can name);
// other documents are skipped and counted. Later documents win over earlier ones with the same id.
//
// Thread-safety: immutable after construction; find_key is lock-free.
#pragma once

#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "userkey/backend/user_repository.hpp"

namespace userkey {

/// Thrown at start-up when a dump cannot be read; the message names the file
/// and what is wrong with it.
class LoadError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Reads every well-formed user document of a mongodump .bson file, in file
/// order. Throws LoadError for a missing, unreadable or corrupt file.
/// `skipped`, when given, receives the number of documents without a usable
/// user_id / user_key.
std::vector<UserRecord> read_bson_dump(const std::filesystem::path& file, std::size_t* skipped = nullptr);

/// Resolves "a dump" given as a .bson file, a database directory holding
/// users.bson, or a mongodump root holding myusers/users.bson.
std::filesystem::path resolve_dump_file(const std::filesystem::path& path,
                                        const std::string& db = "myusers",
                                        const std::string& collection = "users");

class BsonFileRepository final : public UserRepository {
public:
  /// Loads `file` (see resolve_dump_file for what may be given). Throws LoadError.
  explicit BsonFileRepository(const std::filesystem::path& path);

  LookupResult find_key(UserId id) override;
  /// ok when the dump holds at least one user, else Code::empty.
  ReadyResult ready() override;
  std::string describe() const override;

  std::size_t size() const { return keys_.size(); }
  std::size_t skipped() const { return skipped_; }

private:
  std::filesystem::path file_;
  std::unordered_map<UserId, std::string> keys_;
  std::size_t skipped_ = 0;
};

}  // namespace userkey
