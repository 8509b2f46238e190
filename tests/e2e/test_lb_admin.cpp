// End-to-end: the lb's admin port cannot be stalled. Clients that trickle a
// request head (or a body) at it, one piece every 300 ms, neither keep
// /healthz from answering nor hold their connection past the admin's head
// deadline, and the proxy port serves meanwhile.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "support/lb_process.hpp"
#include "support/process.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// The admin's total deadline for a request head (admin_server.hpp), and how
// long past it a trickler may still be open before the test calls it held.
constexpr auto kHeadDeadline = 2000ms;
constexpr auto kMargin = 1500ms;

// One connection that sends `first`, then `piece` every 300 ms, until the
// server closes it (or `give_up` passes). Records when the close came.
class Trickler {
public:
  Trickler(std::uint16_t port, std::string first, std::string piece, std::chrono::milliseconds give_up)
      : thread_([this, port, first = std::move(first), piece = std::move(piece), give_up] {
          run(port, first, piece, give_up);
        }) {}
  ~Trickler() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  Trickler(const Trickler&) = delete;
  Trickler& operator=(const Trickler&) = delete;

  bool connected() const { return connected_; }
  bool closed() const { return closed_; }
  /// Time from connect to the server's close; valid once closed().
  std::chrono::milliseconds lived() const { return std::chrono::milliseconds(lived_ms_.load()); }

private:
  void run(std::uint16_t port, const std::string& first, const std::string& piece, std::chrono::milliseconds give_up) {
    const int fd = connect_loopback(port);
    if (fd < 0) return;
    const auto start = Clock::now();
    connected_ = true;
    bool ok = ::send(fd, first.data(), first.size(), MSG_NOSIGNAL) > 0;
    auto next = start + 300ms;
    while (ok && !stop_ && Clock::now() - start < give_up) {
      // Wait for the server's close (EOF or reset) until the next piece is due.
      pollfd p{fd, POLLIN, 0};
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<long>(0, wait.count()))) > 0) {
        char buf[4096];
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;  // closed by the server (an answer before it is read and dropped)
        continue;
      }
      if (Clock::now() >= next) {
        ok = ::send(fd, piece.data(), piece.size(), MSG_NOSIGNAL) > 0;
        next += 300ms;
      }
    }
    if (!stop_ && Clock::now() - start < give_up) {
      lived_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
      closed_ = true;
    }
    ::close(fd);
  }

  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::atomic<bool> closed_{false};
  std::atomic<long long> lived_ms_{0};
  std::thread thread_;  // last: started once the rest exists
};

// 8 head tricklers (one header line every 300 ms, the head never ends) and
// 3 body tricklers (a GET with Content-Length, then a byte every 300 ms).
std::vector<std::unique_ptr<Trickler>> attack(std::uint16_t admin, std::chrono::milliseconds give_up) {
  std::vector<std::unique_ptr<Trickler>> out;
  for (int i = 0; i < 8; ++i)
    out.push_back(std::make_unique<Trickler>(admin, "GET /metrics HTTP/1.1\r\nHost: x\r\n",
                                             "X-Trickle-" + std::to_string(i) + ": y\r\n", give_up));
  for (int i = 0; i < 3; ++i)
    out.push_back(std::make_unique<Trickler>(
        admin, "GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", "b", give_up));
  return out;
}

}  // namespace

TEST_CASE("admin: /healthz answers within 1 s while 11 clients trickle heads and bodies; the lb closes them within its head deadline") {
  FakeUpstream up("u1");
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false"});
  REQUIRE(wait_for_status(lb.admin, "/healthz", 200, 5s));

  const auto give_up = kHeadDeadline + kMargin + 2s;
  auto tricklers = attack(lb.admin, give_up);
  REQUIRE(eventually([&] {
    for (auto& t : tricklers)
      if (!t->connected()) return false;
    return true;
  }, 2s, 10ms));
  std::this_thread::sleep_for(400ms);  // every trickler has sent more than its first piece

  // Probes through the attack: each answers 200 within 1 s.
  for (int probe = 0; probe < 4; ++probe) {
    const auto t0 = Clock::now();
    const auto r = http_get(lb.admin, "/healthz", {}, 3000ms);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    INFO("probe " << probe << ": status " << r.status << " in " << took.count() << " ms");
    CHECK(r.status == 200);
    CHECK(r.body == "{\"status\":\"ok\"}\n");
    CHECK(took < 1000ms);
    std::this_thread::sleep_for(300ms);
  }

  // Every trickler is closed by the server within the deadline and a margin.
  CHECK(eventually([&] {
    for (auto& t : tricklers)
      if (!t->closed()) return false;
    return true;
  }, kHeadDeadline + kMargin + 500ms, 20ms));
  for (auto& t : tricklers) {
    CHECK(t->closed());
    if (t->closed()) CHECK(t->lived() <= kHeadDeadline + kMargin);
  }
}

TEST_CASE("admin: the proxy port serves every request while the admin port is trickled at") {
  FakeUpstream up("u1", 2000ms);
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false", "--threads", "1"});
  REQUIRE(wait_for_status(lb.port, "/", 200, 5s));

  auto tricklers = attack(lb.admin, kHeadDeadline + kMargin + 2s);
  ClientLoad load(lb.port, 4, 50);
  load.join();
  CHECK_MESSAGE(load.ok() == 200, load.failures());
  CHECK(load.failed() == 0);
  // The admin still answers its pages.
  CHECK(http_get(lb.admin, "/metrics", {}, 3000ms).status == 200);
  CHECK(http_get(lb.admin, "/status", {}, 3000ms).status == 200);
}
