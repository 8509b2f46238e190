// Report: policy_lab's results as text tables (for people) and CSV (for
// tools). Pure functions from results to strings; the caller decides where
// they go.
#pragma once

#include <span>
#include <string>

#include "simulator.hpp"

namespace policy_lab {

/// One row per policy: load shares, imbalance, latency, cache-hit ratio.
std::string render_summary_table(std::span<const PolicyResult> results);

/// One row per policy and upstream: what each backend went through.
std::string render_upstream_table(std::span<const PolicyResult> results);

/// Which policy is best at what: lowest p99, highest cache-hit ratio, most
/// even load.
std::string render_verdict(std::span<const PolicyResult> results);

/// CSV with a header line; per policy one row per upstream, then an "all" row.
/// Numbers use fixed precision, so equal results give byte-identical text.
std::string render_csv(std::span<const PolicyResult> results);

}  // namespace policy_lab
