// The bound on request-body bytes the lb holds, all event loops together.
//
// Owns: reserving bytes against the count every loop shares
// (ProxyStats::body_bytes_reserved), the rule that a request is refused
// (503, counted as `body_memory`) rather than reserve past the bound, and
// giving the bytes back when the request is done (a lease). So what an
// attack of slow or stalled uploads can make the lb hold is set by
// configuration (limits.max_buffered_body_bytes), not by how many
// connections it opens.
//
// Leaves to others: how much a request reserves and when (the session: a
// body held whole reserves its length, a streamed one its replay buffer and
// one piece), answering the refusal (local_reply).
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace userkey::lb::engine {

/// Bytes reserved from a shared count; given back when it goes out of scope.
class BodyLease {
public:
  BodyLease() = default;
  /// Reserves `bytes` from `used` unless the total would pass `limit`
  /// (0 = unbounded); then the lease is empty (false) and nothing is taken.
  static BodyLease reserve(std::atomic<std::uint64_t>& used, std::uint64_t limit, std::uint64_t bytes) {
    std::uint64_t now = used.load(std::memory_order_relaxed);
    do {
      if (limit != 0 && (bytes > limit || now > limit - bytes)) return {};
    } while (!used.compare_exchange_weak(now, now + bytes, std::memory_order_relaxed));
    BodyLease lease;
    lease.used_ = &used;
    lease.bytes_ = bytes;
    return lease;
  }
  BodyLease(BodyLease&& o) noexcept : used_(std::exchange(o.used_, nullptr)), bytes_(o.bytes_) {}
  BodyLease& operator=(BodyLease&& o) noexcept {
    if (this != &o) {
      reset();
      used_ = std::exchange(o.used_, nullptr);
      bytes_ = o.bytes_;
    }
    return *this;
  }
  BodyLease(const BodyLease&) = delete;
  BodyLease& operator=(const BodyLease&) = delete;
  ~BodyLease() { reset(); }

  explicit operator bool() const { return used_ != nullptr; }
  void reset() {
    if (auto* u = std::exchange(used_, nullptr)) u->fetch_sub(bytes_, std::memory_order_relaxed);
  }

private:
  std::atomic<std::uint64_t>* used_ = nullptr;
  std::uint64_t bytes_ = 0;
};

}  // namespace userkey::lb::engine
