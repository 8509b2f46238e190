// A mongo-c-driver client pool whose callers never wait without a bound
// (internal).
//
// mongoc_client_pool_pop() blocks until a client is free once max_size
// clients are out; with a hung server every client can be stuck for a socket
// timeout, and the callers queued behind them then wait for as long as the
// hang lasts. Here at most `max_size` leases exist; a caller waits up to
// `max_wait` for one and otherwise gets an empty lease (the caller answers
// "unavailable" at once).
//
// in_use() counts the leases alive now (clients checked out), for the
// backend's /metrics: a relaxed atomic each lease adds to and takes from.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "backend/bson_handles.hpp"

namespace userkey::detail {

class BoundedClientPool {
public:
  /// Throws std::invalid_argument when the driver rejects the URI.
  BoundedClientPool(const mongoc_uri_t* uri, std::uint32_t max_size, std::chrono::milliseconds max_wait);

  /// A client taken from the pool, returned at scope end; get() is null when
  /// none became free within max_wait.
  class Lease {
  public:
    Lease() = default;
    Lease(Lease&& o) noexcept : owner_(o.owner_), client_(o.client_) {
      o.owner_ = nullptr;
      o.client_ = nullptr;
    }
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    mongoc_client_t* get() const { return client_; }

  private:
    friend class BoundedClientPool;
    Lease(BoundedClientPool* owner, mongoc_client_t* client) : owner_(owner), client_(client) {}
    BoundedClientPool* owner_ = nullptr;
    mongoc_client_t* client_ = nullptr;
  };

  Lease acquire();
  std::chrono::milliseconds max_wait() const { return max_wait_; }
  /// Clients checked out now (leases alive).
  std::uint32_t in_use() const { return in_use_.load(std::memory_order_relaxed); }
  /// The most clients that can be checked out at once.
  std::uint32_t max_size() const { return max_size_; }

private:
  void release(mongoc_client_t* client);

  ClientPoolPtr pool_;
  std::chrono::milliseconds max_wait_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::uint32_t free_slots_;
  const std::uint32_t max_size_;
  std::atomic<std::uint32_t> in_use_{0};
};

}  // namespace userkey::detail
