// Unit tests for one request's way to an upstream (lib/lb/upstream_router):
// a real io_context and a loopback upstream on 127.0.0.1 (kernel-chosen
// port) that completes handshakes and never answers. Deadlines here only
// bound waits; nothing asserts a speed.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>
#include <spdlog/logger.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <atomic>
#include <chrono>
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

// One upstream that never answers, and what a loop needs to route to it.
struct RouterFixture {
  RouterFixture() {
    lb::ProxyConfig cfg;
    lb::UpstreamConfig u;
    u.host = "127.0.0.1";
    u.port = silent.local_endpoint().port();
    cfg.upstreams.push_back(u);
    cfg.resolve_interval = 0ms;
    cluster = std::make_unique<engine::Cluster>(cfg, lb::PolicyRegistry::with_builtins(),
                                                lb::PolicyContext{&random, &clock}, nullptr,
                                                std::make_shared<spdlog::logger>("test"));
    snap = cluster->snapshot();
  }
  lb::Upstream& upstream() const { return *snap->ptrs[0]; }

  asio::io_context server_io;
  engine::Acceptor silent{server_io, {asio::ip::make_address("127.0.0.1"), 0}};
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
  engine::PoolShared shared;
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
