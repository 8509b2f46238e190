// Test support for the client side's rooms (client_connection,
// client_transport, proxy_header_reader): a SessionContext on a real
// io_context, wired as a Worker wires it, and connected socket pairs on
// 127.0.0.1 whose server end becomes a ClientConnection.
#pragma once

#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <sstream>
#include <string>

#include "lb/access_log.hpp"
#include "lb/refusal_log.hpp"
#include "lb/admission.hpp"
#include "lb/client_connection.hpp"
#include "lb/cluster.hpp"
#include "lb/request_id.hpp"
#include "lb/upstream_pool.hpp"
#include "lb/upstream_router.hpp"

namespace userkey::test {

namespace lbe = userkey::lb::engine;

struct SessionFixture {
  explicit SessionFixture(const std::function<void(lb::ProxyConfig&)>& tune = {}) : cfg(make_config(tune)) {}

  static lb::ProxyConfig make_config(const std::function<void(lb::ProxyConfig&)>& tune) {
    lb::ProxyConfig c;
    lb::UpstreamConfig u;
    u.host = "127.0.0.1";
    u.port = 1;  // never reached by these tests
    c.upstreams.push_back(u);
    c.resolve_interval = std::chrono::milliseconds(0);
    if (tune) tune(c);
    return c;
  }

  /// A connected pair: `client` is the test's end, the other becomes a
  /// ClientConnection (counted in stats.connections_open).
  std::shared_ptr<lbe::ClientConnection> connect(lbe::Socket& client) {
    lbe::Acceptor acceptor(io, lbe::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), 0});
    client.connect(acceptor.local_endpoint());
    lbe::Socket server = acceptor.accept();
    std::int64_t open = 0;
    return std::make_shared<lbe::ClientConnection>(ctx, std::move(server), "127.0.0.1", open);
  }

  std::string logged() const { return log_text.str(); }

  boost::asio::io_context io;
  lb::ProxyConfig cfg;
  lb::ProxyStats stats;
  std::ostringstream log_text;
  spdlog::logger log{"test", std::make_shared<spdlog::sinks::ostream_sink_st>(log_text)};
  lb::SplitMixRandom random;
  lb::SystemTimeSource clock;
  lbe::Cluster cluster{cfg, lb::PolicyRegistry::with_builtins(), lb::PolicyContext{&random, &clock}, nullptr,
                       std::make_shared<spdlog::logger>("cluster")};
  lbe::Admission admission{cfg.limits, cfg.trusted_proxies, cfg.real_ip_header};
  boost::asio::ssl::context upstream_tls{boost::asio::ssl::context::tls_client};
  lbe::PoolShared pool_shared{{}, upstream_tls};
  lbe::LoopPools pools{io, pool_shared};
  std::atomic<bool> stopped{false}, draining{false};
  lbe::UpstreamRouter router{cluster, pools, stats, log, std::chrono::seconds(1), stopped};
  lbe::SessionRegistry sessions;
  lbe::RequestIdGenerator request_ids{42};
  lbe::AccessLog access_log{false, lb::AccessLogFormat::text, log, nullptr};
  lbe::RefusalLog refusals;
  lbe::SessionContext ctx{io,  cfg,         stats,      admission, router,  sessions,
                          draining, log, request_ids, access_log, nullptr, refusals};
};

}  // namespace userkey::test
