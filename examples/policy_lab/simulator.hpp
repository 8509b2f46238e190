// Simulator: a discrete-event simulation of one balancing policy in front of
// the upstreams described by LabOptions.
//
// The policy under test is the library's own class, created from a
// userkey::lb::PolicyRegistry and driven exactly as the proxy drives it: a
// Candidates view over real userkey::lb::Upstream objects, a RequestInfo whose
// hash_key is the user id (as with hash key "query:user_id") and whose
// client_ip is derived from the user id (each simulated user has its own
// address, so ip_hash also gives per-user affinity), and begin_request() /
// end_request() around each request so in_flight (queued + in service) is
// what least_connections and power_of_two see. Time is a ManualTimeSource
// moved from event to event; randomness is a seeded SplitMixRandom.
//
// Each upstream serves up to `capacity` requests at once (FIFO queue beyond)
// and keeps an LRU cache of user ids: a request is a hit when that upstream
// served the same user recently.
//
// Deterministic: the same options and workload give the same results.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "options.hpp"
#include "workload.hpp"

namespace userkey::lb {
class PolicyRegistry;
}

namespace policy_lab {

/// Latency figures in milliseconds (queueing + service).
struct LatencySummary {
  double p50 = 0;
  double p99 = 0;
  double mean = 0;
  double max = 0;
};

struct UpstreamResult {
  std::string label;           ///< "u0", ...
  std::uint64_t requests = 0;  ///< requests it served
  std::uint64_t cache_hits = 0;
  std::size_t peak_queue = 0;  ///< most requests ever waiting for a slot
  LatencySummary latency;

  double hit_ratio() const { return requests == 0 ? 0 : static_cast<double>(cache_hits) / static_cast<double>(requests); }
};

struct PolicyResult {
  std::string policy;
  std::vector<UpstreamResult> upstreams;
  LatencySummary latency;  ///< over every request
  std::uint64_t requests = 0;
  std::uint64_t cache_hits = 0;
  std::uint64_t unserved = 0;  ///< requests the policy returned no upstream for

  double hit_ratio() const { return requests == 0 ? 0 : static_cast<double>(cache_hits) / static_cast<double>(requests); }
  /// Share of the requests upstream i served, 0..1.
  double share(std::size_t i) const;
  /// Busiest upstream's request count over the mean count (1 = perfectly even).
  double imbalance() const;
};

/// Simulates `policy_name` (created from `registry` with a fresh seeded
/// clock and RNG) on `workload`. Throws std::invalid_argument when the
/// registry cannot create it.
PolicyResult simulate_policy(const userkey::lb::PolicyRegistry& registry, const std::string& policy_name,
                             const LabOptions& options, std::span<const SimRequest> workload);

/// Generates the workload once and simulates every selected policy on it
/// (o.policies, or every policy in PolicyRegistry::with_builtins()), in name
/// order. Throws std::invalid_argument for an unknown policy name.
std::vector<PolicyResult> run_lab(const LabOptions& o);

}  // namespace policy_lab
