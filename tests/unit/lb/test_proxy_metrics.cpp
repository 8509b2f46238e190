// Unit tests for the lb's counters and their Prometheus page
// (lib/lb/proxy_metrics.cpp): the client-facing series.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "lb/cluster.hpp"
#include "lb/proxy_metrics_render.hpp"
#include "userkey/lb/proxy_metrics.hpp"

namespace lb = userkey::lb;
using namespace std::chrono_literals;

namespace {

bool has_line(const std::string& page, const std::string& line) {
  return page.find("\n" + line + "\n") != std::string::npos || page.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("metrics: answers to clients are counted by status class, the lb's own included") {
  lb::ProxyStats stats;
  stats.answered(200);
  stats.answered(204);
  stats.answered(101);
  stats.answered(429);
  stats.answered(503);
  stats.answered(99);   // not a status: not counted
  stats.answered(600);  // likewise
  lb::engine::Snapshot snap;
  const std::string page = lb::render_metrics_text(stats, snap, lb::SteadyClock::now());
  CHECK(has_line(page, "# TYPE userkey_lb_client_responses_total counter"));
  CHECK(has_line(page, "userkey_lb_client_responses_total{code=\"1xx\"} 1"));
  CHECK(has_line(page, "userkey_lb_client_responses_total{code=\"2xx\"} 2"));
  CHECK(has_line(page, "userkey_lb_client_responses_total{code=\"3xx\"} 0"));
  CHECK(has_line(page, "userkey_lb_client_responses_total{code=\"4xx\"} 1"));
  CHECK(has_line(page, "userkey_lb_client_responses_total{code=\"5xx\"} 1"));
}

TEST_CASE("metrics: the client latency histogram's top bucket is past the default upstream timeout") {
  CHECK(lb::kClientLatencyBuckets.back() > 10.0);  // upstream_timeout's default, 10 s
  lb::ProxyStats stats;
  stats.client_latency.observe(300us);
  stats.client_latency.observe(20ms);
  stats.client_latency.observe(12s);   // past the upstream buckets' 2.5 s
  stats.client_latency.observe(100s);  // past every bound
  lb::engine::Snapshot snap;
  const std::string page = lb::render_metrics_text(stats, snap, lb::SteadyClock::now());
  const std::string n = "userkey_lb_client_request_duration_seconds";
  CHECK(has_line(page, "# TYPE " + n + " histogram"));
  CHECK(has_line(page, n + "_bucket{le=\"0.0005\"} 1"));
  CHECK(has_line(page, n + "_bucket{le=\"0.025\"} 2"));
  CHECK(has_line(page, n + "_bucket{le=\"10\"} 2"));
  CHECK(has_line(page, n + "_bucket{le=\"30\"} 3"));
  CHECK(has_line(page, n + "_bucket{le=\"60\"} 3"));
  CHECK(has_line(page, n + "_bucket{le=\"+Inf\"} 4"));
  CHECK(has_line(page, n + "_count 4"));
  CHECK(has_line(page, n + "_sum 112.020300"));
}
