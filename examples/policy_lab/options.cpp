#include "options.hpp"

#include <charconv>
#include <cstdio>
#include <functional>
#include <map>
#include <string_view>

namespace policy_lab {
namespace {

constexpr const char* kUsage = R"(policy_lab: compare userkey's load-balancing policies on a simulated workload.

usage: policy_lab [options]

  --upstreams SPEC    comma-separated MEAN_MS:CAPACITY[:WEIGHT] per upstream
                      (default "4:4,4:4,12:4": two fast, one three times slower)
  --requests N        requests to simulate (default 20000)
  --rate R            base arrival rate, requests/s, Poisson (default 900)
  --burst F[:P:L]     multiply the rate by F for L ms every P ms (default P=1000, L=100)
  --zipf S            user popularity ~ 1/rank^S (default 1.0)
  --uniform           every user equally popular (same as --zipf 0)
  --users N           distinct user ids (default 10000)
  --cache-size K      LRU entries per upstream, in user ids (default 500)
  --hit-cost F        service time of a cache hit as a fraction of a miss (default 1.0:
                      caching only shows in the hit ratio; try 0.2)
  --seed N            RNG seed; same options + seed = same output (default 1)
  --policies A,B      only these policies (default: every built-in one)
  --csv FILE          write per-policy, per-upstream results as CSV
  --svg FILE          write a bar chart (p99, cache-hit ratio, imbalance) as SVG
  --self-test         check determinism and two expected properties, exit 0/1
  --help
)";

bool parse_number(std::string_view text, double& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

bool parse_number(std::string_view text, std::uint64_t& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

bool parse_number(std::string_view text, std::uint32_t& out) {
  std::uint64_t wide = 0;
  if (!parse_number(text, wide) || wide > UINT32_MAX) return false;
  out = static_cast<std::uint32_t>(wide);
  return true;
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

bool parse_upstream(std::string_view text, UpstreamSpec& out) {
  const auto fields = split(text, ':');
  if (fields.size() < 2 || fields.size() > 3) return false;
  if (!parse_number(fields[0], out.mean_ms) || !parse_number(fields[1], out.capacity)) return false;
  if (fields.size() == 3 && !parse_number(fields[2], out.weight)) return false;
  return out.mean_ms > 0 && out.capacity > 0 && out.weight > 0;
}

bool parse_upstreams(std::string_view text, std::vector<UpstreamSpec>& out) {
  out.clear();
  for (std::string_view item : split(text, ',')) {
    UpstreamSpec spec;
    if (!parse_upstream(item, spec)) return false;
    out.push_back(spec);
  }
  return !out.empty();
}

bool parse_burst(std::string_view text, std::optional<BurstSpec>& out) {
  const auto fields = split(text, ':');
  BurstSpec b;
  if (fields.size() != 1 && fields.size() != 3) return false;
  if (!parse_number(fields[0], b.factor)) return false;
  if (fields.size() == 3 && (!parse_number(fields[1], b.period_ms) || !parse_number(fields[2], b.length_ms)))
    return false;
  if (b.factor <= 0 || b.period_ms <= 0 || b.length_ms <= 0 || b.length_ms > b.period_ms) return false;
  out = b;
  return true;
}

bool parse_names(std::string_view text, std::vector<std::string>& out) {
  out.clear();
  for (std::string_view name : split(text, ',')) {
    if (name.empty()) return false;
    out.emplace_back(name);
  }
  return true;
}

bool assign_path(std::string_view text, std::string& out) {
  out = text;
  return !out.empty();
}

/// Handlers for flags that take a value; each returns false on a bad value.
using ValueHandler = std::function<bool(LabOptions&, std::string_view)>;

const std::map<std::string_view, ValueHandler>& value_flags() {
  static const std::map<std::string_view, ValueHandler> flags{
      {"--upstreams", [](LabOptions& o, std::string_view v) { return parse_upstreams(v, o.upstreams); }},
      {"--requests", [](LabOptions& o, std::string_view v) { return parse_number(v, o.requests) && o.requests > 0; }},
      {"--rate", [](LabOptions& o, std::string_view v) { return parse_number(v, o.rate) && o.rate > 0; }},
      {"--burst", [](LabOptions& o, std::string_view v) { return parse_burst(v, o.burst); }},
      {"--zipf", [](LabOptions& o, std::string_view v) { return parse_number(v, o.zipf_s) && o.zipf_s >= 0; }},
      {"--users", [](LabOptions& o, std::string_view v) { return parse_number(v, o.users) && o.users > 0; }},
      {"--cache-size", [](LabOptions& o, std::string_view v) { return parse_number(v, o.cache_size); }},
      {"--hit-cost", [](LabOptions& o, std::string_view v) { return parse_number(v, o.hit_cost) && o.hit_cost > 0; }},
      {"--seed", [](LabOptions& o, std::string_view v) { return parse_number(v, o.seed); }},
      {"--policies", [](LabOptions& o, std::string_view v) { return parse_names(v, o.policies); }},
      {"--csv", [](LabOptions& o, std::string_view v) { return assign_path(v, o.csv_path); }},
      {"--svg", [](LabOptions& o, std::string_view v) { return assign_path(v, o.svg_path); }},
  };
  return flags;
}

ParseResult failure(std::string message) { return {std::nullopt, std::move(message) + "\n\n" + kUsage, 2}; }

}  // namespace

double LabOptions::mean_rate() const {
  if (!burst) return rate;
  return rate * (1 + (burst->factor - 1) * burst->length_ms / burst->period_ms);
}

double LabOptions::total_capacity() const {
  double total = 0;
  for (const auto& u : upstreams) total += u.max_rate();
  return total;
}

ParseResult parse_options(int argc, const char* const* argv) {
  LabOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") return {std::nullopt, kUsage, 0};
    if (flag == "--self-test") {
      o.self_test = true;
      continue;
    }
    if (flag == "--uniform") {
      o.zipf_s = 0;
      continue;
    }
    const auto handler = value_flags().find(flag);
    if (handler == value_flags().end()) return failure("unknown option " + std::string(flag));
    if (i + 1 == argc) return failure(std::string(flag) + " needs a value");
    const std::string_view value = argv[++i];
    if (!handler->second(o, value)) return failure("bad value for " + std::string(flag) + ": '" + std::string(value) + "'");
  }
  return {std::move(o), {}, 0};
}

std::string upstream_label(std::size_t index) {
  // Appending (rather than "u" + to_string) sidesteps a GCC 12 -O3
  // -Wrestrict false positive.
  std::string label = "u";
  label += std::to_string(index);
  return label;
}

std::string describe(const LabOptions& o) {
  char line[256];
  std::string out;
  std::snprintf(line, sizeof line, "workload : %llu requests, Poisson %.0f req/s", static_cast<unsigned long long>(o.requests),
                o.rate);
  out += line;
  if (o.burst) {
    std::snprintf(line, sizeof line, " with x%.1f bursts for %.0f ms every %.0f ms (mean %.0f req/s)", o.burst->factor,
                  o.burst->length_ms, o.burst->period_ms, o.mean_rate());
    out += line;
  }
  if (o.zipf_s > 0) {
    std::snprintf(line, sizeof line, ", Zipf s=%.2f over %u users, seed %llu\n", o.zipf_s, o.users,
                  static_cast<unsigned long long>(o.seed));
  } else {
    std::snprintf(line, sizeof line, ", uniform over %u users, seed %llu\n", o.users, static_cast<unsigned long long>(o.seed));
  }
  out += line;
  out += "upstreams:";
  for (std::size_t i = 0; i < o.upstreams.size(); ++i) {
    const auto& u = o.upstreams[i];
    std::snprintf(line, sizeof line, " %s=%.1fms x%u w%u (%.0f/s)", upstream_label(i).c_str(), u.mean_ms, u.capacity,
                  u.weight, u.max_rate());
    out += line;
  }
  std::snprintf(line, sizeof line, "\noffered  : %.0f%% of total capacity (%.0f req/s)\n", 100 * o.mean_rate() / o.total_capacity(),
                o.total_capacity());
  out += line;
  std::snprintf(line, sizeof line, "cache    : LRU of %u user ids per upstream; a hit costs %.2fx a miss\n", o.cache_size,
                o.hit_cost);
  out += line;
  return out;
}

}  // namespace policy_lab
