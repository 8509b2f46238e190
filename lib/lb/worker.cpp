// One event loop and what lives on it: see worker.hpp.
#include "worker.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>

#include <unistd.h>

namespace userkey::lb::engine {

namespace {

PoolSettings pool_settings(const ProxyConfig& cfg, std::size_t index, std::size_t loops) {
  PoolSettings s;
  s.connect_timeout = cfg.connect_timeout;
  s.idle_timeout = cfg.upstream_idle_timeout;
  s.queue_timeout = cfg.queue_timeout;
  s.queue_size = cfg.queue_size;
  s.loops = loops;
  s.loop_index = index;
  return s;
}

}  // namespace

Worker::Worker(const EngineContext& ctx, std::size_t index, std::size_t loops)
    : ctx_(ctx),
      pool_shared_{pool_settings(ctx.cfg, index, loops), ctx.upstream_tls},
      router_(ctx.cluster, pools_, ctx.stats, ctx.log, ctx.cfg.upstream_timeout, ctx.stopped),
      access_log_(ctx.cfg.access_log, ctx.cfg.access_log_format, ctx.text_access_log ? *ctx.text_access_log : ctx.log,
                  ctx.json_access_log),
      session_ctx_{io_,     ctx.cfg,      ctx.stats,   ctx.admission, router_, sessions_, ctx.draining,
                   ctx.log, request_ids_, access_log_, ctx.tls, refusals_} {}

void Worker::start_session(Socket sock, ClientTransport transport) {
  start_downstream_session(session_ctx_, std::move(sock), transport);
}

void Worker::adopt(int fd, const tcp& protocol, ClientTransport transport) {
  // Each loop touches only its own reactor (which lets it run without I/O
  // locking): the descriptor is registered by the loop that will serve it.
  asio::post(io_, [this, fd, protocol, transport] {
    Socket adopted(io_);
    error_code e;
    adopted.assign(protocol, fd, e);
    if (e) {
      ::close(fd);
      return;
    }
    start_session(std::move(adopted), transport);
  });
}

std::function<void(Socket, const tcp&)> hand_to_loops(std::span<const std::unique_ptr<Worker>> loops,
                                                     ClientTransport transport) {
  return [loops, transport, next = std::size_t{0}](Socket sock, const tcp& protocol) mutable {
    Worker& target = *loops[next];
    const bool home = next == 0;
    next = (next + 1) % loops.size();
    if (home) {
      target.start_session(std::move(sock), transport);
      return;
    }
    error_code ec;
    const auto fd = sock.release(ec);
    if (!ec) target.adopt(fd, protocol, transport);
  };
}

void Worker::start_housekeeping(bool sweep_rate_limits_here) {
  asio::co_spawn(io_, sweep_idle_connections(), asio::detached);
  asio::co_spawn(io_, sweep_session_deadlines(), asio::detached);
  if (sweep_rate_limits_here) asio::co_spawn(io_, sweep_rate_limits(), asio::detached);
}

void Worker::run() {
  auto guard = asio::make_work_guard(io_);
  io_.run();
}

// Closes pooled connections that idled past upstream_idle_timeout, so their
// slots (this loop's share of max_conns) come back even when this
// loop gets no more traffic for that upstream.
awaitable<void> Worker::sweep_idle_connections() {
  Timer timer(io_);
  for (;;) {
    timer.expires_after(
        std::max<std::chrono::milliseconds>(ctx_.cfg.upstream_idle_timeout / 2, std::chrono::milliseconds(100)));
    error_code ec;
    co_await timer.async_wait(nothrow(ec));
    if (ec || ctx_.stopped.load(std::memory_order_relaxed)) co_return;
    pools_.sweep(SteadyClock::now());
  }
}

// Fires the client connections' deadlines (header, body, idle, writes): one
// timer for the loop instead of one per connection, at most a period late.
awaitable<void> Worker::sweep_session_deadlines() {
  const auto period = session_sweep_period(ctx_.cfg.limits);
  Timer timer(io_);
  for (;;) {
    timer.expires_after(period);
    error_code ec;
    co_await timer.async_wait(nothrow(ec));
    if (ec || ctx_.stopped.load(std::memory_order_relaxed)) co_return;
    sessions_.expire(SteadyClock::now());
  }
}

// Drops idle rate-limit buckets now and then.
awaitable<void> Worker::sweep_rate_limits() {
  Timer t(io_);
  while (!ctx_.stopped.load()) {
    t.expires_after(std::chrono::seconds(10));
    error_code e;
    co_await t.async_wait(nothrow(e));
    ctx_.admission.sweep(SteadyClock::now());
  }
}

}  // namespace userkey::lb::engine
