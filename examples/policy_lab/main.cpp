// policy_lab: choose a balancing policy before production does it for you.
//
// Runs every built-in userkey balancing policy (the library's real classes)
// on the same simulated workload -- upstreams of different speeds and
// capacities, Poisson arrivals with optional bursts, Zipf-popular user ids,
// a per-backend LRU cache -- and reports load shares, imbalance, p50/p99
// latency and cache-hit ratio per policy, as text, CSV and SVG.
// Deterministic: same options, same output. `--help` lists the options.
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "options.hpp"
#include "report.hpp"
#include "simulator.hpp"
#include "svg_chart.hpp"

namespace {

using policy_lab::LabOptions;
using policy_lab::PolicyResult;

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  file << text;
  file.close();
  if (!file) std::fprintf(stderr, "policy_lab: cannot write %s\n", path.c_str());
  return static_cast<bool>(file);
}

const PolicyResult* find(const std::vector<PolicyResult>& results, const std::string& policy) {
  for (const auto& r : results) {
    if (r.policy == policy) return &r;
  }
  return nullptr;
}

void print_report(const LabOptions& o, const std::vector<PolicyResult>& results) {
  std::printf("%s\n%s\n%s\n%s", policy_lab::describe(o).c_str(), policy_lab::render_summary_table(results).c_str(),
              policy_lab::render_upstream_table(results).c_str(), policy_lab::render_verdict(results).c_str());
}

/// Prints one self-test check and returns `ok`.
bool check(bool ok, const std::string& what) {
  std::printf("%-4s %s\n", ok ? "ok" : "FAIL", what.c_str());
  return ok;
}

bool round_robin_is_even(const PolicyResult& rr) {
  for (std::size_t i = 0; i < rr.upstreams.size(); ++i) {
    if (std::fabs(rr.share(i) - 1.0 / static_cast<double>(rr.upstreams.size())) > 0.01) return false;
  }
  return true;
}

/// A small Zipf workload, run twice: the output must be identical, round
/// robin even, and consistent_hash's cache-hit ratio above round robin's.
int self_test(LabOptions o) {
  o.requests = 6'000;
  o.rate = 800;
  o.users = 2'000;
  o.zipf_s = 1.0;
  o.cache_size = 200;
  o.policies.clear();
  const auto first = policy_lab::run_lab(o);
  const auto second = policy_lab::run_lab(o);
  print_report(o, first);
  std::puts("");

  bool ok = check(policy_lab::render_csv(first) == policy_lab::render_csv(second), "two runs give identical CSV");
  for (const auto& r : first) ok = check(r.requests == o.requests, r.policy + " served every request") && ok;
  const PolicyResult* rr = find(first, "round_robin");
  const PolicyResult* ch = find(first, "consistent_hash");
  ok = check(rr != nullptr && ch != nullptr, "round_robin and consistent_hash were simulated") && ok;
  if (rr != nullptr && ch != nullptr) {
    ok = check(round_robin_is_even(*rr), "round_robin shares are equal (within 1%)") && ok;
    ok = check(ch->hit_ratio() > rr->hit_ratio(), "consistent_hash hits the cache more often than round_robin") && ok;
  }
  const bool svg_ok = policy_lab::render_svg(first, "self-test").find("</svg>") != std::string::npos;
  ok = check(svg_ok, "SVG renders") && ok;
  std::puts(ok ? "policy_lab self-test passed" : "policy_lab self-test FAILED");
  return ok ? 0 : 1;
}

int run(const LabOptions& o) {
  const auto results = policy_lab::run_lab(o);
  print_report(o, results);
  bool ok = true;
  if (!o.csv_path.empty()) ok = write_file(o.csv_path, policy_lab::render_csv(results)) && ok;
  if (!o.svg_path.empty()) ok = write_file(o.svg_path, policy_lab::render_svg(results, policy_lab::describe(o))) && ok;
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = policy_lab::parse_options(argc, argv);
  if (!parsed.options) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  try {
    return parsed.options->self_test ? self_test(*parsed.options) : run(*parsed.options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "policy_lab: %s\n", e.what());
    return 2;
  }
}
