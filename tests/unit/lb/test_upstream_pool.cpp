// Unit tests for the per-loop upstream connection pool (lib/lb/upstream_pool):
// a real io_context and loopback connections to a listening socket on
// 127.0.0.1 (kernel-chosen port) that never answers. Deadlines here only
// bound waits; nothing asserts a speed.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lb/upstream_pool.hpp"
#include "support/run_loop.hpp"

namespace lb = userkey::lb;
namespace engine = userkey::lb::engine;
namespace asio = boost::asio;
using engine::UpstreamPool;
using Failure = UpstreamPool::Failure;
using namespace std::chrono_literals;
using userkey::test::run_until;

namespace {

// The client TLS context every PoolShared holds. These tests' upstreams are
// plain (tls=off): their pools never use it.
asio::ssl::context& client_tls() {
  static asio::ssl::context ctx{asio::ssl::context::tls_client};
  return ctx;
}

std::shared_ptr<lb::Upstream> make_upstream(std::uint16_t port, std::uint32_t max_conns) {
  lb::UpstreamConfig c;
  c.host = "127.0.0.1";
  c.port = port;
  c.max_conns = max_conns;
  return std::make_shared<lb::Upstream>(c, lb::PassiveHealthConfig{});
}

struct Fixture {
  explicit Fixture(std::uint32_t max_conns, engine::PoolSettings settings = {}) {
    shared.settings = settings;
    server.open(engine::tcp::v4());
    server.bind({asio::ip::make_address("127.0.0.1"), 0});
    server.listen();  // handshakes complete in the backlog; nothing is accepted unless a test does
    endpoint = server.local_endpoint();
    upstream = make_upstream(endpoint.port(), max_conns);
    pool = std::make_shared<UpstreamPool>(io, shared, upstream, stats, endpoint);
  }
  ~Fixture() { pool.reset(); }  // before the loop: idle connections close on it

  // A request for a connection, run in the background; `result` once done.
  struct Pending {
    std::optional<UpstreamPool::Acquired> result;
    Failure failure = Failure::none;
  };
  std::shared_ptr<Pending> start_acquire(bool fresh_only = false, std::vector<int>* order = nullptr, int tag = 0) {
    auto p = std::make_shared<Pending>();
    asio::co_spawn(
        io,
        [pool = pool, p, fresh_only, order, tag]() -> engine::awaitable<void> {
          auto a = co_await pool->acquire(fresh_only, p->failure);
          if (order) order->push_back(tag);
          p->result = std::move(a);
        },
        asio::detached);
    return p;
  }
  UpstreamPool::Acquired acquire(bool fresh_only = false, Failure* failure = nullptr) {
    auto p = start_acquire(fresh_only);
    run_until(io, [&] { return p->result.has_value(); });
    if (failure) *failure = p->failure;
    return std::move(*p->result);
  }
  std::uint64_t open() const { return stats->open_connections.load(); }

  engine::PoolShared shared{{}, client_tls()};  // outlives the loop's coroutines
  asio::io_context io;
  engine::Acceptor server{io};
  engine::tcp::endpoint endpoint;
  std::shared_ptr<lb::Upstream> upstream;
  std::shared_ptr<lb::UpstreamStats> stats = std::make_shared<lb::UpstreamStats>();
  std::shared_ptr<UpstreamPool> pool;
};

}  // namespace

TEST_CASE("pool: new connections up to max_conns, then idle ones last in, first out") {
  Fixture f(2);
  auto a = f.acquire();
  auto b = f.acquire();
  REQUIRE(a.conn);
  REQUIRE(b.conn);
  CHECK_FALSE(a.reused);
  CHECK_FALSE(b.reused);
  CHECK(f.open() == 2);
  engine::Conn* first = a.conn.get();
  engine::Conn* second = b.conn.get();
  f.pool->release(std::move(a.conn));
  f.pool->release(std::move(b.conn));
  CHECK(f.pool->idle_count() == 2);
  CHECK(f.open() == 2);  // idle connections keep their slots

  auto c = f.pool->take_idle();
  CHECK(c.get() == second);
  auto d = f.acquire();  // acquire prefers an idle one too
  CHECK(d.reused);
  CHECK(d.conn.get() == first);
  CHECK(f.pool->take_idle() == nullptr);
  CHECK(f.open() == 2);
  c.reset();  // closing gives the slot back
  CHECK(f.open() == 1);
  d.conn.reset();
  CHECK(f.open() == 0);
}

TEST_CASE("pool: queued requests get released connections first come, first served") {
  engine::PoolSettings s;
  s.queue_timeout = 60s;  // never reached here
  Fixture f(1, s);
  auto held = f.acquire();
  std::vector<int> order;
  auto first = f.start_acquire(false, &order, 1);
  auto second = f.start_acquire(false, &order, 2);
  f.io.restart();
  f.io.poll();
  CHECK(f.pool->queued() == 2);
  CHECK(f.shared.waiting == 2);
  CHECK(f.pool->take_idle() == nullptr);

  engine::Conn* conn = held.conn.get();
  f.pool->release(std::move(held.conn));
  CHECK(f.pool->idle_count() == 0);  // straight to the oldest, not onto the idle stack
  run_until(f.io, [&] { return first->result.has_value(); });
  CHECK(order == std::vector<int>{1});
  CHECK(first->result->reused);
  CHECK(first->result->conn.get() == conn);
  CHECK(f.pool->queued() == 1);

  f.pool->release(std::move(first->result->conn));
  run_until(f.io, [&] { return second->result.has_value(); });
  CHECK(order == std::vector<int>{1, 2});
  CHECK(second->result->conn.get() == conn);
  CHECK(f.shared.waiting == 0);
  CHECK(f.open() == 1);
}

TEST_CASE("pool: a full queue refuses at once; a queued request gives up after queue_timeout") {
  engine::PoolSettings s;
  s.queue_size = 1;
  s.queue_timeout = 50ms;
  Fixture f(1, s);
  auto held = f.acquire();
  auto queued = f.start_acquire();
  f.io.restart();
  f.io.poll();
  REQUIRE(f.pool->queued() == 1);

  Failure failure = Failure::none;
  auto refused = f.acquire(false, &failure);
  CHECK(refused.conn == nullptr);
  CHECK(failure == Failure::queue_timeout);
  CHECK(f.pool->queued() == 1);  // the one already queued still waits

  run_until(f.io, [&] { return queued->result.has_value(); });
  CHECK(queued->result->conn == nullptr);
  CHECK(queued->failure == Failure::queue_timeout);
  CHECK(f.pool->queued() == 0);
  CHECK(f.shared.waiting == 0);
  CHECK(f.open() == 1);  // only the held connection
}

TEST_CASE("pool: a closed connection's slot goes to the oldest queued request, which connects anew") {
  engine::PoolSettings s;
  s.queue_timeout = 60s;
  Fixture f(1, s);
  auto held = f.acquire();
  auto queued = f.start_acquire();
  f.io.restart();
  f.io.poll();
  REQUIRE(f.pool->queued() == 1);
  held.conn.reset();  // closed, not released
  CHECK(f.open() == 1);  // the slot moved to the queued request instead of back to the budget
  run_until(f.io, [&] { return queued->result.has_value(); });
  REQUIRE(queued->result->conn);
  CHECK_FALSE(queued->result->reused);
  CHECK(f.open() == 1);
  CHECK(f.shared.waiting == 0);
}

TEST_CASE("pool: idle connections past idle_timeout are swept or skipped, and their slots come back") {
  engine::PoolSettings s;
  s.idle_timeout = 1s;
  Fixture f(4, s);
  auto a = f.acquire();
  auto b = f.acquire();
  f.pool->release(std::move(a.conn));
  f.pool->release(std::move(b.conn));
  const auto now = lb::SteadyClock::now();
  f.pool->sweep(now);
  CHECK(f.pool->idle_count() == 2);
  f.pool->sweep(now + 2s);
  CHECK(f.pool->idle_count() == 0);
  CHECK(f.open() == 0);

  engine::PoolSettings stale;
  stale.idle_timeout = 0ms;  // everything idle is too old to reuse
  Fixture g(4, stale);
  auto c = g.acquire();
  g.pool->release(std::move(c.conn));
  CHECK(g.pool->take_idle() == nullptr);
  CHECK(g.pool->idle_count() == 0);
  CHECK(g.open() == 0);
}

TEST_CASE("pool: an idle connection the upstream wrote to or closed is not reused") {
  for (const bool close : {false, true}) {
    CAPTURE(close);
    Fixture f(1);
    auto a = f.acquire();
    REQUIRE(a.conn);
    engine::Socket peer = f.server.accept();
    if (close) {
      peer.close();
    } else {
      const std::string stray = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
      asio::write(peer, asio::buffer(stray));
    }
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (f.pool->reusable(*a.conn) && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(1ms);
    f.pool->release(std::move(a.conn));
    CHECK(f.pool->take_idle() == nullptr);
    CHECK(f.open() == 0);
  }
}

TEST_CASE("pool: fresh_only never takes a pooled connection") {
  Fixture f(2);
  auto a = f.acquire();
  f.pool->release(std::move(a.conn));
  auto b = f.acquire(/*fresh_only=*/true);
  REQUIRE(b.conn);
  CHECK_FALSE(b.reused);
  CHECK(f.pool->idle_count() == 1);
  CHECK(f.open() == 2);
}

TEST_CASE("pool: a failed connect gives its slot back") {
  Fixture f(1);
  f.server.close();  // nothing listens there any more: refused
  Failure failure = Failure::none;
  auto a = f.acquire(false, &failure);
  CHECK(a.conn == nullptr);
  CHECK(failure == Failure::connect_failed);
  CHECK(f.open() == 0);
}

TEST_CASE("pool: slots come back on exception paths") {
  SUBCASE("a request that throws while holding a connection") {
    Fixture f(1);
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(
        f.io,
        [pool = f.pool]() -> engine::awaitable<void> {
          Failure failure = Failure::none;
          auto a = co_await pool->acquire(false, failure);
          if (a.conn) throw std::runtime_error("boom");
        },
        [&](std::exception_ptr e) {
          error = e;
          done = true;
        });
    run_until(f.io, [&] { return done; });
    CHECK(error != nullptr);
    CHECK(f.open() == 0);
  }
  SUBCASE("a loop torn down with a connection in use and a request queued") {
    engine::PoolShared shared{{}, client_tls()};
    shared.settings.queue_timeout = 60s;
    auto stats = std::make_shared<lb::UpstreamStats>();
    {
      auto io = std::make_unique<asio::io_context>();
      auto server = std::make_unique<engine::Acceptor>(*io, engine::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0});
      const auto endpoint = server->local_endpoint();
      auto pool = std::make_shared<UpstreamPool>(*io, shared, make_upstream(endpoint.port(), 1), stats, endpoint);
      bool holding = false;
      asio::co_spawn(
          *io,
          [pool, &holding]() -> engine::awaitable<void> {
            Failure failure = Failure::none;
            auto a = co_await pool->acquire(false, failure);
            holding = a.conn != nullptr;
            engine::Timer forever(co_await asio::this_coro::executor);
            forever.expires_after(1h);
            co_await forever.async_wait(asio::use_awaitable_t<engine::Executor>{});
          },
          asio::detached);
      asio::co_spawn(
          *io,
          [pool]() -> engine::awaitable<void> {
            Failure failure = Failure::none;
            co_await pool->acquire(false, failure);
          },
          asio::detached);
      run_until(*io, [&] { return holding && pool->queued() == 1; });
      CHECK(stats->open_connections.load() == 1);
      CHECK(shared.waiting == 1);
      pool.reset();  // only the coroutines hold it now
      server.reset();
      io.reset();  // destroys them mid-flight
    }
    CHECK(stats->open_connections.load() == 0);
    CHECK(shared.waiting == 0);
  }
}

TEST_CASE("LoopPools: one pool per upstream; retiring closes idle connections and later releases") {
  Fixture f(4);
  engine::LoopPools pools(f.io, f.shared);
  auto p = pools.get(f.upstream, f.stats, f.endpoint);
  CHECK(pools.get(f.upstream, f.stats, f.endpoint) == p);
  std::optional<UpstreamPool::Acquired> idle, busy;
  Failure failure = Failure::none;
  asio::co_spawn(
      f.io,
      [&]() -> engine::awaitable<void> {
        idle = co_await p->acquire(false, failure);
        busy = co_await p->acquire(true, failure);
      },
      asio::detached);
  run_until(f.io, [&] { return busy.has_value(); });
  p->release(std::move(idle->conn));
  CHECK(f.open() == 2);

  lb::Upstream* const present[] = {f.upstream.get()};
  pools.retire_absent(present);
  CHECK(pools.get(f.upstream, f.stats, f.endpoint) == p);  // still configured: kept
  pools.retire_absent({});
  CHECK(p->idle_count() == 0);
  CHECK(f.open() == 1);
  p->release(std::move(busy->conn));  // a retired pool closes what comes back
  CHECK(p->idle_count() == 0);
  CHECK(f.open() == 0);
  CHECK(pools.get(f.upstream, f.stats, f.endpoint) != p);
}

TEST_CASE("pool: each of several loops owns its share of max_conns") {
  CHECK(engine::loop_share(0, {.loops = 2}) == 0u);  // unlimited stays unlimited
  CHECK(engine::loop_share(64, {.loops = 1}) == 64u);
  CHECK(engine::loop_share(5, {.loops = 2, .loop_index = 0}) == 3u);
  CHECK(engine::loop_share(5, {.loops = 2, .loop_index = 1}) == 2u);
  CHECK(engine::loop_share(1, {.loops = 2}) == std::nullopt);  // too few to split: shared

  // max_conns 3 over two loops: this loop (index 1) owns 1, the other 2.
  // The other loop holding its two cannot keep this one from its own, and
  // this one's second request waits for this loop's connection, which a
  // release hands over at once.
  Fixture f(3, {.loops = 2, .loop_index = 1});
  asio::io_context other_io;
  engine::PoolShared other_shared{{.loops = 2, .loop_index = 0}, client_tls()};
  auto other = std::make_shared<UpstreamPool>(other_io, other_shared, f.upstream, f.stats, f.endpoint);
  std::vector<UpstreamPool::Acquired> held;
  asio::co_spawn(
      other_io,
      [&]() -> engine::awaitable<void> {
        for (int i = 0; i < 3; ++i) {
          Failure failure = Failure::none;
          auto a = co_await other->acquire(false, failure);
          if (!a.conn) break;
          held.push_back(std::move(a));
        }
      },
      asio::detached);
  run_until(other_io, [&] { return other->queued() == 1; });
  CHECK(held.size() == 2);  // its share; the third request queues on its loop
  CHECK(f.open() == 2);

  auto mine = f.acquire();
  REQUIRE(mine.conn);
  CHECK(f.open() == 3);
  auto second = f.start_acquire();
  f.io.restart();
  f.io.poll();
  REQUIRE(f.pool->queued() == 1);
  f.pool->release(std::move(mine.conn));
  run_until(f.io, [&] { return second->result.has_value(); });
  CHECK(second->result->conn != nullptr);
  CHECK(second->result->reused);
  CHECK(f.open() == 3);  // never above max_conns
  second->result->conn.reset();
  CHECK(f.open() == 2);
  held.clear();  // the other loop's queued request gets one of the slots
  other_io.restart();
  run_until(other_io, [&] { return held.size() == 1; });
  CHECK(other->queued() == 0);
  held.clear();  // before its pool goes
  CHECK(f.open() == 0);
  other.reset();
}

TEST_CASE("pool: on a shared budget, the next queued request polls for slots once the head leaves") {
  // max_conns 1 over two loops cannot be split. The one slot is held by the
  // other loop's pool of the same upstream; the head of this pool's queue
  // times out; the request behind it must then notice the slot the other
  // loop frees, long before its own deadline.
  engine::PoolSettings s;
  s.loops = 2;
  s.queue_timeout = 50ms;
  Fixture f(1, s);
  asio::io_context other_io;
  engine::PoolShared other_shared{{.loops = 2, .loop_index = 1}, client_tls()};
  auto other = std::make_shared<UpstreamPool>(other_io, other_shared, f.upstream, f.stats, f.endpoint);
  std::optional<UpstreamPool::Acquired> held;
  asio::co_spawn(
      other_io,
      [&]() -> engine::awaitable<void> {
        Failure failure = Failure::none;
        held = co_await other->acquire(false, failure);
      },
      asio::detached);
  run_until(other_io, [&] { return held.has_value(); });
  REQUIRE(held->conn);

  auto head = f.start_acquire();  // deadline in 50 ms
  f.io.restart();
  f.io.poll();
  f.shared.settings.queue_timeout = 60s;  // the next one waits far longer than this test may
  auto next = f.start_acquire();
  f.io.poll();
  REQUIRE(f.pool->queued() == 2);
  run_until(f.io, [&] { return head->result.has_value(); });
  CHECK(head->failure == Failure::queue_timeout);
  REQUIRE(f.pool->queued() == 1);

  held->conn.reset();  // the other loop frees the slot
  run_until(f.io, [&] { return next->result.has_value(); });
  CHECK(next->result->conn != nullptr);
  CHECK(f.pool->queued() == 0);
  next->result->conn.reset();
  other.reset();
}
