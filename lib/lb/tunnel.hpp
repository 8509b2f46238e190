// A tunnel: the bytes of an upgraded connection (a WebSocket, after its 101)
// relayed both ways between the client and the upstream, until either side
// closes.
//
// Owns: the two directions (client -> upstream, upstream -> client), each a
// loop over a buffer of its own (kTunnelBuffer): one read, then the write of
// what it read, and only then the next read, so a side that does not read
// holds the other back and no memory follows the traffic; what either side
// had already sent past the upgrade's heads, written first; the bytes each
// way; the idle timeout (no byte either way for that long closes the
// tunnel: one timer per tunnel, rearmed only when it fires); and how the
// tunnel ended (the first cause).
//
// Either side closing (or failing) ends the tunnel: that side's direction
// has written all it read before it reads the end, so what it sent last is
// through; then both connections are shut down (read and write) and every
// operation on them ends. A WebSocket closes with its own close handshake, so
// by the time either end closes its connection both are done (nginx ends an
// upgraded connection the same way), and no half-closed tunnel waits out the
// idle timeout. The lb ends tunnels the same way (close(): the idle timeout,
// the end of a drain).
//
// The streams are any of the session's and the upstream's (plain sockets,
// the client's TlsSocketStream, the upstream's TLS stream): a read and a
// write may be pending on each at the same time, one each. Both streams'
// sockets are given too, for the shutdown.
//
// Leaves to others: whether a connection becomes a tunnel and its 101
// (upgrade, upstream_router, tunnel_session.hpp), owning and closing the
// connections, counting and logging (tunnel_session.hpp).
#pragma once

#include "io_types.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>

#include "userkey/lb/proxy_metrics.hpp"
#include "userkey/lb/upstream.hpp"

namespace userkey::lb::engine {

/// Each direction's buffer: one TLS record's worth.
inline constexpr std::size_t kTunnelBuffer = 16 * 1024;

/// What one tunnel shares between its two directions and whoever may end it.
/// Lives as long as anything of the tunnel runs (shared by its directions
/// and its timer); the two sockets must outlive run_tunnel().
class TunnelState : public std::enable_shared_from_this<TunnelState> {
public:
  enum class Way { to_upstream, to_client };

  TunnelState(Socket& client, Socket& upstream, std::chrono::milliseconds idle_timeout);
  TunnelState(const TunnelState&) = delete;
  TunnelState& operator=(const TunnelState&) = delete;

  /// Ends the tunnel for `why` (only the first cause is kept): both
  /// connections shut down (read and write), their pending operations and
  /// the idle timer cancelled. Idempotent.
  void close(TunnelEnd why);
  bool closed() const { return end_.has_value(); }
  /// Why it ended; meaningful once closed().
  TunnelEnd end() const { return end_.value_or(TunnelEnd::client); }

  /// Bytes written to the upstream and to the client.
  std::uint64_t to_upstream = 0;
  std::uint64_t to_client = 0;

  // For run_tunnel's directions:
  Executor executor() { return client_.get_executor(); }
  std::array<char, kTunnelBuffer>& buffer(Way w) { return w == Way::to_upstream ? up_buffer_ : down_buffer_; }
  /// A byte went either way: the idle timeout runs from now.
  void touch() { last_activity_ = SteadyClock::now(); }
  /// Arms the idle timer (from now).
  void start_idle_timer();
  /// One direction has ended (each says so once).
  void direction_done();
  /// Until both directions have ended.
  awaitable<void> both_done();

private:
  void arm_idle_timer();
  void idle_timer_fired(const error_code& ec);

  Socket& client_;
  Socket& upstream_;
  std::chrono::milliseconds idle_timeout_;
  TimePoint last_activity_;
  Timer idle_timer_;
  Timer done_;  // never expires by itself: cancelled when both directions are done
  int running_ = 2;
  std::optional<TunnelEnd> end_;
  std::array<char, kTunnelBuffer> up_buffer_;
  std::array<char, kTunnelBuffer> down_buffer_;
};

// (See downstream_session.cpp: GCC 12's false -Wmismatched-new-delete on
// Asio's coroutine frames.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

/// One direction: writes `pending` (bytes the reading side had already
/// sent), then relays `from` to `to` until the tunnel closes. Its reading
/// side's end (or failure) closes the tunnel as that side's; a failed write
/// as the writing side's.
template <class From, class To>
awaitable<void> tunnel_direction(std::shared_ptr<TunnelState> state, From& from, To& to, TunnelState::Way way,
                                 asio::const_buffer pending) {
  const bool up = way == TunnelState::Way::to_upstream;
  const TunnelEnd reader = up ? TunnelEnd::client : TunnelEnd::upstream;
  const TunnelEnd writer = up ? TunnelEnd::upstream : TunnelEnd::client;
  std::uint64_t& sent = up ? state->to_upstream : state->to_client;
  auto& buffer = state->buffer(way);
  error_code ec;
  try {
    if (pending.size() > 0) {
      sent += co_await asio::async_write(to, pending, nothrow(ec));
      if (ec) state->close(writer);
    }
    while (!state->closed()) {
      const std::size_t n = co_await from.async_read_some(asio::buffer(buffer), nothrow(ec));
      const error_code read_error = ec;
      if (n > 0 && !state->closed()) {
        state->touch();
        sent += co_await asio::async_write(to, asio::buffer(buffer.data(), n), nothrow(ec));
        if (ec) {
          state->close(writer);
          break;
        }
        state->touch();
      }
      if (read_error || n == 0) state->close(reader);
    }
  } catch (const std::exception&) {
    // (Nothing here throws but an allocation: then the tunnel ends as if
    // the reading side had gone, and the other direction is told.)
    state->close(reader);
  }
  state->direction_done();
}

/// Relays between `client` and `upstream` until either side closes or the
/// tunnel is closed (state->close()); then returns, every operation on both
/// streams ended. `client_pending` / `upstream_pending`: bytes each side
/// sent past its head, already read (written first, to the other side).
template <class ClientStream, class UpstreamStream>
awaitable<void> run_tunnel(std::shared_ptr<TunnelState> state, ClientStream& client, UpstreamStream& upstream,
                           asio::const_buffer client_pending, asio::const_buffer upstream_pending) {
  state->start_idle_timer();
  asio::co_spawn(state->executor(),
                 tunnel_direction(state, upstream, client, TunnelState::Way::to_client, upstream_pending),
                 asio::detached);
  co_await tunnel_direction(state, client, upstream, TunnelState::Way::to_upstream, client_pending);
  co_await state->both_done();
}

#pragma GCC diagnostic pop

}  // namespace userkey::lb::engine
