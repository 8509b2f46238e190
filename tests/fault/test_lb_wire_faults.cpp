// Fault tests (label `fault`): a real userkey-lb under hostile clients, with
// its memory read from /proc. An endless chunk extension, sent for a few
// seconds over one connection after another, is answered 400 and closed
// within the configured limits and the lb's RSS stays within a bound derived
// from them; idle connections beyond max_connections are refused cleanly
// (503, Connection: close, closed) while the lb keeps serving the ones it has;
// 10,000 idle connections, new or kept alive after a request, are all held
// at a bounded cost each (a few hundred bytes of RSS).
#include <doctest/doctest.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "support/backend_process.hpp"
#include "support/lb_process.hpp"
#include "support/process.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;

namespace {

struct QuietBackend : BackendProcess {
  QuietBackend() : BackendProcess({"--name", "backend-1", "--access-log", "false", "--dump", dump_dir().string()}) {}
};

// The largest socket buffer the kernel may give (third field of tcp_rmem /
// tcp_wmem): bytes a peer can have "sent" without the lb reading them.
long kernel_buffer_max(const char* file) {
  std::ifstream f(file);
  long lo = 0, def = 0, max = 0;
  f >> lo >> def >> max;
  return max > 0 ? max : 8L << 20;
}

struct Attack {
  std::string response;
  bool closed = false;        // the lb closed the connection
  std::size_t sent = 0;       // bytes the kernel took from us before that
};

// Sends `head`, then `filler` bytes without end, as fast as the lb takes them,
// until the lb closes the connection or `budget` passes; reads whatever it
// answers meanwhile. `tick` runs about every 50 ms.
template <class Tick>
Attack endless(std::uint16_t port, const std::string& head, std::chrono::milliseconds budget, Tick tick) {
  Attack a;
  const int fd = connect_loopback(port);
  REQUIRE(fd >= 0);
  const std::string block = head + std::string(64 * 1024 - head.size(), 'e');
  const std::string filler(64 * 1024, 'e');
  bool first = true;
  const auto deadline = std::chrono::steady_clock::now() + budget;
  auto last_tick = std::chrono::steady_clock::now();
  char buf[4096];
  while (!a.closed && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN | POLLOUT, 0};
    ::poll(&p, 1, 20);
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) a.response.append(buf, static_cast<std::size_t>(n));
      else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) a.closed = true;
    }
    if (!a.closed && (p.revents & POLLOUT)) {
      const std::string& out = first ? block : filler;
      const auto n = ::send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        a.sent += static_cast<std::size_t>(n);
        first = first && static_cast<std::size_t>(n) < head.size();  // (a partial head is not expected on loopback)
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        a.closed = true;  // reset: the lb closed with our bytes unread
      }
    }
    if (std::chrono::steady_clock::now() - last_tick >= 50ms) {
      tick();
      last_tick = std::chrono::steady_clock::now();
    }
  }
  // What the lb sent before closing may still be queued here.
  for (int i = 0; i < 10; ++i) {
    const auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    a.response.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return a;
}

struct Exchange {
  std::string response;
  bool closed = false;
};

// Sends `bytes`, then reads until the peer closes (closed) or `timeout`.
Exchange exchange_until_close(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds timeout) {
  Exchange e;
  const int fd = connect_loopback(port);
  REQUIRE(fd >= 0);
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      e.closed = true;
      break;
    }
    e.response.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return e;
}

}  // namespace

TEST_CASE("fault: an endless chunk extension is 400 and closed within the limits; lb RSS stays bounded") {
  constexpr long kHeaderBytes = 8192;  // --max-header-bytes: also the read buffer's cap
  QuietBackend b1;
  LbProcess lb({"--upstream", b1.upstream(), "--access-log", "false", "--max-header-bytes",
                std::to_string(kHeaderBytes)});
  REQUIRE(http_get(lb.port, "/healthz").status == 200);  // warm: a connection served, the pools made
  const long rss_before = lb.rss_kib();
  REQUIRE(rss_before > 0);
  long rss_peak = rss_before;
  auto sample = [&] { rss_peak = std::max(rss_peak, lb.rss_kib()); };

  // What a client can push before the lb closes: the read buffer, the
  // lingering close's discard (256 KiB), and what the kernel buffers on
  // either side of the connection.
  const long sent_bound = kHeaderBytes + 256 * 1024 + kernel_buffer_max("/proc/sys/net/ipv4/tcp_rmem") +
                          kernel_buffer_max("/proc/sys/net/ipv4/tcp_wmem");
  // What the lb may hold for it: a few read buffers, plus room for the
  // allocator's own caches (the fix measured under 1 MiB; unfixed, the lb
  // buffered the whole extension: +197 MiB for 200 MiB).
  const long rss_bound_kib = 4 * kHeaderBytes / 1024 + 8 * 1024;

  const std::string head = "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=";
  const auto until = std::chrono::steady_clock::now() + 3s;
  int attacks = 0;
  std::size_t total_sent = 0;
  while (std::chrono::steady_clock::now() < until || attacks == 0) {
    const auto a = endless(lb.port, head, 4s, sample);
    ++attacks;
    total_sent += a.sent;
    CAPTURE(attacks);
    CAPTURE(a.sent);
    CHECK(status_of(a.response) == 400);
    CHECK(a.response.find("chunk extension too long") != std::string::npos);
    CHECK(a.closed);
    CHECK(static_cast<long>(a.sent) <= sent_bound);
    if (!a.closed) break;  // unfixed: one connection swallows it all
  }
  sample();
  MESSAGE("endless chunk extension: " << attacks << " connections, " << total_sent / 1024 << " KiB sent, lb RSS "
                                      << rss_before << " -> peak " << rss_peak << " KiB");
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Sanitizer builds keep freed memory in quarantine and shadow it: their
  // RSS says nothing about the lb's. The other checks stand.
  MESSAGE("sanitizer build: RSS bound (" << rss_bound_kib << " KiB) not checked");
#else
  CHECK(rss_peak - rss_before < rss_bound_kib);
#endif
  // Still serving, and every refused connection is closed.
  CHECK(http_get(lb.port, "/healthz").status == 200);
  CHECK(eventually([&] { return lb.metric("userkey_lb_connections_open") == 0; }, 5s));
}

TEST_CASE("fault: idle connections beyond max_connections get 503 and are closed; the lb keeps serving") {
  constexpr int kCap = 4;
  constexpr int kBeyond = 8;
  QuietBackend b1;
  LbProcess lb({"--upstream", b1.upstream(), "--access-log", "false", "--max-connections", std::to_string(kCap),
                "--header-timeout", "30s", "--idle-timeout", "30s"});
  REQUIRE(eventually([&] { return lb.metric("userkey_lb_connections_open") == 0; }, 5s));  // the start-up probe is gone
  // kCap connections that send nothing hold every place.
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < kCap; ++i) held.push_back(std::make_unique<RawConnection>(lb.port));
  REQUIRE(eventually([&] { return lb.metric("userkey_lb_connections_open") == kCap; }, 5s));
  // Counted from here: on a loaded machine the start-up port probe can still
  // sit in the backlog when the lb reports no connection open, and be
  // accepted (and refused) together with the held ones.
  const auto refused_before = lb.metric("userkey_lb_rejections_total{reason=\"max_connections\"}");

  for (int i = 0; i < kBeyond; ++i) {
    CAPTURE(i);
    const auto e = exchange_until_close(lb.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5s);
    CHECK(status_of(e.response) == 503);
    CHECK(e.response.find("Connection: close\r\n") != std::string::npos);
    CHECK(e.response.find("Retry-After: 1\r\n") != std::string::npos);
    CHECK(e.closed);
  }
  CHECK(lb.metric("userkey_lb_rejections_total{reason=\"max_connections\"}") - refused_before == kBeyond);
  // The connections it holds are still served.
  held[0]->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_of(held[0]->receive(5s)) == 200);
  // Once some close, new connections are served again.
  held.pop_back();
  held.pop_back();
  CHECK(eventually([&] { return http_get(lb.port, "/healthz").status == 200; }, 5s));
  CHECK(lb.metric("userkey_lb_connections_open") <= kCap);
}

namespace {

// Plain sockets, closed at scope exit.
struct Sockets {
  std::vector<int> fds;
  Sockets() = default;
  Sockets(const Sockets&) = delete;
  Sockets& operator=(const Sockets&) = delete;
  ~Sockets() {
    for (int fd : fds) ::close(fd);
  }
};

// Raises this process's soft descriptor limit to its hard limit (children
// inherit it) and returns the soft limit now in force.
long raise_nofile() {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur == RLIM_INFINITY ? 1L << 20 : static_cast<long>(lim.rlim_cur);
}

// One request on a connection the test holds: true when a complete 200 came
// back (head, then Content-Length bytes of body) within 5 s.
bool one_request(int fd) {
  static const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return false;
  std::string got;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, static_cast<std::size_t>(n));
    const auto end = got.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    std::string head = got.substr(0, end);
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char ch) { return std::tolower(ch); });
    const auto cl = head.find("\r\ncontent-length:");
    const std::size_t length = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 17));
    if (got.size() >= end + 4 + length) return got.rfind("HTTP/1.1 200", 0) == 0;
  }
  return false;
}

}  // namespace

// What an idle client connection costs the lb, measured as its RSS growth
// over n connections: first new ones that have sent nothing, then the same
// ones after one request each, idle again (keep-alive). Either way an idle
// connection holds no parser, buffer, coroutine or timer: a few hundred
// bytes (see downstream_session.hpp).
TEST_CASE("fault: 10,000 idle client connections, new or kept alive after a request, cost a few hundred bytes each; the lb keeps serving") {
  constexpr long kHeaderBytes = 8192;
  // Bytes of lb RSS per idle connection, at most: about twice what was
  // measured (530 bytes new, 532 kept alive; 4.4 KiB each before idle
  // connections let go of their coroutine, buffer, parser and timers).
  constexpr long kNewBoundBytes = 1024;
  constexpr long kKeptBoundBytes = 1024;
  // 10,000 as the issue asks, unless the descriptor limit cannot hold them
  // (both ends live on this machine: the test's sockets and the lb's).
  const long limit = raise_nofile();
  const int n = static_cast<int>(std::clamp(limit - 256, 100L, 10000L));
  if (n < 10000) MESSAGE("descriptor limit " << limit << ": " << n << " idle connections instead of 10,000");

  QuietBackend b1;
  LbProcess lb({"--upstream", b1.upstream(), "--access-log", "false", "--max-header-bytes",
                std::to_string(kHeaderBytes), "--max-connections", std::to_string(n + 16), "--header-timeout",
                "120s", "--idle-timeout", "120s"});
  REQUIRE(http_get(lb.port, "/healthz").status == 200);
  REQUIRE(eventually([&] { return lb.metric("userkey_lb_connections_open") == 0; }, 5s));
  const long rss_before = lb.rss_kib();

  Sockets idle;
  idle.fds.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const int fd = connect_loopback(lb.port);
    REQUIRE_MESSAGE(fd >= 0, "connect " << i << " failed: errno " << errno);
    idle.fds.push_back(fd);
  }
  REQUIRE(eventually([&] { return lb.metric("userkey_lb_connections_open") == n; }, 60s));
  const long rss_new = lb.rss_kib();
  MESSAGE(n << " new idle connections: lb RSS " << rss_before << " -> " << rss_new << " KiB ("
            << (rss_new - rss_before) * 1024 / n << " bytes each; bound " << kNewBoundBytes << ")");

  // One request on each, one at a time, then all idle again.
  int answered = 0;
  for (int fd : idle.fds) answered += one_request(fd) ? 1 : 0;
  CHECK(answered == n);
  CHECK(lb.metric("userkey_lb_connections_open") == n);
  const long rss_kept = lb.rss_kib();
  MESSAGE(n << " keep-alive connections idle after one request each: lb RSS " << rss_before << " -> " << rss_kept
            << " KiB (" << (rss_kept - rss_before) * 1024 / n << " bytes each; bound " << kKeptBoundBytes << ")");
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  MESSAGE("sanitizer build: RSS bound not checked");
#else
  CHECK((rss_new - rss_before) * 1024 < n * kNewBoundBytes);
  CHECK((rss_kept - rss_before) * 1024 < n * kKeptBoundBytes);
#endif
  // Still serving while they are held, and none of them was refused.
  CHECK(http_get(lb.port, "/healthz").status == 200);
  CHECK(lb.metric("userkey_lb_rejections_total{reason=\"max_connections\"}") <= 0);

  for (int fd : idle.fds) ::close(fd);
  idle.fds.clear();
  CHECK(eventually([&] { return lb.metric("userkey_lb_connections_open") == 0; }, 30s));
}
