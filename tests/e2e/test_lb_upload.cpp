// End-to-end: request bodies stream upstream through bounded buffers. A
// 100 MiB upload passes with the lb's memory bounded; 300 stalled 1 MiB
// uploads cost the lb a bounded amount of memory; past
// --max-buffered-body-bytes a request is refused with 503, counted; a
// chunked body goes upstream chunked; a body longer than the replay buffer
// is never sent twice, a short one is retried; a client that stalls
// mid-body gets 408 without the upstream being blamed.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/lb_process.hpp"
#include "support/process.hpp"
#include "support/raw_upstream.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Sanitizer builds move bytes several times slower, and their RSS says
// nothing about the lb's: a smaller upload, no RSS bounds.
constexpr bool kSanitized = true;
constexpr std::uint64_t kUpload = 16 << 20;
constexpr int kStalled = 100;
#else
constexpr bool kSanitized = false;
constexpr std::uint64_t kUpload = 100 << 20;
constexpr int kStalled = 300;
#endif

bool readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) > 0;
}

// The byte at offset `i` of every upload here: a pattern a lost, doubled or
// reordered piece would break.
char pattern(std::uint64_t i) { return static_cast<char>('a' + (i * 7 + i / 65536) % 26); }

// An upstream that reads each request's body as it comes (Content-Length or
// chunked, decoded), checks it against pattern(), and answers
// "<bytes> <ok|bad> <length|chunked>" once it has all of it. With `fail_after`
// set, it closes after that many body bytes of each request instead.
class SinkUpstream {
public:
  explicit SinkUpstream(std::uint64_t fail_after = 0) : fail_after_(fail_after) {
    listener_ = listen_on_loopback(port, 512);
    acceptor_ = std::thread([this] {
      while (!stop_) {
        if (!readable(listener_, 50)) continue;
        const int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) continue;
        ++connections;
        std::lock_guard lock(mu_);
        threads_.emplace_back([this, fd] { serve(fd); });
      }
    });
  }
  ~SinkUpstream() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (auto& t : threads_) t.join();
    ::close(listener_);
  }
  SinkUpstream(const SinkUpstream&) = delete;
  SinkUpstream& operator=(const SinkUpstream&) = delete;

  std::string upstream() const { return "127.0.0.1:" + std::to_string(port); }
  std::uint16_t port = 0;
  std::atomic<int> connections{0};
  std::atomic<int> requests{0};        ///< heads received
  std::atomic<std::uint64_t> body_bytes{0};  ///< body bytes received, all requests
  std::string last_head() {
    std::lock_guard lock(mu_);
    return last_head_;
  }

private:
  // Reads more into `in`; false at the end (or on stop).
  bool more(int fd, std::string& in) {
    char buf[65536];
    while (!stop_) {
      if (!readable(fd, 50)) continue;
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in.append(buf, static_cast<std::size_t>(n));
      return true;
    }
    return false;
  }
  void serve(int fd) {
    std::string in;
    for (;;) {
      std::size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos)
        if (!more(fd, in)) return close_fd(fd);
      const std::string head = in.substr(0, end + 4);
      in.erase(0, end + 4);
      ++requests;
      {
        std::lock_guard lock(mu_);
        last_head_ = head;
      }
      const bool chunked = head.find("Transfer-Encoding: chunked") != std::string::npos;
      std::uint64_t got = 0;
      bool ok = true;
      auto take = [&](std::size_t n) {  // n body bytes at the front of `in`
        for (std::size_t i = 0; i < n; ++i) ok = ok && in[i] == pattern(got + i);
        got += n;
        body_bytes += n;
        in.erase(0, n);
      };
      if (!chunked) {
        const auto at = head.find("Content-Length: ");
        const std::uint64_t length = at == std::string::npos ? 0 : std::stoull(head.substr(at + 16));
        while (got < length) {
          if (in.empty() && !more(fd, in)) return close_fd(fd);
          take(std::min<std::uint64_t>(in.size(), length - got));
          if (fail_after_ != 0 && got >= fail_after_) return close_fd(fd);
        }
      } else {
        for (;;) {
          std::size_t line;
          while ((line = in.find("\r\n")) == std::string::npos)
            if (!more(fd, in)) return close_fd(fd);
          const std::uint64_t size = std::stoull(in.substr(0, line), nullptr, 16);
          in.erase(0, line + 2);
          if (size == 0) {
            while (in.size() < 2)
              if (!more(fd, in)) return close_fd(fd);
            in.erase(0, 2);  // (no trailers are sent)
            break;
          }
          while (in.size() < size + 2)
            if (!more(fd, in)) return close_fd(fd);
          take(size);
          in.erase(0, 2);
          if (fail_after_ != 0 && got >= fail_after_) return close_fd(fd);
        }
      }
      const std::string body =
          std::to_string(got) + (ok ? " ok " : " bad ") + (chunked ? "chunked" : "length");
      RawUpstream::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                                    body);
    }
  }
  static void close_fd(int fd) { ::close(fd); }

  const std::uint64_t fail_after_;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::string last_head_;
};

// Sends `bytes` of pattern() from offset `from`, in 256 KiB writes.
void send_pattern(int fd, std::uint64_t from, std::uint64_t bytes) {
  std::string block;
  while (bytes > 0) {
    const auto n = std::min<std::uint64_t>(bytes, 256 * 1024);
    block.resize(n);
    for (std::uint64_t i = 0; i < n; ++i) block[i] = pattern(from + i);
    RawUpstream::send_all(fd, block);
    from += n;
    bytes -= n;
  }
}

// What comes back on `fd` until it closes or a whole response (by
// Content-Length) is in, within `timeout`.
std::string read_response(int fd, std::chrono::milliseconds timeout = 30s) {
  std::string in;
  char buf[16384];
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      const auto at = in.find("Content-Length: ");
      if (at != std::string::npos && at < end && in.size() >= end + 4 + std::stoull(in.substr(at + 16))) break;
    }
    if (!readable(fd, 100)) continue;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  return in;
}

std::string body_of(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : response.substr(end + 4);
}

std::string post_head(std::uint64_t length) {
  return "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
}

}  // namespace

TEST_CASE("a 100 MiB upload streams through with lb RSS growth <= 32 MiB, every byte once and in order") {
  SinkUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false", "--max-body-bytes",
                std::to_string(kUpload)});
  REQUIRE(status_of(raw_exchange(lb.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200);
  const long rss_before = lb.rss_kib();
  long rss_peak = rss_before;
  const int fd = connect_loopback(lb.port);
  REQUIRE(fd >= 0);
  std::atomic<bool> sent{false};
  std::thread sender([&] {
    RawUpstream::send_all(fd, post_head(kUpload));
    send_pattern(fd, 0, kUpload);
    sent = true;
  });
  while (!sent) {
    rss_peak = std::max(rss_peak, lb.rss_kib());
    std::this_thread::sleep_for(20ms);
  }
  sender.join();
  const std::string res = read_response(fd, 60s);
  ::close(fd);
  CHECK(status_of(res) == 200);
  CHECK(body_of(res) == std::to_string(kUpload) + " ok length");
  CHECK(up.last_head().find("Content-Length: " + std::to_string(kUpload)) != std::string::npos);
  MESSAGE((kUpload >> 20) << " MiB upload: lb RSS " << rss_before << " -> peak " << rss_peak << " KiB");
  if (!kSanitized) CHECK(rss_peak - rss_before <= 32 * 1024);
  // The global reservation is given back.
  CHECK(lb.metric("userkey_lb_request_body_bytes_reserved") == 0);
}

TEST_CASE("a chunked upload longer than the replay buffer goes upstream chunked; a short one by its length") {
  SinkUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false", "--max-body-bytes",
                "10000000"});
  const int fd = connect_loopback(lb.port);
  REQUIRE(fd >= 0);
  RawUpstream::send_all(fd, "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::uint64_t offset = 0;
  for (std::uint64_t size : {std::uint64_t{1}, std::uint64_t{70000}, std::uint64_t{300000}, std::uint64_t{5}}) {
    char line[32];
    std::snprintf(line, sizeof line, "%llx\r\n", static_cast<unsigned long long>(size));
    RawUpstream::send_all(fd, line);
    send_pattern(fd, offset, size);
    RawUpstream::send_all(fd, "\r\n");
    offset += size;
  }
  RawUpstream::send_all(fd, "0\r\nX-Trailer: dropped\r\n\r\n");
  const std::string res = read_response(fd);
  CHECK(status_of(res) == 200);
  CHECK(body_of(res) == std::to_string(offset) + " ok chunked");
  // Keep-alive goes on after a streamed request body; a short chunked body
  // is held whole and sent by its length.
  RawUpstream::send_all(fd, "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n" +
                                std::string{pattern(0), pattern(1), pattern(2)} + "\r\n0\r\n\r\n");
  const std::string small = read_response(fd);
  ::close(fd);
  CHECK(status_of(small) == 200);
  CHECK(body_of(small) == "3 ok length");
}

TEST_CASE("300 stalled 1 MiB uploads grow the lb by <= 64 MiB; past --max-buffered-body-bytes: 503, counted") {
  SinkUpstream up;
  // (max_conns above the uploads: none waits in the queue for a connection.)
  LbProcess lb({"--upstream", up.upstream() + ",max_conns=400", "--no-active-health", "--access-log", "false",
                "--max-body-bytes", "2000000", "--body-timeout", "60s"});
  REQUIRE(status_of(raw_exchange(lb.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200);
  const long rss_before = lb.rss_kib();
  constexpr std::uint64_t kLength = 1 << 20;
  std::vector<int> fds;
  for (int i = 0; i < kStalled; ++i) {
    const int fd = connect_loopback(lb.port);
    REQUIRE(fd >= 0);
    RawUpstream::send_all(fd, post_head(kLength));
    send_pattern(fd, 0, kLength - 1);  // all but one byte, then nothing
    fds.push_back(fd);
  }
  // Everything the clients sent has reached the upstream (streamed through,
  // not held by the lb).
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (up.body_bytes < kStalled * (kLength - 1) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  CHECK(up.body_bytes == kStalled * (kLength - 1));
  const long rss_stalled = lb.rss_kib();
  MESSAGE(kStalled << " stalled 1 MiB uploads: lb RSS " << rss_before << " -> " << rss_stalled << " KiB; reserved "
                                               << lb.metric("userkey_lb_request_body_bytes_reserved") << " bytes");
  if (!kSanitized) CHECK(rss_stalled - rss_before <= 64 * 1024);
  CHECK(lb.metric("userkey_lb_request_body_bytes_reserved") > 0);
  // Each finishes when its last byte comes.
  for (int fd : fds) RawUpstream::send_all(fd, std::string(1, pattern(kLength - 1)));
  int answered = 0;
  for (int fd : fds) {
    answered += body_of(read_response(fd)) == std::to_string(kLength) + " ok length" ? 1 : 0;
    ::close(fd);
  }
  CHECK(answered == kStalled);

  // A bound of four streamed bodies: the fifth is refused at once.
  LbProcess small({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false", "--max-body-bytes",
                   "2000000", "--max-buffered-body-bytes", std::to_string(4 * (64 * 1024 + 8 * 1024))});
  const int base = up.requests;
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) {
    const int fd = connect_loopback(small.port);
    REQUIRE(fd >= 0);
    RawUpstream::send_all(fd, post_head(kLength));
    send_pattern(fd, 0, 100'000);
    held.push_back(fd);
  }
  // (The four are being streamed once the upstream has their first bytes.)
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (up.requests < base + 4 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
  const int fifth = connect_loopback(small.port);
  REQUIRE(fifth >= 0);
  RawUpstream::send_all(fifth, post_head(kLength));
  const std::string refused = read_response(fifth, 10s);
  ::close(fifth);
  CHECK(status_of(refused) == 503);
  CHECK(refused.find("Retry-After: 1") != std::string::npos);
  CHECK(small.metric("userkey_lb_rejections_total{reason=\"body_memory\"}") == 1);
  // A request without a body needs none of it.
  CHECK(status_of(raw_exchange(small.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200);
  // The client-facing series count the lb's own refusal beside the answer.
  CHECK(small.metric("userkey_lb_client_responses_total{code=\"5xx\"}") == 1);
  CHECK(small.metric("userkey_lb_client_responses_total{code=\"2xx\"}") == 1);
  CHECK(small.metric("userkey_lb_client_request_duration_seconds_count") == 1);  // (routed requests only)
  for (int fd : held) ::close(fd);
}

TEST_CASE("a streamed body is never sent twice: an upstream failing mid-body is 502 with no retry; a short body is "
          "retried") {
  SinkUpstream failing(100'000);  // closes after 100,000 body bytes
  SinkUpstream healthy;
  LbProcess lb({"--upstream", failing.upstream(), "--upstream", healthy.upstream(), "--policy", "round_robin",
                "--no-active-health", "--access-log", "false", "--max-body-bytes", "10000000", "--retries", "2"});
  int statuses_502 = 0, statuses_200 = 0;
  // PUT is idempotent: only the replay rule keeps it from being retried.
  for (int i = 0; i < 2; ++i) {
    const int fd = connect_loopback(lb.port);
    REQUIRE(fd >= 0);
    // (Sent while the answer is read: an answer before the body's end
    // closes the connection with the rest unread.)
    std::thread sender([fd] {
      RawUpstream::send_all(fd, "PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
      send_pattern(fd, 0, 1'000'000);
    });
    const int status = status_of(read_response(fd));
    ::shutdown(fd, SHUT_RDWR);
    sender.join();
    ::close(fd);
    statuses_502 += status == 502 ? 1 : 0;
    statuses_200 += status == 200 ? 1 : 0;
  }
  // One went to each: the failing one's is 502, not retried on the other.
  CHECK(statuses_502 == 1);
  CHECK(statuses_200 == 1);
  CHECK(healthy.requests == 1);
  CHECK(lb.metric("userkey_lb_retries_total") == 0);
}

TEST_CASE("a client that stalls mid-body past --body-timeout gets 408; the upstream is not blamed") {
  SinkUpstream up;
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false", "--max-body-bytes",
                "10000000", "--body-timeout", "500ms"});
  const int fd = connect_loopback(lb.port);
  REQUIRE(fd >= 0);
  RawUpstream::send_all(fd, post_head(1'000'000));
  send_pattern(fd, 0, 200'000);  // past the replay buffer: streaming has begun
  const std::string res = read_response(fd, 10s);
  ::close(fd);
  CHECK(status_of(res) == 408);
  CHECK(lb.metric("userkey_lb_rejections_total{reason=\"body_timeout\"}") == 1);
  const std::string errors = "userkey_lb_upstream_errors_total{upstream=\"" + up.upstream() + "\",kind=";
  CHECK(lb.metric(errors + "\"response\"}") == 0);
  CHECK(lb.metric(errors + "\"timeout\"}") == 0);
  CHECK(status_of(raw_exchange(lb.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200);
}
