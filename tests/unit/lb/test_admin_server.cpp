// Unit tests for the lb's admin endpoint (lib/lb/admin_server): its request
// rules as pure functions, then the server itself on 127.0.0.1 with a
// kernel-chosen port and short limits. Deadlines here only bound waits;
// nothing asserts a speed.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>

#include <boost/beast/http/error.hpp>

#include <chrono>
#include <stdexcept>
#include <string>

#include "lb/admin_server.hpp"
#include "support/process.hpp"

namespace engine = userkey::lb::engine;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using userkey::test::raw_exchange;
using userkey::test::RawConnection;
using userkey::test::status_of;

namespace {

engine::AdminPages pages(bool ready = true) {
  return {[] { return std::string("metric_a 1\n"); }, [] { return std::string("{\"policy\":\"x\"}"); },
          [ready] { return ready; }};
}

engine::AdminRequest request(http::verb method, const std::string& target, unsigned version = 11) {
  engine::AdminRequest req{method, target, version};
  req.set(http::field::host, "x");
  return req;
}

}  // namespace

TEST_CASE("admin rules: the four pages, their types, and Connection: close") {
  const auto p = pages();
  auto healthz = engine::admin_response(request(http::verb::get, "/healthz"), p);
  CHECK(healthz.result_int() == 200);
  CHECK(healthz.body() == "{\"status\":\"ok\"}\n");
  CHECK(healthz[http::field::content_type] == "application/json");
  CHECK(healthz[http::field::connection] == "close");

  auto metrics = engine::admin_response(request(http::verb::get, "/metrics?name[]=x"), p);  // a query is ignored
  CHECK(metrics.result_int() == 200);
  CHECK(metrics.body() == "metric_a 1\n");
  CHECK(metrics[http::field::content_type] == "text/plain; version=0.0.4");

  auto status = engine::admin_response(request(http::verb::get, "/status"), p);
  CHECK(status.body() == "{\"policy\":\"x\"}");
  CHECK(status[http::field::content_type] == "application/json");

  CHECK(engine::admin_response(request(http::verb::get, "/readyz"), p).body() == "{\"status\":\"ready\"}\n");
  auto draining = engine::admin_response(request(http::verb::get, "/readyz"), pages(false));
  CHECK(draining.result_int() == 503);
  CHECK(draining[http::field::retry_after] == "1");
  CHECK(draining.body() == "{\"status\":\"draining\"}\n");

  // HTTP/1.0 is answered in 1.0.
  CHECK(engine::admin_response(request(http::verb::get, "/healthz", 10), p).version() == 10);
}

TEST_CASE("admin rules: HEAD keeps the page's length without its body") {
  auto res = engine::admin_response(request(http::verb::head, "/metrics"), pages());
  CHECK(res.result_int() == 200);
  CHECK(res.body().empty());
  CHECK(res[http::field::content_length] == "11");
}

TEST_CASE("admin rules: other methods are 405 with Allow, other paths 404, bodies 413, all JSON") {
  const auto p = pages();
  auto post = engine::admin_response(request(http::verb::post, "/healthz"), p);
  CHECK(post.result_int() == 405);
  CHECK(post[http::field::allow] == "GET, HEAD");
  CHECK(post[http::field::content_type] == "application/json");
  CHECK(post[http::field::connection] == "close");

  auto missing = engine::admin_response(request(http::verb::get, "/nope"), p);
  CHECK(missing.result_int() == 404);
  CHECK(missing.body() == "{\"error\":\"not found\"}\n");
  CHECK(engine::admin_response(request(http::verb::get, "/healthz/"), p).result_int() == 404);

  auto with_length = request(http::verb::get, "/healthz");
  with_length.set(http::field::content_length, "5");
  CHECK(engine::admin_response(with_length, p).result_int() == 413);
  auto chunked = request(http::verb::get, "/metrics");
  chunked.set(http::field::transfer_encoding, "chunked");
  CHECK(engine::admin_response(chunked, p).result_int() == 413);
  auto empty_body = request(http::verb::get, "/healthz");
  empty_body.set(http::field::content_length, "0");
  CHECK(engine::admin_response(empty_body, p).result_int() == 200);
}

TEST_CASE("admin rules: a page that throws is 500, the server goes on") {
  engine::AdminPages p = pages();
  p.metrics = []() -> std::string { throw std::runtime_error("no snapshot"); };
  auto res = engine::admin_response(request(http::verb::get, "/metrics"), p);
  CHECK(res.result_int() == 500);
  CHECK(res.body() == "{\"error\":\"admin page failed: no snapshot\"}\n");
}

TEST_CASE("admin rules: a head too large is 431, a malformed one 400, a client gone or out of time unanswered") {
  engine::Response res;
  REQUIRE(engine::admin_head_error_response(http::error::header_limit, res));
  CHECK(res.result_int() == 431);
  REQUIRE(engine::admin_head_error_response(http::error::buffer_overflow, res));
  CHECK(res.result_int() == 431);
  REQUIRE(engine::admin_head_error_response(http::error::bad_method, res));
  CHECK(res.result_int() == 400);
  CHECK(res[http::field::connection] == "close");
  CHECK_FALSE(engine::admin_head_error_response(http::error::end_of_stream, res));
  CHECK_FALSE(engine::admin_head_error_response(http::error::partial_message, res));
  CHECK_FALSE(engine::admin_head_error_response(boost::beast::error::timeout, res));
  CHECK_FALSE(engine::admin_head_error_response(boost::asio::error::connection_reset, res));
}

TEST_CASE("admin server: serves on a free port; a second server on that port fails to start") {
  const auto p = pages();
  engine::AdminServer admin(p.metrics, p.status, p.ready);
  std::string error;
  REQUIRE(admin.start("127.0.0.1", 0, &error));
  REQUIRE(admin.port() != 0);
  const auto raw = raw_exchange(admin.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_of(raw) == 200);
  CHECK(raw.find("Connection: close\r\n") != std::string::npos);
  CHECK(raw.find("\r\n\r\n{\"status\":\"ok\"}\n") != std::string::npos);

  engine::AdminServer second(p.metrics, p.status, p.ready);
  CHECK_FALSE(second.start("127.0.0.1", admin.port(), &error));
  CHECK(error.find("cannot listen on admin address 127.0.0.1:" + std::to_string(admin.port())) == 0);

  admin.stop();
  admin.stop();  // idempotent
}

TEST_CASE("admin server: a head over the limit is 431; a body is refused with 413 unread") {
  const auto p = pages();
  engine::AdminServer admin(p.metrics, p.status, p.ready);
  REQUIRE(admin.start("127.0.0.1", 0, nullptr));
  const std::string big = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n";
  CHECK(status_of(raw_exchange(admin.port(), big)) == 431);
  const auto refused =
      raw_exchange(admin.port(), "GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nsome");
  CHECK(status_of(refused) == 413);
  CHECK(status_of(raw_exchange(admin.port(), "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) == 405);
  CHECK(status_of(raw_exchange(admin.port(), "GET\r\n\r\n")) == 400);
}

TEST_CASE("admin server: a head that does not end within the deadline is closed unanswered") {
  const auto p = pages();
  engine::AdminLimits limits;
  limits.head_deadline = 300ms;
  engine::AdminServer admin(p.metrics, p.status, p.ready, limits);
  REQUIRE(admin.start("127.0.0.1", 0, nullptr));
  RawConnection slow(admin.port());
  REQUIRE(slow.connected());
  slow.send("GET /healthz HTTP/1.1\r\n");
  // raw_exchange-like bound: the server's close arrives well within 5 s.
  const auto t0 = std::chrono::steady_clock::now();
  const auto got = slow.receive(5000ms);
  CHECK(got.empty());
  CHECK(std::chrono::steady_clock::now() - t0 < 5000ms);  // closed (EOF), not the receive bound
  CHECK(status_of(raw_exchange(admin.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) == 200);
}

TEST_CASE("admin server: beyond the connection cap a new connection gets 503 at once") {
  const auto p = pages();
  engine::AdminLimits limits;
  limits.max_connections = 2;
  engine::AdminServer admin(p.metrics, p.status, p.ready, limits);
  REQUIRE(admin.start("127.0.0.1", 0, nullptr));
  {
    RawConnection a(admin.port()), b(admin.port());
    a.send("GET /healthz HTTP/1.1\r\n");
    b.send("GET /healthz HTTP/1.1\r\n");
    // The two are being served once a third is refused; poll for it.
    int refused = 0;
    for (int i = 0; i < 100 && refused == 0; ++i)
      if (status_of(raw_exchange(admin.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) == 503) ++refused;
    CHECK(refused == 1);
  }
  // Their slots come back once they have gone.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i)
    served = status_of(raw_exchange(admin.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) == 200;
  CHECK(served);
}
