// Unit tests for lib/lb/policy_registry.cpp: the PolicyRegistry's builtins,
// unknown names and custom policies.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "policies/policy_fixture.hpp"
#include "userkey/lb/balancing_policy.hpp"
#include "userkey/lb/policies/consistent_hash.hpp"
#include "userkey/lb/policies/ip_hash.hpp"
#include "userkey/lb/policies/least_connections.hpp"
#include "userkey/lb/policies/power_of_two.hpp"
#include "userkey/lb/policies/random.hpp"
#include "userkey/lb/policies/round_robin.hpp"
#include "userkey/lb/policies/weighted_round_robin.hpp"

namespace lb = userkey::lb;
using policy_test::pick;
using policy_test::Pool;
using policy_test::ScriptedRandom;

TEST_CASE("PolicyRegistry: builtins, unknown names, custom policies") {
  lb::SplitMixRandom rng(1);
  lb::ManualTimeSource clock;
  lb::PolicyContext ctx{&rng, &clock};
  auto reg = lb::PolicyRegistry::with_builtins();

  const std::vector<std::string> builtins = {"consistent_hash", "ip_hash", "least_connections", "power_of_two",
                                             "random", "round_robin", "weighted_round_robin"};
  CHECK(reg.names() == builtins);  // std::map keeps them sorted
  for (const auto& name : builtins) {
    CAPTURE(name);
    CHECK(reg.contains(name));
    auto p = reg.create(name, ctx);
    REQUIRE(p != nullptr);
    CHECK(p->name() == name);
    Pool pool({1, 2});
    p->rebuild(pool.all());
    lb::RequestInfo r;
    r.client_ip = "10.1.1.1";
    CHECK(p->choose(pool.candidates(), r).has_value());
  }

  CHECK_FALSE(reg.contains("fastest"));
  CHECK(reg.create("fastest", ctx) == nullptr);

  struct AlwaysLast final : lb::BalancingPolicy {
    std::string_view name() const override { return "always_last"; }
    std::optional<std::size_t> choose(const lb::Candidates& c, const lb::RequestInfo&) override {
      for (std::size_t i = c.size(); i-- > 0;) {
        if (c.eligible(i)) return i;
      }
      return std::nullopt;
    }
  };
  reg.add("always_last", [](const lb::PolicyContext&) { return std::make_unique<AlwaysLast>(); });
  CHECK(reg.contains("always_last"));
  auto custom = reg.create("always_last", ctx);
  REQUIRE(custom != nullptr);
  Pool pool({1, 1, 1});
  CHECK(pick(*custom, pool) == 2);

  // add() replaces an existing name.
  reg.add("round_robin", [](const lb::PolicyContext&) { return std::make_unique<AlwaysLast>(); });
  CHECK(reg.create("round_robin", ctx)->name() == "always_last");

  // An empty registry knows nothing.
  lb::PolicyRegistry none;
  CHECK(none.names().empty());
  CHECK(none.create("round_robin", ctx) == nullptr);
}
