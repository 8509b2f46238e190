// The listening socket and the accept loop.
//
// Owns: binding the proxy's address (SO_REUSEADDR, never SO_REUSEPORT, so a
// second process can never silently share the port), accepting on the first
// loop in batches (up to 64 per wakeup, without going back through the event
// queue for each), counting accepted connections and handing each to the
// next loop in turn, by descriptor when that loop is another one.
//
// Leaves to others: serving a connection (worker, downstream_session).
#pragma once

#include "io_types.hpp"

#include <cstdint>
#include <memory>
#include <span>

#include "userkey/lb/proxy_metrics.hpp"

namespace userkey::lb::engine {

class Worker;

class Listener {
public:
  /// Accepts on `home`'s loop; hands connections to `loops` in turn (they
  /// outlive the listener).
  Listener(Worker& home, std::span<const std::unique_ptr<Worker>> loops, ProxyStats& stats);

  /// Opens, binds and listens (backlog 4096).
  error_code listen(const tcp::endpoint& endpoint);
  std::uint16_t port() const;
  /// Spawns the accept loop on the home loop.
  void start();
  /// Stops accepting; on the home loop's thread.
  void close();

private:
  static constexpr int kAcceptBatch = 64;

  awaitable<void> accept_loop();
  void dispatch(Socket sock, std::size_t& next, const tcp& protocol);

  Worker& home_;
  std::span<const std::unique_ptr<Worker>> loops_;
  ProxyStats& stats_;
  Acceptor acceptor_;
};

}  // namespace userkey::lb::engine
