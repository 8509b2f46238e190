#include "userkey/backend/bson_file_repository.hpp"

#include <system_error>

#include "backend/bson_handles.hpp"
#include "backend/bson_user.hpp"

namespace userkey {

namespace fs = std::filesystem;

fs::path resolve_dump_file(const fs::path& path, const std::string& db, const std::string& collection) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const auto in_db = path / (collection + ".bson");
    if (fs::exists(in_db, ec)) return in_db;
    const auto in_root = path / db / (collection + ".bson");
    if (fs::exists(in_root, ec)) return in_root;
    throw LoadError("dump directory " + path.string() + " holds neither " + collection + ".bson nor " + db +
                    "/" + collection + ".bson");
  }
  return path;
}

std::vector<UserRecord> read_bson_dump(const fs::path& file, std::size_t* skipped) {
  std::error_code ec;
  if (!fs::exists(file, ec)) throw LoadError("dump file " + file.string() + " does not exist");
  if (!fs::is_regular_file(file, ec)) throw LoadError("dump file " + file.string() + " is not a regular file");

  bson_error_t error;
  detail::BsonReaderPtr reader(bson_reader_new_from_file(file.c_str(), &error));
  if (!reader) throw LoadError("cannot open dump file " + file.string() + ": " + error.message);

  std::vector<UserRecord> out;
  std::size_t bad = 0;
  bool eof = false;
  std::size_t index = 0;
  while (const bson_t* doc = bson_reader_read(reader.get(), &eof)) {
    ++index;
    if (!bson_validate(doc, BSON_VALIDATE_UTF8, nullptr)) {
      throw LoadError("dump file " + file.string() + " is corrupt: document " + std::to_string(index) +
                      " is not valid BSON");
    }
    auto id = detail::read_user_id(doc);
    auto key = detail::read_user_key(doc);
    if (!id || !key) {
      ++bad;
      continue;
    }
    out.push_back({*id, std::move(*key)});
  }
  const auto size = fs::file_size(file, ec);
  if (!eof || ec || static_cast<std::uintmax_t>(bson_reader_tell(reader.get())) != size) {
    throw LoadError("dump file " + file.string() + " is corrupt: unreadable data after document " +
                    std::to_string(index) + " (offset " + std::to_string(bson_reader_tell(reader.get())) + ")");
  }
  if (skipped) *skipped = bad;
  return out;
}

BsonFileRepository::BsonFileRepository(const fs::path& path) : file_(resolve_dump_file(path)) {
  for (auto& r : read_bson_dump(file_, &skipped_)) keys_.insert_or_assign(r.user_id, std::move(r.user_key));
}

LookupResult BsonFileRepository::find_key(UserId id) {
  auto it = keys_.find(id);
  if (it == keys_.end()) return LookupResult::not_found();
  return LookupResult::found(it->second);
}

ReadyResult BsonFileRepository::ready() {
  if (keys_.empty()) return StoreStatus::error(StoreStatus::Code::empty, "dump " + file_.string() + " holds no users");
  return StoreStatus::success();
}

std::string BsonFileRepository::describe() const {
  return "bson-file:" + file_.string() + " (" + std::to_string(keys_.size()) + " users)";
}

}  // namespace userkey
