// Active health checking of upstreams.
//
// Owns: one probing coroutine per upstream of a snapshot, on the loop it is
// attached to: GET the health path with its own connection, a 2xx within the
// timeout is a good probe (and clears a passive take-down); rise / fall
// through Upstream::report_probe; a probe our own side could not make (out of
// descriptors, buffers or ports) is not counted; the UP / DOWN log lines. A prober ends when its upstream leaves the
// configuration, when a newer snapshot has started probers of its own, or
// when the proxy stops.
//
// Leaves to others: what "available" means and passive health (Upstream, fed
// by upstream_router), which snapshot is current (cluster).
#pragma once

#include "io_types.hpp"

#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

#include "cluster.hpp"

namespace userkey::lb::engine {

class HealthChecker {
public:
  /// `cluster`, `stopped` and `log` must outlive the checker, and the
  /// checker the loop it is attached to.
  /// `tls`: the client context probes of upstreams with tls=on use; it
  /// must outlive the checker too.
  HealthChecker(const Cluster& cluster, const std::atomic<bool>& stopped, spdlog::logger& log,
                asio::ssl::context& tls)
      : cluster_(cluster), stopped_(stopped), log_(log), tls_(tls) {}

  /// The loop probes run on; until attached (and after detach) start() does nothing.
  void attach(asio::io_context& loop) { loop_ = &loop; }
  void detach() { loop_ = nullptr; }

  /// Starts probing every upstream of `snap` when its active health is on.
  void start(const std::shared_ptr<const Snapshot>& snap);

private:
  awaitable<void> watch(asio::io_context& loop, std::weak_ptr<Upstream> upstream, tcp::endpoint endpoint,
                        ActiveHealthConfig active, std::uint64_t generation);

  const Cluster& cluster_;
  const std::atomic<bool>& stopped_;
  spdlog::logger& log_;
  asio::ssl::context& tls_;
  asio::io_context* loop_ = nullptr;
};

}  // namespace userkey::lb::engine
