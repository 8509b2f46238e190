// The set of upstreams the event loops route over.
//
// Owns: immutable configuration snapshots (upstreams with resolved endpoints,
// policy, hash key, retries, active-health settings); building and publishing
// one at construction, on reload and when a name resolves to a new address;
// keeping an upstream's live state (health, in-flight count, stats, and so its
// pooled connections) while its address and settings stay the same; the
// background thread that resolves upstream names again every resolve_interval.
//
// Leaves to others: connections (upstream_pool), probing (health_checker),
// choosing an upstream per request (upstream_router), rendering for the admin
// endpoint (proxy_metrics_render). Thread-safe; loops read the current
// snapshot only when generation() moved.
#pragma once

#include "io_types.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "userkey/lb/balancing_policy.hpp"
#include "userkey/lb/hash_key.hpp"
#include "userkey/lb/proxy_config.hpp"
#include "userkey/lb/proxy_metrics.hpp"
#include "userkey/lb/proxy_server.hpp"  // HostResolver
#include "userkey/lb/upstream.hpp"

namespace spdlog {
class logger;
}

namespace userkey::lb::engine {

/// One upstream in a snapshot, with what outlives reloads.
struct UpstreamEntry {
  std::shared_ptr<Upstream> upstream;
  std::shared_ptr<UpstreamStats> stats;
  tcp::endpoint endpoint;
};

/// An immutable configuration; loops hold it by shared_ptr while they use it.
struct Snapshot {
  std::uint64_t generation = 0;
  std::vector<UpstreamEntry> entries;
  std::vector<Upstream*> ptrs;  // entries' upstreams, in order, as policies see them
  std::shared_ptr<BalancingPolicy> policy;
  HashKeySpec hash_key = *HashKeySpec::parse("ip");
  std::uint32_t retries = 0;
  ActiveHealthConfig active;
};

class Cluster {
public:
  using SnapshotListener = std::function<void(const std::shared_ptr<const Snapshot>&)>;

  /// Resolves and installs `config`'s upstreams and policy. Throws
  /// std::invalid_argument for an unknown policy, a bad hash key, no
  /// upstreams or a name that does not resolve. `policy_context`'s sources
  /// must outlive the cluster.
  Cluster(const ProxyConfig& config, PolicyRegistry registry, PolicyContext policy_context, HostResolver resolver,
          std::shared_ptr<spdlog::logger> log);
  ~Cluster();  // stops re-resolving
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  std::shared_ptr<const Snapshot> snapshot() const;
  /// Moves whenever a snapshot is installed; cheap enough for every request.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  /// Installs upstreams, policy, hash key, health, retries and
  /// resolve_interval from `config`; throws like the constructor, leaving
  /// the running snapshot in place.
  void reload(const ProxyConfig& config);
  /// Called with each snapshot that reload() or re-resolution installs
  /// (not the constructor's), one at a time.
  void set_listener(SnapshotListener listener);

  /// The background re-resolution thread (no lookups while the interval is 0).
  void start_reresolving();
  void stop_reresolving();

private:
  std::shared_ptr<Snapshot> build(const ProxyConfig& c);
  void install(std::shared_ptr<Snapshot> snap, const ProxyConfig& c);
  void refresh_addresses();
  void resolver_loop();

  PolicyRegistry registry_;
  PolicyContext policy_context_;
  HostResolver resolver_;
  std::shared_ptr<spdlog::logger> log_;

  // The published snapshot: swapped under mu_.
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> current_;
  std::atomic<std::uint64_t> generation_{0};
  // Per-address state kept across snapshots (under mu_).
  std::map<std::string, std::pair<std::shared_ptr<Upstream>, std::shared_ptr<UpstreamStats>>> known_;

  // `applied_` is the configuration the current snapshot was built from;
  // reload() and the re-resolution thread both rebuild from it, one at a
  // time (reload_mu_).
  std::mutex reload_mu_;
  ProxyConfig applied_;
  SnapshotListener listener_;    // under reload_mu_
  bool resolve_failing_ = false;  // under reload_mu_: log a failing lookup once, not every interval
  std::atomic<std::int64_t> resolve_every_ms_{0};

  std::mutex resolver_mu_;
  std::condition_variable resolver_cv_;
  bool resolver_stop_ = false;  // under resolver_mu_
  bool resolver_kick_ = false;  // under resolver_mu_: the interval changed
  std::thread resolver_thread_;
};

}  // namespace userkey::lb::engine
