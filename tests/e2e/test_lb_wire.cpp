// End-to-end: the lb's wire-level rules as a client sees them, with a real
// userkey-lb in front of a real userkey-backend or a small in-process
// upstream: chunk extensions and trailers, error replies to HEAD, Host,
// 100 Continue and HTTP/1.0, an upstream's 101, the body and keep-alive
// deadlines, and several X-Forwarded-For fields.
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "support/backend_process.hpp"
#include "support/lb_process.hpp"
#include "support/process.hpp"
#include "support/raw_upstream.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A backend on the embedded dump, quiet.
struct QuietBackend : BackendProcess {
  QuietBackend() : BackendProcess({"--name", "backend-1", "--access-log", "false", "--dump", dump_dir().string()}) {}
};

// An in-process upstream that echoes, as its body, what it received: the
// X-Forwarded-For field count and value and whether X-Trailer came.
struct EchoUpstream {
  HttplibUpstream http{[](httplib::Server& server) {
    auto echo = [](const httplib::Request& req, httplib::Response& res) {
      res.set_content("xff-fields=" + std::to_string(req.get_header_value_count("X-Forwarded-For")) +
                          " xff=" + req.get_header_value("X-Forwarded-For") +
                          " trailer=" + std::to_string(req.has_header("X-Trailer")) + " body=" + req.body,
                      "text/plain");
    };
    server.Get(".*", echo);
    server.Post(".*", echo);
  }};
  std::string upstream() const { return http.upstream(); }
};

// A raw upstream that answers GET /upgrade with 101 Switching Protocols
// (unasked: the lb never forwards Upgrade) and anything else with 200
// "plain", counting the connections it accepts.
struct SwitchingUpstream : RawUpstream {
  SwitchingUpstream() : RawUpstream(&answer) {}
  static void answer(int fd, const std::string& head) {
    const bool upgrade = head.rfind("GET /upgrade ", 0) == 0;
    send_all(fd, upgrade ? "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-test\r\nConnection: Upgrade\r\n\r\n"
                         : "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain");
  }
};

// A raw upstream that answers every request 413 as soon as its head is in,
// as a backend refusing a large body does, then either reads a little of
// the body and closes with the rest unread (the kernel resets the
// connection: `stall` false) or stops reading and holds the connection open
// until it is destroyed (`stall` true).
class EarlyRefusingUpstream {
public:
  explicit EarlyRefusingUpstream(bool stall) : stall_(stall) {
    listener_ = listen_on_loopback(port_, 16);
    thread_ = std::thread([this] { run(); });
  }
  ~EarlyRefusingUpstream() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  EarlyRefusingUpstream(const EarlyRefusingUpstream&) = delete;
  EarlyRefusingUpstream& operator=(const EarlyRefusingUpstream&) = delete;

  std::string upstream() const { return "127.0.0.1:" + std::to_string(port_); }
  static constexpr std::string_view kBody = R"({"error":"early refusal"})";
  std::atomic<int> refused{0};

private:
  static bool readable(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) > 0;
  }
  // One connection at a time: the lb makes one per request here.
  void run() {
    while (!stop_) {
      if (!readable(listener_, 50)) continue;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      std::string in;
      char buf[4096];
      while (!stop_ && in.find("\r\n\r\n") == std::string::npos) {
        if (!readable(fd, 50)) continue;
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
      }
      RawUpstream::send_all(fd, "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
                                "Content-Length: " + std::to_string(kBody.size()) +
                                    "\r\nConnection: close\r\n\r\n" + std::string(kBody));
      ++refused;
      if (stall_) {
        while (!stop_) std::this_thread::sleep_for(20ms);  // reads nothing more, closes nothing
      } else {
        for (std::size_t got = in.size(); got < 32 * 1024 && readable(fd, 1000);) {
          const auto n = ::recv(fd, buf, sizeof buf, 0);
          if (n <= 0) break;
          got += static_cast<std::size_t>(n);
        }
      }
      ::close(fd);  // the rest of the body unread: a reset
    }
  }

  bool stall_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string post_of(std::size_t body_bytes) {
  return "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body_bytes) +
         "\r\nConnection: close\r\n\r\n" + std::string(body_bytes, 'b');
}

// What follows the head of the first response with `status` in `raw`.
std::string after_head_of(const std::string& raw, const std::string& status) {
  const auto at = raw.find("HTTP/1.1 " + status);
  if (at == std::string::npos) return "<no " + status + ">";
  const auto end = raw.find("\r\n\r\n", at);
  return end == std::string::npos ? "<no end of head>" : raw.substr(end + 4);
}

}  // namespace

TEST_CASE("a chunk extension that never ends is 400 and the connection closes; trailers never reach the upstream") {
  EchoUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false"});
  const std::string head = "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  // Far beyond max_header_bytes (8 KiB) without an end of line.
  const auto endless = raw_exchange(lb.port, head + "5;ext=" + std::string(200 * 1024, 'e'), 5s);
  CHECK(status_of(endless) == 400);
  CHECK(endless.find("chunk extension too long") != std::string::npos);
  // A trailer section that does not end.
  const auto trailers = raw_exchange(lb.port, head + "3\r\nabc\r\n0\r\nX-T: " + std::string(64 * 1024, 't'), 5s);
  CHECK(status_of(trailers) == 431);
  // Short extensions and a trailer: served; the trailer is not forwarded.
  const auto ok = raw_exchange(lb.port, "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                        "Connection: close\r\n\r\n3;a=b\r\nabc\r\n0\r\nX-Trailer: secret\r\n\r\n");
  CHECK(status_of(ok) == 200);
  CHECK(ok.find("trailer=0 body=abc") != std::string::npos);
}

TEST_CASE("an lb error reply to HEAD carries no body, so keep-alive stays in sync") {
  QuietBackend b1;
  LbProcess lb({"--upstream", b1.upstream(), "--rate", "0.1", "--burst", "1", "--access-log", "false"});
  // The second request is over the rate limit: 429, headers only.
  const auto raw = raw_exchange(lb.port,
                                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(status_of(raw) == 200);
  CHECK(after_head_of(raw, "429") == "");
  // Refused while the head is read (no Host), and refused by framing.
  CHECK(after_head_of(raw_exchange(lb.port, "HEAD / HTTP/1.1\r\n\r\n"), "400") == "");
  CHECK(after_head_of(raw_exchange(lb.port, "HEAD / HTTP/1.1\r\nHost: x\r\nX: " + std::string(9000, 'a') + "\r\n\r\n"),
                      "431") == "");
  // A GET gets the JSON body.
  CHECK(after_head_of(raw_exchange(lb.port, "GET / HTTP/1.1\r\n\r\n"), "400") == "{\"error\":\"missing Host field\"}\n");
}

TEST_CASE("Host: missing in HTTP/1.1, repeated, or not the absolute-form target's authority is 400") {
  QuietBackend b1;
  LbProcess lb({"--upstream", b1.upstream(), "--access-log", "false"});
  CHECK(status_of(raw_exchange(lb.port, "GET /healthz HTTP/1.1\r\n\r\n")) == 400);
  CHECK(status_of(raw_exchange(lb.port, "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")) == 400);
  CHECK(status_of(raw_exchange(lb.port, "GET http://a.example/healthz HTTP/1.1\r\nHost: b.example\r\n\r\n")) == 400);
  // Allowed: HTTP/1.0 without Host, an absolute-form target that agrees.
  CHECK(status_of(raw_exchange(lb.port, "GET /healthz HTTP/1.0\r\n\r\n")) == 200);
  const auto agrees = raw_exchange(lb.port, "GET http://a.example/healthz HTTP/1.1\r\nHost: a.example\r\n"
                                            "Connection: close\r\n\r\n");
  CHECK(status_of(agrees) != 0);
  CHECK(agrees.find("Server: userkey-lb") == std::string::npos);  // relayed, not refused by the lb
}

TEST_CASE("no 100 Continue to an HTTP/1.0 client") {
  QuietBackend b1;
  LbProcess lb({"--upstream", b1.upstream(), "--access-log", "false"});
  const auto raw = raw_exchange(lb.port, "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
  CHECK(raw.find("100 Continue") == std::string::npos);
  CHECK(raw.rfind("HTTP/1.0 405", 0) == 0);  // the backend's answer to POST
}

TEST_CASE("an upstream's 101 is a 502 and its connection is never reused") {
  SwitchingUpstream up;
  LbProcess lb({"--upstream", "127.0.0.1:" + std::to_string(up.port), "--no-active-health", "--max-fails", "0",
                "--access-log", "false"});
  RawConnection client(lb.port);
  client.send("GET /upgrade HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_of(client.receive()) == 502);
  for (int i = 0; i < 2; ++i) {
    client.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto next = client.receive();
    CHECK(status_of(next) == 200);
    CHECK(next.find("plain") != std::string::npos);
  }
  // One connection switched (and closed), one new one for the rest.
  CHECK(up.connections.load() == 2);
}

TEST_CASE("a slow request body is a 408; an idle keep-alive wait does not eat the next head's time") {
  QuietBackend b1;
  LbProcess lb(with({"--upstream", b1.upstream(), "--access-log", "false"},
                    {"--body-timeout", "300ms", "--header-timeout", "300ms", "--idle-timeout", "30s"}));
  // Head in, body never completes: 408, then closed.
  const auto slow = raw_exchange(lb.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", 5s);
  CHECK(status_of(slow) == 408);
  CHECK(slow.find("request body timeout") != std::string::npos);

  RawConnection client(lb.port);
  client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(status_of(client.receive()) == 200);
  // Idle for longer than header_timeout: still open (idle_timeout is 30 s).
  std::this_thread::sleep_for(800ms);
  client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(status_of(client.receive()) == 200);
  // Part of the next head, then nothing: 408 after header_timeout, not
  // after idle_timeout.
  client.send("GET /healthz HTTP/1.1\r\n");
  CHECK(status_of(client.receive(5s)) == 408);
}

// Reads from `client` until `n` responses' status lines are in (or 5 s).
static std::string receive_responses(RawConnection& client, std::size_t n) {
  std::string got;
  const auto until = std::chrono::steady_clock::now() + 5s;
  auto count = [&] {
    std::size_t k = 0;
    for (auto at = got.find("HTTP/1.1 "); at != std::string::npos; at = got.find("HTTP/1.1 ", at + 1)) ++k;
    return k;
  };
  while (count() < n && std::chrono::steady_clock::now() < until) got += client.receive(500ms);
  return got;
}

TEST_CASE("keep-alive: each next request is served however it arrives after an answer, on one connection") {
  QuietBackend b1;
  LbProcess lb(with({"--upstream", b1.upstream(), "--access-log", "false"},
                    {"--header-timeout", "2s", "--idle-timeout", "30s"}));
  RawConnection client(lb.port);
  const std::string get = "GET /?user_id=1 HTTP/1.1\r\nHost: x\r\n\r\n";
  // The moment each answer is in, the next request: 50 in turn.
  for (int i = 0; i < 50; ++i) {
    client.send(get);
    const auto got = receive_responses(client, 1);
    REQUIRE_MESSAGE(status_of(got) == 200, "request " << i << ": " << got);
  }
  // A pipelined pair: two answers, in order.
  client.send(get + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto pair = receive_responses(client, 2);
  CHECK(status_of(pair) == 200);
  CHECK(pair.find("HTTP/1.1 ", pair.find("HTTP/1.1 ") + 1) != std::string::npos);
  // The next head in two pieces, the second 200 ms later: one answer.
  client.send("GET /?user_id=2 HTTP/1.1\r\n");
  std::this_thread::sleep_for(200ms);
  client.send("Host: x\r\n\r\n");
  CHECK(status_of(receive_responses(client, 1)) == 200);
  // After an idle spell: still served on the same connection.
  std::this_thread::sleep_for(300ms);
  client.send(get);
  CHECK(status_of(receive_responses(client, 1)) == 200);
  // A last request with Connection: close: answered, then closed by the lb.
  client.send("GET /?user_id=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(status_of(receive_responses(client, 1)) == 200);
  CHECK(client.receive(2s).empty());
}

TEST_CASE("several X-Forwarded-For fields reach the upstream as one list, in order") {
  EchoUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false"});
  const auto raw = raw_exchange(lb.port,
                                "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\n"
                                "X-Forwarded-For: 10.0.0.2, 10.0.0.3\r\nConnection: close\r\n\r\n");
  CHECK(status_of(raw) == 200);
  CHECK(raw.find("xff-fields=1 xff=10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1 ") != std::string::npos);
}

TEST_CASE("a body the backend refuses as soon as the head is in reaches the client as its 413; the backend stays in") {
  BackendProcess b1({"--name", "backend-1", "--access-log", "false", "--dump", dump_dir().string()});
  BackendProcess b2({"--name", "backend-2", "--access-log", "false", "--dump", dump_dir().string()});
  // The lb takes bodies up to 8 MiB: more than the backend's 64 KiB. A
  // 1 MiB body may fit in the kernel's buffers whole (the lb's write then
  // ends before the backend's reset); an 8 MiB one does not.
  LbProcess lb({"--upstream", b1.upstream(), "--upstream", b2.upstream(), "--policy", "round_robin",
                "--max-body-bytes", "8388608", "--access-log", "false"});
  for (int i = 0; i < 4; ++i) {  // every upstream gets each size
    CAPTURE(i);
    const auto raw = raw_exchange(lb.port, post_of(i < 2 ? 1024 * 1024 : 8 * 1024 * 1024), 10s);
    CHECK(status_of(raw) == 413);
    CHECK(after_head_of(raw, "413").find("\"error\":\"request body too large\"") != std::string::npos);
  }
  for (const auto& up : {b1.upstream(), b2.upstream()}) {
    CAPTURE(up);
    const auto st = lb.upstream_status(up);
    CHECK(st["up"] == true);
    CHECK(st["passively_down"] == false);
    CHECK(st["errors"] == 0);
  }
  CHECK(lb.proc.log().find("failed (") == std::string::npos);
  // Both still in rotation.
  std::set<std::string> answered;
  for (int i = 0; i < 4; ++i) {
    const auto r = http_get(lb.port, "/?user_id=1");
    CHECK(r.status == 200);
    answered.insert(r.body.substr(r.body.find("backend-"), 9));
  }
  CHECK(answered.size() == 2);
}

TEST_CASE("an upstream's early 413 is relayed whether it then resets mid-body or stops reading; never a failure") {
  for (const bool stall : {false, true}) {
    CAPTURE(stall);
    EarlyRefusingUpstream up(stall);
    // The upstream timeout is long: an lb waiting on a write the upstream
    // no longer reads would be seen waiting (and answer 504 after it).
    // The body is more than the kernel buffers for a peer that reads
    // nothing, so the lb's write cannot end by itself.
    LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--max-body-bytes", "16777216",
                  "--upstream-timeout", "20s", "--access-log", "false"});
    const auto raw = raw_exchange(lb.port, post_of(16 * 1024 * 1024), 10s);
    CHECK(status_of(raw) == 413);
    CHECK(after_head_of(raw, "413") == EarlyRefusingUpstream::kBody);
    CHECK(up.refused == 1);
    const auto st = lb.upstream_status(up.upstream());
    CHECK(st["up"] == true);
    CHECK(st["errors"] == 0);
    CHECK(lb.metric("userkey_lb_upstream_responses_total{upstream=\"" + up.upstream() + "\",code=\"4xx\"}") == 1);
    CHECK_MESSAGE(lb.proc.log().find("failed (") == std::string::npos, lb.proc.log());
  }
}
