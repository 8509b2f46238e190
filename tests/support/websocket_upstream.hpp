// Test support: a WebSocket echo server on a free 127.0.0.1 port, as an
// upstream behind the lb, made with Beast's websocket::stream (synchronous,
// one thread per connection).
//
// Plain HTTP requests (health probes, upgrades it is not asked for) get 200
// with a body of the server's name, a line, then the request head as it
// arrived; every head is also kept (heads()). A WebSocket upgrade is
// accepted, and then each message is echoed as it came (text or binary),
// except the text messages "whoami" (answered with the name) and
// "close-please" (the server closes: 1000, "bye"); pings get pongs (Beast
// answers them). The destructor shuts every connection down and joins.
#pragma once

#include <doctest/doctest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/raw_upstream.hpp"

namespace userkey::test {

class WebSocketUpstream {
public:
  explicit WebSocketUpstream(std::string name) : name_(std::move(name)) {
    listener_ = listen_on_loopback(port, 256);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~WebSocketUpstream() {
    stop_ = true;
    acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (int fd : live_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : threads_) t.join();
    ::close(listener_);
  }
  WebSocketUpstream(const WebSocketUpstream&) = delete;
  WebSocketUpstream& operator=(const WebSocketUpstream&) = delete;

  std::string upstream() const { return "127.0.0.1:" + std::to_string(port); }
  const std::string& name() const { return name_; }
  std::vector<std::string> heads() const {
    std::lock_guard lock(mu_);
    return heads_;
  }

  std::uint16_t port = 0;
  std::atomic<int> open{0};      ///< WebSocket sessions open now
  std::atomic<int> sessions{0};  ///< WebSocket sessions accepted in all

private:
  using tcp = boost::asio::ip::tcp;

  void accept_loop() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      std::lock_guard lock(mu_);
      live_.insert(fd);
      threads_.emplace_back([this, fd] { serve(fd); });
    }
  }

  // Forgets the descriptor just before its socket closes it (declared after
  // the socket, so destroyed first): the destructor never shuts down a
  // number the system has given to someone else.
  struct Forget {
    WebSocketUpstream* self;
    int fd;
    ~Forget() {
      std::lock_guard lock(self->mu_);
      self->live_.erase(fd);
    }
  };

  void serve(int fd) {
    namespace beast = boost::beast;
    namespace http = beast::http;
    boost::asio::io_context io;
    tcp::socket sock(io);
    boost::system::error_code ec;
    sock.assign(tcp::v4(), fd, ec);
    if (ec) {
      Forget{this, fd};
      ::close(fd);
      return;
    }
    const Forget forget{this, fd};
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      http::read(sock, buffer, req, ec);
      if (ec) return;
      std::ostringstream head;
      head << req.base();
      {
        std::lock_guard lock(mu_);
        heads_.push_back(head.str());
      }
      if (beast::websocket::is_upgrade(req)) {
        echo(std::move(sock), req);
        return;
      }
      http::response<http::string_body> res{http::status::ok, req.version()};
      res.set(http::field::content_type, "text/plain");
      res.body() = name_ + "\n" + head.str();
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      http::write(sock, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }

  void echo(tcp::socket sock, const boost::beast::http::request<boost::beast::http::string_body>& req) {
    namespace beast = boost::beast;
    namespace websocket = beast::websocket;
    websocket::stream<tcp::socket> ws(std::move(sock));
    ws.read_message_max(8 << 20);
    boost::system::error_code ec;
    ws.accept(req, ec);
    if (ec) return;
    ++sessions;
    ++open;
    for (;;) {
      beast::flat_buffer message;
      ws.read(message, ec);
      if (ec) break;  // closed (either side), reset, shut down
      const bool text = ws.got_text();
      if (text && beast::buffers_to_string(message.data()) == "whoami") {
        ws.text(true);
        ws.write(boost::asio::buffer(name_), ec);
      } else if (text && beast::buffers_to_string(message.data()) == "close-please") {
        ws.close(websocket::close_reason(websocket::close_code::normal, "bye"), ec);
        // (the next read takes the client's close and ends)
      } else {
        ws.text(text);
        ws.write(message.data(), ec);
      }
      if (ec) break;
    }
    --open;
  }

  std::string name_;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::set<int> live_;
  std::vector<std::string> heads_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace userkey::test
