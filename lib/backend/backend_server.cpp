// BackendServer on an Asio event loop; see backend_server.hpp for what it
// promises. This file is the facade: binding, the accept loops (net/),
// run and stop. A connection is served in backend_connection.cpp, a request
// read in request_reader.cpp and answered in route_dispatch.cpp.
#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include "userkey/backend/backend_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include "backend/backend_connection.hpp"
#include "backend/route_dispatch.hpp"
#include "net/accept_loop.hpp"
#include "net/open_files.hpp"

namespace userkey {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using detail::Listener;

class BackendServer::Server {
public:
  Server(const BackendServerConfig& cfg, std::shared_ptr<spdlog::logger> log, BackendMetrics& metrics)
      : cfg_(cfg), log_(std::move(log)), metrics_(metrics), dispatch_(ioc_, cfg_, metrics_) {}

  /// The listen address; 0 with a message in `error` when it cannot be bound.
  std::uint16_t bind(std::string* error) { return bind_acceptor(acceptor_, cfg_.host, cfg_.port, "", error); }

  /// The admin address (cfg_.admin set); 0 with a message when it cannot be bound.
  std::uint16_t bind_admin(std::string* error) {
    return bind_acceptor(admin_acceptor_, cfg_.admin->host, cfg_.admin->port, "admin address ", error);
  }

  bool run(std::shared_ptr<const Router> router) {
    dispatch_.start(std::move(router));
    asio::co_spawn(ioc_, accept_on(acceptor_, Listener::main, backoff_), asio::detached);
    if (admin_acceptor_.is_open())
      asio::co_spawn(ioc_, accept_on(admin_acceptor_, Listener::admin, admin_backoff_), asio::detached);
    ioc_.run();  // until the acceptor is closed and every connection has ended
    dispatch_.join();
    return !failed_;
  }

  /// From any thread.
  void stop() {
    asio::post(ioc_, [this] { begin_stop(); });
  }

private:
  std::uint16_t bind_acceptor(tcp::acceptor& acceptor, const std::string& host, std::uint16_t port,
                              std::string_view what, std::string* error) {
    error_code ec;
    tcp::resolver resolver(ioc_);
    const auto endpoints =
        resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    for (const auto& entry : endpoints) {
      if (ec) break;
      const auto ep = entry.endpoint();
      acceptor.open(ep.protocol(), ec);
      if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);  // not SO_REUSEPORT
      if (!ec) acceptor.bind(ep, ec);
      if (!ec) acceptor.listen(cfg_.backlog, ec);
      if (!ec) return acceptor.local_endpoint().port();
      error_code ignored;
      acceptor.close(ignored);
    }
    if (error)
      *error = "cannot listen on " + std::string(what) + host + ":" + std::to_string(port) + " (" +
               (ec ? ec.message() : std::string("address not found")) + ")";
    return 0;
  }

  void begin_stop() {
    if (stopping_) return;
    stopping_ = true;
    error_code ec;
    acceptor_.close(ec);
    admin_acceptor_.close(ec);
    connections_.cancel_idle();
  }

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
  asio::awaitable<void> accept_on(tcp::acceptor& acceptor, Listener listener, net::AcceptBackoff& backoff) {
    const bool closed = co_await net::accept_loop(
        acceptor,
        [this, listener](tcp::socket sock) {
          asio::co_spawn(ioc_, detail::serve_connection(context_, std::move(sock), listener), asio::detached);
        },
        backoff);
    if (!closed) failed_ = true;  // logged by the backoff
  }
#pragma GCC diagnostic pop

  const BackendServerConfig cfg_;
  std::shared_ptr<spdlog::logger> log_;
  asio::io_context ioc_;
  BackendMetrics& metrics_;
  detail::Dispatcher dispatch_;
  tcp::acceptor acceptor_{ioc_};
  tcp::acceptor admin_acceptor_{ioc_};
  // Loop thread only:
  net::AcceptBackoff backoff_{log_.get(), "listen address"};
  net::AcceptBackoff admin_backoff_{log_.get(), "admin address"};
  detail::Connections connections_;
  bool stopping_ = false;
  bool failed_ = false;
  detail::ConnectionContext context_{cfg_, log_.get(), metrics_, dispatch_, connections_, stopping_};
};

BackendServer::BackendServer(BackendServerConfig config, std::shared_ptr<spdlog::logger> log)
    : config_(std::move(config)), log_(std::move(log)), server_(std::make_unique<Server>(config_, log_, metrics_)) {}

BackendServer::~BackendServer() { stop(); }

bool BackendServer::bind(std::string* error) {
  bound_port_ = server_->bind(error);
  if (bound_port_ != 0 && config_.admin) admin_port_ = server_->bind_admin(error);
  return bound_port_ != 0 && (!config_.admin || admin_port_ != 0);
}

bool BackendServer::run(std::shared_ptr<const Router> router) {
  router_ = std::move(router);
  if (stop_requested_.load()) return true;
  running_.store(true);
  const bool ok = server_->run(router_);
  running_.store(false);
  return ok || stop_requested_.load();
}

void BackendServer::stop() {
  stop_requested_.store(true);
  server_->stop();  // queued for the loop: takes effect when (or if) run() runs it
}

std::uint64_t raise_open_file_limit(std::string* error) { return net::raise_open_file_limit(error); }

}  // namespace userkey
