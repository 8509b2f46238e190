#include "report.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <functional>

namespace policy_lab {
namespace {

/// Appends printf-style formatted text to `out`.
[[gnu::format(printf, 2, 3)]] void appendf(std::string& out, const char* format, ...) {
  char buffer[512];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  if (n > 0) out.append(buffer, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buffer - 1));
}

/// "50/33/17": each upstream's share in whole percent.
std::string shares_text(const PolicyResult& r) {
  std::string out;
  for (std::size_t i = 0; i < r.upstreams.size(); ++i) {
    appendf(out, "%s%.0f", i == 0 ? "" : "/", 100 * r.share(i));
  }
  return out;
}

std::string upstream_labels(const PolicyResult& r) {
  std::string out;
  for (std::size_t i = 0; i < r.upstreams.size(); ++i) out += (i == 0 ? "" : "/") + r.upstreams[i].label;
  return out;
}

std::size_t peak_queue(const PolicyResult& r) {
  std::size_t peak = 0;
  for (const auto& u : r.upstreams) peak = std::max(peak, u.peak_queue);
  return peak;
}

/// The result with the smallest `key` (first one on ties).
const PolicyResult& best_by(std::span<const PolicyResult> results, const std::function<double(const PolicyResult&)>& key) {
  return *std::min_element(results.begin(), results.end(),
                           [&key](const PolicyResult& a, const PolicyResult& b) { return key(a) < key(b); });
}

}  // namespace

std::string render_summary_table(std::span<const PolicyResult> results) {
  if (results.empty()) return {};
  const std::string share_header = "share % " + upstream_labels(results.front());
  const int share_width = static_cast<int>(std::max<std::size_t>(share_header.size(), 12));
  std::string out;
  appendf(out, "%-22s %-*s %9s %8s %8s %9s %10s %10s\n", "policy", share_width, share_header.c_str(), "imbalance", "p50 ms",
          "p99 ms", "max ms", "peak queue", "cache hit");
  for (const auto& r : results) {
    appendf(out, "%-22s %-*s %9.2f %8.1f %8.1f %9.1f %10zu %9.1f%%", r.policy.c_str(), share_width, shares_text(r).c_str(),
            r.imbalance(), r.latency.p50, r.latency.p99, r.latency.max, peak_queue(r), 100 * r.hit_ratio());
    if (r.unserved > 0) appendf(out, "  (%llu unserved)", static_cast<unsigned long long>(r.unserved));
    out += '\n';
  }
  return out;
}

std::string render_upstream_table(std::span<const PolicyResult> results) {
  std::string out;
  appendf(out, "%-22s %-8s %9s %7s %8s %8s %10s %10s\n", "policy", "upstream", "requests", "share", "p50 ms", "p99 ms",
          "peak queue", "cache hit");
  for (const auto& r : results) {
    for (std::size_t i = 0; i < r.upstreams.size(); ++i) {
      const auto& u = r.upstreams[i];
      appendf(out, "%-22s %-8s %9llu %6.1f%% %8.1f %8.1f %10zu %9.1f%%\n", i == 0 ? r.policy.c_str() : "", u.label.c_str(),
              static_cast<unsigned long long>(u.requests), 100 * r.share(i), u.latency.p50, u.latency.p99, u.peak_queue,
              100 * u.hit_ratio());
    }
  }
  return out;
}

std::string render_verdict(std::span<const PolicyResult> results) {
  if (results.empty()) return {};
  const auto& fastest = best_by(results, [](const PolicyResult& r) { return r.latency.p99; });
  const auto& cachiest = best_by(results, [](const PolicyResult& r) { return -r.hit_ratio(); });
  const auto& evenest = best_by(results, [](const PolicyResult& r) { return r.imbalance(); });
  std::string out;
  appendf(out, "lowest p99        : %s (%.1f ms)\n", fastest.policy.c_str(), fastest.latency.p99);
  appendf(out, "best cache hits   : %s (%.1f%%)\n", cachiest.policy.c_str(), 100 * cachiest.hit_ratio());
  appendf(out, "most even load    : %s (imbalance %.2f)\n", evenest.policy.c_str(), evenest.imbalance());
  return out;
}

std::string render_csv(std::span<const PolicyResult> results) {
  std::string out = "policy,upstream,requests,share,imbalance,cache_hit_ratio,p50_ms,p99_ms,mean_ms,max_ms,peak_queue\n";
  for (const auto& r : results) {
    for (std::size_t i = 0; i < r.upstreams.size(); ++i) {
      const auto& u = r.upstreams[i];
      appendf(out, "%s,%s,%llu,%.4f,,%.4f,%.3f,%.3f,%.3f,%.3f,%zu\n", r.policy.c_str(), u.label.c_str(),
              static_cast<unsigned long long>(u.requests), r.share(i), u.hit_ratio(), u.latency.p50, u.latency.p99,
              u.latency.mean, u.latency.max, u.peak_queue);
    }
    appendf(out, "%s,all,%llu,1.0000,%.4f,%.4f,%.3f,%.3f,%.3f,%.3f,%zu\n", r.policy.c_str(),
            static_cast<unsigned long long>(r.requests), r.imbalance(), r.hit_ratio(), r.latency.p50, r.latency.p99,
            r.latency.mean, r.latency.max, peak_queue(r));
  }
  return out;
}

}  // namespace policy_lab
