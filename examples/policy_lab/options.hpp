// LabOptions: everything a policy_lab run depends on, parsed from the command
// line. Two runs with equal options (same seed included) produce identical
// output.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace policy_lab {

/// One simulated backend.
struct UpstreamSpec {
  double mean_ms = 5;         ///< mean service time of one request (exponential)
  std::uint32_t capacity = 4; ///< requests served at once; more wait in a FIFO queue
  std::uint32_t weight = 1;   ///< the weight the policies see (weighted_round_robin, random, ...)

  /// Requests per second it can sustain: capacity / mean service time.
  double max_rate() const { return capacity * 1000.0 / mean_ms; }
};

/// Periodic bursts: for `length_ms` at the start of every `period_ms`, the
/// arrival rate is multiplied by `factor`.
struct BurstSpec {
  double factor = 4;
  double period_ms = 1000;
  double length_ms = 100;
};

struct LabOptions {
  std::vector<UpstreamSpec> upstreams{{4, 4, 1}, {4, 4, 1}, {12, 4, 1}};
  std::uint64_t requests = 20'000;
  double rate = 900;               ///< base arrival rate, requests per second (Poisson)
  std::optional<BurstSpec> burst;  ///< none: constant rate
  std::uint32_t users = 10'000;    ///< user ids 1..users
  double zipf_s = 1.0;             ///< Zipf exponent of user popularity; 0 = uniform
  std::uint32_t cache_size = 500;  ///< LRU entries (user ids) per upstream
  double hit_cost = 1.0;           ///< service time of a cache hit, as a fraction of a miss
  std::uint64_t seed = 1;
  std::vector<std::string> policies;  ///< empty: every built-in policy
  std::string csv_path;               ///< empty: no CSV
  std::string svg_path;               ///< empty: no SVG
  bool self_test = false;

  /// Mean arrival rate including bursts, requests per second.
  double mean_rate() const;
  /// Sum of the upstreams' max_rate().
  double total_capacity() const;
};

/// Result of parsing: options, or a message (error or help text) and an exit code.
struct ParseResult {
  std::optional<LabOptions> options;
  std::string message;
  int exit_code = 0;
};

ParseResult parse_options(int argc, const char* const* argv);

/// Multi-line human description of the workload and upstreams (for reports).
std::string describe(const LabOptions& o);

/// The upstream's display name: "u0", "u1", ...
std::string upstream_label(std::size_t index);

}  // namespace policy_lab
