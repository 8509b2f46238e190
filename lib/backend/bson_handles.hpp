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

}  // namespace userkey::detail
