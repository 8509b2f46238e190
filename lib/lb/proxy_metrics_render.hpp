// The proxy's counters and a cluster snapshot as the admin endpoint shows
// them: Prometheus text exposition (/metrics) and JSON (/status).
// Implemented in proxy_metrics.cpp, next to the counters it reads.
//
// Owns the formats only; leaves counting to the request path, serving the
// pages to admin_server.
#pragma once

#include <string>

#include "cluster.hpp"
#include "userkey/lb/proxy_metrics.hpp"
#include "userkey/lb/upstream.hpp"

namespace userkey::lb {

/// userkey_build_info, every counter, then per upstream of `snap`: requests, responses by class,
/// errors by kind, up, in-flight, connections and the latency histogram.
std::string render_metrics_text(const ProxyStats& stats, const engine::Snapshot& snap, TimePoint now);

/// Policy, hash key, retries, draining, totals and each upstream's state.
std::string render_status_json(const ProxyStats& stats, const engine::Snapshot& snap, bool draining, TimePoint now);

}  // namespace userkey::lb
