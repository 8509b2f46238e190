// Shared fixture of the balancing-policy unit tests (tests/unit/lb/policies/
// and test_policy_registry.cpp): a set of upstreams with a per-request
// eligibility array, and a scripted random source.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "userkey/lb/balancing_policy.hpp"

namespace policy_test {

namespace lb = userkey::lb;

struct Pool {
  std::vector<std::unique_ptr<lb::Upstream>> owned;
  std::vector<lb::Upstream*> ptrs;
  std::unique_ptr<bool[]> elig;

  explicit Pool(const std::vector<std::uint32_t>& weights, int first_octet = 1) {
    for (std::size_t i = 0; i < weights.size(); ++i) add(weights[i], first_octet);
  }
  void add(std::uint32_t weight, int first_octet = 1) {
    lb::UpstreamConfig cfg;
    cfg.host = std::to_string(first_octet) + ".0.0." + std::to_string(owned.size() + 1);
    cfg.port = 8080;
    cfg.weight = weight;
    owned.push_back(std::make_unique<lb::Upstream>(cfg, lb::PassiveHealthConfig{}));
    ptrs.push_back(owned.back().get());
    auto e = std::make_unique<bool[]>(ptrs.size());
    for (std::size_t i = 0; i < ptrs.size(); ++i) e[i] = true;
    elig = std::move(e);
  }
  std::size_t size() const { return ptrs.size(); }
  std::span<lb::Upstream* const> all() const { return {ptrs.data(), ptrs.size()}; }
  lb::Candidates candidates() const { return lb::Candidates(all(), std::span<const bool>(elig.get(), ptrs.size())); }
  void set_eligible(std::size_t i, bool e) { elig[i] = e; }
  void set_in_flight(std::size_t i, int n) {
    while (owned[i]->in_flight() < n) owned[i]->begin_request();
    while (owned[i]->in_flight() > n) owned[i]->end_request();
  }
};

inline std::size_t pick(lb::BalancingPolicy& p, const Pool& pool, const lb::RequestInfo& req = {}) {
  auto r = p.choose(pool.candidates(), req);
  REQUIRE(r.has_value());
  REQUIRE(*r < pool.size());
  REQUIRE(pool.elig[*r]);
  return *r;
}

// Replays a fixed list of values (cycling), for exact control of random draws.
class ScriptedRandom final : public lb::RandomSource {
public:
  explicit ScriptedRandom(std::vector<std::uint64_t> v) : values_(std::move(v)) {}
  std::uint64_t next() override { return values_[pos_++ % values_.size()]; }

private:
  std::vector<std::uint64_t> values_;
  std::size_t pos_ = 0;
};

}  // namespace policy_test
