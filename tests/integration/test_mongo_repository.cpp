// MongoRepository against a real FerretDB (MongoDB wire protocol), started by
// the test with authentication on.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "backend/bson_handles.hpp"

#include <map>
#include <sstream>
#include <thread>

#include <userkey/backend/bson_file_repository.hpp>
#include <userkey/backend/caching_repository.hpp>
#include <userkey/backend/mongo_repository.hpp>
#include <userkey/backend/router.hpp>

#include "support/ferretdb.hpp"

using namespace userkey;
using namespace std::chrono_literals;
using test::FerretDb;

namespace {

MongoConfig config_for(const FerretDb& db, std::string user = FerretDb::kUser, std::string pass = FerretDb::kPassword) {
  MongoConfig cfg;
  cfg.uri = db.uri();
  cfg.username = std::move(user);
  cfg.password = std::move(pass);
  return cfg;
}

void restore(MongoRepository& repo) {
  for (const auto& r : read_bson_dump(resolve_dump_file(test::dump_dir()))) REQUIRE(repo.upsert(r).ok());
  REQUIRE(repo.ensure_index().ok());
}

}  // namespace

TEST_CASE("restored dump: keys 1-7 are found, others are not, ids of any number type match") {
  FerretDb db;
  MongoRepository repo(config_for(db));
  restore(repo);
  restore(repo);  // idempotent
  StoreStatus st;
  auto all = repo.list(&st);
  REQUIRE(st.ok());
  CHECK(all.size() == 7);
  const auto expected = read_bson_dump(resolve_dump_file(test::dump_dir()));
  for (const auto& r : expected) {
    auto got = repo.find_key(r.user_id);
    REQUIRE(got.ok());
    CHECK(got.key == r.user_key);
  }
  CHECK(repo.find_key(1).key == "one@5cdb5896d7c8");
  CHECK(repo.find_key(8).status == LookupStatus::not_found);

  // restore created the unique index lookups use.
  {
    using ClientPtr = std::unique_ptr<mongoc_client_t, detail::CDeleter<mongoc_client_destroy>>;
    ClientPtr client(mongoc_client_new(db.uri_with(FerretDb::kUser, FerretDb::kPassword).c_str()));
    REQUIRE(client);
    detail::CollectionPtr coll(mongoc_client_get_collection(client.get(), "myusers", "users"));
    detail::CursorPtr cursor(mongoc_collection_find_indexes_with_opts(coll.get(), nullptr));
    const bson_t* index = nullptr;
    bool found = false;
    while (mongoc_cursor_next(cursor.get(), &index)) {
      bson_iter_t it;
      if (bson_iter_init_find(&it, index, "name") && BSON_ITER_HOLDS_UTF8(&it))
        found = found || std::string(bson_iter_utf8(&it, nullptr)) == "user_id_1";
    }
    CHECK(found);
  }
  CHECK(repo.find_key(0).status == LookupStatus::not_found);
  CHECK(repo.ready().ok());
  CHECK(repo.describe().find(FerretDb::kPassword) == std::string::npos);
}

TEST_CASE("a URI naming the database, credentials from the environment: the user is found in admin") {
  FerretDb db;
  {
    MongoRepository admin(config_for(db));
    restore(admin);
  }
  // As `userkey-backend --mongo-uri mongodb://host/myusers` with mongo_user /
  // mongo_pass set: FerretDB, like a typical MongoDB deployment, has the user
  // in `admin`, not in `myusers`.
  const std::map<std::string, std::string> env{{"mongo_user", FerretDb::kUser}, {"mongo_pass", FerretDb::kPassword}};
  MongoConfig cfg;
  cfg.uri = db.uri() + "myusers";
  cfg = mongo_config_from_env(cfg, /*uri_given=*/true, [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  MongoRepository repo(cfg);
  auto r = repo.find_key(1);
  CHECK(r.status == LookupStatus::found);
  CHECK(r.key == "one@5cdb5896d7c8");
  CHECK(repo.ready().ok());
  // An explicit authSource naming a database without that user is refused.
  cfg.uri = db.uri() + "myusers?authSource=myusers";
  MongoRepository elsewhere(cfg);
  CHECK(elsewhere.find_key(1).status == LookupStatus::unauthorized);
}

TEST_CASE("not ready while the collection is missing or empty") {
  FerretDb db;
  MongoRepository repo(config_for(db));
  auto missing = repo.ready();
  CHECK_FALSE(missing.ok());
  CHECK(to_string(missing.code) == "empty");
  REQUIRE(repo.ensure_index().ok());  // the collection now exists, without documents
  auto empty = repo.ready();
  CHECK_FALSE(empty.ok());
  CHECK(to_string(empty.code) == "empty");
  CHECK(empty.detail.find("myusers.users") != std::string::npos);
  restore(repo);
  CHECK(repo.ready().ok());
}

TEST_CASE("a user added after start is found once the negative cache entry expires") {
  FerretDb db;
  auto mongo = std::make_shared<MongoRepository>(config_for(db));
  restore(*mongo);
  CachingRepository cache(mongo, {100, 60s, 300ms});
  CHECK(cache.find_key(42).status == LookupStatus::not_found);
  REQUIRE(mongo->upsert({42, "forty-two@0123456789ab"}).ok());
  CHECK(cache.find_key(42).status == LookupStatus::not_found);  // still the cached answer
  std::this_thread::sleep_for(400ms);
  auto r = cache.find_key(42);
  REQUIRE(r.ok());
  CHECK(r.key == "forty-two@0123456789ab");
}

TEST_CASE("a wrong password is 'unauthorized': a 503 and one log line without the password") {
  FerretDb db;
  {
    MongoRepository admin(config_for(db));
    restore(admin);
  }
  const std::string wrong = "definitely-wrong-password";
  // A refusal is told from a timeout only once the server has answered: a
  // login that outlasts the timeouts is a network failure (unavailable). On
  // this shared machine a SCRAM round with FerretDB has taken longer than
  // the 500 ms socket timeout, so these clients wait long enough to hear it.
  const auto patient = [](MongoConfig cfg) {
    cfg.server_selection_timeout = cfg.connect_timeout = cfg.socket_timeout = 5s;
    return cfg;
  };
  auto repo = std::make_shared<MongoRepository>(patient(config_for(db, FerretDb::kUser, wrong)));
  CHECK(repo->find_key(1).status == LookupStatus::unauthorized);
  const auto ready = repo->ready();
  CHECK_MESSAGE(ready.code == StoreStatus::Code::unauthorized, ready.detail);

  std::ostringstream out;
  auto log = std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  Router router(repo, {"backend-1", 5001}, log);
  for (int i = 0; i < 3; ++i) CHECK(router.handle({"GET", "/?user_id=1", ""}).status == 503);
  const auto text = out.str();
  CHECK(text.find("credentials") != std::string::npos);
  CHECK(text.find("credentials") == text.rfind("credentials"));
  CHECK(text.find(wrong) == std::string::npos);

  // A full URI with the wrong password behaves the same, and is redacted.
  MongoConfig uri_cfg;
  uri_cfg.uri = db.uri_with(FerretDb::kUser, wrong);
  MongoRepository by_uri(patient(uri_cfg));
  CHECK(by_uri.find_key(1).status == LookupStatus::unauthorized);
  CHECK(by_uri.describe().find(wrong) == std::string::npos);
}

TEST_CASE("FerretDB killed: unavailable within a second; restarted: lookups work again") {
  FerretDb db;
  auto repo = std::make_shared<MongoRepository>(config_for(db));
  restore(*repo);
  Router router(repo, {"backend-1", 5001});
  REQUIRE(router.handle({"GET", "/?user_id=1", ""}).status == 200);

  db.stop();
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto res = router.handle({"GET", "/?user_id=1", ""});
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(res.status == 503);
    CHECK(nlohmann::json::parse(res.body)["error"] == "database unavailable");
    CHECK(took < 1s);
  }
  CHECK(router.handle({"GET", "/readyz", ""}).status == 503);

  db.restart();
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    back = router.handle({"GET", "/?user_id=1", ""}).status == 200;
    if (!back) std::this_thread::sleep_for(100ms);
  }
  CHECK(back);
  CHECK(router.handle({"GET", "/readyz", ""}).status == 200);
}

TEST_CASE("FerretDB hung (SIGSTOP), more callers than pooled clients: each is 'unavailable' within the timeout") {
  FerretDb db;
  auto cfg = config_for(db);
  constexpr auto kTimeout = 500ms;
  cfg.connect_timeout = cfg.server_selection_timeout = cfg.socket_timeout = kTimeout;
  cfg.max_pool_size = 2;
  MongoRepository repo(cfg);
  restore(repo);
  REQUIRE(repo.find_key(1).ok());
  db.pause();
  // The bound: the timeout + 200 ms, plus 300 ms for this shared 2-core
  // machine's scheduling. Without a bounded wait for a pooled client, the
  // callers would be served two at a time, a timeout each round.
  constexpr auto kBound = kTimeout + 200ms + 300ms;
  constexpr int kCallers = 8;
  std::vector<LookupStatus> status(kCallers);
  std::vector<std::chrono::steady_clock::duration> took(kCallers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i)
    callers.emplace_back([&, i] {
      const auto start = std::chrono::steady_clock::now();
      status[i] = repo.find_key(1 + i % 7).status;
      took[i] = std::chrono::steady_clock::now() - start;
    });
  for (auto& c : callers) c.join();
  for (int i = 0; i < kCallers; ++i) {
    CAPTURE(i);
    CAPTURE(std::chrono::duration_cast<std::chrono::milliseconds>(took[i]).count());
    CHECK(status[i] == LookupStatus::unavailable);
    CHECK(took[i] <= kBound);
  }
  db.resume();
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    back = repo.find_key(1).ok();
    if (!back) std::this_thread::sleep_for(100ms);
  }
  CHECK(back);
}

TEST_CASE("a malformed URI is a start-up error, not a crash") {
  MongoConfig cfg;
  cfg.uri = "not-a-uri";
  CHECK_THROWS_AS(MongoRepository{cfg}, std::invalid_argument);
  // The driver would quote this password in its message; ours must not.
  cfg.uri = "mongodb://user:pa:ss-w0rd@127.0.0.1:1/";
  try {
    MongoRepository repo(cfg);
    FAIL("a malformed URI was accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("ss-w0rd") == std::string::npos);
  }
}

TEST_CASE("environment: USERKEY_MONGO_URI and mongo_user / mongo_pass") {
  std::map<std::string, std::string> env{{"USERKEY_MONGO_URI", "mongodb://h:1/"}, {"mongo_user", "u"}, {"mongo_pass", "p"}};
  auto lookup = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto cfg = mongo_config_from_env({}, false, lookup);
  CHECK(cfg.uri == "mongodb://h:1/");
  CHECK(cfg.username == "u");
  CHECK(cfg.password == "p");
  MongoConfig given;
  given.uri = "mongodb://flag:2/";
  CHECK(mongo_config_from_env(given, true, lookup).uri == "mongodb://flag:2/");
  CHECK(redact_uri("mongodb://u:secret@h:1/?x=1") == "mongodb://u:****@h:1/?x=1");
  CHECK(redact_uri("mongodb://h:1/") == "mongodb://h:1/");
  // Raw '@' or '/' in a password (the driver takes the first): none of it shows.
  CHECK(redact_uri("mongodb://u:s3c@ret@h:1/") == "mongodb://u:****@h:1/");
  CHECK(redact_uri("mongodb://u:a/b@h:1/") == "mongodb://u:****@h:1/");
  CHECK(redact_uri("mongodb://u@h:1/") == "mongodb://u@h:1/");
}
