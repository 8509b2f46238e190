// One request's way to an upstream and back, on one event loop.
//
// Owns: the loop's cached configuration snapshot (refreshed when the cluster's
// generation moves, retiring the pools of upstreams that left), the request id
// and the upstream request head, the hash key a policy sees, and the retry
// loop: choose among eligible, untried upstreams -> attempt (write, read the
// response, skipping 1xx) -> outcome -> retry on another upstream
// (idempotent requests, up to `retries`) or answer 502 / 503 / 504. Reports
// passive health and per-upstream counters as it goes.
//
// Leaves to others: connections, reuse and queuing (upstream_pool), message
// rules (http1_codec), the client connection (downstream_session), which
// upstreams exist (cluster).
#pragma once

#include "io_types.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster.hpp"
#include "upstream_pool.hpp"
#include "userkey/lb/proxy_metrics.hpp"

namespace spdlog {
class logger;
}

namespace userkey::lb::engine {

class UpstreamRouter {
public:
  /// `loop_index` and `id_prefix` make this loop's request ids unique.
  UpstreamRouter(const Cluster& cluster, LoopPools& pools, ProxyStats& stats, spdlog::logger& log,
                 std::chrono::milliseconds upstream_timeout, const std::atomic<bool>& stopped, std::size_t loop_index,
                 std::uint64_t id_prefix)
      : cluster_(cluster),
        pools_(pools),
        stats_(stats),
        log_(log),
        upstream_timeout_(upstream_timeout),
        stopped_(stopped),
        index_(loop_index),
        id_prefix_(id_prefix) {}

  /// The upstream's response to `req`, or the lb's own 502 / 503 / 504.
  /// `tried` and `wire` are the session's reusable buffers; `upstream_name`
  /// is set to the upstream that answered.
  awaitable<Response> forward(Request req, const std::string& client_ip, std::vector<bool>& tried,
                              std::string& upstream_name, std::string& wire);

private:
  enum class Outcome { ok, connect_failed, no_response, timeout, queue_timeout };
  struct Attempt {
    Outcome outcome = Outcome::ok;
    Response response;
  };

  const Snapshot& refresh();
  awaitable<Attempt> attempt(const UpstreamEntry& e, const Request& req, const std::string& head);
  Response give_up(Outcome last, unsigned version);

  const Cluster& cluster_;
  LoopPools& pools_;
  ProxyStats& stats_;
  spdlog::logger& log_;
  std::chrono::milliseconds upstream_timeout_;
  const std::atomic<bool>& stopped_;
  std::size_t index_;
  std::uint64_t id_prefix_;
  std::uint64_t request_counter_ = 0;
  std::shared_ptr<const Snapshot> snap_;  // cached; refreshed on a new generation
};

}  // namespace userkey::lb::engine
