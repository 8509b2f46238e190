#include "userkey/backend/mongo_repository.hpp"

#include <array>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "backend/bson_handles.hpp"
#include "backend/bson_user.hpp"
#include "backend/client_pool.hpp"
#include "backend/mongo_errors.hpp"
#include "backend/mongo_uri.hpp"

namespace userkey {

namespace {

void init_driver_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    // The handler goes in before mongoc_init(): the driver's own warnings
    // (one per failed authentication, per connection; the counters fallback
    // notice printed by mongoc_init itself) would flood the log and a CLI's
    // stderr, and callers report failures themselves.
    mongoc_log_trace_disable();
    mongoc_log_set_handler(
        [](mongoc_log_level_t level, const char* domain, const char* message, void* data) {
          if (level <= MONGOC_LOG_LEVEL_CRITICAL) mongoc_log_default_handler(level, domain, message, data);
        },
        nullptr);
    mongoc_init();
    // mongoc_init() creates a shared-memory segment /dev/shm/mongoc-<pid>
    // for its performance counters that only mongoc_cleanup() removes;
    // without this every process leaves one behind. Registered from inside
    // the first repository's constructor, so it runs after that repository
    // (and any later one with static storage) is destroyed. Both calls are
    // once-only in the driver, so an embedder's own mongoc_cleanup() is fine.
    std::atexit(mongoc_cleanup);
  });
}

constexpr const char* kRefused = "database refused the credentials";

// Every pooled client stayed busy for the pool's max_wait: the server is slow
// or hung, and waiting longer would only queue requests behind it.
constexpr const char* kNoClient = "no database client became free in time";

}  // namespace

// Failed operations by kind: relaxed atomics, read by stats() on a scrape.
class MongoRepository::ErrorCounters {
public:
  void add(DatabaseError e) { counts_[static_cast<std::size_t>(e)].fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t get(DatabaseError e) const { return counts_[static_cast<std::size_t>(e)].load(std::memory_order_relaxed); }

  LookupResult classify(const bson_error_t& e) {
    const auto kind = detail::classify_driver_error(e);
    add(kind);
    if (kind == DatabaseError::unauthorized) return LookupResult::error(LookupStatus::unauthorized, kRefused);
    return LookupResult::error(LookupStatus::unavailable, std::string("database unavailable: ") + e.message);
  }
  StoreStatus store_failure(const bson_error_t& e) {
    const auto kind = detail::classify_driver_error(e);
    add(kind);
    if (kind == DatabaseError::unauthorized) return StoreStatus::error(StoreStatus::Code::unauthorized, kRefused);
    return StoreStatus::error(StoreStatus::Code::unavailable, std::string("database unavailable: ") + e.message);
  }
  StoreStatus no_client() {
    add(DatabaseError::pool_timeout);
    return StoreStatus::error(StoreStatus::Code::unavailable, kNoClient);
  }

private:
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(DatabaseError::count_)> counts_{};
};

MongoConfig mongo_config_from_env(MongoConfig base, bool uri_given, const EnvLookup& env) {
  auto get = [&](const char* name) -> const char* { return env ? env(name) : std::getenv(name); };
  if (!uri_given) {
    if (const char* u = get("USERKEY_MONGO_URI"); u && *u) base.uri = u;
  }
  if (const char* u = get("mongo_user"); u && *u && !base.username) base.username = u;
  if (const char* p = get("mongo_pass"); p && !base.password) base.password = p;
  return base;
}

std::string redact_uri(const std::string& uri) {
  const auto scheme = uri.find("://");
  if (scheme == std::string::npos) return uri;
  const auto start = scheme + 3;
  // Up to the last '@': the driver accepts a password holding a raw '@' or
  // '/' ("u:p@ss@host"), and hiding a host along with it beats showing part
  // of a password.
  const auto at = uri.rfind('@');
  if (at == std::string::npos || at < start) return uri;
  const auto colon = uri.find(':', start);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon + 1) + "****" + uri.substr(at);
}

struct MongoRepository::Impl {
  MongoConfig cfg;
  detail::UriPtr uri;
  std::unique_ptr<detail::BoundedClientPool> pool;
  std::string described;
  ErrorCounters errors;

  detail::CollectionPtr collection(mongoc_client_t* client) const {
    return detail::CollectionPtr(mongoc_client_get_collection(client, cfg.database.c_str(), cfg.collection.c_str()));
  }
};

MongoRepository::MongoRepository(MongoConfig config) : impl_(std::make_unique<Impl>()) {
  init_driver_once();
  impl_->cfg = std::move(config);
  auto& cfg = impl_->cfg;
  impl_->uri = detail::build_mongo_uri(cfg);
  mongoc_uri_t* u = impl_->uri.get();

  impl_->pool = std::make_unique<detail::BoundedClientPool>(u, cfg.max_pool_size, cfg.pool_wait_timeout);

  char* s = mongoc_uri_get_string(u) ? bson_strdup(mongoc_uri_get_string(u)) : nullptr;
  impl_->described = "mongodb:" + redact_uri(s ? s : "") + " " + cfg.database + "." + cfg.collection;
  bson_free(s);
}

MongoRepository::~MongoRepository() = default;

LookupResult MongoRepository::find_key(UserId id) {
  if (id < 0) return LookupResult::error(LookupStatus::invalid_id, "user_id must not be negative");
  auto client = impl_->pool->acquire();
  if (!client.get()) {
    impl_->errors.add(DatabaseError::pool_timeout);
    return LookupResult::error(LookupStatus::unavailable, kNoClient);
  }
  auto coll = impl_->collection(client.get());

  const std::string as_text = std::to_string(id);
  detail::StackBson filter;
  bson_t cond, in;
  BSON_APPEND_DOCUMENT_BEGIN(filter.get(), "user_id", &cond);
  BSON_APPEND_ARRAY_BEGIN(&cond, "$in", &in);
  BSON_APPEND_INT64(&in, "0", id);
  BSON_APPEND_UTF8(&in, "1", as_text.c_str());
  bson_append_array_end(&cond, &in);
  bson_append_document_end(filter.get(), &cond);

  detail::StackBson opts;
  BSON_APPEND_INT64(opts.get(), "limit", 1);
  bson_t proj;
  BSON_APPEND_DOCUMENT_BEGIN(opts.get(), "projection", &proj);
  BSON_APPEND_INT32(&proj, "user_key", 1);
  BSON_APPEND_INT32(&proj, "_id", 0);
  bson_append_document_end(opts.get(), &proj);

  detail::CursorPtr cursor(mongoc_collection_find_with_opts(coll.get(), filter.get(), opts.get(), nullptr));
  const bson_t* doc = nullptr;
  std::optional<std::string> key;
  while (mongoc_cursor_next(cursor.get(), &doc)) {
    if ((key = detail::read_user_key(doc))) break;
  }
  bson_error_t err;
  if (!key && mongoc_cursor_error(cursor.get(), &err)) return impl_->errors.classify(err);
  if (!key) return LookupResult::not_found();
  return LookupResult::found(std::move(*key));
}

ReadyResult MongoRepository::ready() {
  auto client = impl_->pool->acquire();
  if (!client.get()) return impl_->errors.no_client();
  // A count on the collection needs both a server and working credentials,
  // unlike a bare ping, and says whether there is anything to serve.
  auto coll = impl_->collection(client.get());
  detail::StackBson filter;
  detail::StackBson opts;
  BSON_APPEND_INT64(opts.get(), "limit", 1);
  bson_error_t err;
  const int64_t n = mongoc_collection_count_documents(coll.get(), filter.get(), opts.get(), nullptr, nullptr, &err);
  if (n < 0) return impl_->errors.store_failure(err);
  // A missing collection counts 0 too: a typo in --db / --collection, or a
  // database nobody restored, would otherwise be "ready" and answer every
  // id with 400 unknown.
  if (n == 0)
    return StoreStatus::error(StoreStatus::Code::empty,
                              "collection " + impl_->cfg.database + "." + impl_->cfg.collection + " is missing or empty");
  return StoreStatus::success();
}

std::string MongoRepository::describe() const { return impl_->described; }

DatabaseStats MongoRepository::stats() const {
  DatabaseStats st;
  for (std::size_t i = 0; i < st.errors.size(); ++i) st.errors[i] = impl_->errors.get(static_cast<DatabaseError>(i));
  st.pool_in_use = impl_->pool->in_use();
  st.pool_size = impl_->pool->max_size();
  return st;
}

void MongoRepository::collect_stats(RepositoryStats& out) const { out.database = stats(); }

StoreStatus MongoRepository::upsert(const UserRecord& r) {
  auto client = impl_->pool->acquire();
  if (!client.get()) return impl_->errors.no_client();
  auto coll = impl_->collection(client.get());
  if (r.user_id < 0 || r.user_id > 2147483647)
    return StoreStatus::error(StoreStatus::Code::invalid_id, "user_id out of range (0..2147483647)");
  detail::StackBson selector, replacement, opts;
  BSON_APPEND_INT32(selector.get(), "user_id", static_cast<int32_t>(r.user_id));
  BSON_APPEND_INT32(replacement.get(), "user_id", static_cast<int32_t>(r.user_id));
  BSON_APPEND_UTF8(replacement.get(), "user_key", r.user_key.c_str());
  BSON_APPEND_BOOL(opts.get(), "upsert", true);
  bson_error_t err;
  if (!mongoc_collection_replace_one(coll.get(), selector.get(), replacement.get(), opts.get(), nullptr, &err))
    return impl_->errors.store_failure(err);
  return StoreStatus::success();
}

std::vector<UserRecord> MongoRepository::list(StoreStatus* status) {
  std::vector<UserRecord> out;
  auto client = impl_->pool->acquire();
  if (!client.get()) {
    if (status) *status = impl_->errors.no_client();
    return out;
  }
  auto coll = impl_->collection(client.get());
  detail::StackBson filter, opts;
  bson_t sort;
  BSON_APPEND_DOCUMENT_BEGIN(opts.get(), "sort", &sort);
  BSON_APPEND_INT32(&sort, "user_id", 1);
  bson_append_document_end(opts.get(), &sort);
  detail::CursorPtr cursor(mongoc_collection_find_with_opts(coll.get(), filter.get(), opts.get(), nullptr));
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor.get(), &doc)) {
    auto id = detail::read_user_id(doc);
    auto key = detail::read_user_key(doc);
    if (id && key) out.push_back({*id, std::move(*key)});
  }
  bson_error_t err;
  if (mongoc_cursor_error(cursor.get(), &err)) {
    if (status) *status = impl_->errors.store_failure(err);
    return {};
  }
  if (status) *status = StoreStatus::success();
  return out;
}

StoreStatus MongoRepository::ensure_index() {
  auto client = impl_->pool->acquire();
  if (!client.get()) return impl_->errors.no_client();
  mongoc_database_t* db = mongoc_client_get_database(client.get(), impl_->cfg.database.c_str());
  std::unique_ptr<mongoc_database_t, detail::CDeleter<mongoc_database_destroy>> db_owner(db);
  detail::StackBson cmd, reply;
  bson_t indexes, index, key;
  BSON_APPEND_UTF8(cmd.get(), "createIndexes", impl_->cfg.collection.c_str());
  BSON_APPEND_ARRAY_BEGIN(cmd.get(), "indexes", &indexes);
  BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
  BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);
  BSON_APPEND_INT32(&key, "user_id", 1);
  bson_append_document_end(&index, &key);
  BSON_APPEND_UTF8(&index, "name", "user_id_1");
  BSON_APPEND_BOOL(&index, "unique", true);
  bson_append_document_end(&indexes, &index);
  bson_append_array_end(cmd.get(), &indexes);
  bson_error_t err;
  bool ok = mongoc_database_write_command_with_opts(db, cmd.get(), nullptr, reply.get(), &err);
  if (!ok) return impl_->errors.store_failure(err);
  return StoreStatus::success();
}

}  // namespace userkey
