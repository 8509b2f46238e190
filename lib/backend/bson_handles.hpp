// RAII owners for libbson / libmongoc handles (internal to the library).
#pragma once

#include <bson/bson.h>
#include <mongoc/mongoc.h>

#include <memory>

namespace userkey::detail {

template <auto Fn>
struct CDeleter {
  template <class T>
  void operator()(T* p) const noexcept {
    if (p) Fn(p);
  }
};

using BsonReaderPtr = std::unique_ptr<bson_reader_t, CDeleter<bson_reader_destroy>>;
using UriPtr = std::unique_ptr<mongoc_uri_t, CDeleter<mongoc_uri_destroy>>;
using ClientPoolPtr = std::unique_ptr<mongoc_client_pool_t, CDeleter<mongoc_client_pool_destroy>>;
using CollectionPtr = std::unique_ptr<mongoc_collection_t, CDeleter<mongoc_collection_destroy>>;
using CursorPtr = std::unique_ptr<mongoc_cursor_t, CDeleter<mongoc_cursor_destroy>>;

/// A bson_t on the stack, destroyed at scope end.
class StackBson {
public:
  StackBson() { bson_init(&b_); }
  ~StackBson() { bson_destroy(&b_); }
  StackBson(const StackBson&) = delete;
  StackBson& operator=(const StackBson&) = delete;
  bson_t* get() { return &b_; }
  const bson_t* get() const { return &b_; }

private:
  bson_t b_;
};

/// A client popped from a pool, pushed back at scope end.
class PooledClient {
public:
  explicit PooledClient(mongoc_client_pool_t* pool) : pool_(pool), client_(mongoc_client_pool_pop(pool)) {}
  ~PooledClient() {
    if (client_) mongoc_client_pool_push(pool_, client_);
  }
  PooledClient(const PooledClient&) = delete;
  PooledClient& operator=(const PooledClient&) = delete;
  mongoc_client_t* get() const { return client_; }

private:
  mongoc_client_pool_t* pool_;
  mongoc_client_t* client_;
};

}  // namespace userkey::detail
