// The lb's admin HTTP endpoint: see admin_server.hpp.
#include "admin_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <array>
#include <exception>
#include <string_view>

namespace userkey::lb::engine {

namespace {

constexpr std::chrono::milliseconds kLingerMax{1000};

bool announces_body(const AdminRequest& req) {
  if (req.find(http::field::transfer_encoding) != req.end()) return true;
  for (auto it = req.find(http::field::content_length); it != req.end() && it->name() == http::field::content_length;
       ++it)
    if (it->value() != "0") return true;
  return false;
}

Response page(unsigned version, std::string body, std::string_view content_type) {
  Response res{http::status::ok, version};
  res.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  res.set(http::field::server, "userkey-lb");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response route(const AdminRequest& req, const AdminPages& pages, unsigned version) {
  using http::verb;
  if (req.method() != verb::get && req.method() != verb::head) {
    auto res = http1::make_error_response(405, "method not allowed", version);
    res.set(http::field::allow, "GET, HEAD");
    return res;
  }
  if (announces_body(req)) return http1::make_error_response(413, "the admin endpoint takes no request body", version);
  std::string_view path(req.target().data(), req.target().size());
  path = path.substr(0, path.find('?'));
  if (path == "/healthz") return page(version, "{\"status\":\"ok\"}\n", "application/json");
  if (path == "/metrics") return page(version, pages.metrics(), "text/plain; version=0.0.4");
  if (path == "/status") return page(version, pages.status(), "application/json");
  if (path == "/readyz") {
    if (pages.ready()) return page(version, "{\"status\":\"ready\"}\n", "application/json");
    auto res = page(version, "{\"status\":\"draining\"}\n", "application/json");
    res.result(http::status::service_unavailable);
    res.set(http::field::retry_after, "1");
    return res;
  }
  return http1::make_error_response(404, "not found", version);
}

}  // namespace

Response admin_response(const AdminRequest& req, const AdminPages& pages) {
  const unsigned version = req.version() == 10 ? 10 : 11;
  Response res;
  try {
    res = route(req, pages, version);
  } catch (const std::exception& e) {
    res = http1::make_error_response(500, std::string("admin page failed: ") + e.what(), version);
  }
  res.set(http::field::connection, "close");
  if (req.method() == http::verb::head) res.body().clear();  // Content-Length stays: the page's
  return res;
}

bool admin_head_error_response(const error_code& ec, Response& out) {
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    out = http1::make_error_response(431, "request header too large", 11);
  } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
             ec != http::error::end_of_stream && ec != http::error::partial_message) {
    out = http1::make_error_response(400, "bad request", 11);
  } else {
    return false;  // the client left, or its time ran out
  }
  out.set(http::field::connection, "close");
  return true;
}

AdminServer::AdminServer(Page metrics, Page status, Check ready, AdminLimits limits)
    : pages_{std::move(metrics), std::move(status), std::move(ready)}, limits_(limits) {}

AdminServer::~AdminServer() { stop(); }

bool AdminServer::start(const std::string& host, std::uint16_t port, std::string* error) {
  stop();
  io_ = std::make_unique<asio::io_context>(1);
  acceptor_ = std::make_unique<Acceptor>(*io_);
  error_code ec;
  tcp::resolver resolver(*io_);
  const auto endpoints =
      resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  bool listening = false;
  for (const auto& entry : endpoints) {
    if (ec) break;
    acceptor_->open(entry.endpoint().protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);  // never SO_REUSEPORT
    if (!ec) acceptor_->bind(entry.endpoint(), ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) {
      listening = true;
      break;
    }
    error_code ignored;
    acceptor_->close(ignored);
  }
  if (!listening) {
    if (error)
      *error = "cannot listen on admin address " + host + ":" + std::to_string(port) +
               (ec ? " (" + ec.message() + ")" : std::string());
    acceptor_.reset();
    io_.reset();
    return false;
  }
  port_ = acceptor_->local_endpoint(ec).port();
  asio::co_spawn(*io_, accept_loop(), asio::detached);
  thread_ = std::thread([io = io_.get()] { io->run(); });
  return true;
}

void AdminServer::stop() {
  if (io_) io_->stop();
  if (thread_.joinable()) thread_.join();
  // The loop has stopped: the acceptor closes, and destroying the context
  // destroys the suspended connection coroutines, which close their sockets.
  acceptor_.reset();
  io_.reset();
  open_ = 0;
}

// GCC 12 at -O2 inlines Asio's recycling frame allocator into a coroutine's
// ramp and takes the frame's own operator delete for a mismatch (a false
// positive, as in downstream_session.cpp): off for this file's coroutines.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

awaitable<void> AdminServer::accept_loop() {
  for (;;) {
    Socket sock(*io_);
    error_code ec;
    co_await acceptor_->async_accept(sock, nothrow(ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
      Timer pause(*io_);  // out of descriptors or similar: back off instead of spinning
      pause.expires_after(std::chrono::milliseconds(50));
      co_await pause.async_wait(nothrow(ec));
      continue;
    }
    if (open_ >= limits_.max_connections) {
      refuse_busy(sock);
      continue;
    }
    ++open_;  // given back by serve()
    asio::co_spawn(*io_, serve(Stream(std::move(sock))), asio::detached);
  }
}

// Over the connection cap: a short 503 into the new socket's empty send
// buffer (it cannot block), then close. The request, if any came yet, is not
// read.
void AdminServer::refuse_busy(Socket& sock) const {
  static constexpr std::string_view kBusy =
      "HTTP/1.1 503 Service Unavailable\r\nServer: userkey-lb\r\nContent-Type: application/json\r\n"
      "Retry-After: 1\r\nConnection: close\r\nContent-Length: 38\r\n\r\n"
      "{\"error\":\"too many admin connections\"}";
  error_code ec;
  sock.non_blocking(true, ec);
  sock.send(asio::buffer(kBusy.data(), kBusy.size()), 0, ec);
  sock.shutdown(tcp::socket::shutdown_both, ec);
  sock.close(ec);
}

awaitable<void> AdminServer::serve(Stream stream) {
  struct Slot {
    int& open;
    ~Slot() { --open; }
  } slot{open_};
  beast::flat_buffer buffer(limits_.max_head_bytes);
  http::request_parser<http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits_.max_head_bytes));
  error_code ec;
  // One deadline for the whole head (basic_stream applies it to every read
  // the head takes), not one per read.
  stream.expires_after(limits_.head_deadline);
  co_await http::async_read_header(stream, buffer, parser, nothrow(ec));
  Response res;
  bool unread = true;  // the client may still be sending (a body, more of a bad head)
  if (ec) {
    if (!admin_head_error_response(ec, res)) co_return;  // gone or out of time: closed unanswered
  } else {
    res = admin_response(parser.get(), pages_);
    unread = buffer.size() > 0 || announces_body(parser.get());
  }
  stream.expires_after(limits_.write_deadline);
  co_await http::async_write(stream, res, nothrow(ec));
  if (ec) co_return;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (!unread) co_return;
  // Closing with unread bytes would reset the connection and could destroy
  // the answer before the client reads it: drop what still comes until the
  // client closes, for a moment at most.
  stream.expires_after(std::min(kLingerMax, limits_.head_deadline));
  std::array<char, 1024> sink{};
  while (!ec) co_await stream.async_read_some(asio::buffer(sink), nothrow(ec));
}

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
