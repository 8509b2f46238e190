// End-to-end: responses are relayed as they arrive. A 1 GiB body passes
// with the lb's memory bounded and its first byte at the client while the
// upstream is still sending; chunked bodies are re-framed for each client
// version; an upstream cut mid-body closes the client's connection and
// counts against the upstream; HEAD of a large resource; keep-alive after a
// streamed response.
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "support/lb_process.hpp"
#include "support/process.hpp"
#include "support/raw_upstream.hpp"
#include "support/stream_client.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Sanitizer builds move bytes several times slower, and their RSS (freed
// memory in quarantine, shadow memory) says nothing about the lb's: a
// smaller download, and no RSS bound (the default build checks both).
constexpr bool kSanitized = true;
constexpr std::uint64_t kBig = std::uint64_t{1} << 28;  // GET /big: 256 MiB, made on the fly
#else
constexpr bool kSanitized = false;
constexpr std::uint64_t kBig = std::uint64_t{1} << 30;  // GET /big: 1 GiB, made on the fly
#endif
constexpr std::uint64_t kBeforeGo = 1 << 20;                // sent before the upstream waits for `go`
constexpr std::uint64_t kCutLength = 16 << 20;              // GET /cut says this much...
constexpr std::uint64_t kCutAfter = 2 << 20;                // ...and closes after this much
constexpr std::string_view kChunks[] = {"hello ", "streamed ", "world"};

// A raw upstream with large and misbehaving answers.
struct StreamingUpstream {
  std::atomic<bool> go{false};
  std::atomic<bool> sending{false};  ///< GET /big's body is not all sent yet
  RawUpstream raw{[this](int fd, const std::string& head) { answer(fd, head); }};

  std::string upstream() const { return raw.upstream(); }

  static void send_body(int fd, std::uint64_t bytes) {
    static const std::string block(64 * 1024, 'x');
    while (bytes > 0) {
      const auto n = std::min<std::uint64_t>(bytes, block.size());
      RawUpstream::send_all(fd, block.substr(0, n));
      bytes -= n;
    }
  }
  void answer(int fd, const std::string& head) {
    auto is = [&](std::string_view request_line) { return head.rfind(request_line, 0) == 0; };
    if (is("HEAD /big ")) {
      RawUpstream::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kBig) + "\r\n\r\n");
    } else if (is("GET /big ")) {
      sending = true;
      RawUpstream::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                                    std::to_string(kBig) + "\r\n\r\n");
      send_body(fd, kBeforeGo);
      for (int i = 0; i < 3000 && !go; ++i) std::this_thread::sleep_for(10ms);  // at most 30 s
      send_body(fd, kBig - kBeforeGo);
      sending = false;
    } else if (is("GET /chunked ")) {
      std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      for (auto c : kChunks) out += to_hex(c.size()) + "\r\n" + std::string(c) + "\r\n";
      RawUpstream::send_all(fd, out + "0\r\nX-Trailer: t\r\n\r\n");
    } else if (is("GET /cut ")) {
      RawUpstream::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kCutLength) + "\r\n\r\n");
      send_body(fd, kCutAfter);
      ::shutdown(fd, SHUT_RDWR);  // mid-body
    } else {
      RawUpstream::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  }
  static std::string to_hex(std::size_t n) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%zx", n);
    return buf;
  }
};

}  // namespace

TEST_CASE("a 1 GiB response streams through: first byte while the upstream still sends, lb RSS grows <= 32 MiB; "
          "keep-alive goes on") {
  StreamingUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false"});
  REQUIRE(status_of(raw_exchange(lb.port, "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200);
  const long rss_before = lb.rss_kib();
  REQUIRE(rss_before > 0);
  long rss_peak = rss_before;

  StreamClient client(lb.port);
  client.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string in;
  // The upstream holds all but its first MiB until `go`: the client must
  // see the head and body bytes before then (within a generous bound).
  std::size_t head_end = std::string::npos;
  for (int i = 0; i < 100 && (head_end == std::string::npos || in.size() <= head_end); ++i) {
    if (client.read(in, 64 * 1024, 100ms) < 0) break;
    head_end = in.find("\r\n\r\n");
    if (head_end != std::string::npos) head_end += 4;
  }
  const bool first_byte_before_go = head_end != std::string::npos && in.size() > head_end;
  CHECK_MESSAGE(first_byte_before_go, "no body byte reached the client while the upstream was still sending");
  CHECK(up.sending);
  up.go = true;
  REQUIRE(head_end != std::string::npos);
  CHECK(status_of(in) == 200);
  CHECK(in.substr(0, head_end).find("Content-Length: " + std::to_string(kBig)) != std::string::npos);
  std::uint64_t body = in.size() - head_end;
  std::uint64_t next_sample = 0;
  std::string buf;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (body < kBig && std::chrono::steady_clock::now() < deadline) {
    buf.clear();
    const long n = client.read(buf, std::min<std::uint64_t>(256 * 1024, kBig - body), 5000ms);
    if (n <= 0) break;
    body += static_cast<std::uint64_t>(n);
    if (body >= next_sample) {
      rss_peak = std::max(rss_peak, lb.rss_kib());
      next_sample += 32 << 20;
    }
  }
  CHECK(body == kBig);
  MESSAGE((kBig >> 20) << " MiB download: lb RSS " << rss_before << " -> peak " << rss_peak << " KiB");
  if (!kSanitized) CHECK(rss_peak - rss_before <= 32 * 1024);
  // The connection carries the next request.
  client.send("GET /small HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string next;
  const auto end = client.read_head(next);
  REQUIRE(end != std::string::npos);
  while (next.size() < end + 2 && client.read(next, 64, 1000ms) > 0) {
  }
  CHECK(status_of(next) == 200);
  CHECK(next.substr(end) == "ok");
}

TEST_CASE("a chunked response is relayed chunked to HTTP/1.1, close-delimited to HTTP/1.0; trailers dropped") {
  StreamingUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false"});
  const auto v11 = raw_exchange(lb.port, "GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(status_of(v11) == 200);
  CHECK(v11.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  CHECK(v11.find("X-Trailer") == std::string::npos);
  const auto body11 = v11.substr(v11.find("\r\n\r\n") + 4);
  CHECK(body11 == "6\r\nhello \r\n9\r\nstreamed \r\n5\r\nworld\r\n0\r\n\r\n");
  // Keep-alive HTTP/1.0: no chunks for it, so the body ends with the connection.
  const auto v10 = raw_exchange(lb.port, "GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(status_of(v10) == 200);
  CHECK(v10.find("Transfer-Encoding") == std::string::npos);
  CHECK(v10.find("Connection: keep-alive") == std::string::npos);
  CHECK(v10.substr(v10.find("\r\n\r\n") + 4) == "hello streamed world");
  // The upstream's connection was reused after the clean end: a keep-alive
  // client gets both answers on one connection.
  const auto two = raw_exchange(lb.port, "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n"
                                         "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(two.find("0\r\n\r\nHTTP/1.1 200 OK\r\n") != std::string::npos);
  CHECK(two.substr(two.size() - 2) == "ok");
}

TEST_CASE("an upstream cut mid-body: the client's connection closes short of the length; the upstream counts as "
          "failed") {
  StreamingUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--max-fails", "1", "--fail-timeout", "30s",
                "--access-log", "false"});
  StreamClient client(lb.port);
  client.send("GET /cut HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string in;
  long n = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    n = client.read(in, 256 * 1024, 1000ms);
    if (n < 0) break;
  }
  CHECK(n < 0);  // closed by the lb
  CHECK(status_of(in) == 200);
  const auto head_end = in.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  CHECK(in.size() - head_end - 4 < kCutLength);
  const auto st = lb.upstream_status(up.upstream());
  CHECK(st["errors"].get<int>() >= 1);
  CHECK(st["passively_down"] == true);
}

TEST_CASE("HEAD of a large resource: its Content-Length, no body, keep-alive goes on") {
  StreamingUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false"});
  const auto raw = raw_exchange(lb.port, "HEAD /big HTTP/1.1\r\nHost: x\r\n\r\n"
                                         "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(status_of(raw) == 200);
  CHECK(raw.find("Content-Length: " + std::to_string(kBig) + "\r\n") != std::string::npos);
  const auto after = raw.substr(raw.find("\r\n\r\n") + 4);
  CHECK(after.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(after.substr(after.size() - 2) == "ok");
}
