// The lingering close after a server's last answer on a connection (private
// to the library: the backend's refusals and the lb's local replies).
//
// Owns: after an answer that ends the connection, stopping sending, then
// reading and discarding what the client still sends, for up to
// `LingerLimits::time` or `LingerLimits::bytes`. The client may still be
// sending what was refused (a huge head or body); closing with unread data
// would make the kernel reset the connection, which can destroy the answer
// before the client reads it.
//
// Works on the plain socket under any layer (a TLS client is not sent
// close_notify first: the answer is framed, so it is complete). Its own
// timer bounds the wait; the caller's deadlines should be off meanwhile.
//
// Leaves to others: writing the answer, closing the socket afterwards.
#pragma once

#include <utility>  // Boost 1.74: before asio/awaitable.hpp under GCC 12

#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>

namespace userkey::net {

struct LingerLimits {
  std::chrono::milliseconds time{1000};
  std::size_t bytes = 256 * 1024;
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

/// Shuts down sending on `sock`, then reads and discards until the client
/// closes, an error, or a limit. `sock` outlives the call.
template <class Socket>
boost::asio::awaitable<void, typename Socket::executor_type> linger_close(Socket& sock, LingerLimits limits = {}) {
  namespace asio = boost::asio;
  using Executor = typename Socket::executor_type;
  using Timer =
      asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>;
  boost::system::error_code ec;
  sock.shutdown(asio::socket_base::shutdown_send, ec);
  if (ec) co_return;
  // The timer's handler may run after this frame is gone (it fired just as
  // the read completed): it reaches the socket only while `live` says so.
  auto live = std::make_shared<bool>(true);
  Timer deadline(sock.get_executor());
  deadline.expires_after(limits.time);
  deadline.async_wait([live, &sock](const boost::system::error_code& waited) {
    if (waited || !*live) return;
    *live = false;  // also tells the loop below that the time is up
    boost::system::error_code ignored;
    sock.cancel(ignored);
  });
  std::array<char, 4096> discard;
  for (std::size_t total = 0; total < limits.bytes && *live;) {
    const std::size_t n =
        co_await sock.async_read_some(asio::buffer(discard), asio::redirect_error(asio::use_awaitable_t<Executor>{}, ec));
    if (ec) break;
    total += n;
  }
  *live = false;
  deadline.cancel();
}

#pragma GCC diagnostic pop

}  // namespace userkey::net
