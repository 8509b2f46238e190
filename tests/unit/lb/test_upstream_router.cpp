// Unit tests for one request's way to an upstream (lib/lb/upstream_router):
// a real io_context and a loopback upstream on 127.0.0.1 (kernel-chosen
// port) that completes handshakes and never answers. Deadlines here only
// bound waits; nothing asserts a speed.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>
#include <spdlog/logger.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lb/cluster.hpp"
#include "lb/upstream_router.hpp"
#include "support/run_loop.hpp"

namespace lb = userkey::lb;
namespace engine = userkey::lb::engine;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using userkey::test::run_until;

namespace {

// The client TLS context every PoolShared holds. These tests' upstreams are
// plain (tls=off): their pools never use it.
asio::ssl::context& client_tls() {
  static asio::ssl::context ctx{asio::ssl::context::tls_client};
  return ctx;
}

// Upstreams that never answer (`count` of them, on one silent listener
// each), and what a loop needs to route to them.
struct RouterFixture {
  explicit RouterFixture(std::size_t count = 1, const std::function<void(lb::ProxyConfig&)>& tune = {}) {
    lb::ProxyConfig cfg;
    for (std::size_t i = 0; i < count; ++i) {
      auto& l = listeners.emplace_back(server_io, engine::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0});
      lb::UpstreamConfig u;
      u.host = "127.0.0.1";
      u.port = l.local_endpoint().port();
      cfg.upstreams.push_back(u);
    }
    cfg.resolve_interval = 0ms;
    if (tune) tune(cfg);
    cluster = std::make_unique<engine::Cluster>(cfg, lb::PolicyRegistry::with_builtins(),
                                                lb::PolicyContext{&random, &clock}, nullptr,
                                                std::make_shared<spdlog::logger>("test"));
    snap = cluster->snapshot();
  }
  lb::Upstream& upstream(std::size_t i = 0) const { return *snap->ptrs[i]; }

  asio::io_context server_io;
  std::deque<engine::Acceptor> listeners;
  lb::SplitMixRandom random;
  lb::SystemTimeSource clock;
  std::unique_ptr<engine::Cluster> cluster;
  std::shared_ptr<const engine::Snapshot> snap;
  lb::ProxyStats stats;
  spdlog::logger log{"test"};
  std::atomic<bool> stopped{false};
};

}  // namespace

TEST_CASE("router: a request's in-flight count is given back even when its loop is torn down mid-request") {
  // least_request and the /status page read in_flight(): a request that
  // never ends normally (its loop stopped, an exception) must not leave the
  // upstream looking busy for ever.
  RouterFixture f;
  engine::PoolShared shared{{}, client_tls()};
  {
    // The order a Worker has: the loop, then its pools and router.
    auto io = std::make_unique<asio::io_context>();
    engine::LoopPools pools(*io, shared);
    engine::UpstreamRouter router(*f.cluster, pools, f.stats, f.log, 60s, f.stopped);
    // The session's buffers, which outlive its requests (forward() keeps references).
    const std::string client_ip = "127.0.0.1";
    std::vector<bool> tried;
    engine::ForwardReport report;
    std::string wire;
    engine::Request req{http::verb::get, "/?user_id=1", 11};
    req.set(http::field::host, "lb.test");
    asio::co_spawn(*io, router.forward(std::move(req), client_ip, "id", tried, report, wire), asio::detached);
    run_until(*io, [&] { return f.upstream().in_flight() == 1; });
    io->run_for(50ms);  // on to the write and the wait for an answer
    CHECK(f.upstream().in_flight() == 1);
    // Leaving the block destroys the loop with the request suspended in it.
  }
  CHECK(f.upstream().in_flight() == 0);
}

TEST_CASE("router: a request the policy sends to a full upstream goes to one with room, else the shortest queue") {
  // ip_hash sends every request from one client to the same upstream; with
  // max_conns 1 each, the second request must not queue behind the first
  // while the other upstream is free.
  RouterFixture f(2, [](lb::ProxyConfig& cfg) {
    cfg.policy = "ip_hash";
    for (auto& u : cfg.upstreams) u.max_conns = 1;
  });
  engine::PoolShared shared{{}, client_tls()};
  {
    // The requests' buffers outlive the loop, which outlives nothing else
    // here (the order a Worker and its sessions have).
    struct Call {
      std::vector<bool> tried;
      engine::ForwardReport report;
      std::string wire;
    };
    std::deque<Call> calls;
    const std::string client_ip = "127.0.0.1";
    auto io = std::make_unique<asio::io_context>();
    engine::LoopPools pools(*io, shared);
    engine::UpstreamRouter router(*f.cluster, pools, f.stats, f.log, 60s, f.stopped);
    const auto send = [&] {
      auto& c = calls.emplace_back();
      engine::Request req{http::verb::get, "/?user_id=1", 11};
      req.set(http::field::host, "lb.test");
      asio::co_spawn(*io, router.forward(std::move(req), client_ip, "id", c.tried, c.report, c.wire),
                     asio::detached);
    };
    const auto busy = [&] { return f.upstream(0).in_flight() + f.upstream(1).in_flight(); };
    send();
    run_until(*io, [&] { return busy() == 1; });
    send();
    run_until(*io, [&] { return busy() == 2; });
    CHECK(f.upstream(0).in_flight() == 1);  // one each: the second passed the full one over
    CHECK(f.upstream(1).in_flight() == 1);

    // Both full: the third queues where the policy sent it, the fourth on
    // the other upstream, whose queue is then shorter.
    send();
    run_until(*io, [&] { return busy() == 3; });
    send();
    run_until(*io, [&] { return busy() == 4; });
    CHECK(f.upstream(0).in_flight() == 2);
    CHECK(f.upstream(1).in_flight() == 2);
  }
}
