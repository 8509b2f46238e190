// Test support: an in-process cpp-httplib server to stand as an upstream.
#pragma once

#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace userkey::test {

/// An in-process cpp-httplib server on a free 127.0.0.1 port, serving on
/// its own thread from construction (`routes` registers its handlers
/// first) until destruction. A test upstream holds one as its last member,
/// after what its handlers use, so the server stops before those go.
class HttplibUpstream {
public:
  explicit HttplibUpstream(const std::function<void(httplib::Server&)>& routes) {
    routes(server_);
    port = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~HttplibUpstream() {
    server_.stop();
    thread_.join();
  }
  HttplibUpstream(const HttplibUpstream&) = delete;
  HttplibUpstream& operator=(const HttplibUpstream&) = delete;
  std::string upstream() const { return "127.0.0.1:" + std::to_string(port); }

  int port = 0;

private:
  httplib::Server server_;
  std::thread thread_;
};

}  // namespace userkey::test
