// Fault tests of the lb's cluster level (CTest label `fault`): a real
// userkey-lb in front of real userkey-backend processes or in-process
// upstreams on free ports, with a fault injected under load: a request slow
// on every upstream, a backend killed (SIGKILL) or frozen (SIGSTOP), a reload
// (SIGHUP) and a drain (SIGTERM). What is checked is what clients see. Every
// wait is bounded; nothing asserts a speed. To measure an older lb with the
// same tests: USERKEY_TEST_LB_BIN=/path/to/userkey-lb build/tests/fault_lb_cluster.
#include <doctest/doctest.h>
#include <signal.h>

#include <fstream>

#include "support/backend_process.hpp"
#include "support/lb_process.hpp"
#include "support/process.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> upstreams(const std::vector<std::string>& addresses) {
  std::vector<std::string> out;
  for (const auto& a : addresses) {
    out.push_back("--upstream");
    out.push_back(a);
  }
  return out;
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct Backend : BackendProcess {
  explicit Backend(const std::string& name)
      : BackendProcess({"--name", name, "--access-log", "false", "--dump", dump_dir().string()}) {}
};

}  // namespace

TEST_CASE("a request slow on every upstream takes at most one out: the next 50 requests are all answered") {
  FakeUpstream a("a"), b("b"), c("c");
  LbProcess lb(upstreams({a.upstream(), b.upstream(), c.upstream()}) +
               std::vector<std::string>{"--upstream-timeout", "300ms", "--retries", "2", "--threads", "1",
                                        "--access-log", "false"});
  REQUIRE(http_get(lb.port, "/").status == 200);
  const auto slow = http_get(lb.port, "/slow", {}, 10s);
  CHECK(slow.status == 504);
  int answered = 0;
  for (int i = 0; i < 50; ++i) answered += http_get(lb.port, "/", {}, 5s).status == 200 ? 1 : 0;
  MESSAGE("answered after the slow request: " << answered << " of 50");
  CHECK(answered == 50);
  // Passive health took out at most one upstream (max_ejection_percent 50 of 3).
  int out = 0;
  for (const auto* u : {&a, &b, &c}) out += lb.upstream_status(u->upstream())["passively_down"] == true ? 1 : 0;
  CHECK(out <= 1);
}

TEST_CASE("a backend killed with SIGKILL under load: no client sees an error") {
  Backend b1("backend-1"), b2("backend-2"), b3("backend-3");
  LbProcess lb(upstreams({b1.upstream(), b2.upstream(), b3.upstream()}) +
               std::vector<std::string>{"--threads", "2", "--health-interval", "100ms", "--retries", "2",
                                        "--access-log", "false"});
  ClientLoad load(lb.port, 4, 100, "/?user_id=2");
  REQUIRE(eventually([&] { return load.ok() >= 40; }, 10s));
  b2.proc.kill();
  load.join();
  MESSAGE("ok " << load.ok() << ", failures: " << load.failures());
  CHECK(load.failed() == 0);
  CHECK(load.ok() == 400);
}

TEST_CASE("a backend frozen with SIGSTOP under load: no client sees an error") {
  Backend b1("backend-1"), b2("backend-2"), b3("backend-3");
  LbProcess lb(upstreams({b1.upstream(), b2.upstream(), b3.upstream()}) +
               std::vector<std::string>{"--threads", "2", "--health-interval", "200ms", "--health-timeout", "200ms",
                                        "--upstream-timeout", "1s", "--retries", "2", "--access-log", "false"});
  ClientLoad load(lb.port, 4, 100, "/?user_id=3");
  REQUIRE(eventually([&] { return load.ok() >= 40; }, 10s));
  b2.proc.signal(SIGSTOP);
  load.join();
  b2.proc.signal(SIGCONT);
  MESSAGE("ok " << load.ok() << ", failures: " << load.failures());
  CHECK(load.failed() == 0);
  CHECK(load.ok() == 400);
}

TEST_CASE("SIGHUP reloads under load cut no request") {
  Backend b1("backend-1"), b2("backend-2"), b3("backend-3");
  TempDir dir;
  const auto conf = dir.path() / "lb.toml";
  auto write_conf = [&](const std::string& policy, const std::vector<Backend*>& bs) {
    std::ofstream f(conf);
    f << "policy = \"" << policy << "\"\nupstreams = [";
    for (std::size_t i = 0; i < bs.size(); ++i) f << (i ? ", " : "") << "\"" << bs[i]->upstream() << "\"";
    f << "]\n";
  };
  write_conf("round_robin", {&b1, &b2});
  LbProcess lb({"--config", conf.string(), "--threads", "2", "--access-log", "false"});
  ClientLoad load(lb.port, 4, 150, "/?user_id=4");
  REQUIRE(eventually([&] { return load.ok() >= 20; }, 10s));
  for (int i = 0; i < 6; ++i) {
    if (i % 2 == 0) write_conf("least_connections", {&b2, &b3});
    else write_conf("round_robin", {&b1, &b3});
    lb.proc.signal(SIGHUP);
    std::this_thread::sleep_for(150ms);
  }
  load.join();
  MESSAGE("ok " << load.ok() << ", failures: " << load.failures());
  CHECK(load.failed() == 0);
  CHECK(load.ok() == 600);
  CHECK(lb.proc.log().find("reload failed") == std::string::npos);
}

TEST_CASE("SIGTERM under load: every request the lb took is answered; /readyz says 503 while draining") {
  FakeUpstream a("a", 2000ms, 100ms), b("b", 2000ms, 100ms);
  LbProcess lb(upstreams({a.upstream(), b.upstream()}) +
               std::vector<std::string>{"--threads", "2", "--drain-timeout", "5s", "--access-log", "false"});
  REQUIRE(http_get(lb.admin, "/readyz").status == 200);
  ClientLoad load(lb.port, 6, 1000, "/");
  REQUIRE(eventually([&] { return load.ok() >= 30; }, 10s));
  // A request in flight during the drain keeps the lb up while we look.
  int long_status = 0;
  std::thread long_request([&] { long_status = http_get(lb.port, "/slow", {}, 10s).status; });
  REQUIRE(eventually([&] { return a.served + b.served > 0; }, 5s));
  std::this_thread::sleep_for(200ms);
  lb.proc.signal(SIGTERM);
  CHECK(eventually([&] { return http_get(lb.admin, "/readyz").status == 503; }, 1500ms, 20ms));
  long_request.join();
  load.stop();
  load.join();
  const auto rc = lb.proc.wait(15s);
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(long_status == 200);
  MESSAGE("ok " << load.ok() << ", failures: " << load.failures());
  // After the listener closed, new connections are refused: that is the only
  // failure a client may see. A request that reached the lb is never cut.
  CHECK(load.failed() == load.errors("Connection"));
}
