// Test support: a raw HTTP/1.1 upstream on a free 127.0.0.1 port, for tests
// that need one to misbehave on purpose. Each request head it reads (up to
// the blank line; requests carry no body) is handed to `answer` with the
// connection's descriptor, and `answer` writes whatever it likes. One thread
// per connection; everything is joined and closed by the destructor.
// RecordingUpstream is the well-behaved kind: it keeps the heads it gets.
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace userkey::test {

/// A listening socket on a free 127.0.0.1 port (written into `port`).
inline int listen_on_loopback(std::uint16_t& port, int backlog = 16) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, backlog) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

class RawUpstream {
public:
  using Answer = std::function<void(int fd, const std::string& head)>;

  explicit RawUpstream(Answer answer) : answer_(std::move(answer)) {
    listener_ = listen_on_loopback(port, 16);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~RawUpstream() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : conns_) t.join();
    ::close(listener_);
  }
  RawUpstream(const RawUpstream&) = delete;
  RawUpstream& operator=(const RawUpstream&) = delete;

  std::string upstream() const { return "127.0.0.1:" + std::to_string(port); }

  /// Writes all of `s` unless the peer goes away.
  static void send_all(int fd, const std::string& s) {
    for (std::size_t off = 0; off < s.size();) {
      const auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }

  std::uint16_t port = 0;
  std::atomic<int> connections{0};  ///< connections accepted so far

private:
  static bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 50) > 0;
  }
  void accept_loop() {
    while (!stop_) {
      if (!readable(listener_)) continue;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      ++connections;
      conns_.emplace_back([this, fd] { serve(fd); });
    }
  }
  void serve(int fd) {
    std::string in;
    char buf[4096];
    while (!stop_) {
      if (!readable(fd)) continue;
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
      for (auto end = in.find("\r\n\r\n"); end != std::string::npos; end = in.find("\r\n\r\n")) {
        const std::string head = in.substr(0, end + 4);
        in.erase(0, end + 4);
        answer_(fd, head);
      }
    }
    ::close(fd);
  }

  Answer answer_;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> conns_;  // touched by the acceptor thread only until stop
};

/// A raw upstream that records each request head and answers 200 "ok", with
/// `extra_headers` (name, value; in order, after the status line) in each
/// response, e.g. an X-Request-Id of its own that the lb must replace.
class RecordingUpstream {
public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  explicit RecordingUpstream(const Headers& extra_headers = {}) : response_(response(extra_headers)) {}

  std::string upstream() const { return raw_.upstream(); }
  /// The last head received ("" before the first).
  std::string last_head() {
    std::lock_guard lock(mu_);
    return heads_.empty() ? std::string() : heads_.back();
  }
  /// How many heads were received.
  std::size_t count() {
    std::lock_guard lock(mu_);
    return heads_.size();
  }

private:
  static std::string response(const Headers& extra_headers) {
    std::string out = "HTTP/1.1 200 OK\r\n";
    for (const auto& [name, value] : extra_headers) out += name + ": " + value + "\r\n";
    return out + "Content-Length: 2\r\n\r\nok";
  }

  std::mutex mu_;
  std::vector<std::string> heads_;
  const std::string response_;  // before raw_: its threads read it
  RawUpstream raw_{[this](int fd, const std::string& head) {
    {
      std::lock_guard lock(mu_);
      heads_.push_back(head);
    }
    RawUpstream::send_all(fd, response_);
  }};
};

}  // namespace userkey::test
