// The signal loop of a service, following the table of
// userkey/core/signal_watcher.hpp: SIGHUP = reload, SIGUSR1 = reopen_logs,
// SIGTERM / SIGINT / SIGQUIT = stop, SIGUSR2 / SIGWINCH / SIGTTIN / SIGTTOU =
// ignored (told to `ignored`, the loop goes on). Shared by the apps and
// available to programs embedding the library.
//
//   userkey::SignalWatcher signals;  // first thing in main(), before any thread
//   ... start serving ...
//   userkey::run_signal_loop(signals, {.reload = [&] { server.reload(load_config()); },
//                                      .reopen_logs = [&] { userkey::reopen_log_files(*log); },
//                                      .stop = [&](int) { server.drain(); }});
//   return 0;
//
// or, when the main thread is the one serving (BackendServer::run()):
//
//   userkey::SignalLoopThread loop(signals, {.stop = [&](int) { server.stop(); }});
//   server.run(router);
//   loop.cancel();  // serving ended without a signal: end the loop too
//
// Threads: the handlers run one at a time on the loop's thread (the caller
// of run_signal_loop(), or SignalLoopThread's own thread), never in signal
// context, so they may lock, log and block. They must not throw: the loop
// does not catch (on a SignalLoopThread an exception ends the program).
#pragma once

#include <atomic>
#include <functional>
#include <thread>

#include "userkey/core/signal_watcher.hpp"

namespace userkey {

struct SignalHandlers {
  /// Called for each SIGHUP; empty = SIGHUP is ignored.
  std::function<void()> reload = {};
  /// Called for each SIGUSR1; empty = SIGUSR1 is ignored.
  std::function<void()> reopen_logs = {};
  /// Called once with SIGTERM, SIGINT or SIGQUIT; the loop ends when it
  /// returns.
  std::function<void(int signal)> stop = {};
  /// Called for each signal the table ignores (SIGUSR2, SIGWINCH, SIGTTIN,
  /// SIGTTOU), e.g. to log it; the loop goes on either way.
  std::function<void(int signal)> ignored = {};
};

/// Waits for signals on the calling thread and calls `handlers`, until a
/// stop signal; returns its number.
int run_signal_loop(SignalWatcher& signals, const SignalHandlers& handlers);

/// run_signal_loop() on a thread of its own.
class SignalLoopThread {
public:
  SignalLoopThread(SignalWatcher& signals, SignalHandlers handlers);
  /// cancel().
  ~SignalLoopThread();
  SignalLoopThread(const SignalLoopThread&) = delete;
  SignalLoopThread& operator=(const SignalLoopThread&) = delete;

  /// Ends the loop if it is still waiting, without calling `stop`, and
  /// joins it. Safe to call more than once, from any thread but the loop's.
  void cancel();
  /// Delivers `sig` (a signal of the table) to the loop as if it came from
  /// outside, e.g. a reload asked for over an admin endpoint.
  void send(int sig);
  /// The stop signal that ended the loop, or 0 (still running or cancelled).
  int stopped_by() const { return stopped_by_.load(); }

private:
  std::atomic<bool> cancelled_{false};
  std::atomic<int> stopped_by_{0};
  std::thread thread_;
};

}  // namespace userkey
