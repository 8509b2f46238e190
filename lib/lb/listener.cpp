// The listening socket and the accept loop: see listener.hpp.
#include "listener.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "worker.hpp"

namespace userkey::lb::engine {

Listener::Listener(Worker& home, std::span<const std::unique_ptr<Worker>> loops, ProxyStats& stats)
    : home_(home), loops_(loops), stats_(stats), acceptor_(home.io()) {}

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

void Listener::start() { asio::co_spawn(home_.io(), accept_loop(), asio::detached); }

void Listener::close() {
  error_code ec;
  if (acceptor_.is_open()) acceptor_.close(ec);
}

awaitable<void> Listener::accept_loop() {
  std::size_t next = 0;
  const auto protocol = acceptor_.local_endpoint().protocol();
  error_code ec;
  acceptor_.non_blocking(true, ec);
  for (;;) {
    Socket sock(home_.io());
    co_await acceptor_.async_accept(sock, nothrow(ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      // Out of descriptors or similar: back off instead of spinning.
      Timer pause(home_.io());
      pause.expires_after(std::chrono::milliseconds(50));
      co_await pause.async_wait(nothrow(ec));
      continue;
    }
    dispatch(std::move(sock), next, protocol);
    // Then take what else is waiting in the backlog, up to a batch, without
    // going back through the event queue for each: under load a burst of new
    // connections would otherwise be accepted one per loop turn.
    for (int batch = 1; batch < kAcceptBatch; ++batch) {
      Socket more(home_.io());
      acceptor_.accept(more, ec);
      if (ec) break;  // would_block: the backlog is empty
      dispatch(std::move(more), next, protocol);
    }
  }
}

// Starts a session for an accepted connection on the next loop in turn.
void Listener::dispatch(Socket sock, std::size_t& next, const tcp& protocol) {
  stats_.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  Worker& target = *loops_[next];
  next = (next + 1) % loops_.size();
  if (&target == &home_) {
    target.start_session(std::move(sock));
    return;
  }
  error_code ec;
  const auto fd = sock.release(ec);
  if (ec) return;
  target.adopt(fd, protocol);
}

}  // namespace userkey::lb::engine
