// Unit tests for lib/backend/bson_file_repository.cpp.
#include <doctest/doctest.h>

#include <bson/bson.h>

#include <fstream>

#include <userkey/backend/bson_file_repository.hpp>

#include "support/process.hpp"

using namespace userkey;

namespace {
void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}
std::string doc_bytes(void (*fill)(bson_t*)) {
  bson_t b;
  bson_init(&b);
  fill(&b);
  std::string out(reinterpret_cast<const char*>(bson_get_data(&b)), b.len);
  bson_destroy(&b);
  return out;
}
}  // namespace

TEST_CASE("the committed dump holds users 1-7 with the seed's key for user 1") {
  BsonFileRepository repo(test::dump_dir());
  CHECK(repo.size() == 7);
  auto r = repo.find_key(1);
  REQUIRE(r.ok());
  CHECK(r.key == "one@5cdb5896d7c8");
  for (UserId id = 1; id <= 7; ++id) CHECK(repo.find_key(id).ok());
  CHECK(repo.find_key(8).status == LookupStatus::not_found);
  CHECK(repo.find_key(0).status == LookupStatus::not_found);
  CHECK(repo.ready().ok());
}

TEST_CASE("a dump without users loads, but is not ready") {
  test::TempDir dir;
  const auto file = dir.path() / "users.bson";
  std::ofstream(file).close();
  BsonFileRepository repo(file);
  CHECK(repo.size() == 0);
  CHECK_FALSE(repo.ready().ok());
  CHECK(to_string(repo.ready().code) == "empty");
}

TEST_CASE("a dump may be named by root dir, database dir or file") {
  CHECK(BsonFileRepository(test::dump_dir() / "myusers").size() == 7);
  CHECK(BsonFileRepository(test::dump_dir() / "myusers" / "users.bson").size() == 7);
}

TEST_CASE("missing, empty-dir and corrupt dumps are clear start-up errors") {
  test::TempDir dir;
  CHECK_THROWS_WITH_AS(BsonFileRepository(dir.path() / "nope.bson"), doctest::Contains("does not exist"), LoadError);
  CHECK_THROWS_WITH_AS(BsonFileRepository(dir.path()), doctest::Contains("holds neither"), LoadError);

  const auto good = doc_bytes([](bson_t* b) {
    BSON_APPEND_INT32(b, "user_id", 1);
    BSON_APPEND_UTF8(b, "user_key", "k1");
  });
  // Truncated: the last document is cut in half.
  write_bytes(dir.path() / "trunc.bson", good + good.substr(0, good.size() / 2));
  CHECK_THROWS_WITH_AS(BsonFileRepository(dir.path() / "trunc.bson"), doctest::Contains("corrupt"), LoadError);
  // Garbage that claims an absurd length.
  write_bytes(dir.path() / "junk.bson", std::string("\xff\xff\xff\x7fhello world", 15));
  CHECK_THROWS_AS(BsonFileRepository(dir.path() / "junk.bson"), LoadError);
}

TEST_CASE("other id shapes are accepted; documents without id or key are skipped") {
  test::TempDir dir;
  std::string bytes;
  bytes += doc_bytes([](bson_t* b) {
    BSON_APPEND_INT64(b, "user_id", 10);
    BSON_APPEND_UTF8(b, "user_key", "ten");
  });
  bytes += doc_bytes([](bson_t* b) {
    BSON_APPEND_DOUBLE(b, "user_id", 11.0);
    BSON_APPEND_UTF8(b, "user_key", "eleven");
  });
  bytes += doc_bytes([](bson_t* b) {
    BSON_APPEND_UTF8(b, "user_id", "12");
    BSON_APPEND_UTF8(b, "user_key", "twelve");
  });
  bytes += doc_bytes([](bson_t* b) {
    BSON_APPEND_DOUBLE(b, "user_id", 13.5);
    BSON_APPEND_UTF8(b, "user_key", "nope");
  });
  bytes += doc_bytes([](bson_t* b) { BSON_APPEND_INT32(b, "user_id", 14); });
  bytes += doc_bytes([](bson_t* b) {  // not canonical: MongoDB would not match it for 15 either
    BSON_APPEND_UTF8(b, "user_id", "015");
    BSON_APPEND_UTF8(b, "user_key", "fifteen");
  });
  write_bytes(dir.path() / "users.bson", bytes);
  BsonFileRepository repo(dir.path() / "users.bson");
  CHECK(repo.size() == 3);
  CHECK(repo.skipped() == 3);
  CHECK(repo.find_key(15).status == LookupStatus::not_found);
  CHECK(repo.find_key(10).key == "ten");
  CHECK(repo.find_key(11).key == "eleven");
  CHECK(repo.find_key(12).key == "twelve");
}

TEST_CASE("ids no request can name (negative, over 2147483647) are skipped, not loaded") {
  // Found by tests/fuzz/fuzz_bson_dump: such records reached the store and
  // `userkey-admin restore`, which then failed on them.
  test::TempDir dir;
  std::string bytes;
  bytes += doc_bytes([](bson_t* b) {
    BSON_APPEND_INT32(b, "user_id", -65535);
    BSON_APPEND_UTF8(b, "user_key", "negative");
  });
  bytes += doc_bytes([](bson_t* b) {
    BSON_APPEND_INT64(b, "user_id", 2147483648LL);
    BSON_APPEND_UTF8(b, "user_key", "too big");
  });
  bytes += doc_bytes([](bson_t* b) {
    BSON_APPEND_DOUBLE(b, "user_id", -3.0);
    BSON_APPEND_UTF8(b, "user_key", "negative double");
  });
  bytes += doc_bytes([](bson_t* b) {
    BSON_APPEND_INT64(b, "user_id", 2147483647LL);
    BSON_APPEND_UTF8(b, "user_key", "largest");
  });
  write_bytes(dir.path() / "users.bson", bytes);
  std::size_t skipped = 0;
  const auto records = read_bson_dump(dir.path() / "users.bson", &skipped);
  REQUIRE(records.size() == 1);
  CHECK(records[0].user_id == 2147483647);
  CHECK(skipped == 3);
}
