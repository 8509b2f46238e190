// End-to-end: a real userkey-lb in front of real userkey-backend processes
// (and an in-process echo upstream for header checks), on free ports.
#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <optional>
#include <set>
#include <thread>

#include <userkey/lb/proxy_server.hpp>

#include "support/backend_process.hpp"
#include "support/ferretdb.hpp"
#include "support/httplib_upstream.hpp"
#include "support/process.hpp"
#include "support/raw_upstream.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// A backend for the lb to balance over: named, quiet, on the embedded dump
// unless other store arguments are given.
struct Backend : BackendProcess {
  explicit Backend(const std::string& name, std::vector<std::string> store = {},
                   std::map<std::string, std::string> env = {})
      : BackendProcess(args_for(name, std::move(store)), std::move(env)) {}
  static std::vector<std::string> args_for(const std::string& name, std::vector<std::string> store) {
    if (store.empty()) store = {"--dump", dump_dir().string()};
    std::vector<std::string> a{"--name", name, "--access-log", "false"};
    a.insert(a.end(), store.begin(), store.end());
    return a;
  }
};

struct Lb {
  TempDir dir;
  std::uint16_t port = free_port();
  std::uint16_t admin = free_port();
  ChildProcess proc;
  explicit Lb(std::vector<std::string> args) {
    std::vector<std::string> argv{USERKEY_LB_BIN, "--listen", "127.0.0.1:" + std::to_string(port), "--admin",
                                  "127.0.0.1:" + std::to_string(admin)};
    argv.insert(argv.end(), args.begin(), args.end());
    proc = ChildProcess(argv, dir.path() / "lb.log");
    REQUIRE_MESSAGE(wait_for_port(port, 10s), proc.log());
  }
  json status() const { return json::parse(http_get(admin, "/status").body); }
  /// Waits until the lb has closed every client connection it has accepted
  /// (it notices a client's close asynchronously). A connection still in the
  /// kernel's accept queue, such as the start-up port probe on a loaded
  /// machine, is not counted yet.
  bool wait_all_closed() const {
    for (int i = 0; i < 100; ++i) {
      if (http_get(admin, "/metrics").body.find("userkey_lb_connections_open 0") != std::string::npos) return true;
      std::this_thread::sleep_for(30ms);
    }
    return false;
  }
  json upstream_status(const std::string& address) const {
    const json st = status();
    for (auto& u : st["upstreams"])
      if (u["address"] == address) return u;
    return {};
  }
};

// A raw HTTP/1.1 upstream that misbehaves on purpose: after answering
// GET /first it sends a second, unasked-for response on the same (now idle)
// keep-alive connection. Every other request gets "fresh".
struct StrayResponseUpstream : RawUpstream {
  StrayResponseUpstream() : RawUpstream(&answer) {}
  static std::string response(const std::string& body) {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  }
  static void answer(int fd, const std::string& head) {
    const bool first = head.rfind("GET /first ", 0) == 0;
    send_all(fd, response(first ? "first" : "fresh"));
    if (first) {
      std::this_thread::sleep_for(100ms);
      send_all(fd, response("stray"));
    }
  }
};

std::vector<std::string> upstream_args(const std::vector<Backend*>& bs) {
  std::vector<std::string> out;
  for (auto* b : bs) {
    out.push_back("--upstream");
    out.push_back(b->upstream());
  }
  return out;
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("round_robin: 9 requests reach each of 3 backends exactly 3 times, in turn") {
  Backend b1("backend-1"), b2("backend-2"), b3("backend-3");
  Lb lb(upstream_args({&b1, &b2, &b3}) + std::vector<std::string>{"--policy", "round_robin", "--threads", "1"});
  std::map<std::string, int> seen;
  std::vector<std::string> order;
  for (int i = 0; i < 9; ++i) {
    auto r = http_get(lb.port, "/");
    REQUIRE(r.status == 200);
    auto name = json::parse(r.body)["backend"].get<std::string>();
    seen[name]++;
    order.push_back(name);
  }
  CHECK(seen["backend-1"] == 3);
  CHECK(seen["backend-2"] == 3);
  CHECK(seen["backend-3"] == 3);
  CHECK(order[0] != order[1]);
  CHECK(order[0] == order[3]);
  CHECK(order[1] == order[4]);

  auto r = http_get(lb.port, "/?user_id=1");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["user_key"] == "one@5cdb5896d7c8");
  CHECK(http_get(lb.port, "/?user_id=99").status == 400);
  CHECK(r.headers.count("x-request-id") == 1);  // echoed to the client

  // Metrics and status.
  auto metrics = http_get(lb.admin, "/metrics").body;
  CHECK(metrics.find("userkey_lb_requests_total 11") != std::string::npos);
  CHECK(metrics.find("userkey_lb_upstream_requests_total{upstream=\"" + b1.upstream() + "\"}") != std::string::npos);
  CHECK(metrics.find("userkey_lb_upstream_latency_seconds_bucket") != std::string::npos);
  CHECK(metrics.find("userkey_lb_upstream_up{upstream=\"" + b2.upstream() + "\"} 1") != std::string::npos);
  CHECK(metrics.find("userkey_lb_rejections_total{reason=\"rate_limited\"} 0") != std::string::npos);
  auto st = lb.status();
  CHECK(st["policy"] == "round_robin");
  CHECK(st["upstreams"].size() == 3);

  // The access log (asynchronous) has a line per request: client, method,
  // target, status, latency, upstream.
  CHECK_MESSAGE(
      eventually([&] { return lb.proc.log().find("127.0.0.1 GET /?user_id=99 400 ") != std::string::npos; }, 10s, 20ms),
      lb.proc.log());
  CHECK(lb.proc.log().find("upstream=127.0.0.1:") != std::string::npos);
}

TEST_CASE("proxy headers: hop-by-hop dropped, X-Forwarded-*, X-Real-IP and X-Request-Id added") {
  httplib::Server echo;
  echo.Get(".*", [](const httplib::Request& req, httplib::Response& res) {
    json h = json::object();
    for (auto& [k, v] : req.headers) h[k] = v;
    res.set_content(h.dump(), "application/json");
  });
  const int echo_port = echo.bind_to_any_port("127.0.0.1");
  std::thread t([&] { echo.listen_after_bind(); });
  {
    Lb lb({"--upstream", "127.0.0.1:" + std::to_string(echo_port), "--no-active-health"});
    auto r = http_get(lb.port, "/x", {{"Connection", "keep-alive, X-Secret-Hop"}, {"X-Secret-Hop", "1"},
                                      {"Keep-Alive", "timeout=5"}, {"X-Forwarded-For", "10.1.2.3"}, {"X-Custom", "kept"}});
    REQUIRE(r.status == 200);
    auto h = json::parse(r.body);
    CHECK(h["X-Forwarded-For"] == "10.1.2.3, 127.0.0.1");
    CHECK(h["X-Real-IP"] == "127.0.0.1");
    CHECK(h["X-Forwarded-Proto"] == "http");
    CHECK(h["X-Request-Id"].get<std::string>().size() == 32);
    CHECK(h["X-Custom"] == "kept");
    CHECK_FALSE(h.contains("X-Secret-Hop"));
    CHECK_FALSE(h.contains("Keep-Alive"));
    auto given = json::parse(http_get(lb.port, "/", {{"X-Request-Id", "abc-123"}}).body);
    CHECK(given["X-Request-Id"] == "abc-123");
  }
  echo.stop();
  t.join();
}

TEST_CASE("a response an upstream sends unasked on an idle pooled connection never reaches a client") {
  StrayResponseUpstream up;
  Lb lb({"--upstream", "127.0.0.1:" + std::to_string(up.port), "--no-active-health"});
  auto first = http_get(lb.port, "/first");
  REQUIRE(first.status == 200);
  CHECK(first.body == "first");
  // The stray response is on the pooled connection by now.
  std::this_thread::sleep_for(300ms);
  for (int i = 0; i < 3; ++i) {
    auto next = http_get(lb.port, "/next");
    CHECK(next.status == 200);
    CHECK(next.body == "fresh");
  }
  CHECK(up.connections.load() == 2);  // the tainted connection was dropped, one new one made
}

TEST_CASE("an upstream name is resolved again: a backend that moves to a new address is followed without a reload") {
  // Two servers on the same port of two loopback addresses stand for one
  // backend before and after it moved; an injected resolver plays DNS.
  httplib::Server before, after;
  before.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content("before", "text/plain"); });
  after.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content("after", "text/plain"); });
  int port = 0;
  for (int i = 0; i < 20 && port == 0; ++i) {
    const int p = before.bind_to_any_port("127.0.0.1");
    if (after.bind_to_port("127.0.0.2", p)) port = p;
    else before.stop();
  }
  REQUIRE(port != 0);
  std::thread t1([&] { before.listen_after_bind(); }), t2([&] { after.listen_after_bind(); });

  std::atomic<int> answer{1};  // 1: 127.0.0.1, 2: 127.0.0.2, 0: the name does not resolve
  std::atomic<int> lookups{0};
  userkey::lb::HostResolver resolver = [&](const std::string& host, std::uint16_t) -> std::vector<std::string> {
    ++lookups;
    if (host != "backend.test" || answer == 0) return {};
    return {answer == 1 ? "127.0.0.1" : "127.0.0.2"};
  };
  userkey::lb::ProxyConfig cfg;
  cfg.listen_port = 0;
  cfg.admin_host.clear();
  cfg.access_log = false;
  cfg.upstreams = {userkey::lb::UpstreamConfig{"backend.test", static_cast<std::uint16_t>(port)}};
  cfg.resolve_interval = 50ms;
  {
    userkey::lb::ProxyServer proxy(cfg, userkey::lb::PolicyRegistry::with_builtins(), nullptr, resolver);
    std::string err;
    REQUIRE_MESSAGE(proxy.start(&err), err);
    CHECK(http_get(proxy.port(), "/").body == "before");

    answer = 2;  // the backend moved
    CHECK(eventually([&] { return http_get(proxy.port(), "/").body == "after"; }, 5s));
    const auto st = json::parse(proxy.status_json());
    CHECK(st["upstreams"][0]["address"] == "backend.test:" + std::to_string(port));
    CHECK(st["upstreams"][0]["resolved"] == "127.0.0.2");

    answer = 0;  // the name stops resolving: the last known address is kept
    const int seen = lookups.load();
    REQUIRE(eventually([&] { return lookups.load() > seen + 2; }, 5s));
    CHECK(http_get(proxy.port(), "/").body == "after");

    // Without re-resolution (0), only a reload looks the name up again.
    cfg.resolve_interval = 0ms;
    answer = 1;
    proxy.reload(cfg);
    CHECK(http_get(proxy.port(), "/").body == "before");
    answer = 2;
    const int after_reload = lookups.load();
    std::this_thread::sleep_for(200ms);
    CHECK(lookups.load() == after_reload);
    CHECK(http_get(proxy.port(), "/").body == "before");
  }
  before.stop();
  after.stop();
  t1.join();
  t2.join();
}

TEST_CASE("a backend killed under load: no client-visible errors, marked down, back after restart") {
  Backend b1("backend-1"), b2("backend-2"), b3("backend-3");
  Lb lb(upstream_args({&b1, &b2, &b3}) +
        std::vector<std::string>{"--threads", "2", "--health-interval", "100ms", "--rise", "2", "--fall", "2", "--retries", "2",
                                 "--access-log", "false"});
  std::atomic<bool> run{true};
  std::atomic<int> ok{0}, bad{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      httplib::Client cli("127.0.0.1", lb.port);
      cli.set_keep_alive(true);
      cli.set_read_timeout(5s);
      while (run) {
        auto r = cli.Get("/?user_id=2");
        if (r && r->status == 200) ++ok;
        else ++bad;
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  b2.proc.kill();
  const std::string addr = b2.upstream();
  CHECK(eventually([&] { return lb.upstream_status(addr)["up"] == false; }, 5s));  // marked down
  std::this_thread::sleep_for(300ms);
  b2.start();
  CHECK(eventually([&] { return lb.upstream_status(addr)["up"] == true; }, 5s));  // back
  std::this_thread::sleep_for(300ms);
  run = false;
  for (auto& c : clients) c.join();
  CHECK(bad == 0);
  CHECK(ok > 100);
  CHECK(lb.upstream_status(addr)["requests"].get<int>() > 0);
}

TEST_CASE("all backends down: 503 at once, no hang") {
  Backend b1("backend-1");
  Lb lb({"--upstream", b1.upstream(), "--health-interval", "100ms", "--access-log", "false"});
  REQUIRE(http_get(lb.port, "/").status == 200);
  b1.proc.kill();
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto r = http_get(lb.port, "/?user_id=1");
    CHECK(r.status >= 502);
    CHECK(r.status <= 503);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
  }
  std::this_thread::sleep_for(500ms);  // health checks now say down
  auto r = http_get(lb.port, "/");
  CHECK(r.status == 503);
  CHECK(json::parse(r.body)["error"] == "no healthy upstream");
  CHECK(r.headers["retry-after"] == "1");
}

TEST_CASE("a burst over the rate limit gets 429 with Retry-After") {
  Backend b1("backend-1");
  Lb lb({"--upstream", b1.upstream(), "--rate", "5", "--burst", "5", "--access-log", "false"});
  int ok = 0, limited = 0;
  std::string retry_after;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 30; ++i) {
    auto r = http_get(lb.port, "/");
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      retry_after = r.headers["retry-after"];
    }
  }
  // At most the burst plus what refilled meanwhile (5/s) got through,
  // however slow the machine made the loop.
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(ok >= 5);
  CHECK(ok <= 5 + static_cast<int>(5 * elapsed) + 1);
  CHECK(limited > 0);
  CHECK(retry_after == "1");
  CHECK(http_get(lb.admin, "/metrics").body.find("userkey_lb_rejections_total{reason=\"rate_limited\"} " +
                                                std::to_string(limited)) != std::string::npos);
}

TEST_CASE("malformed, oversized and smuggling-shaped requests get 4xx; others are still served") {
  Backend b1("backend-1");
  Lb lb({"--upstream", b1.upstream(), "--max-header-bytes", "4096", "--max-body-bytes", "1024", "--header-timeout",
         "500ms"});
  CHECK(status_of(raw_exchange(lb.port, "GARBAGE\r\n\r\n")) == 400);
  CHECK(status_of(raw_exchange(lb.port, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8000, 'a') +
                                           "\r\n\r\n")) == 431);
  CHECK(status_of(raw_exchange(lb.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")) == 413);
  CHECK(status_of(raw_exchange(lb.port,
                               "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "0\r\n\r\n")) == 400);
  CHECK(status_of(raw_exchange(lb.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"
                                        "abcde")) == 400);
  // A body on GET would be a second request to a backend that ignores GET
  // bodies (a desync on a pooled connection): refused.
  CHECK(status_of(raw_exchange(lb.port, "GET /?user_id=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 38\r\n\r\n"
                                        "GET /?user_id=2 HTTP/1.1\r\nHost: x\r\n\r\n")) == 400);
  CHECK(status_of(raw_exchange(lb.port, "TRACE / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")) == 400);
  // A transfer coding that does not end in chunked leaves the length unknown.
  CHECK(status_of(raw_exchange(lb.port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc")) == 400);
  // Expect: 100-continue is answered by the lb, then the real response follows.
  auto cont = raw_exchange(lb.port, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
                                    "Connection: close\r\n\r\nhi");
  CHECK(status_of(cont) == 100);
  CHECK(cont.find("HTTP/1.1 405") != std::string::npos);  // the backend's answer to POST
  // Slowloris: half a request head, then nothing. The lb answers 408 and closes.
  auto slow = raw_exchange(lb.port, "GET / HTTP/1.1\r\nHost: x\r\n", 3s);
  CHECK(status_of(slow) == 408);
  // Still serving.
  CHECK(http_get(lb.port, "/?user_id=1").status == 200);
  auto metrics = http_get(lb.admin, "/metrics").body;
  CHECK(metrics.find("userkey_lb_rejections_total{reason=\"header_too_large\"} 1") != std::string::npos);
  // Every refused connection was accounted for and closed.
  CHECK(lb.wait_all_closed());
}

TEST_CASE("SIGHUP reloads upstreams and policy from the config file; SIGTERM drains and exits 0") {
  Backend b1("backend-1"), b2("backend-2");
  TempDir dir;
  const auto conf = dir.path() / "lb.toml";
  auto write_conf = [&](const std::string& policy, const std::vector<Backend*>& bs) {
    std::ofstream f(conf);
    f << "policy = \"" << policy << "\"\n";
    f << "upstreams = [";
    for (std::size_t i = 0; i < bs.size(); ++i) f << (i ? ", " : "") << "\"" << bs[i]->upstream() << "\"";
    f << "]\n";
  };
  write_conf("round_robin", {&b1});
  Lb lb({"--config", conf.string()});
  CHECK(json::parse(http_get(lb.port, "/").body)["backend"] == "backend-1");

  // Keep a client connection open across the reload.
  RawConnection kept(lb.port);
  kept.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(status_of(kept.receive()) == 200);

  write_conf("consistent_hash", {&b2});
  lb.proc.signal(SIGHUP);
  REQUIRE(eventually([&] { return lb.status()["policy"] == "consistent_hash"; }, 2500ms));
  // The same connection, still open, now reaches the new upstream.
  kept.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto again = kept.receive();
  CHECK(status_of(again) == 200);
  CHECK(again.find("\"backend\":\"backend-2\"") != std::string::npos);

  // A broken config is refused; the old one keeps serving.
  { std::ofstream(conf) << "policy = \"nonsense\"\nupstreams = [\"" << b1.upstream() << "\"]\n"; }
  lb.proc.signal(SIGHUP);
  std::this_thread::sleep_for(300ms);
  CHECK(lb.status()["policy"] == "consistent_hash");
  CHECK(json::parse(http_get(lb.port, "/").body)["backend"] == "backend-2");

  lb.proc.signal(SIGTERM);
  auto rc = lb.proc.wait(15s);
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
}

TEST_CASE("bad lb configuration is a clear message and exit 2") {
  TempDir dir;
  auto run = [&](std::vector<std::string> argv, std::string& out) {
    ChildProcess p(argv, dir.path() / "out.log");
    auto rc = p.wait(10s);
    out = p.log();
    return rc.value_or(-1);
  };
  std::string out;
  CHECK(run({USERKEY_LB_BIN, "--upstream", "nope"}, out) == 2);
  CHECK(run({USERKEY_LB_BIN, "--upstream", "127.0.0.1:1", "--policy", "fastest"}, out) == 2);
  CHECK(out.find("fastest") != std::string::npos);
  CHECK(run({USERKEY_LB_BIN, "--upstream", "127.0.0.1:1", "--deny", "10.0.0.0/99"}, out) == 2);
  CHECK(run({USERKEY_LB_BIN, "--help"}, out) == 0);
  for (const char* flag : {"--listen", "--upstream", "--policy", "--hash-key", "--retries", "--threads", "--admin",
                           "--rate", "--burst", "--config", "round_robin", "consistent_hash"}) {
    CAPTURE(flag);
    CHECK(out.find(flag) != std::string::npos);
  }
}

TEST_CASE("lb in front of backends reading FerretDB") {
  FerretDb db;
  const std::map<std::string, std::string> creds{{"mongo_user", FerretDb::kUser}, {"mongo_pass", FerretDb::kPassword}};
  {
    TempDir d;
    ChildProcess restore({USERKEY_ADMIN_BIN, "--mongo-uri", db.uri(), "restore", dump_dir().string()},
                         d.path() / "r.log", creds);
    REQUIRE(restore.wait(30s) == 0);
  }
  const std::vector<std::string> mongo{"--mongo-uri", db.uri()};
  Backend b1("backend-1", mongo, creds), b2("backend-2", mongo, creds), b3("backend-3", mongo, creds);
  Lb lb(upstream_args({&b1, &b2, &b3}) + std::vector<std::string>{"--threads", "1"});
  std::map<std::string, int> seen;
  for (int i = 1; i <= 9; ++i) {
    auto r = http_get(lb.port, "/?user_id=" + std::to_string(1 + (i % 7)));
    REQUIRE(r.status == 200);
    auto j = json::parse(r.body);
    CHECK(j["user_key"].get<std::string>().find('@') != std::string::npos);
    seen[j["backend"]]++;
  }
  CHECK(seen.size() == 3);
  for (auto& [k, v] : seen) CHECK(v == 3);
}

namespace {
// An in-process upstream that answers after `delay`, counting how many
// requests it handles at once.
struct SlowUpstream {
  explicit SlowUpstream(std::chrono::milliseconds delay)
      : http([this, delay](httplib::Server& server) {
          server.new_task_queue = [] { return new httplib::ThreadPool(16); };  // owned by httplib
          server.Get(".*", [this, delay](const httplib::Request&, httplib::Response& res) {
            const int n = ++now;
            int p = peak.load();
            while (n > p && !peak.compare_exchange_weak(p, n)) {
            }
            std::this_thread::sleep_for(delay);
            --now;
            res.set_content("{\"ok\":true}", "application/json");
          });
        }) {}
  std::string upstream(int max_conns) const { return http.upstream() + ",max_conns=" + std::to_string(max_conns); }

  std::atomic<int> now{0}, peak{0};
  HttplibUpstream http;  // last: stops before the counters go
};

std::vector<int> concurrent_gets(std::uint16_t port, int clients) {
  std::vector<int> statuses(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] { statuses[i] = http_get(port, "/", {}, 10s).status; });
  for (auto& t : threads) t.join();
  return statuses;
}
}  // namespace

TEST_CASE("max_conns caps upstream connections; the rest queue and are all served") {
  SlowUpstream up(50ms);
  Lb lb({"--upstream", up.upstream(2), "--no-active-health", "--queue-timeout", "5s", "--access-log", "false"});
  auto statuses = concurrent_gets(lb.port, 12);
  for (int s : statuses) CHECK(s == 200);
  CHECK(up.peak.load() <= 2);
  CHECK(lb.status()["upstreams"][0]["connections"].get<int>() <= 2);
}

TEST_CASE("a request that waits longer than queue_timeout gets 503, not a hang") {
  SlowUpstream up(600ms);
  Lb lb({"--upstream", up.upstream(1), "--no-active-health", "--queue-timeout", "100ms", "--access-log", "false"});
  auto statuses = concurrent_gets(lb.port, 4);
  int ok = 0, busy = 0;
  for (int s : statuses) {
    ok += s == 200;
    busy += s == 503;
  }
  CHECK(ok >= 1);
  CHECK(busy >= 1);
  CHECK(ok + busy == 4);
  CHECK(http_get(lb.admin, "/metrics").body.find("userkey_lb_rejections_total{reason=\"queue_full\"} " +
                                                std::to_string(busy)) != std::string::npos);
}

TEST_CASE("CIDR deny list and per-IP connection cap") {
  Backend b1("backend-1");
  {
    Lb denied({"--upstream", b1.upstream(), "--deny", "127.0.0.0/8"});
    CHECK(status_of(raw_exchange(denied.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")) == 403);
  }
  {
    Lb allowed({"--upstream", b1.upstream(), "--allow", "127.0.0.1/32", "--deny", "10.0.0.0/8"});
    CHECK(http_get(allowed.port, "/").status == 200);
  }
  {
    Lb capped({"--upstream", b1.upstream(), "--max-conns-per-ip", "1", "--access-log", "false"});
    // One connection that gets served holds this address's one slot. (The
    // constructor's port probe may still be queued for accept, or counted,
    // on a loaded machine: until it is gone a new connection gets 429.)
    std::optional<RawConnection> first;
    REQUIRE(eventually(
        [&] {
          first.emplace(capped.port);
          first->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
          return status_of(first->receive()) == 200;
        },
        5s, 50ms));
    CHECK(status_of(raw_exchange(capped.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")) == 429);
    first->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // the first connection still works
    CHECK(status_of(first->receive()) == 200);
  }
}

TEST_CASE("consistent_hash on user_id: a user always reaches the same backend, however the id is encoded") {
  Backend b1("backend-1"), b2("backend-2"), b3("backend-3");
  Lb lb(upstream_args({&b1, &b2, &b3}) + std::vector<std::string>{"--policy", "consistent_hash", "--access-log", "false"});
  std::set<std::string> seen_overall;
  for (int id = 1; id <= 7; ++id) {
    std::set<std::string> seen;
    for (const std::string& form : {std::to_string(id), "%3" + std::to_string(id)}) {
      for (int i = 0; i < 3; ++i) {
        auto r = http_get(lb.port, "/?user_id=" + form);
        REQUIRE(r.status == 200);
        seen.insert(json::parse(r.body)["backend"].get<std::string>());
      }
    }
    CHECK(seen.size() == 1);
    seen_overall.insert(seen.begin(), seen.end());
  }
  CHECK(seen_overall.size() >= 2);  // 7 users spread over more than one backend
}

TEST_CASE("SIGTERM lets an in-flight request finish, then exits 0") {
  SlowUpstream up(500ms);
  Lb lb({"--upstream", up.upstream(4), "--no-active-health", "--access-log", "false"});
  int status = 0;
  std::thread client([&] { status = http_get(lb.port, "/", {}, 10s).status; });
  while (up.now.load() == 0) std::this_thread::sleep_for(5ms);  // the request is at the upstream
  lb.proc.signal(SIGTERM);
  client.join();
  CHECK(status == 200);
  auto rc = lb.proc.wait(15s);
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
}
