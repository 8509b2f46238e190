// The listening socket and the accept loop: see listener.hpp.
#include "listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace userkey::lb::engine {

Listener::Listener(asio::io_context& io, HandOff hand_off, ProxyStats& stats, spdlog::logger& log)
    : io_(io), hand_off_(std::move(hand_off)), stats_(stats), log_(log), acceptor_(io) {}

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

// An exception out of one connection's hand-off (it should not happen; an
// allocation failure could) loses that connection, never the listener: it is
// logged and accepting goes on after a pause.
awaitable<void> Listener::pause_after(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    log_.error("accept loop: {}; accepting again shortly", e.what());
  } catch (...) {
    log_.error("accept loop: unknown exception; accepting again shortly");
  }
  Timer pause(io_);
  pause.expires_after(std::chrono::milliseconds(50));
  error_code ec;
  co_await pause.async_wait(nothrow(ec));
}

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

awaitable<void> Listener::accept_loop() {
  const auto protocol = acceptor_.local_endpoint().protocol();
  error_code ec;
  acceptor_.non_blocking(true, ec);
  for (;;) {
    std::exception_ptr error;
    try {
      Socket sock(io_);
      co_await acceptor_.async_accept(sock, nothrow(ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        // Out of descriptors or similar: back off instead of spinning.
        if (!backing_off_) log_.warn("accept failed: {}; pausing accepts briefly", ec.message());
        backing_off_ = true;
        Timer pause(io_);
        pause.expires_after(std::chrono::milliseconds(50));
        co_await pause.async_wait(nothrow(ec));
        continue;
      }
      if (backing_off_) log_.info("accepting connections again");
      backing_off_ = false;
      dispatch(std::move(sock), protocol);
      // Then take what else is waiting in the backlog, up to a batch, without
      // going back through the event queue for each: under load a burst of
      // new connections would otherwise be accepted one per loop turn.
      for (int batch = 1; batch < kAcceptBatch; ++batch) {
        Socket more(io_);
        acceptor_.accept(more, ec);
        if (ec) break;  // would_block: the backlog is empty
        dispatch(std::move(more), protocol);
      }
    } catch (...) {
      error = std::current_exception();  // (no co_await inside a handler)
    }
    if (error) co_await pause_after(error);
    if (!acceptor_.is_open()) co_return;
  }
}

void Listener::dispatch(Socket sock, const tcp& protocol) {
  stats_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  hand_off_(std::move(sock), protocol);
}

}  // namespace userkey::lb::engine
