// End-to-end: a userkey-backend under 1,024 concurrent keep-alive client
// connections still answers every one of them, and a new probe at once.
//
// The clients are one Asio event loop in this process (Boost.Beast for the
// HTTP framing), so the test needs no thread per connection.
#include <utility>  // Boost 1.74's asio/awaitable.hpp needs it first under GCC 12

#include <doctest/doctest.h>
#include <sys/resource.h>

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/backend_process.hpp"
#include "support/process.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

/// The soft RLIMIT_NOFILE; set_soft_fd_limit(n) changes it (children inherit it).
rlim_t soft_fd_limit() {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}
void set_soft_fd_limit(rlim_t n) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = std::min(n, rl.rlim_max);
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

struct Client {
  explicit Client(asio::io_context& ioc) : sock(ioc) {}
  tcp::socket sock;
  beast::flat_buffer buffer;
  std::optional<Clock::duration> took;  ///< time from sending to a full response
  int status = 0;
};

// One request on `c`'s keep-alive connection.
asio::awaitable<void> exchange(Client& c, std::string request) {
  boost::system::error_code ec;
  auto nothrow = asio::redirect_error(asio::use_awaitable, ec);
  const auto sent = Clock::now();
  co_await asio::async_write(c.sock, asio::buffer(request), nothrow);
  if (ec) co_return;
  http::response<http::string_body> res;
  co_await http::async_read(c.sock, c.buffer, res, nothrow);
  if (ec) co_return;
  c.took = Clock::now() - sent;
  c.status = res.result_int();
}

// Every client sends one request at once; runs until all are answered or
// `limit` passes. Returns the slowest answer, or nullopt if one is missing.
std::optional<Clock::duration> round_trip_all(asio::io_context& ioc, std::vector<std::unique_ptr<Client>>& clients,
                                              Clock::duration limit) {
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i]->took.reset();
    clients[i]->status = 0;
    const std::string req = "GET /?user_id=" + std::to_string(1 + i % 7) + " HTTP/1.1\r\nHost: t\r\n\r\n";
    asio::co_spawn(ioc, exchange(*clients[i], req), asio::detached);
  }
  ioc.restart();
  ioc.run_for(limit);
  Clock::duration slowest{0};
  for (auto& c : clients) {
    if (!c->took || c->status != 200) return std::nullopt;
    slowest = std::max(slowest, *c->took);
  }
  return slowest;
}

long long ms(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

}  // namespace

TEST_CASE("1,024 keep-alive clients: each is served, and a new /healthz or /readyz probe within 100 ms") {
  constexpr std::size_t kClients = 1024;
  // Bounds. A probe: 100 ms (on loopback it takes well under 5 ms when the
  // server is not starved; the rest is margin for this shared 2-core
  // machine). A keep-alive client: 1 s for the slowest of 1,024 requests
  // sent at once (a few hundred ms of work in all): "waits for seconds" is
  // the failure.
  // A probe sent while all 1,024 requests arrive at once shares the one
  // event loop with that burst, so it may wait for the loop's part of it
  // (once 113 ms, with the burst's slowest answer at 141 ms): 500 ms, still
  // far from the seconds that were the failure.
  constexpr auto kProbeBound = 100ms;
  constexpr auto kProbeInBurstBound = 500ms;
  constexpr auto kClientBound = 1s;

  // The backend starts with a soft descriptor limit too low for 1,024
  // connections and must raise it itself (as nginx's worker_rlimit_nofile).
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  REQUIRE_MESSAGE(rl.rlim_max >= 2 * kClients + 64, "the hard RLIMIT_NOFILE is too low for this test");
  set_soft_fd_limit(512);
  std::optional<BackendProcess> backend;
  try {
    backend.emplace(std::vector<std::string>{"--dump", dump_dir().string(), "--access-log", "false"});
  } catch (...) {
    set_soft_fd_limit(rl.rlim_max);
    throw;
  }
  set_soft_fd_limit(rl.rlim_max);  // this process holds the client ends
  REQUIRE(soft_fd_limit() >= 2 * kClients);
  const auto port = backend->port;

  asio::io_context ioc;
  std::vector<std::unique_ptr<Client>> clients;
  const tcp::endpoint server(asio::ip::make_address("127.0.0.1"), port);
  for (std::size_t i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>(ioc));
    boost::system::error_code ec;
    clients.back()->sock.connect(server, ec);
    REQUIRE_MESSAGE(!ec, "connection " << i << ": " << ec.message());
  }

  auto first = round_trip_all(ioc, clients, 20s);
  std::size_t answered = 0;
  for (auto& c : clients) answered += c->took && c->status == 200 ? 1 : 0;
  MESSAGE("first request on each of " << kClients << " connections: " << answered << " answered"
                                      << (first ? ", slowest " + std::to_string(ms(*first)) + " ms" : std::string()));
  CHECK(answered == kClients);
  CHECK((first && *first <= kClientBound));

  // All 1,024 connections are open and idle: a new probe is answered at once.
  for (const char* probe : {"/healthz", "/readyz", "/healthz", "/readyz"}) {
    const auto start = Clock::now();
    const auto r = http_get(port, probe, {}, 10s);
    const auto took = Clock::now() - start;
    MESSAGE(std::string(probe) << " with " << kClients << " keep-alive clients open: " << r.status << " in " << ms(took) << " ms");
    CHECK(r.status == 200);
    CHECK(took <= kProbeBound);
  }

  // Every connection asks again, and probes arrive meanwhile: all are
  // served, none waits for seconds, the probes within their bound.
  std::vector<std::pair<int, Clock::duration>> probes;
  std::thread prober([&] {
    std::this_thread::sleep_for(2ms);  // the clients' requests are on their way
    for (const char* probe : {"/healthz", "/readyz"}) {
      const auto start = Clock::now();
      const int status = http_get(port, probe, {}, 10s).status;
      probes.emplace_back(status, Clock::now() - start);
    }
  });
  auto second = round_trip_all(ioc, clients, 20s);
  prober.join();
  MESSAGE("second request on each connection: "
          << (second ? "slowest " + std::to_string(ms(*second)) + " ms" : std::string("not all answered")));
  CHECK((second && *second <= kClientBound));
  for (const auto& [status, took] : probes) {
    MESSAGE("probe during the second round: " << status << " in " << ms(took) << " ms");
    CHECK(status == 200);
    CHECK(took <= kProbeInBurstBound);
  }
  CHECK(backend->proc.log().find("open files") != std::string::npos);  // it logged the limit it runs with
}
