// What an accept loop does when accept() fails (private to the library:
// shared by the backend's server and the lb's listener).
//
// Owns: sorting an accept error into "the acceptor was closed" (stop),
// "the acceptor is unusable" (fatal), "that one connection died in the
// backlog" (accept the next one at once) and everything else, first of all
// "the process or the kernel is out of descriptors or memory" (EMFILE,
// ENFILE, ENOBUFS, ENOMEM: pause, then accept again, never spin); logging an episode of failures once, when it begins,
// and once more when accepting works again.
//
// Leaves to others: the loop itself (accept_loop.hpp), what is done with an
// accepted connection.
#pragma once

#include <boost/system/error_code.hpp>

#include <chrono>
#include <string>

namespace spdlog {
class logger;
}

namespace userkey::net {

enum class AcceptFailure {
  stop,        ///< the acceptor was closed (stopping): end the loop quietly
  fatal,       ///< the acceptor is unusable: end the loop, logged
  next,        ///< one connection failed (aborted in the backlog): accept again now
  pause,       ///< out of descriptors or memory (or unknown): pause, then accept again
};

/// How `ec` from accept() is handled; `acceptor_open`: whether the acceptor
/// is still open (a closed one always means stop).
AcceptFailure classify_accept_error(const boost::system::error_code& ec, bool acceptor_open);

/// One accept loop's failure episodes. Not thread-safe: the loop's own.
class AcceptBackoff {
public:
  static constexpr std::chrono::milliseconds kPause{50};

  /// `log` may be null (nothing logged); `what` names the listener in the
  /// log lines (e.g. "listen address").
  AcceptBackoff(spdlog::logger* log, std::string what);

  /// An accept failed with `ec`; logs the start of an episode or a fatal
  /// error, and returns what the loop does next.
  AcceptFailure failed(const boost::system::error_code& ec, bool acceptor_open);
  /// An accept succeeded: ends an episode (logged).
  void succeeded();
  /// Whether accepts are failing (an episode of pauses is under way).
  bool backing_off() const { return backing_off_; }
  spdlog::logger* log() const { return log_; }

private:
  spdlog::logger* log_;
  std::string what_;
  bool backing_off_ = false;
};

}  // namespace userkey::net
