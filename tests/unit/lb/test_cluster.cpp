// Unit tests for lib/lb/cluster.cpp: the cluster-level limits on passive
// health (outlier ejection): the ejection budget (max_ejection_percent), panic
// routing (panic_threshold_percent) and good active probes clearing a passive
// take-down. Upstreams are IP literals; nothing is connected to.
#include <doctest/doctest.h>
#include <spdlog/logger.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "lb/cluster.hpp"
#include "lb/upstream_router.hpp"

namespace lb = userkey::lb;
namespace engine = userkey::lb::engine;
using namespace std::chrono_literals;

namespace {

lb::UpstreamConfig upstream(std::uint16_t port) {
  lb::UpstreamConfig c;
  c.host = "127.0.0.1";
  c.port = port;
  return c;
}

struct ClusterFixture {
  explicit ClusterFixture(std::size_t n, lb::OutlierLimits limits = {}) {
    lb::ProxyConfig cfg;
    for (std::size_t i = 0; i < n; ++i) cfg.upstreams.push_back(upstream(static_cast<std::uint16_t>(9001 + i)));
    cfg.passive = {1, 10s};
    cfg.outlier = limits;
    cfg.resolve_interval = 0ms;
    cluster = std::make_unique<engine::Cluster>(cfg, lb::PolicyRegistry::with_builtins(),
                                                lb::PolicyContext{&random, &clock}, nullptr,
                                                std::make_shared<spdlog::logger>("test"));
    snap = cluster->snapshot();
  }
  lb::Upstream& at(std::size_t i) const { return *snap->ptrs[i]; }
  std::size_t passively_down(lb::TimePoint now) const {
    std::size_t n = 0;
    for (auto* u : snap->ptrs) n += u->passively_down(now) ? 1 : 0;
    return n;
  }
  // Eligible upstreams for a request that tried `tried`.
  std::vector<bool> eligible(std::vector<bool> tried, bool* panic = nullptr) const {
    bool raw[16] = {};
    std::size_t count = 0;
    const bool p = engine::select_eligible(*snap, tried, raw, count, lb::SteadyClock::now());
    if (panic) *panic = p;
    std::vector<bool> out(raw, raw + snap->ptrs.size());
    std::size_t set = 0;
    for (bool b : out) set += b ? 1 : 0;
    CHECK(set == count);
    return out;
  }

  lb::SplitMixRandom random;
  lb::SystemTimeSource clock;
  std::unique_ptr<engine::Cluster> cluster;
  std::shared_ptr<const engine::Snapshot> snap;
};

}  // namespace

TEST_CASE("outlier: max_ejections rounds down but takes out at least one, 0 = none") {
  CHECK(lb::max_ejections(3, 50) == 1);
  CHECK(lb::max_ejections(4, 50) == 2);
  CHECK(lb::max_ejections(10, 10) == 1);
  CHECK(lb::max_ejections(1, 50) == 1);
  CHECK(lb::max_ejections(5, 100) == 5);
  CHECK(lb::max_ejections(5, 0) == 0);
  CHECK(lb::max_ejections(0, 50) == 0);
}

TEST_CASE("outlier: an upstream kept in by the budget counts the failure and goes once the budget allows") {
  lb::ManualTimeSource clock;
  lb::Upstream u(upstream(1), lb::PassiveHealthConfig{2, 10s});
  CHECK(u.report_failure(clock.now(), false) == lb::FailureVerdict::counted);  // 1 of 2
  CHECK(u.report_failure(clock.now(), false) == lb::FailureVerdict::kept_in);
  CHECK(u.available(clock.now()));
  CHECK(u.report_failure(clock.now(), true) == lb::FailureVerdict::taken_out);
  CHECK_FALSE(u.available(clock.now()));
  CHECK(u.report_failure(clock.now(), true) == lb::FailureVerdict::counted);  // already out
}

TEST_CASE("outlier: passive health never takes out more than max_ejection_percent of the cluster") {
  const auto now = lb::SteadyClock::now();
  SUBCASE("3 upstreams at 50%: one") {
    ClusterFixture f(3);
    CHECK(f.cluster->report_failure(*f.snap, f.at(0), now) == lb::FailureVerdict::taken_out);
    CHECK(f.cluster->report_failure(*f.snap, f.at(1), now) == lb::FailureVerdict::kept_in);
    CHECK(f.cluster->report_failure(*f.snap, f.at(2), now) == lb::FailureVerdict::kept_in);
    CHECK(f.passively_down(now) == 1);
    CHECK(f.at(1).available(now));
    CHECK(f.at(2).available(now));
  }
  SUBCASE("4 upstreams at 50%: two") {
    ClusterFixture f(4);
    for (std::size_t i = 0; i < 4; ++i) f.cluster->report_failure(*f.snap, f.at(i), now);
    CHECK(f.passively_down(now) == 2);
  }
  SUBCASE("at 100%: all of them (panic still routes)") {
    ClusterFixture f(3, {100, 50});
    for (std::size_t i = 0; i < 3; ++i) f.cluster->report_failure(*f.snap, f.at(i), now);
    CHECK(f.passively_down(now) == 3);
  }
  SUBCASE("once the first is back, another may go") {
    ClusterFixture f(3);
    f.cluster->report_failure(*f.snap, f.at(0), now);
    const auto later = now + 10s;  // its fail_timeout passed
    CHECK(f.cluster->report_failure(*f.snap, f.at(1), later) == lb::FailureVerdict::taken_out);
  }
}

TEST_CASE("outlier: below panic_threshold_percent available, passive verdicts are ignored; active ones are not") {
  ClusterFixture f(4, {100, 50});
  const auto now = lb::SteadyClock::now();
  const std::vector<bool> none(4, false);
  bool panic = true;
  CHECK(f.eligible(none, &panic) == std::vector<bool>{true, true, true, true});
  CHECK_FALSE(panic);

  f.at(0).report_failure(now);
  f.at(1).report_failure(now);  // 2 of 4 available: 50%, not below
  CHECK(f.eligible(none, &panic) == std::vector<bool>{false, false, true, true});
  CHECK_FALSE(panic);

  f.at(2).report_failure(now);  // 1 of 4: panic, the passive verdicts are ignored
  CHECK(f.eligible(none, &panic) == std::vector<bool>{true, true, true, true});
  CHECK(panic);
  // Active health still counts, and so does what this request tried.
  f.at(1).set_active_up(false);
  CHECK(f.eligible({true, false, false, false}, &panic) == std::vector<bool>{false, false, true, true});

  SUBCASE("threshold 0: never") {
    ClusterFixture g(2, {100, 0});
    g.at(0).report_failure(now);
    g.at(1).report_failure(now);
    CHECK(g.eligible({false, false}) == std::vector<bool>{false, false});
  }
}

TEST_CASE("outlier: a good active probe clears a passive take-down at once") {
  lb::ManualTimeSource clock;
  lb::Upstream u(upstream(1), lb::PassiveHealthConfig{1, 10s});
  lb::ActiveHealthConfig active;
  u.report_failure(clock.now());
  REQUIRE_FALSE(u.available(clock.now()));
  CHECK_FALSE(u.report_probe(false, active));  // a failed probe clears nothing
  CHECK_FALSE(u.available(clock.now()));
  CHECK_FALSE(u.report_probe(true, active));   // active state unchanged (it was up) ...
  CHECK(u.available(clock.now()));             // ... but the passive mark is gone
}
