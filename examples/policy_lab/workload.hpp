// Workload: the request stream every policy is run against. Generated once
// per run from the seed, so all policies see exactly the same arrivals, users
// and amounts of work (common random numbers: differences between policies
// are not sampling noise).
#pragma once

#include <cstdint>
#include <vector>

#include "options.hpp"

namespace policy_lab {

struct SimRequest {
  double arrival_ms = 0;   ///< arrival time since the start of the run
  std::uint32_t user = 1;  ///< user id, 1..users
  /// Amount of work, a unit-mean exponential draw. The service time on
  /// upstream i is work * mean_ms(i) (times hit_cost on a cache hit).
  double work = 1;
};

/// `o.requests` requests in arrival order: Poisson arrivals at `o.rate` (with
/// periodic bursts if `o.burst`), users drawn from Zipf(o.zipf_s) over
/// 1..o.users (uniform when zipf_s == 0). Deterministic in `o`.
std::vector<SimRequest> generate_workload(const LabOptions& o);

}  // namespace policy_lab
