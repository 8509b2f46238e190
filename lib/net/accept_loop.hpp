// The accept loop both servers run (private to the library).
//
// Owns: accepting on an open acceptor until it is closed, handing each
// connection to `on_accept`, taking up to `batch` connections per wakeup
// from the backlog without going back through the event queue for each,
// and staying up: accept errors go through AcceptBackoff (a closed
// acceptor ends the loop, an unusable one ends it as a failure, running out
// of descriptors pauses it, logged once per episode), and an exception out
// of `on_accept` loses that connection only (logged, then a pause).
//
// Templated over the acceptor so each server keeps its executor type (the
// lb names its io_context executor, the backend the type-erased default).
//
// Leaves to others: binding and listening, what a connection is served with.
#pragma once

#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <spdlog/logger.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>

#include "net/accept_backoff.hpp"

namespace userkey::net {

namespace detail {

// Hands one connection over; false when `on_accept` threw (logged).
template <class Socket, class OnAccept>
bool hand_over(OnAccept& on_accept, Socket&& sock, spdlog::logger* log) {
  try {
    on_accept(std::move(sock));
    return true;
  } catch (const std::exception& e) {
    if (log) log->error("accept loop: {}; accepting again shortly", e.what());
  } catch (...) {
    if (log) log->error("accept loop: unknown exception; accepting again shortly");
  }
  return false;
}

}  // namespace detail

// GCC 12 at -O2 takes Asio's awaitable frame operator new / delete pair for
// a mismatch.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

/// Accepts on `acceptor` until it is closed; `on_accept(socket)` takes each
/// connection. Returns true when the acceptor was closed, false when it
/// failed (logged). `acceptor` and `backoff` outlive the loop.
template <class Acceptor, class OnAccept>
boost::asio::awaitable<bool, typename Acceptor::executor_type> accept_loop(Acceptor& acceptor, OnAccept on_accept,
                                                                          AcceptBackoff& backoff, int batch = 1) {
  namespace asio = boost::asio;
  using Executor = typename Acceptor::executor_type;
  using Socket = asio::basic_stream_socket<typename Acceptor::protocol_type, Executor>;
  using Timer =
      asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>;
  const auto nothrow = [](boost::system::error_code& ec) {
    return asio::redirect_error(asio::use_awaitable_t<Executor>{}, ec);
  };
  boost::system::error_code ec;
  if (batch > 1) acceptor.non_blocking(true, ec);  // the extra accepts must not block
  for (;;) {
    Socket sock(acceptor.get_executor());
    co_await acceptor.async_accept(sock, nothrow(ec));
    bool pause = false;
    if (ec) {
      const AcceptFailure failure = backoff.failed(ec, acceptor.is_open());
      if (failure == AcceptFailure::stop) co_return true;
      if (failure == AcceptFailure::fatal) co_return false;
      pause = failure == AcceptFailure::pause;
    } else {
      backoff.succeeded();
      pause = !detail::hand_over(on_accept, std::move(sock), backoff.log());
      // Then what else waits in the backlog, up to a batch: under load a
      // burst would otherwise be accepted one per loop turn.
      for (int taken = 1; !pause && taken < batch; ++taken) {
        Socket more(acceptor.get_executor());
        acceptor.accept(more, ec);
        if (ec) break;  // would_block: the backlog is empty
        pause = !detail::hand_over(on_accept, std::move(more), backoff.log());
      }
    }
    if (pause) {
      Timer wait(acceptor.get_executor());
      wait.expires_after(AcceptBackoff::kPause);
      co_await wait.async_wait(nothrow(ec));
    }
    if (!acceptor.is_open()) co_return true;
  }
}

#pragma GCC diagnostic pop

}  // namespace userkey::net
