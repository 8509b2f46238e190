// End-to-end: WebSocket through userkey-lb. The upstream is Beast's
// WebSocket server (support/websocket_upstream.hpp, an echo server), the
// client Debian's python3-websockets (e2e/websocket_client.py, run with
// /usr/bin/python3), the lb the real binary on free ports. Messages of up to
// 1 MiB, text and binary, come back intact; ping/pong; a close from either
// side; 60 tunnels at once; the tunnels in the metrics and the access log,
// and in least_connections' count; the tunnel idle timeout; the end of a
// SIGTERM drain closing the tunnels still open; TLS on either side (wss://
// through the TLS listener, a tls=on upstream: python3-websockets' server,
// e2e/websocket_tls_upstream.py); and every other Upgrade (h2c) still
// dropped.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/lb_process.hpp"
#include "support/process.hpp"
#include "support/websocket_upstream.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

// The Python the client runs on: Debian's, where python3-websockets is.
constexpr const char* kPython = "/usr/bin/python3";

// websocket_client.py with `args` (URL, scenario, ...), its output in a
// file of its own; finish() waits for it.
struct WsClient {
  TempDir dir;
  fs::path out = dir.path() / "client.log";
  ChildProcess proc;

  explicit WsClient(const std::vector<std::string>& args) {
    static const bool importable =
        std::system((std::string(kPython) + " -c 'import websockets' >/dev/null 2>&1").c_str()) == 0;
    REQUIRE_MESSAGE(importable, "python3-websockets is missing: scripts/install-deps.sh --test installs it");
    std::vector<std::string> argv{kPython, std::string(USERKEY_SOURCE_DIR) + "/tests/e2e/websocket_client.py"};
    argv.insert(argv.end(), args.begin(), args.end());
    proc = ChildProcess(argv, out);
  }
  std::string output() const { return read_text_file(out); }
  /// Waits up to `bound` for the line `what` to appear.
  bool says(const std::string& what, std::chrono::milliseconds bound = 30s) const {
    return eventually([&] { return contains(output(), what); }, bound, 20ms);
  }
  /// The exit status (-1: still running after `bound`, then killed).
  int finish(std::chrono::milliseconds bound = 60s) {
    const auto status = proc.wait(bound);
    if (!status) proc.kill();
    return status.value_or(-1);
  }
};

std::string ws_url(std::uint16_t port, const std::string& path = "/chat") {
  return "ws://127.0.0.1:" + std::to_string(port) + path;
}

// A self-signed certificate for 127.0.0.1 and localhost (its own CA).
struct SelfSigned {
  TempDir dir;
  std::string cert = (dir.path() / "cert.pem").string();
  std::string key = (dir.path() / "key.pem").string();
  SelfSigned() {
    const std::string make = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout '" +
                             key + "' -out '" + cert +
                             "' -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost "
                             ">/dev/null 2>&1";
    REQUIRE(std::system(make.c_str()) == 0);
  }
};

// The WebSocket echo server over TLS (e2e/websocket_tls_upstream.py).
struct TlsWebSocketUpstream {
  TempDir dir;
  ChildProcess proc;
  std::uint16_t port = 0;
  explicit TlsWebSocketUpstream(const SelfSigned& certs) {
    const auto port_file = dir.path() / "port";
    proc = ChildProcess({kPython, std::string(USERKEY_SOURCE_DIR) + "/tests/e2e/websocket_tls_upstream.py",
                         port_file.string(), certs.cert, certs.key},
                        dir.path() / "upstream.log");
    REQUIRE_MESSAGE(eventually([&] { return fs::exists(port_file); }, 15s, 20ms), proc.log());
    std::ifstream(port_file) >> port;
  }
  std::string upstream() const { return "127.0.0.1:" + std::to_string(port); }
};

// The scenarios every transport must pass, with what each prints.
const std::vector<std::pair<std::string, std::string>> kScenarios{{"echo", "echo ok"},
                                                                  {"ping", "pong ok"},
                                                                  {"client-close", "client close ok 1000"},
                                                                  {"server-close", "server close ok 1000 bye"}};

// A file whose existence tells a holding client to let go.
struct Release {
  TempDir dir;
  fs::path path = dir.path() / "release";
  void now() const { std::ofstream(path) << "go\n"; }
};

}  // namespace

TEST_CASE("websocket: messages up to 1 MiB both kinds intact, ping/pong, a close from either side; counted and "
          "logged") {
  WebSocketUpstream a("a");
  LbProcess lb({"--upstream", a.upstream(), "--access-log-format", "json"});
  for (const auto& [scenario, ok] : kScenarios) {
    CAPTURE(scenario);
    WsClient client({ws_url(lb.port), scenario});
    CHECK_MESSAGE(client.finish() == 0, client.output() << lb.proc.log());
    CHECK_MESSAGE(contains(client.output(), ok), client.output());
  }
  CHECK(a.sessions.load() == 4);
  // The upstream got the upgrade with the lb's Connection and Upgrade.
  bool upgrade_seen = false;
  for (const auto& head : a.heads())
    if (contains(head, "GET /chat ")) {
      upgrade_seen = true;
      CHECK_MESSAGE(contains(head, "Connection: Upgrade\r\n"), head);
      CHECK_MESSAGE(contains(head, "Upgrade: websocket\r\n"), head);
      CHECK_MESSAGE(contains(head, "Sec-WebSocket-Key: "), head);
      CHECK_MESSAGE(contains(head, "X-Forwarded-For: 127.0.0.1\r\n"), head);
    }
  CHECK(upgrade_seen);
  // Each tunnel is counted, and gone once closed; its access line (status
  // 101, bytes both ways) is written when it closes.
  CHECK(eventually([&] { return lb.metric("userkey_lb_tunnels_open") == 0; }, 5s));
  CHECK(lb.metric("userkey_lb_tunnels_total") == 4);
  long long closed = 0;
  for (const std::string by : {"client", "upstream", "idle_timeout", "drain"})
    closed += lb.metric("userkey_lb_tunnels_closed_total{by=\"" + by + "\"}");
  CHECK(closed == 4);
  CHECK(lb.metric("userkey_lb_tunnels_closed_total{by=\"idle_timeout\"}") == 0);
  CHECK(lb.metric("userkey_lb_tunnel_bytes_total{direction=\"to_upstream\"}") > 2 * (1 << 20));
  CHECK(lb.metric("userkey_lb_tunnel_bytes_total{direction=\"to_client\"}") > 2 * (1 << 20));
  CHECK(lb.metric("userkey_lb_upstream_in_flight{upstream=\"" + a.upstream() + "\"}") == 0);
  CHECK(eventually([&] { return count(lb.proc.log(), "\"status\":101") == 4; }, 5s));
  const std::string log = lb.proc.log();
  const auto line_at = log.find("\"target\":\"/chat\",\"status\":101,\"bytes_in\":");
  REQUIRE(line_at != std::string::npos);
  // The echo tunnel's line: more than 2 MiB each way.
  bool big = false;
  for (auto at = log.find("\"status\":101"); at != std::string::npos; at = log.find("\"status\":101", at + 1)) {
    const auto in = std::stoll(log.substr(log.find("\"bytes_in\":", at) + 11));
    const auto out = std::stoll(log.substr(log.find("\"bytes_out\":", at) + 12));
    big = big || (in > 2 * (1 << 20) && out > 2 * (1 << 20));
  }
  CHECK_MESSAGE(big, log);
}

TEST_CASE("websocket: 60 tunnels open at once, each echoing its own messages") {
  WebSocketUpstream a("a");
  LbProcess lb({"--upstream", a.upstream() + ",max_conns=256", "--access-log", "false"});
  Release release;
  WsClient client({ws_url(lb.port), "many", "60", release.path.string()});
  REQUIRE_MESSAGE(client.says("open 60"), client.output() << lb.proc.log());
  CHECK(lb.metric("userkey_lb_tunnels_open") == 60);
  CHECK(lb.metric("userkey_lb_upstream_in_flight{upstream=\"" + a.upstream() + "\"}") == 60);
  CHECK(a.open.load() == 60);
  release.now();
  CHECK_MESSAGE(client.finish() == 0, client.output());
  CHECK(eventually([&] { return lb.metric("userkey_lb_tunnels_open") == 0; }, 10s));
  CHECK(lb.metric("userkey_lb_tunnels_total") == 60);
  CHECK(lb.metric("userkey_lb_upstream_in_flight{upstream=\"" + a.upstream() + "\"}") == 0);
}

TEST_CASE("websocket: least_connections counts open tunnels; new requests go to the upstream without them") {
  WebSocketUpstream a("a"), b("b");
  LbProcess lb({"--upstream", a.upstream(), "--upstream", b.upstream(), "--policy", "least_connections",
                "--access-log", "false"});
  Release release;
  // Eight tunnels one after another (each choice sees the ones before), then
  // the client closes those on b: a keeps its own.
  WsClient client({ws_url(lb.port), "split", "8", release.path.string()});
  REQUIRE_MESSAGE(client.says("holding "), client.output() << lb.proc.log());
  const auto on_a = static_cast<long long>(count(client.output(), "on a\n"));
  CHECK(on_a >= 1);
  CHECK(count(client.output(), "on b\n") >= 1);
  CHECK(contains(client.output(), "holding " + std::to_string(on_a)));
  const std::string in_flight = "userkey_lb_upstream_in_flight{upstream=\"";
  CHECK_MESSAGE(eventually([&] { return lb.metric(in_flight + b.upstream() + "\"}") == 0; }, 5s), lb.metrics());
  CHECK(lb.metric(in_flight + a.upstream() + "\"}") == on_a);
  CHECK(lb.metric("userkey_lb_tunnels_open") == on_a);
  // a has tunnels in flight, b none: every request goes to b.
  for (int i = 0; i < 10; ++i) {
    const auto r = http_get(lb.port, "/plain?i=" + std::to_string(i));
    REQUIRE(r.status == 200);
    CHECK_MESSAGE(r.body.rfind("b\n", 0) == 0, r.body);
  }
  release.now();
  CHECK_MESSAGE(client.finish() == 0, client.output());
  CHECK(eventually([&] { return lb.metric(in_flight + a.upstream() + "\"}") == 0; }, 5s));
}

TEST_CASE("websocket: a tunnel with no byte either way for --tunnel-idle-timeout is closed") {
  WebSocketUpstream a("a");
  LbProcess lb({"--upstream", a.upstream(), "--tunnel-idle-timeout", "1s", "--access-log", "false"});
  WsClient client({ws_url(lb.port), "hold", "2", "20"});
  CHECK_MESSAGE(client.finish(30s) == 0, client.output() << lb.proc.log());
  const std::string out = client.output();
  const auto at = out.find("closed 2 after ");
  REQUIRE_MESSAGE(at != std::string::npos, out);
  const double after = std::stod(out.substr(at + 15));
  CHECK(after >= 0.8);
  CHECK(after < 10.0);
  CHECK(contains(out, "codes [1006]"));  // closed under it, no close frame: the lb does not speak WebSocket
  CHECK(eventually([&] { return lb.metric("userkey_lb_tunnels_closed_total{by=\"idle_timeout\"}") == 2; }, 5s));
  CHECK(lb.metric("userkey_lb_tunnels_open") == 0);
  // A busy tunnel outlives the timeout: the echo scenario takes longer than
  // a second in all, and no message waits that long.
  WsClient busy({ws_url(lb.port), "echo"});
  CHECK_MESSAGE(busy.finish() == 0, busy.output());
}

TEST_CASE("websocket: a SIGTERM drain closes the tunnels still open when drain_timeout runs out, then exits 0") {
  WebSocketUpstream a("a");
  LbProcess lb({"--upstream", a.upstream(), "--drain-timeout", "2s", "--access-log-format", "json"});
  WsClient client({ws_url(lb.port), "hold", "5", "30"});
  REQUIRE_MESSAGE(client.says("open 5"), client.output() << lb.proc.log());
  CHECK(eventually([&] { return lb.metric("userkey_lb_tunnels_open") == 5; }, 5s));
  const auto signalled = std::chrono::steady_clock::now();
  lb.proc.signal(SIGTERM);
  CHECK_MESSAGE(client.finish(20s) == 0, client.output() << lb.proc.log());
  const auto took = std::chrono::steady_clock::now() - signalled;
  CHECK(took >= 1500ms);  // open through the drain ...
  CHECK(took < 10s);      // ... and closed at its end
  const auto exit = lb.proc.wait(10s);
  REQUIRE(exit.has_value());
  CHECK(*exit == 0);
  // Each ended as a tunnel does: its access line written.
  CHECK_MESSAGE(count(lb.proc.log(), "\"status\":101") == 5, lb.proc.log());
  CHECK(eventually([&] { return a.open.load() == 0; }, 5s));
}

TEST_CASE("websocket: wss:// through the TLS listener") {
  SelfSigned certs;
  WebSocketUpstream a("a");
  const auto tls_port = free_port();
  LbProcess lb({"--upstream", a.upstream(), "--tls-listen", "127.0.0.1:" + std::to_string(tls_port), "--tls-cert",
                certs.cert, "--tls-key", certs.key, "--access-log", "false"});
  REQUIRE(wait_for_port(tls_port, 10s));
  const std::string url = "wss://127.0.0.1:" + std::to_string(tls_port) + "/chat";
  for (const auto& [scenario, ok] : kScenarios) {
    CAPTURE(scenario);
    WsClient client({"--cafile", certs.cert, url, scenario});
    CHECK_MESSAGE(client.finish() == 0, client.output() << lb.proc.log());
    CHECK_MESSAGE(contains(client.output(), ok), client.output());
  }
  CHECK(lb.metric("userkey_lb_tunnels_total") == 4);
  // The upstream heard X-Forwarded-Proto: https on the upgrade.
  bool https = false;
  for (const auto& head : a.heads()) https = https || (contains(head, "GET /chat ") && contains(head, "https"));
  CHECK(https);
}

TEST_CASE("websocket: to a tls=on upstream, from a plain client and from a wss:// one") {
  SelfSigned certs;
  TlsWebSocketUpstream up(certs);
  const auto tls_port = free_port();
  LbProcess lb({"--upstream", up.upstream() + ",tls=on", "--tls-upstream-ca", certs.cert, "--no-active-health",
                "--tls-listen", "127.0.0.1:" + std::to_string(tls_port), "--tls-cert", certs.cert, "--tls-key",
                certs.key, "--access-log", "false"});
  REQUIRE(wait_for_port(tls_port, 10s));
  for (const std::string& url : {ws_url(lb.port), "wss://127.0.0.1:" + std::to_string(tls_port) + "/chat"})
    for (const auto& [scenario, ok] : kScenarios) {
      CAPTURE(url);
      CAPTURE(scenario);
      WsClient client({"--cafile", certs.cert, url, scenario});
      CHECK_MESSAGE(client.finish() == 0, client.output() << lb.proc.log() << up.proc.log());
      CHECK_MESSAGE(contains(client.output(), ok), client.output());
    }
  CHECK(lb.metric("userkey_lb_tunnels_total") == 8);
  CHECK(eventually([&] { return lb.metric("userkey_lb_tunnels_open") == 0; }, 5s));
  CHECK_FALSE(contains(lb.proc.log(), "TLS handshake with upstream"));
}

TEST_CASE("websocket: every other Upgrade is still dropped, and so is one the rules do not make a WebSocket") {
  WebSocketUpstream a("a");
  LbProcess lb({"--upstream", a.upstream(), "--access-log", "false"});
  // (Each asks to close in its one Connection field: only a first
  // Connection field's `close` is heard.)
  for (const std::string& fields : {
           std::string("Connection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\n"
                       "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"),
           std::string("Connection: close\r\nUpgrade: websocket\r\n"),  // Connection does not name it
           std::string("Connection: Upgrade, close\r\nUpgrade: TLS/1.0\r\n"),
       }) {
    CAPTURE(fields);
    const auto raw = raw_exchange(lb.port, "GET /plain HTTP/1.1\r\nHost: x\r\n" + fields +
                                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                               "Sec-WebSocket-Version: 13\r\n\r\n");
    CHECK(status_of(raw) == 200);
    const auto body = raw.substr(raw.find("\r\n\r\n") + 4);
    CHECK_MESSAGE(body.rfind("a\n", 0) == 0, raw);
    CHECK_FALSE(contains(body, "Upgrade:"));
    CHECK_FALSE(contains(body, "HTTP2-Settings"));
    CHECK_FALSE(contains(body, "Connection:"));
  }
  // A WebSocket upgrade in HTTP/1.0 is none either.
  const auto old = raw_exchange(lb.port, "GET /plain HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  CHECK(status_of(old) == 200);
  CHECK_FALSE(contains(old.substr(old.find("\r\n\r\n")), "Upgrade:"));
  CHECK(a.sessions.load() == 0);
  CHECK(lb.metric("userkey_lb_tunnels_total") == 0);
}
