// Test support: a client connection to 127.0.0.1 read at its own pace, for
// tests of responses that stream (a slow reader, a pause, a body cut short).
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "support/raw_upstream.hpp"

namespace userkey::test {

class StreamClient {
public:
  /// Connects to 127.0.0.1:port. A `receive_buffer` (bytes, > 0) is set
  /// before connecting, which also turns off the kernel's growing of it: a
  /// client that stops reading then holds back little.
  explicit StreamClient(std::uint16_t port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    if (receive_buffer > 0)
      REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer) == 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~StreamClient() { ::close(fd_); }
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;

  void send(const std::string& s) { RawUpstream::send_all(fd_, s); }
  /// Up to `max` bytes appended to `into` within `timeout`: the count, 0 on
  /// a timeout, -1 when the connection ended (closed or reset).
  long read(std::string& into, std::size_t max, std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return 0;
    const std::size_t at = into.size();
    into.resize(at + max);
    const auto n = ::recv(fd_, into.data() + at, max, 0);
    into.resize(at + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    return n > 0 ? n : -1;
  }
  /// Reads until `into` holds a head ("\r\n\r\n"); its length, or npos.
  std::size_t read_head(std::string& into) {
    for (int i = 0; i < 100 && into.find("\r\n\r\n") == std::string::npos; ++i)
      if (read(into, 4096, std::chrono::milliseconds(100)) < 0) break;
    const auto end = into.find("\r\n\r\n");
    return end == std::string::npos ? std::string::npos : end + 4;
  }

private:
  int fd_ = -1;
};

}  // namespace userkey::test
