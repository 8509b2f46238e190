// The listening socket and the accept loop.
//
// Owns: binding the proxy's address (SO_REUSEADDR, never SO_REUSEPORT, so a
// second process can never silently share the port), accepting on the first
// loop in batches (up to 64 per wakeup, without going back through the event
// queue for each), counting accepted connections and handing each to its
// hand-off; staying up through accept errors (out of descriptors: logged
// once, paused and retried) and exceptions out of the hand-off (logged, the
// connection lost, accepting goes on). The loop and its backoff are the
// shared ones of lib/net (accept_loop.hpp), run with a batch of 64.
//
// Leaves to others: choosing the loop that serves a connection
// (`hand_to_loops`, worker.hpp), serving it (worker, downstream_session).
#pragma once

#include "io_types.hpp"

#include <cstdint>
#include <functional>

#include "net/accept_backoff.hpp"
#include "userkey/lb/proxy_metrics.hpp"

namespace spdlog {
class logger;
}

namespace userkey::lb::engine {

class Listener {
public:
  /// Takes an accepted connection; called on `io`'s thread. An exception it
  /// throws loses that connection only.
  using HandOff = std::function<void(Socket, const tcp&)>;

  /// Accepts on `io` (which, like `stats` and `log`, outlives the listener).
  Listener(asio::io_context& io, HandOff hand_off, ProxyStats& stats, spdlog::logger& log);

  /// Opens, binds and listens (backlog 4096).
  error_code listen(const tcp::endpoint& endpoint);
  std::uint16_t port() const;
  /// Spawns the accept loop on the home loop.
  void start();
  /// Stops accepting (taking what the backlog holds first); on the home
  /// loop's thread.
  void close();

private:
  static constexpr int kAcceptBatch = 64;

  awaitable<void> accept_loop();
  void dispatch(Socket sock, const tcp& protocol);

  asio::io_context& io_;
  HandOff hand_off_;
  ProxyStats& stats_;
  spdlog::logger& log_;
  Acceptor acceptor_;
  net::AcceptBackoff backoff_;  // accepts are failing: logged once until one succeeds
};

}  // namespace userkey::lb::engine
