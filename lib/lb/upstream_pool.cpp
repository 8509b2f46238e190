// Keep-alive connections from one loop to one upstream: see upstream_pool.hpp.
//
// GCC 12 destroys an aggregate's members twice when a co_await sits inside
// its braces (`co_return Acquired{co_await ...}`): results are awaited into
// named variables first.
#include "upstream_pool.hpp"

#include <algorithm>
#include <cerrno>
#include <iterator>

#include <sys/socket.h>

namespace userkey::lb::engine {

bool is_local_error(const error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  switch (ec.value()) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
    case EADDRNOTAVAIL: return true;
    default: return false;
  }
}

// ---------------------------------------------------------------------------
// Slots

Slot& Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    reset();
    pool_ = std::exchange(other.pool_, nullptr);
  }
  return *this;
}

void Slot::reset() {
  if (auto* pool = std::exchange(pool_, nullptr)) pool->give_back();
}

// A request queued for a connection. It joins the queue (and the loop's
// count) when made and leaves both when destroyed, whatever ends its wait.
struct UpstreamPool::Waiter {
  explicit Waiter(UpstreamPool& p) : pool(p), timer(p.io_) {
    pool.waiters_.push_back(this);
    ++pool.shared_.waiting;
  }
  ~Waiter() { leave(); }
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Out of the queue and the count; idempotent. A head that leaves (timed
  // out, or its request went away) hands the polling on to the next one.
  void leave() {
    if (queued) {
      auto pos = std::find(pool.waiters_.begin(), pool.waiters_.end(), this);
      const bool was_head = pos == pool.waiters_.begin();
      if (pos != pool.waiters_.end()) pool.waiters_.erase(pos);
      queued = false;
      if (was_head) pool.promote_head();
    }
    if (counted) {
      --pool.shared_.waiting;
      counted = false;
    }
  }

  UpstreamPool& pool;
  Timer timer;
  ConnPtr handed;  // a released connection passed straight to this request
  Slot slot;       // a closed connection's slot passed to this request
  bool queued = true;
  bool counted = true;
};

std::optional<std::uint32_t> loop_share(std::uint32_t max_conns, const PoolSettings& s) {
  const auto loops = std::max<std::size_t>(s.loops, 1);
  if (max_conns == 0) return 0;
  if (max_conns < loops) return std::nullopt;
  return static_cast<std::uint32_t>(max_conns / loops + (s.loop_index < max_conns % loops ? 1 : 0));
}

UpstreamPool::UpstreamPool(asio::io_context& io, PoolShared& shared, std::shared_ptr<Upstream> upstream,
                           std::shared_ptr<UpstreamStats> stats, tcp::endpoint endpoint)
    : io_(io),
      shared_(shared),
      upstream_(std::move(upstream)),
      stats_(std::move(stats)),
      endpoint_(std::move(endpoint)),
      share_(loop_share(upstream_->config().max_conns, shared.settings)) {}

UpstreamPool::~UpstreamPool() {
  auto closing = std::move(idle_);  // their slots come back while the pool is whole
}

bool UpstreamPool::at_cap() const {
  if (share_) return *share_ > 0 && held_ >= *share_;
  const auto cap = upstream_->config().max_conns;
  return cap > 0 && stats_->open_connections.load(std::memory_order_relaxed) >= cap;
}

bool UpstreamPool::full() const { return !waiters_.empty() || (idle_.empty() && at_cap()); }

Slot UpstreamPool::try_reserve() {
  auto& open = stats_->open_connections;
  if (share_) {
    if (*share_ > 0 && held_ >= *share_) return Slot{};
    ++held_;
    open.fetch_add(1, std::memory_order_relaxed);
    return Slot(this);
  }
  const auto cap = upstream_->config().max_conns;
  auto cur = open.load(std::memory_order_relaxed);
  do {
    if (cap > 0 && cur >= cap) return Slot{};
  } while (!open.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  return Slot(this);
}

UpstreamPool::Waiter& UpstreamPool::pop_oldest() {
  Waiter* w = waiters_.front();
  waiters_.pop_front();
  w->queued = false;
  return *w;
}

// On a shared budget the new head of a queue must start polling for slots
// freed elsewhere: wake it so it re-arms its timer.
void UpstreamPool::promote_head() {
  if (!share_ && !waiters_.empty()) waiters_.front()->timer.cancel();
}

// A slot given up goes to the oldest waiter, if any, else back to the
// upstream's budget.
void UpstreamPool::give_back() {
  if (!waiters_.empty()) {
    Waiter& w = pop_oldest();
    w.slot = Slot(this);
    w.timer.cancel();
    promote_head();
    return;
  }
  if (share_) --held_;
  stats_->open_connections.fetch_sub(1, std::memory_order_relaxed);
}

bool UpstreamPool::reusable(Conn& c) const {
  if (!c.stream.socket().is_open()) return false;
  if (SteadyClock::now() - c.idle_since >= shared_.settings.idle_timeout) return false;
  // Data now would be a response nobody asked for, EOF a close by the upstream.
  char probe;
  const auto n = ::recv(c.stream.socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// ---------------------------------------------------------------------------
// Acquire and release

ConnPtr UpstreamPool::take_idle() {
  if (!waiters_.empty()) return nullptr;
  while (!idle_.empty()) {
    ConnPtr c = std::move(idle_.back());
    idle_.pop_back();
    if (reusable(*c)) return c;
  }  // (a stale one closes as it goes out of scope)
  return nullptr;
}

// Opens a new connection on a slot already held for it.
awaitable<ConnPtr> UpstreamPool::connect(Slot slot, Failure& failure) {
  auto c = std::make_unique<Conn>(io_, std::move(slot));
  c->stream.expires_after(shared_.settings.connect_timeout);
  error_code ec;
  co_await c->stream.async_connect(endpoint_, nothrow(ec));
  if (ec) {
    failure = is_local_error(ec) ? Failure::local_error : Failure::connect_failed;
    co_return nullptr;  // `c` closes, its slot goes on
  }
  c->stream.socket().set_option(tcp::no_delay(true), ec);
  if (upstream_->config().tls) {
    // The handshake within what is left of the connect timeout.
    c->tls = make_upstream_tls(c->stream, shared_.tls, upstream_->config().host);
    co_await c->tls->async_handshake(asio::ssl::stream_base::client, nothrow(ec));
    if (ec) {
      failure = is_local_error(ec) ? Failure::local_error : Failure::tls_failed;
      last_tls_error_ = describe_upstream_tls_error(*c->tls, ec);
      co_return nullptr;
    }
  }
  co_return c;
}

awaitable<UpstreamPool::Acquired> UpstreamPool::acquire(bool fresh_only, Failure& failure) {
  if (!fresh_only) {
    if (ConnPtr c = take_idle()) co_return Acquired{std::move(c), true};
  }
  if (waiters_.empty()) {
    if (Slot s = try_reserve()) {
      ConnPtr c = co_await connect(std::move(s), failure);
      co_return Acquired{std::move(c), false};
    }
  }
  if (shared_.waiting >= shared_.settings.queue_size) {
    failure = Failure::queue_timeout;
    co_return Acquired{};
  }
  Waiter w(*this);
  const auto deadline = SteadyClock::now() + shared_.settings.queue_timeout;
  for (;;) {
    // Releases on this loop wake us at once. On a shared budget, slots freed
    // on other loops are noticed by polling, which only the head of the
    // queue does: a thousand sleepers must not spin.
    const bool poll = !share_ && waiters_.front() == &w;
    w.timer.expires_at(poll ? std::min(deadline, SteadyClock::now() + std::chrono::milliseconds(20)) : deadline);
    error_code ec;
    co_await w.timer.async_wait(nothrow(ec));
    if (w.handed && (fresh_only || !reusable(*w.handed))) {
      // Not usable: close it but keep its slot for a new connection (we are
      // no longer queued, so nothing else would come to us).
      w.slot = std::move(w.handed->slot);
      w.handed.reset();
    }
    if (w.handed) {
      w.leave();
      co_return Acquired{std::move(w.handed), true};
    }
    if (w.slot) {
      w.leave();
      ConnPtr c = co_await connect(std::move(w.slot), failure);
      co_return Acquired{std::move(c), false};
    }
    if (!waiters_.empty() && waiters_.front() == &w) {
      if (Slot s = try_reserve()) {
        w.leave();
        ConnPtr c = co_await connect(std::move(s), failure);
        co_return Acquired{std::move(c), false};
      }
    }
    if (SteadyClock::now() >= deadline) {
      w.leave();
      failure = Failure::queue_timeout;
      co_return Acquired{};
    }
  }
}

void UpstreamPool::release(ConnPtr c) {
  c->idle_since = SteadyClock::now();
  if (retired_) return;  // dropped: closed, slot given up
  if (!waiters_.empty()) {
    Waiter& w = pop_oldest();
    w.handed = std::move(c);
    w.timer.cancel();
    promote_head();
    return;
  }
  idle_.push_back(std::move(c));
}

void UpstreamPool::retire() {
  retired_ = true;
  auto closing = std::move(idle_);
  idle_.clear();
}

void UpstreamPool::sweep(TimePoint now) {
  // Oldest first: the stack's bottom.
  std::size_t keep_from = 0;
  while (keep_from < idle_.size() && now - idle_[keep_from]->idle_since >= shared_.settings.idle_timeout) ++keep_from;
  if (keep_from == 0) return;
  const auto end = idle_.begin() + static_cast<std::ptrdiff_t>(keep_from);
  std::vector<ConnPtr> expired(std::make_move_iterator(idle_.begin()), std::make_move_iterator(end));
  idle_.erase(idle_.begin(), end);
}  // `expired` closes here

// ---------------------------------------------------------------------------
// The loop's pools

void LoopPools::retire_absent(std::span<Upstream* const> present) {
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (std::find(present.begin(), present.end(), it->first) != present.end()) {
      ++it;
      continue;
    }
    it->second->retire();
    it = pools_.erase(it);
  }
}

void LoopPools::sweep(TimePoint now) {
  for (auto& [upstream, pool] : pools_) pool->sweep(now);
}

}  // namespace userkey::lb::engine
