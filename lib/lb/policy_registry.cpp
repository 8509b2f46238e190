#include "userkey/lb/balancing_policy.hpp"

#include "userkey/lb/policies/consistent_hash.hpp"
#include "userkey/lb/policies/ip_hash.hpp"
#include "userkey/lb/policies/least_connections.hpp"
#include "userkey/lb/policies/power_of_two.hpp"
#include "userkey/lb/policies/random.hpp"
#include "userkey/lb/policies/round_robin.hpp"
#include "userkey/lb/policies/weighted_round_robin.hpp"

namespace userkey::lb {

PolicyRegistry PolicyRegistry::with_builtins() {
  PolicyRegistry r;
  r.add(std::string(RoundRobinPolicy::kName),
        [](const PolicyContext&) { return std::make_unique<RoundRobinPolicy>(); });
  r.add(std::string(WeightedRoundRobinPolicy::kName),
        [](const PolicyContext&) { return std::make_unique<WeightedRoundRobinPolicy>(); });
  r.add(std::string(LeastConnectionsPolicy::kName),
        [](const PolicyContext&) { return std::make_unique<LeastConnectionsPolicy>(); });
  r.add(std::string(RandomPolicy::kName),
        [](const PolicyContext& ctx) -> std::unique_ptr<BalancingPolicy> {
          if (ctx.random == nullptr) return nullptr;
          return std::make_unique<RandomPolicy>(*ctx.random);
        });
  r.add(std::string(PowerOfTwoPolicy::kName),
        [](const PolicyContext& ctx) -> std::unique_ptr<BalancingPolicy> {
          if (ctx.random == nullptr) return nullptr;
          return std::make_unique<PowerOfTwoPolicy>(*ctx.random);
        });
  r.add(std::string(IpHashPolicy::kName), [](const PolicyContext&) { return std::make_unique<IpHashPolicy>(); });
  r.add(std::string(ConsistentHashPolicy::kName),
        [](const PolicyContext&) { return std::make_unique<ConsistentHashPolicy>(); });
  return r;
}

void PolicyRegistry::add(std::string name, PolicyFactory factory) {
  factories_.insert_or_assign(std::move(name), std::move(factory));
}

bool PolicyRegistry::contains(std::string_view name) const { return factories_.find(name) != factories_.end(); }

std::vector<std::string> PolicyRegistry::names() const {
  std::vector<std::string> out;
  out.reserve(factories_.size());
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

std::unique_ptr<BalancingPolicy> PolicyRegistry::create(std::string_view name, const PolicyContext& ctx) const {
  auto it = factories_.find(name);
  if (it == factories_.end() || !it->second) return nullptr;
  return it->second(ctx);
}

}  // namespace userkey::lb
