// The listening socket and the accept loop: see listener.hpp.
#include "listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "net/accept_loop.hpp"

namespace userkey::lb::engine {

Listener::Listener(asio::io_context& io, HandOff hand_off, ProxyStats& stats, spdlog::logger& log)
    : io_(io), hand_off_(std::move(hand_off)), stats_(stats), log_(log), acceptor_(io), backoff_(&log, "listen address") {}

error_code Listener::listen(const tcp::endpoint& endpoint) {
  error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(4096, ec);
  return ec;
}

std::uint16_t Listener::port() const {
  error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void Listener::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void Listener::close() {
  error_code ec;
  if (!acceptor_.is_open()) return;
  // The kernel has completed the handshakes in the backlog: closing would
  // reset those clients. Take them first (they are served, with
  // Connection: close while draining).
  const auto endpoint = acceptor_.local_endpoint(ec);
  acceptor_.non_blocking(true, ec);
  for (int i = 0; !ec && i < 4096; ++i) {
    Socket more(io_);
    acceptor_.accept(more, ec);
    if (!ec) dispatch(std::move(more), endpoint.protocol());
  }
  acceptor_.close(ec);
}

// GCC 12 at -O2 takes Asio's awaitable frame operator new / delete pair for
// a mismatch (see downstream_session.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

awaitable<void> Listener::accept_loop() {
  const auto protocol = acceptor_.local_endpoint().protocol();
  const bool closed = co_await net::accept_loop(
      acceptor_, [this, protocol](Socket sock) { dispatch(std::move(sock), protocol); }, backoff_, kAcceptBatch);
  if (!closed) log_.error("no longer accepting connections");
}

#pragma GCC diagnostic pop

void Listener::dispatch(Socket sock, const tcp& protocol) {
  stats_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  hand_off_(std::move(sock), protocol);
}

}  // namespace userkey::lb::engine
