#include "userkey/lb/proxy_metrics.hpp"

namespace userkey::lb {

void LatencyHistogram::observe(std::chrono::microseconds d) {
  const double s = static_cast<double>(d.count()) / 1e6;
  std::size_t i = 0;
  while (i < kLatencyBuckets.size() && s > kLatencyBuckets[i]) ++i;
  buckets[i].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
  sum_us.fetch_add(static_cast<std::uint64_t>(d.count()), std::memory_order_relaxed);
}

void UpstreamStats::count_status(unsigned status) {
  auto& c = status < 300 ? responses_2xx : status < 400 ? responses_3xx : status < 500 ? responses_4xx : responses_5xx;
  c.fetch_add(1, std::memory_order_relaxed);
}

std::string_view to_string(Rejection r) {
  switch (r) {
    case Rejection::rate_limited: return "rate_limited";
    case Rejection::denied: return "denied";
    case Rejection::too_many_conns: return "too_many_connections";
    case Rejection::header_too_large: return "header_too_large";
    case Rejection::body_too_large: return "body_too_large";
    case Rejection::bad_request: return "bad_request";
    case Rejection::header_timeout: return "header_timeout";
    case Rejection::no_upstream: return "no_upstream";
    case Rejection::queue_full: return "queue_full";
    case Rejection::bad_gateway: return "bad_gateway";
    case Rejection::count_: break;
  }
  return "unknown";
}

}  // namespace userkey::lb
