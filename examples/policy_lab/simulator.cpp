#include "simulator.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <functional>
#include <memory>
#include <numeric>
#include <optional>
#include <queue>
#include <stdexcept>

#include "lru_cache.hpp"
#include "userkey/lb/balancing_policy.hpp"
#include "userkey/lb/upstream.hpp"

namespace policy_lab {
namespace {

namespace lb = userkey::lb;

/// Nearest-rank percentile (q in (0, 1]) of `values`, which it sorts.
double percentile(std::vector<double>& sorted_values, double q) {
  if (sorted_values.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted_values.size())));
  return sorted_values[std::clamp<std::size_t>(rank, 1, sorted_values.size()) - 1];
}

LatencySummary summarize_latency(std::vector<double> values) {
  if (values.empty()) return {};
  std::sort(values.begin(), values.end());
  const double sum = std::accumulate(values.begin(), values.end(), 0.0);
  return {percentile(values, 0.50), percentile(values, 0.99), sum / static_cast<double>(values.size()), values.back()};
}

/// A distinct, stable client address per user: 10.x.y.z.
std::string client_ip_of(std::uint32_t user) {
  return "10." + std::to_string((user >> 16) & 0xff) + "." + std::to_string((user >> 8) & 0xff) + "." +
         std::to_string(user & 0xff);
}

/// One simulated backend: the library's Upstream (what the policy sees) plus
/// the server model (slots, FIFO queue, cache) and what was measured.
struct SimUpstream {
  SimUpstream(std::size_t index, const UpstreamSpec& s, std::uint32_t cache_size)
      : upstream(std::make_unique<lb::Upstream>(
            lb::UpstreamConfig{"10.1.0." + std::to_string(index + 1), 8000, s.weight, s.capacity}, lb::PassiveHealthConfig{})),
        spec(s),
        cache(cache_size) {
    result.label = upstream_label(index);
  }

  std::unique_ptr<lb::Upstream> upstream;
  UpstreamSpec spec;
  std::uint32_t busy = 0;          // requests in service
  std::deque<std::size_t> queue;   // requests waiting for a slot
  LruSet cache;
  UpstreamResult result;
  std::vector<double> latencies_ms;
};

/// A request finishing service.
struct Completion {
  double time_ms;
  std::uint64_t seq;  // tie-break: equal times complete in the order they started
  std::size_t upstream;
  std::size_t request;

  bool operator>(const Completion& o) const { return time_ms != o.time_ms ? time_ms > o.time_ms : seq > o.seq; }
};

/// The event loop for one policy over one workload.
class Simulation {
public:
  Simulation(const LabOptions& o, std::span<const SimRequest> workload, lb::BalancingPolicy& policy,
             lb::ManualTimeSource& clock)
      : options_(o), workload_(workload), policy_(policy), clock_(clock),
        eligible_(std::make_unique<bool[]>(o.upstreams.size())) {
    for (std::size_t i = 0; i < o.upstreams.size(); ++i) {
      upstreams_.emplace_back(i, o.upstreams[i], o.cache_size);
      all_.push_back(upstreams_.back().upstream.get());
    }
    policy_.rebuild(all_);
    latencies_ms_.reserve(workload.size());
  }

  PolicyResult run() {
    std::size_t next = 0;
    while (next < workload_.size() || !completions_.empty()) {
      const bool completion_first =
          !completions_.empty() && (next == workload_.size() || completions_.top().time_ms <= workload_[next].arrival_ms);
      if (completion_first) {
        const Completion c = completions_.top();
        completions_.pop();
        advance_clock_to(c.time_ms);
        complete(c);
      } else {
        advance_clock_to(workload_[next].arrival_ms);
        arrive(next++);
      }
    }
    return summarize();
  }

private:
  void advance_clock_to(double t_ms) {
    const auto target = std::chrono::duration_cast<lb::SteadyClock::duration>(std::chrono::duration<double, std::milli>(t_ms));
    if (target > elapsed_) {
      clock_.advance(target - elapsed_);
      elapsed_ = target;
    }
  }

  /// Asks the policy for an upstream, exactly as the proxy does.
  std::optional<std::size_t> choose(const SimRequest& r) {
    const auto now = clock_.now();
    for (std::size_t i = 0; i < all_.size(); ++i) eligible_[i] = all_[i]->available(now);
    hash_key_ = std::to_string(r.user);
    target_ = "/?user_id=" + hash_key_;
    client_ip_ = client_ip_of(r.user);
    const lb::Candidates candidates(all_, std::span<const bool>(eligible_.get(), all_.size()));
    const auto choice = policy_.choose(candidates, lb::RequestInfo{client_ip_, target_, hash_key_});
    if (choice && (*choice >= all_.size() || !eligible_[*choice])) return std::nullopt;
    return choice;
  }

  void arrive(std::size_t r) {
    const auto choice = choose(workload_[r]);
    if (!choice) {
      ++unserved_;
      return;
    }
    SimUpstream& u = upstreams_[*choice];
    u.upstream->begin_request();
    if (u.busy < u.spec.capacity) {
      start_service(*choice, r);
    } else {
      u.queue.push_back(r);
      u.result.peak_queue = std::max(u.result.peak_queue, u.queue.size());
    }
  }

  void start_service(std::size_t index, std::size_t r) {
    SimUpstream& u = upstreams_[index];
    const SimRequest& req = workload_[r];
    const bool hit = u.cache.touch(req.user);
    u.result.cache_hits += hit ? 1 : 0;
    ++u.busy;
    const double service_ms = req.work * u.spec.mean_ms * (hit ? options_.hit_cost : 1.0);
    completions_.push({now_ms() + service_ms, seq_++, index, r});
  }

  void complete(const Completion& c) {
    SimUpstream& u = upstreams_[c.upstream];
    u.upstream->end_request();
    --u.busy;
    const double latency = c.time_ms - workload_[c.request].arrival_ms;
    u.latencies_ms.push_back(latency);
    latencies_ms_.push_back(latency);
    ++u.result.requests;
    if (!u.queue.empty()) {
      const std::size_t waiting = u.queue.front();
      u.queue.pop_front();
      start_service(c.upstream, waiting);
    }
  }

  double now_ms() const { return std::chrono::duration<double, std::milli>(elapsed_).count(); }

  PolicyResult summarize() {
    PolicyResult out;
    out.policy = std::string(policy_.name());
    out.unserved = unserved_;
    for (SimUpstream& u : upstreams_) {
      u.result.latency = summarize_latency(std::move(u.latencies_ms));
      out.requests += u.result.requests;
      out.cache_hits += u.result.cache_hits;
      out.upstreams.push_back(u.result);
    }
    out.latency = summarize_latency(std::move(latencies_ms_));
    return out;
  }

  const LabOptions& options_;
  std::span<const SimRequest> workload_;
  lb::BalancingPolicy& policy_;
  lb::ManualTimeSource& clock_;
  lb::SteadyClock::duration elapsed_{0};
  std::deque<SimUpstream> upstreams_;  // deque: elements never move, so all_ stays valid
  std::vector<lb::Upstream*> all_;
  std::unique_ptr<bool[]> eligible_;
  std::priority_queue<Completion, std::vector<Completion>, std::greater<>> completions_;
  std::uint64_t seq_ = 0;
  std::uint64_t unserved_ = 0;
  std::vector<double> latencies_ms_;
  std::string hash_key_, target_, client_ip_;  // RequestInfo views point here
};

}  // namespace

double PolicyResult::share(std::size_t i) const {
  return requests == 0 ? 0 : static_cast<double>(upstreams.at(i).requests) / static_cast<double>(requests);
}

double PolicyResult::imbalance() const {
  if (upstreams.empty() || requests == 0) return 0;
  std::uint64_t busiest = 0;
  for (const auto& u : upstreams) busiest = std::max(busiest, u.requests);
  const double mean = static_cast<double>(requests) / static_cast<double>(upstreams.size());
  return static_cast<double>(busiest) / mean;
}

PolicyResult simulate_policy(const lb::PolicyRegistry& registry, const std::string& policy_name, const LabOptions& options,
                             std::span<const SimRequest> workload) {
  lb::ManualTimeSource clock;
  lb::SplitMixRandom random(options.seed ^ 0x706f6c6963792dULL);  // its own stream, independent of the workload's
  const lb::PolicyContext context{&random, &clock};
  const std::unique_ptr<lb::BalancingPolicy> policy = registry.create(policy_name, context);
  if (!policy) throw std::invalid_argument("unknown policy '" + policy_name + "'");
  Simulation simulation(options, workload, *policy, clock);
  return simulation.run();
}

std::vector<PolicyResult> run_lab(const LabOptions& o) {
  const auto registry = lb::PolicyRegistry::with_builtins();
  const std::vector<std::string> names = o.policies.empty() ? registry.names() : o.policies;
  for (const auto& name : names) {
    if (!registry.contains(name)) throw std::invalid_argument("unknown policy '" + name + "'");
  }
  const std::vector<SimRequest> workload = generate_workload(o);
  std::vector<PolicyResult> results;
  for (const auto& name : names) results.push_back(simulate_policy(registry, name, o, workload));
  return results;
}

}  // namespace policy_lab
