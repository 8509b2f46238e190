// Unit tests for the PROXY header that starts a client connection
// (lib/lb/proxy_header_reader): who may send one, and taking exactly the
// header off the connection so that what follows stays for the session.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <optional>
#include <string>

#include "lb/proxy_header_reader.hpp"
#include "support/run_loop.hpp"
#include "unit/lb/session_fixture.hpp"

namespace lb = userkey::lb;
namespace engine = userkey::lb::engine;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using userkey::test::SessionFixture;

namespace {

long long failures(const lb::ProxyStats& s, lb::ProxyHeaderFailure why) {
  return static_cast<long long>(s.proxy_header_failures[static_cast<std::size_t>(why)].load());
}

// (A named coroutine, not a lambda: a lambda's captures would die with the
// temporary closure before the coroutine runs.)
engine::awaitable<void> take_header(engine::ClientConnection& c, std::optional<bool>& out) {
  const bool read = co_await engine::read_proxy_header(c);
  out = read;
}

// Runs read_proxy_header on `c` to its end.
std::optional<bool> read_header(SessionFixture& f, engine::ClientConnection& c) {
  std::optional<bool> result;
  asio::co_spawn(f.io, take_header(c, result), asio::detached);
  userkey::test::run_until(f.io, [&] { return result.has_value(); });
  return result;
}

}  // namespace

TEST_CASE("PROXY reader: a v1 header names the client; exactly the header is taken, the request stays") {
  SessionFixture f([](lb::ProxyConfig& c) { c.proxy_protocol = true; });
  engine::Socket client(f.io);
  auto c = f.connect(client);
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(client, asio::buffer("PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n" + request));
  CHECK(engine::proxy_header_allowed(*c));  // no trusted proxies listed: any peer may
  CHECK(read_header(f, *c) == true);
  CHECK(c->client_ip == "203.0.113.7");
  std::string rest(request.size(), '\0');
  asio::read(c->socket, asio::buffer(rest));
  CHECK(rest == request);
}

TEST_CASE("PROXY reader: a header that arrives in pieces is read whole") {
  SessionFixture f([](lb::ProxyConfig& c) { c.proxy_protocol = true; });
  engine::Socket client(f.io);
  auto c = f.connect(client);
  std::optional<bool> result;
  asio::co_spawn(f.io, take_header(*c, result), asio::detached);
  asio::write(client, asio::buffer(std::string("PROXY TCP4 198.51")));
  f.io.run_for(50ms);
  CHECK_FALSE(result.has_value());
  asio::write(client, asio::buffer(std::string(".100.2 127.0.0.1 40000 80\r\nGET")));
  userkey::test::run_until(f.io, [&] { return result.has_value(); });
  CHECK(result == true);
  CHECK(c->client_ip == "198.51.100.2");
}

TEST_CASE("PROXY reader: no valid header is a refusal, counted by why") {
  SessionFixture f([](lb::ProxyConfig& c) { c.proxy_protocol = true; });
  engine::Socket client(f.io);
  auto c = f.connect(client);
  asio::write(client, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  CHECK(read_header(f, *c) == false);
  CHECK(failures(f.stats, lb::ProxyHeaderFailure::invalid) == 1);

  engine::Socket cut(f.io);
  auto d = f.connect(cut);
  asio::write(cut, asio::buffer(std::string("PROXY TCP4 203.0.")));
  cut.shutdown(engine::tcp::socket::shutdown_send);
  CHECK(read_header(f, *d) == false);
  CHECK(failures(f.stats, lb::ProxyHeaderFailure::truncated) == 1);
}

TEST_CASE("PROXY reader: with trusted proxies listed, another peer may not send one; refused, counted, logged once") {
  SessionFixture f([](lb::ProxyConfig& c) {
    c.proxy_protocol = true;
    c.trusted_proxies = {"10.9.9.9/32"};
  });
  for (int i = 0; i < 3; ++i) {
    engine::Socket client(f.io);
    auto c = f.connect(client);
    CHECK_FALSE(engine::proxy_header_allowed(*c));
  }
  CHECK(failures(f.stats, lb::ProxyHeaderFailure::untrusted) == 3);
  const auto log = f.logged();
  const auto first = log.find("believed only from --trusted-proxies");
  CHECK(first != std::string::npos);
  CHECK(log.find("believed only from --trusted-proxies", first + 1) == std::string::npos);

  SessionFixture trusted([](lb::ProxyConfig& c) {
    c.proxy_protocol = true;
    c.trusted_proxies = {"127.0.0.1/32"};
  });
  engine::Socket client(trusted.io);
  auto c = trusted.connect(client);
  CHECK(engine::proxy_header_allowed(*c));
  CHECK(failures(trusted.stats, lb::ProxyHeaderFailure::untrusted) == 0);
}
