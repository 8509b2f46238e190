// Keep-alive connections from one event loop to one upstream.
//
// Owns: the idle stack (LIFO: the most recently used connection is the least
// likely stale), the check before reusing one (idle age, MSG_PEEK for data or
// EOF that arrived while idle), the FIFO queue of requests waiting while the
// upstream is at max_conns (bounded per loop by queue_size and queue_timeout),
// the sweep of connections idle too long, and the max_conns slots themselves:
// each is a Slot object, so it comes back on every path (close, error,
// exception, a loop torn down with requests in flight).
//
// With several loops, each loop's pool owns its share of max_conns (the
// listener spreads client connections evenly over the loops): a slot freed
// on a loop goes at once to that loop's queue, and no loop can starve
// another by holding most of the budget. Only when max_conns is smaller
// than the number of loops do the loops draw on one shared budget, and the
// head of each queue then polls for slots other loops free.
//
// Leaves to others: which upstream a request goes to and what travels on a
// connection (upstream_router), where an upstream is (cluster resolves names;
// a pool gets one endpoint for its life), health and policies.
//
// Not thread-safe: a pool belongs to one loop. Only the slot count
// (UpstreamStats::open_connections, the metric and the shared budget) is
// shared across loops, through atomics.
#pragma once

#include "io_types.hpp"

#include <boost/beast/core/flat_buffer.hpp>

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "upstream_tls.hpp"
#include "userkey/lb/proxy_metrics.hpp"
#include "userkey/lb/upstream.hpp"

namespace userkey::lb::engine {

class UpstreamPool;

/// True for errors that say this process or host ran short (EMFILE, ENFILE,
/// ENOBUFS, ENOMEM, EADDRNOTAVAIL from connect): they never count against
/// an upstream's health.
bool is_local_error(const error_code& ec);

/// One of an upstream's max_conns connection slots. Move-only. Giving it up
/// (destroying or reset()) passes it to the oldest request queued on its
/// pool, else returns it to the upstream's budget. Must not outlive its pool.
class Slot {
public:
  Slot() = default;
  Slot(Slot&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)) {}
  Slot& operator=(Slot&& other) noexcept;
  ~Slot() { reset(); }

  explicit operator bool() const { return pool_ != nullptr; }
  void reset();

private:
  friend class UpstreamPool;
  explicit Slot(UpstreamPool* pool) : pool_(pool) {}
  UpstreamPool* pool_ = nullptr;
};

/// A connection to the upstream and the buffer its responses are read into.
/// Dropping it closes the socket, then gives its slot up.
struct Conn {
  Conn(asio::io_context& io, Slot s) : slot(std::move(s)), stream(io) {}
  Slot slot;  // first member: given up after the socket is closed
  Stream stream;
  /// To an upstream with tls=on: the TLS layer over `stream` (destroyed
  /// before it); null otherwise. Requests go through it when it is there.
  std::unique_ptr<UpstreamTlsStream> tls;
  beast::flat_buffer buffer;
  TimePoint idle_since{};
};
using ConnPtr = std::unique_ptr<Conn>;

struct PoolSettings {
  std::chrono::milliseconds connect_timeout{1'000};
  /// Idle connections older than this are not reused, and are swept.
  std::chrono::milliseconds idle_timeout{2'000};
  std::chrono::milliseconds queue_timeout{2'000};
  /// Requests queued on one loop, all upstreams together.
  std::size_t queue_size = 1024;
  /// How many loops serve the upstreams, and which one this is: the loop's
  /// share of an upstream's max_conns is max_conns / loops, the first
  /// max_conns % loops loops taking one more.
  std::size_t loops = 1;
  std::size_t loop_index = 0;
};

/// This loop's share of `max_conns` (0 = unlimited, so is the result);
/// nullopt when max_conns < loops: the loops then share one budget.
std::optional<std::uint32_t> loop_share(std::uint32_t max_conns, const PoolSettings& s);

/// What every pool on one loop shares. Must outlive the loop's coroutines
/// (a queued request leaves the count when its frame is destroyed).
struct PoolShared {
  PoolSettings settings;
  /// The client TLS context for upstreams with tls=on. A reference: the
  /// facade builds it for every configuration (a reload may turn tls on),
  /// so a pool never meets a tls=on upstream without one.
  asio::ssl::context& tls;
  std::size_t waiting = 0;  ///< requests queued on this loop
};

class UpstreamPool {
public:
  UpstreamPool(asio::io_context& io, PoolShared& shared, std::shared_ptr<Upstream> upstream,
               std::shared_ptr<UpstreamStats> stats, tcp::endpoint endpoint);
  ~UpstreamPool();  // closes the idle connections
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  /// local_error: our side ran out of something (descriptors, buffers,
  /// memory, local ports): not the upstream's fault.
  /// tls_failed: connected, but the TLS handshake failed (last_tls_error()
  /// says why).
  enum class Failure { none, connect_failed, queue_timeout, local_error, tls_failed };
  struct Acquired {
    ConnPtr conn;         ///< null on failure
    bool reused = false;  ///< came from the idle stack or a release, not a new connect
  };

  /// The common case, without a coroutine: a reusable idle connection when
  /// nobody is queued ahead. Stale ones on the way are closed.
  ConnPtr take_idle();
  /// An idle connection (unless `fresh_only`), else a new one within
  /// max_conns, else a place in the queue until a connection or slot comes
  /// back or queue_timeout passes. `failure` says why `conn` is null.
  awaitable<Acquired> acquire(bool fresh_only, Failure& failure);
  /// `c` can carry another request: to the oldest queued request, else onto
  /// the idle stack; closed instead once the pool is retired. (A connection
  /// that cannot be reused is simply dropped.)
  void release(ConnPtr c);
  /// The upstream left the configuration: idle connections close now,
  /// released ones from now on.
  void retire();
  /// Closes idle connections that idled idle_timeout or longer by `now`.
  void sweep(TimePoint now);
  /// Fit to carry a request: open, not idle too long, nothing arrived on it.
  bool reusable(Conn& c) const;

  const Upstream& upstream() const { return *upstream_; }
  /// Why the latest TLS handshake to the upstream failed.
  const std::string& last_tls_error() const { return last_tls_error_; }
  std::size_t idle_count() const { return idle_.size(); }
  std::size_t queued() const { return waiters_.size(); }
  /// A request here now would queue: others already wait, or no idle
  /// connection is left and every slot this loop may use is taken.
  bool full() const;

private:
  friend class Slot;
  struct Waiter;

  bool at_cap() const;    // no slot left for this loop
  Slot try_reserve();     // empty at max_conns
  void give_back();       // a Slot was given up
  Waiter& pop_oldest();   // the queue is not empty
  void promote_head();
  awaitable<ConnPtr> connect(Slot slot, Failure& failure);

  asio::io_context& io_;
  PoolShared& shared_;
  std::shared_ptr<Upstream> upstream_;  // owned, so a key of LoopPools cannot be reused while the pool lives
  std::shared_ptr<UpstreamStats> stats_;
  tcp::endpoint endpoint_;
  std::deque<Waiter*> waiters_;
  /// This loop's own budget (0 = unlimited) and what it holds of it; empty
  /// when the loops share the upstream's whole max_conns (see loop_share).
  std::optional<std::uint32_t> share_;
  std::uint32_t held_ = 0;
  bool retired_ = false;
  std::string last_tls_error_;
  std::vector<ConnPtr> idle_;  // last member: its slots come back while the rest still exists
};

/// The pools of one loop, one per upstream.
class LoopPools {
public:
  LoopPools(asio::io_context& io, PoolShared& shared) : io_(io), shared_(shared) {}

  /// The pool for `upstream` (created on first use). Requests hold it by
  /// shared_ptr, so it outlives retirement while they use it.
  std::shared_ptr<UpstreamPool> get(const std::shared_ptr<Upstream>& upstream,
                                    const std::shared_ptr<UpstreamStats>& stats, const tcp::endpoint& endpoint) {
    auto& p = pools_[upstream.get()];
    if (!p) p = std::make_shared<UpstreamPool>(io_, shared_, upstream, stats, endpoint);
    return p;
  }
  /// Retires and forgets the pools of upstreams not in `present`.
  void retire_absent(std::span<Upstream* const> present);
  void sweep(TimePoint now);

private:
  asio::io_context& io_;
  PoolShared& shared_;
  std::unordered_map<const Upstream*, std::shared_ptr<UpstreamPool>> pools_;
};

}  // namespace userkey::lb::engine
