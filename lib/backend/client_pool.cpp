#include "backend/client_pool.hpp"

#include <stdexcept>

namespace userkey::detail {

BoundedClientPool::BoundedClientPool(const mongoc_uri_t* uri, std::uint32_t max_size,
                                     std::chrono::milliseconds max_wait)
    : pool_(mongoc_client_pool_new(uri)),
      max_wait_(max_wait),
      free_slots_(max_size == 0 ? 1 : max_size),
      max_size_(free_slots_) {
  if (!pool_) throw std::invalid_argument("cannot create a MongoDB client pool for this URI");
  mongoc_client_pool_set_error_api(pool_.get(), MONGOC_ERROR_API_VERSION_2);
  mongoc_client_pool_max_size(pool_.get(), free_slots_);
}

BoundedClientPool::Lease BoundedClientPool::acquire() {
  {
    std::unique_lock lock(mu_);
    if (!freed_.wait_for(lock, max_wait_, [this] { return free_slots_ > 0; })) return {};
    --free_slots_;
  }
  // Holding a slot means fewer than max_size clients are out, so the driver
  // has one queued or may create one: try_pop does not come back empty.
  mongoc_client_t* client = mongoc_client_pool_try_pop(pool_.get());
  if (!client) {
    release(nullptr);
    return {};
  }
  in_use_.fetch_add(1, std::memory_order_relaxed);
  return Lease(this, client);
}

void BoundedClientPool::release(mongoc_client_t* client) {
  if (client) {
    in_use_.fetch_sub(1, std::memory_order_relaxed);
    mongoc_client_pool_push(pool_.get(), client);  // back in the pool before the slot frees
  }
  {
    std::lock_guard lock(mu_);
    ++free_slots_;
  }
  freed_.notify_one();
}

BoundedClientPool::Lease::~Lease() {
  if (owner_) owner_->release(client_);
}

}  // namespace userkey::detail
