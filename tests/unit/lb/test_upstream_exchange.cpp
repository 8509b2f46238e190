// Unit tests for one request and its response on one upstream connection
// (lib/lb/upstream_exchange): a real io_context and a loopback peer on a
// thread that answers as the case needs, early or not. Deadlines here only
// bound waits; nothing asserts a speed.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/error.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lb/upstream_exchange.hpp"
#include "support/raw_upstream.hpp"
#include "support/run_loop.hpp"

namespace engine = userkey::lb::engine;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using userkey::test::listen_on_loopback;
using userkey::test::run_until;

namespace {

// A peer on 127.0.0.1 for one connection: reads up to the end of the
// request head, then hands the connection to `act`, then closes it.
class Peer {
public:
  using Act = std::function<void(Peer&, int fd, const std::string& received)>;
  explicit Peer(Act act) {
    listener_ = listen_on_loopback(port, 1);
    thread_ = std::thread([this, act = std::move(act)] {
      if (!readable(listener_)) return;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      std::string in;
      while (in.find("\r\n\r\n") == std::string::npos && take(fd, in)) {
      }
      act(*this, fd, in);
      ::close(fd);
    });
  }
  ~Peer() {
    done = true;
    thread_.join();
    ::close(listener_);
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  static bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 10'000) > 0;
  }
  /// Appends what one read brings; false at the end of the stream (or after 10 s).
  static bool take(int fd, std::string& in) {
    char buf[16384];
    if (!readable(fd)) return false;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  static void send_all(int fd, const std::string& s) {
    for (std::size_t off = 0; off < s.size();) {
      const auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }
  /// Waits (10 s at most) until the test is done with the connection.
  void hold() {
    for (int i = 0; i < 1000 && !done; ++i) std::this_thread::sleep_for(10ms);
  }

  std::uint16_t port = 0;
  std::atomic<bool> done{false};

private:
  int listener_ = -1;
  std::thread thread_;
};

const std::string kRefusal = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrefused";

// One exchange of a POST with `body` to `peer`, on a connection of its own.
struct Run {
  asio::io_context io;
  engine::Conn conn{io, engine::Slot{}};
  std::string head;
  std::string body;
  std::optional<engine::Exchange> result;

  Run(const Peer& peer, std::size_t body_bytes)
      : head("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body_bytes) + "\r\n\r\n"),
        body(body_bytes, 'b') {
    conn.stream.connect(engine::tcp::endpoint{asio::ip::make_address("127.0.0.1"), peer.port});
    asio::co_spawn(
        io,
        [this]() -> engine::awaitable<void> {
          result = co_await engine::exchange(conn, head, body, /*head_request=*/false, 60s);
        },
        asio::detached);
    run_until(io, [&] { return result.has_value(); });
  }
};

}  // namespace

TEST_CASE("exchange: a write the peer closed or reset may still have an answer to read; a timeout or a local error not") {
  CHECK(engine::peer_closed(asio::error::broken_pipe));
  CHECK(engine::peer_closed(asio::error::connection_reset));
  CHECK(engine::peer_closed(asio::error::eof));
  CHECK(engine::peer_closed(asio::ssl::error::stream_truncated));
  CHECK_FALSE(engine::peer_closed({}));
  CHECK_FALSE(engine::peer_closed(boost::beast::error::timeout));
  CHECK_FALSE(engine::peer_closed(asio::error::no_buffer_space));
  CHECK_FALSE(engine::peer_closed(asio::error::operation_aborted));
}

TEST_CASE("exchange: a failed exchange is judged by the write's error only when the write failed on its own account") {
  const engine::error_code eof = http::error::end_of_stream;
  CHECK(engine::decisive_error({}, eof) == eof);
  CHECK(engine::decisive_error(asio::error::broken_pipe, eof) == eof);
  CHECK(engine::decisive_error(asio::error::connection_reset, asio::error::connection_reset) ==
        asio::error::connection_reset);
  CHECK(engine::decisive_error(asio::error::operation_aborted, boost::beast::error::timeout) ==
        boost::beast::error::timeout);  // the write was ended because the read had
  CHECK(engine::decisive_error(boost::beast::error::timeout, asio::error::operation_aborted) ==
        boost::beast::error::timeout);
  CHECK(engine::decisive_error(asio::error::no_buffer_space, asio::error::operation_aborted) ==
        asio::error::no_buffer_space);
}

TEST_CASE("exchange: an answer that comes while the peer no longer reads the body ends the write; it is the response") {
  // More than the kernel buffers for a peer that reads nothing: the write
  // could never end by itself.
  Peer peer([](Peer& p, int fd, const std::string&) {
    Peer::send_all(fd, kRefusal);
    p.hold();
  });
  Run run(peer, 32 * 1024 * 1024);
  peer.done = true;
  REQUIRE(run.result->response);
  CHECK(run.result->response->result_int() == 413);
  CHECK(run.result->response->body() == "refused");
  CHECK_FALSE(run.result->request_complete());
  CHECK(run.result->written < run.head.size() + run.body.size());
}

TEST_CASE("exchange: an answer followed by a reset mid-body is still the response") {
  Peer peer([](Peer&, int fd, const std::string& received) {
    Peer::send_all(fd, kRefusal);
    std::string in = received;
    while (in.size() < 64 * 1024 && Peer::take(fd, in)) {
    }
    // Closing with the rest of the body unread resets the connection.
  });
  Run run(peer, 32 * 1024 * 1024);
  REQUIRE(run.result->response);
  CHECK(run.result->response->result_int() == 413);
  CHECK_FALSE(run.result->request_complete());
}

TEST_CASE("exchange: a peer that reads the whole request answers it; the request is complete") {
  Peer peer([](Peer&, int fd, const std::string& received) {
    std::string in = received;
    const std::size_t whole = in.find("\r\n\r\n") + 4 + 100'000;
    while (in.size() < whole && Peer::take(fd, in)) {
    }
    // (Its size, not an echo: a body over kWholeBodyLimit would be streamed.)
    const std::string size = std::to_string(in.size());
    Peer::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size.size()) + "\r\n\r\n" + size);
  });
  Run run(peer, 100'000);
  REQUIRE(run.result->response);
  CHECK(run.result->response->result_int() == 200);
  CHECK(run.result->response->body() == std::to_string(run.head.size() + run.body.size()));  // every byte went, once
  CHECK(run.result->request_complete());
  CHECK(run.result->written == run.head.size() + run.body.size());
}

TEST_CASE("exchange: a peer that closes without an answer is no response, judged by the read") {
  Peer peer([](Peer&, int, const std::string&) {});  // closes with the body unread
  Run run(peer, 32 * 1024 * 1024);
  CHECK_FALSE(run.result->response);
  CHECK_FALSE(run.result->got_some);
  CHECK(run.result->error);
  CHECK(run.result->error != boost::beast::error::timeout);
  CHECK_FALSE(run.result->request_complete());
}

namespace {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// A streamed body: `held` first, then `pieces` one per next(); then, when
// `fail` is set, that error (the client's), or, when `wait` is set, a wait
// that only stop() ends; else the end of the body.
class StubBody final : public engine::RequestBody {
public:
  StubBody(asio::io_context& io, std::string held, std::vector<std::string> pieces, std::optional<std::uint64_t> length)
      : pieces_(std::move(pieces)), timer_(io.get_executor(), engine::Timer::time_point::max()) {
    held_ = std::move(held);
    complete_ = false;
    length_ = length;
  }
  engine::awaitable<void> next(std::string& out, engine::error_code& ec) override {
    out.clear();
    ec = {};
    if (at_ < pieces_.size()) {
      pumped_ = true;
      out = pieces_[at_++];
      co_return;
    }
    if (fail) {
      client_error_ = *fail;
      ec = *fail;
      co_return;
    }
    if (wait) {
      engine::error_code ignored;
      co_await timer_.async_wait(engine::nothrow(ignored));
      ec = asio::error::operation_aborted;
    }
  }
  void stop() override {
    stopped = true;
    timer_.cancel();
  }

  std::optional<engine::error_code> fail;
  bool wait = false;
  bool stopped = false;

private:
  std::vector<std::string> pieces_;
  std::size_t at_ = 0;
  engine::Timer timer_;
};

// One exchange of a streamed body on a connection of its own.
struct StreamRun {
  asio::io_context io;
  engine::Conn conn{io, engine::Slot{}};
  std::unique_ptr<StubBody> body;  // (after `io`: its timer goes first)
  std::string head;
  std::optional<engine::Exchange> result;

  StreamRun(const Peer& peer, std::string request_head,
            const std::function<std::unique_ptr<StubBody>(asio::io_context&)>& make)
      : head(std::move(request_head)) {
    conn.stream.connect(engine::tcp::endpoint{asio::ip::make_address("127.0.0.1"), peer.port});
    body = make(io);
    asio::co_spawn(io, go(*body), asio::detached);
    run_until(io, [&] { return result.has_value(); });
  }
  engine::awaitable<void> go(StubBody& body) {
    result = co_await engine::exchange(conn, head, body, /*head_request=*/false, 60s);
  }
};

#pragma GCC diagnostic pop

}  // namespace

TEST_CASE("exchange: a streamed body goes as held bytes then each piece, framed by its length or in chunks") {
  std::string received;
  {
    Peer peer([&](Peer&, int fd, const std::string& in0) {
      std::string in = in0;
      while (in.find("0\r\n\r\n") == std::string::npos && Peer::take(fd, in)) {
      }
      received = in;
      Peer::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    StreamRun run(peer, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", [](asio::io_context& io) {
      auto b = std::make_unique<StubBody>(io, "held", std::vector<std::string>{"one", "three"}, std::nullopt);
      return b;
    });
    REQUIRE(run.result->response);
    CHECK(run.result->response->result_int() == 200);
    CHECK(run.result->request_complete());
    CHECK_FALSE(run.result->client_failed);
  }
  CHECK(received.substr(received.find("\r\n\r\n") + 4) == "4\r\nheld\r\n3\r\none\r\n5\r\nthree\r\n0\r\n\r\n");

  Peer peer([&](Peer&, int fd, const std::string& in0) {
    std::string in = in0;
    const std::size_t whole = in.find("\r\n\r\n") + 4 + 12;
    while (in.size() < whole && Peer::take(fd, in)) {
    }
    received = in;
    Peer::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  StreamRun run(peer, "POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\n", [](asio::io_context& io) {
    auto b = std::make_unique<StubBody>(io, "held", std::vector<std::string>{"one", "three"}, 12);
    return b;
  });
  REQUIRE(run.result->response);
  CHECK(run.result->written == run.head.size() + 12);
  CHECK(received.substr(received.find("\r\n\r\n") + 4) == "heldonethree");
}

TEST_CASE("exchange: a client whose streamed body fails ends the exchange as the client's failure, not the peer's") {
  Peer peer([](Peer& p, int, const std::string&) { p.hold(); });  // reads, never answers
  StreamRun run(peer, "POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n", [](asio::io_context& io) {
    auto b = std::make_unique<StubBody>(io, "held", std::vector<std::string>{"piece"}, 100);
    b->fail = boost::beast::error::timeout;
    return b;
  });
  peer.done = true;
  CHECK(run.result->client_failed);
  CHECK_FALSE(run.result->response);
  CHECK(run.result->error == boost::beast::error::timeout);
  CHECK_FALSE(run.body->replayable());
}

TEST_CASE("exchange: an answer while a streamed body waits for the client stops the body; it is the response") {
  Peer peer([](Peer& p, int fd, const std::string&) {
    Peer::send_all(fd, kRefusal);
    p.hold();
  });
  StreamRun run(peer, "POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n", [](asio::io_context& io) {
    auto b = std::make_unique<StubBody>(io, "held", std::vector<std::string>{}, 100);
    b->wait = true;
    return b;
  });
  peer.done = true;
  REQUIRE(run.result->response);
  CHECK(run.result->response->result_int() == 413);
  CHECK(run.body->stopped);
  CHECK_FALSE(run.result->client_failed);
  CHECK_FALSE(run.result->request_complete());
}
