// End-to-end: the real client address, with a real userkey-lb in front of
// raw upstreams that record the request heads they get.
//  - --proxy-protocol: a PROXY v1 or v2 header names the client; the
//    upstream sees it in X-Forwarded-For / X-Real-IP, the access log names
//    it, the IP filter and ip_hash use it; a connection without a valid
//    header is closed unanswered and counted; the header works before TLS.
//  - --trusted-proxies: X-Forwarded-For is believed only from them, walked
//    right to left past trusted addresses.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/lb_process.hpp"
#include "support/process.hpp"
#include "support/raw_upstream.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;

namespace {

// The value of the one `name:` line of a raw head ("" when absent).
std::string header(const std::string& raw, const std::string& name) {
  std::istringstream lines(raw.substr(0, raw.find("\r\n\r\n")));
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos || lower(line.substr(0, colon)) != lower(name)) continue;
    auto value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    return value;
  }
  return {};
}

std::string be16(unsigned v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }

// A PROXY v2 header (PROXY command, TCP over IPv4) from `source` to 127.0.0.1.
std::string proxy_v2(const std::string& source, unsigned port = 40000) {
  in_addr src{}, dst{};
  REQUIRE(inet_pton(AF_INET, source.c_str(), &src) == 1);
  REQUIRE(inet_pton(AF_INET, "127.0.0.1", &dst) == 1);
  std::string payload(reinterpret_cast<const char*>(&src), 4);
  payload.append(reinterpret_cast<const char*>(&dst), 4);
  payload += be16(port) + be16(80);
  return std::string("\r\n\r\n\0\r\nQUIT\n", 12) + "\x21\x11" + be16(payload.size()) + payload;
}
const std::string kProxyV2Local = std::string("\r\n\r\n\0\r\nQUIT\n", 12) + std::string("\x20\x00", 2) + be16(0);

std::string proxy_v1(const std::string& source) {
  return "PROXY TCP4 " + source + " 127.0.0.1 40000 80\r\n";
}

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "Connection: close\r\n\r\n";
}

// Sends `bytes`, ends the sending side, returns what comes back until close.
std::string send_and_finish(std::uint16_t port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

long long failures(const LbProcess& lb, const std::string& reason) {
  return lb.metric("userkey_lb_proxy_header_failures_total{reason=\"" + reason + "\"}");
}

}  // namespace

TEST_CASE("PROXY protocol: v1 and v2 name the client the upstream and the access log see") {
  RecordingUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--proxy-protocol", "true"});

  const auto v1 = raw_exchange(lb.port, proxy_v1("203.0.113.7") + get("/v1"));
  REQUIRE_MESSAGE(status_of(v1) == 200, v1);
  CHECK(header(up.last_head(), "X-Forwarded-For") == "203.0.113.7");
  CHECK(header(up.last_head(), "X-Real-IP") == "203.0.113.7");

  const auto v2 = raw_exchange(lb.port, proxy_v2("198.51.100.2") + get("/v2"));
  REQUIRE_MESSAGE(status_of(v2) == 200, v2);
  CHECK(header(up.last_head(), "X-Forwarded-For") == "198.51.100.2");
  CHECK(header(up.last_head(), "X-Real-IP") == "198.51.100.2");

  // v2 LOCAL (a proxy's health check) and v1 UNKNOWN keep the peer address.
  REQUIRE(status_of(raw_exchange(lb.port, kProxyV2Local + get("/local"))) == 200);
  CHECK(header(up.last_head(), "X-Real-IP") == "127.0.0.1");
  REQUIRE(status_of(raw_exchange(lb.port, "PROXY UNKNOWN\r\n" + get("/unknown"))) == 200);
  CHECK(header(up.last_head(), "X-Real-IP") == "127.0.0.1");

  // Keep-alive: the header comes once, every request of the connection is the client's.
  const auto two = raw_exchange(lb.port, proxy_v1("192.0.2.44") +
                                             "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" + get("/b"));
  CHECK(two.find("HTTP/1.1 200", two.find("HTTP/1.1 200") + 1) != std::string::npos);
  CHECK(header(up.last_head(), "X-Real-IP") == "192.0.2.44");

  CHECK_MESSAGE(eventually([&] { return lb.proc.log().find("198.51.100.2 GET /v2 200 ") != std::string::npos; }, 3s),
                lb.proc.log());
  CHECK(lb.proc.log().find("203.0.113.7 GET /v1 200 ") != std::string::npos);
  CHECK(failures(lb, "invalid") == 0);
  // Without --trusted-proxies any peer may send a header: said once at start.
  CHECK(lb.proc.log().find("--proxy-protocol without --trusted-proxies") != std::string::npos);
}

TEST_CASE("PROXY protocol: a connection without a valid header is closed unanswered and counted") {
  RecordingUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--proxy-protocol", "true", "--header-timeout",
                "300ms"});
  // Plain HTTP, a wrong signature, a malformed line, an oversize v2 length.
  CHECK(raw_exchange(lb.port, get("/")).empty());
  CHECK(raw_exchange(lb.port, "PROXY TCP4 203.0.113.7 127.0.0.1 99999 80\r\n" + get("/")).empty());
  CHECK(raw_exchange(lb.port, std::string("\r\n\r\n\0\r\nQUIT\n", 12) + "\x21\x11" + be16(4096)).empty());
  CHECK(raw_exchange(lb.port, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\rGET").empty());
  CHECK(up.count() == 0);
  CHECK(eventually([&] { return failures(lb, "invalid") == 4; }, 3s));

  // Cut in the middle: truncated.
  CHECK(send_and_finish(lb.port, "PROXY TCP4 203.0.").empty());
  CHECK(eventually([&] { return failures(lb, "truncated") == 1; }, 3s));

  // Too slow (half a header, then nothing): cut at header_timeout from accept.
  RawConnection slow(lb.port);
  REQUIRE(slow.connected());
  slow.send("PROXY TCP4 203.0.");
  const auto start = std::chrono::steady_clock::now();
  CHECK(slow.receive(3s).empty());
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK(eventually([&] { return failures(lb, "timeout") == 1; }, 3s));
  CHECK(up.count() == 0);

  // A connection that sends nothing and closes (a TCP probe) is not counted.
  CHECK(send_and_finish(lb.port, "").empty());
  CHECK(status_of(raw_exchange(lb.port, proxy_v1("203.0.113.7") + get("/"))) == 200);
  CHECK(failures(lb, "truncated") == 1);
}

TEST_CASE("PROXY protocol: the IP filter, the per-IP cap and ip_hash use the header's address") {
  SUBCASE("--deny the proxied network: 403 for it, the raw peer 127.0.0.1 is still served") {
    RecordingUpstream up;
    LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--proxy-protocol", "true", "--deny",
                  "203.0.113.0/24"});
    CHECK(status_of(raw_exchange(lb.port, proxy_v1("203.0.113.7") + get("/"))) == 403);
    CHECK(status_of(raw_exchange(lb.port, proxy_v2("203.0.113.8") + get("/"))) == 403);
    CHECK(status_of(raw_exchange(lb.port, proxy_v1("198.51.100.2") + get("/"))) == 200);
    CHECK(status_of(raw_exchange(lb.port, kProxyV2Local + get("/"))) == 200);
  }
  SUBCASE("--allow only the proxied address") {
    RecordingUpstream up;
    LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--proxy-protocol", "true", "--allow",
                  "198.51.100.2/32"});
    CHECK(status_of(raw_exchange(lb.port, proxy_v1("198.51.100.2") + get("/"))) == 200);
    CHECK(status_of(raw_exchange(lb.port, kProxyV2Local + get("/"))) == 403);
  }
  SUBCASE("--max-conns-per-ip counts the proxied client, not the proxy") {
    RecordingUpstream up;
    LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--proxy-protocol", "true",
                  "--max-conns-per-ip", "1"});
    RawConnection held(lb.port);
    REQUIRE(held.connected());
    held.send(proxy_v1("203.0.113.7"));
    // (The held connection is admitted once its header is in.)
    CHECK(eventually([&] { return status_of(raw_exchange(lb.port, proxy_v1("203.0.113.7") + get("/"))) == 429; },
                     3s));
    CHECK(status_of(raw_exchange(lb.port, proxy_v1("203.0.113.9") + get("/"))) == 200);
  }
  SUBCASE("ip_hash: one client address, one upstream; different addresses spread") {
    RecordingUpstream a, b;
    LbProcess lb({"--upstream", a.upstream(), "--upstream", b.upstream(), "--no-active-health", "--policy",
                  "ip_hash", "--proxy-protocol", "true"});
    for (int i = 0; i < 6; ++i) REQUIRE(status_of(raw_exchange(lb.port, proxy_v1("203.0.113.7") + get("/"))) == 200);
    CHECK((a.count() == 6) != (b.count() == 6));  // all six on one of them
    const auto before_a = a.count(), before_b = b.count();
    for (int i = 1; i <= 20; ++i)
      REQUIRE(status_of(raw_exchange(lb.port, proxy_v2("198.51.100." + std::to_string(i)) + get("/"))) == 200);
    CHECK(a.count() > before_a);
    CHECK(b.count() > before_b);
  }
}

namespace {

// A self-signed certificate for the TLS listener.
struct SelfSigned {
  TempDir dir;
  std::string cert = (dir.path() / "cert.pem").string();
  std::string key = (dir.path() / "key.pem").string();
  SelfSigned() {
    const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout '" +
                            key + "' -out '" + cert + "' -days 2 -subj /CN=localhost >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
};

// Connects, sends `preface` in the clear, then speaks TLS (not verifying the
// certificate: the address is what is tested) and sends `request`; returns
// the answer, or "" when the TLS handshake fails.
std::string tls_exchange(std::uint16_t port, const std::string& preface, const std::string& request) {
  ::signal(SIGPIPE, SIG_IGN);  // OpenSSL writes to a socket the lb may have closed
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  std::string out;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, preface.data(), preface.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(preface.size())) {
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1 && SSL_write(ssl, request.data(), static_cast<int>(request.size())) > 0) {
      char buf[4096];
      for (int n; (n = SSL_read(ssl, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return out;
}

}  // namespace

TEST_CASE("PROXY protocol on the TLS listener: the header, then the TLS handshake") {
  RecordingUpstream up;
  SelfSigned cert;
  const std::uint16_t tls_port = free_port();
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--proxy-protocol", "true", "--tls-listen",
                "127.0.0.1:" + std::to_string(tls_port), "--tls-cert", cert.cert, "--tls-key", cert.key});
  REQUIRE(wait_for_port(tls_port, 10s));

  const auto v2 = tls_exchange(tls_port, proxy_v2("198.51.100.77"), get("/tls"));
  REQUIRE_MESSAGE(status_of(v2) == 200, v2);
  CHECK(header(up.last_head(), "X-Forwarded-For") == "198.51.100.77");
  CHECK(header(up.last_head(), "X-Forwarded-Proto") == "https");
  const auto v1 = tls_exchange(tls_port, proxy_v1("203.0.113.70"), get("/tls"));
  REQUIRE_MESSAGE(status_of(v1) == 200, v1);
  CHECK(header(up.last_head(), "X-Real-IP") == "203.0.113.70");

  // TLS straight away (no header): closed before any handshake.
  const auto before = up.count();
  CHECK(tls_exchange(tls_port, "", get("/")).empty());
  CHECK(up.count() == before);
  CHECK(eventually([&] { return failures(lb, "invalid") == 1; }, 3s));
}

TEST_CASE("trusted proxies: X-Forwarded-For is believed only from them, right to left past trusted addresses") {
  const std::string chain = "X-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n";

  SUBCASE("the peer is trusted: the first untrusted address from the right is the client") {
    RecordingUpstream up;
    LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--trusted-proxies", "127.0.0.1/32,10.0.0.0/8"});
    REQUIRE(status_of(raw_exchange(lb.port, get("/trusted", chain))) == 200);
    CHECK(header(up.last_head(), "X-Real-IP") == "203.0.113.7");
    // The chain goes on, with the proxy the lb got the request from.
    CHECK(header(up.last_head(), "X-Forwarded-For") == "203.0.113.7, 10.0.0.1, 127.0.0.1");
    CHECK_MESSAGE(
        eventually([&] { return lb.proc.log().find("203.0.113.7 GET /trusted 200 ") != std::string::npos; }, 3s),
        lb.proc.log());
    // Forwarded is not the header believed by default: never read.
    REQUIRE(status_of(raw_exchange(lb.port, get("/", "Forwarded: for=\"[2001:db8::7]:4711\", for=10.0.0.2\r\n"))) ==
            200);
    CHECK(header(up.last_head(), "X-Real-IP") == "127.0.0.1");
  }
  SUBCASE("X-Forwarded-For is a plain comma list: a client's quote cannot hide the address its proxy appended") {
    RecordingUpstream up;
    LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--trusted-proxies", "127.0.0.1/32", "--deny",
                  "198.51.100.9/32"});
    // The front proxy appended the real address to what the client sent.
    CHECK(status_of(raw_exchange(lb.port, get("/", "X-Forwarded-For: \"x, 198.51.100.9\r\n"))) == 403);
    CHECK(status_of(raw_exchange(lb.port, get("/", "X-Forwarded-For: 1.2.3.4, 198.51.100.9\r\n"))) == 403);
    REQUIRE(status_of(raw_exchange(lb.port, get("/", "X-Forwarded-For: \"x, 198.51.100.10\r\n"))) == 200);
    CHECK(header(up.last_head(), "X-Real-IP") == "198.51.100.10");
  }
  SUBCASE("the resolved client is IP-filtered and rate-limited per request") {
    RecordingUpstream up;
    LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--trusted-proxies", "127.0.0.1,10.0.0.0/8",
                  "--deny", "203.0.113.0/24", "--rate", "1", "--burst", "1"});
    CHECK(status_of(raw_exchange(lb.port, get("/", chain))) == 403);
    CHECK(status_of(raw_exchange(lb.port, get("/", "X-Forwarded-For: 198.51.100.1\r\n"))) == 200);
    CHECK(status_of(raw_exchange(lb.port, get("/", "X-Forwarded-For: 198.51.100.1\r\n"))) == 429);
    CHECK(status_of(raw_exchange(lb.port, get("/", "X-Forwarded-For: 198.51.100.2\r\n"))) == 200);  // its own bucket
  }
  SUBCASE("the peer is not trusted: the header is not believed, and not passed on") {
    RecordingUpstream up;
    LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--trusted-proxies", "10.0.0.0/8", "--deny",
                  "203.0.113.0/24"});
    REQUIRE(status_of(raw_exchange(lb.port, get("/", chain))) == 200);
    CHECK(header(up.last_head(), "X-Real-IP") == "127.0.0.1");
    CHECK(header(up.last_head(), "X-Forwarded-For") == "127.0.0.1");
  }
  SUBCASE("no trusted proxies: not believed; the chain is passed on with the peer appended, as before") {
    RecordingUpstream up;
    LbProcess lb({"--upstream", up.upstream(), "--no-active-health"});
    REQUIRE(status_of(raw_exchange(lb.port, get("/", chain))) == 200);
    CHECK(header(up.last_head(), "X-Real-IP") == "127.0.0.1");
    CHECK(header(up.last_head(), "X-Forwarded-For") == "203.0.113.7, 10.0.0.1, 127.0.0.1");
  }
}

TEST_CASE("--real-ip-header forwarded: the Forwarded a trusted proxy wrote wins over the client's X-Forwarded-For") {
  RecordingUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--trusted-proxies", "127.0.0.1/32",
                "--real-ip-header", "forwarded", "--deny", "192.0.2.99/32"});
  const std::string spoof = "X-Forwarded-For: 192.0.2.99\r\n";
  REQUIRE(status_of(raw_exchange(lb.port, get("/", spoof + "Forwarded: for=203.0.113.7;proto=https\r\n"))) == 200);
  CHECK(header(up.last_head(), "X-Real-IP") == "203.0.113.7");
  REQUIRE(status_of(raw_exchange(lb.port, get("/", "Forwarded: for=\"[2001:db8::7]:4711\", for=127.0.0.1\r\n"))) ==
          200);
  CHECK(header(up.last_head(), "X-Real-IP") == "2001:db8::7");
  // The client's own X-Forwarded-For alone names no one: the peer is the client.
  REQUIRE(status_of(raw_exchange(lb.port, get("/", spoof))) == 200);
  CHECK(header(up.last_head(), "X-Real-IP") == "127.0.0.1");
  // A bad value is refused at start, naming the flag.
  TempDir dir;
  ChildProcess bad({USERKEY_LB_BIN, "--admin", "off", "--upstream", up.upstream(), "--real-ip-header", "x-real-ip"},
                   dir.path() / "bad.log");
  CHECK(bad.wait(10s) == 2);
  CHECK_MESSAGE(bad.log().find("real-ip-header") != std::string::npos, bad.log());
}

TEST_CASE("PROXY protocol: only trusted peers may send the header; any other peer is closed before a byte is read") {
  RecordingUpstream up;
  // The peer (127.0.0.1) is denied and is not the trusted proxy: it must not
  // get in by naming another address.
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--proxy-protocol", "true", "--trusted-proxies",
                "10.9.9.9/32", "--deny", "127.0.0.1/32"});
  // (The start-up's port probe was such a connection too, and may be
  // counted before or after `before` is read.)
  const auto before = failures(lb, "untrusted");
  for (int i = 0; i < 5; ++i) CHECK(raw_exchange(lb.port, proxy_v1("10.1.2.3") + get("/")).empty());
  CHECK(raw_exchange(lb.port, proxy_v2("10.1.2.4") + get("/")).empty());
  CHECK(up.count() == 0);
  CHECK(eventually([&] { return failures(lb, "untrusted") >= before + 6; }, 3s));
  CHECK(failures(lb, "untrusted") <= before + 7);
  CHECK(failures(lb, "invalid") == 0);
  CHECK(lb.metric("userkey_lb_rejections_total{reason=\"denied\"}") == 0);  // refused before admission
  // Logged once per interval, not once per connection.
  std::size_t lines = 0;
  const auto log = lb.proc.log();
  for (auto at = log.find("PROXY header is believed only from"); at != std::string::npos;
       at = log.find("PROXY header is believed only from", at + 1))
    ++lines;
  CHECK_MESSAGE(lines == 1, log);

  // From a trusted peer, the header is believed as before.
  RecordingUpstream up2;
  LbProcess trusted({"--upstream", up2.upstream(), "--no-active-health", "--proxy-protocol", "true",
                     "--trusted-proxies", "127.0.0.1/32"});
  REQUIRE(status_of(raw_exchange(trusted.port, proxy_v1("10.1.2.3") + get("/"))) == 200);
  CHECK(header(up2.last_head(), "X-Real-IP") == "10.1.2.3");
}

TEST_CASE("TLS: a denied or over-cap client is closed before its handshake, no handshake CPU spent") {
  RecordingUpstream up;
  SelfSigned cert;
  const std::uint16_t tls_port = free_port();
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--tls-listen",
                "127.0.0.1:" + std::to_string(tls_port), "--tls-cert", cert.cert, "--tls-key", cert.key, "--deny",
                "127.0.0.1/32"});
  REQUIRE(wait_for_port(tls_port, 10s));
  const auto denied = [&] { return lb.metric("userkey_lb_rejections_total{reason=\"denied\"}"); };
  // (The port probes were denied connections too, counted before or after
  // `before` is read.)
  const auto before = denied();
  CHECK(tls_exchange(tls_port, "", get("/")).empty());
  CHECK(tls_exchange(tls_port, "", get("/")).empty());
  CHECK(eventually([&] { return denied() >= before + 2; }, 3s));
  CHECK(lb.metric("userkey_lb_tls_handshakes_total") == 0);
  for (const char* why : {"timeout", "plain_http", "protocol", "closed"})
    CHECK(lb.metric(std::string("userkey_lb_tls_handshake_failures_total{reason=\"") + why + "\"}") == 0);
  CHECK(up.count() == 0);
  // The plain listener still answers a denied client with 403.
  CHECK(status_of(raw_exchange(lb.port, get("/"))) == 403);
}
