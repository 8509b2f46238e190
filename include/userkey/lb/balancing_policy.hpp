// BalancingPolicy: chooses one upstream for a request. Pure: no I/O, no
// sockets, no clock or randomness of its own (both are injected through
// PolicyContext). Policies are created by name from a PolicyRegistry, so a
// program can add its own next to the built-in ones.
//
// Thread-safety: one policy instance is shared by every proxy thread, so
// choose() must be safe to call concurrently. The built-in policies use
// atomics; weighted_round_robin takes a short mutex (nginx's algorithm updates
// every peer's weight on each pick).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "userkey/lb/upstream.hpp"

namespace userkey::lb {

/// What a policy is built with.
struct PolicyContext {
  /// Never null; shared by the caller, outlives the policy.
  RandomSource* random = nullptr;
  /// Never null; shared by the caller, outlives the policy.
  const TimeSource* clock = nullptr;
};

class BalancingPolicy {
public:
  virtual ~BalancingPolicy() = default;

  /// The registry name ("round_robin", ...).
  virtual std::string_view name() const = 0;

  /// Called whenever the upstream set is (re)built, before any choose() on it,
  /// with every upstream in its stable order. Policies that precompute (ring,
  /// weights) do it here. Not called concurrently with choose().
  virtual void rebuild(std::span<Upstream* const> all) { (void)all; }

  /// Index into `c` of the chosen upstream, which must be eligible, or nullopt
  /// when none is eligible.
  virtual std::optional<std::size_t> choose(const Candidates& c, const RequestInfo& req) = 0;
};

using PolicyFactory = std::function<std::unique_ptr<BalancingPolicy>(const PolicyContext&)>;

/// Name -> factory. Not a global: a program builds one (with_builtins() gives
/// one holding every built-in policy) and adds its own.
class PolicyRegistry {
public:
  /// A registry holding round_robin, weighted_round_robin, least_connections,
  /// random, power_of_two, ip_hash and consistent_hash.
  static PolicyRegistry with_builtins();

  /// Adds or replaces `name`.
  void add(std::string name, PolicyFactory factory);
  bool contains(std::string_view name) const;
  std::vector<std::string> names() const;
  /// nullptr when `name` is unknown (the built-in random and power_of_two
  /// factories also return nullptr when ctx.random is null).
  std::unique_ptr<BalancingPolicy> create(std::string_view name, const PolicyContext& ctx) const;

private:
  std::map<std::string, PolicyFactory, std::less<>> factories_;
};

}  // namespace userkey::lb
