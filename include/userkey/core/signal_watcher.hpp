// SignalWatcher: turns the signals of the library's signal table into a
// value a thread waits for, instead of async handlers.
//
// Construct it in main() before starting any thread: it blocks every signal
// of the table in the calling thread, and threads created afterwards inherit
// the mask, so only wait() ever receives them. None of them can then kill
// the process or stop it: each is either acted on by the signal loop
// (userkey/core/signal_loop.hpp) or ignored there. SIGPIPE is ignored
// process-wide (a write to a closed peer is an error code).
//
// The table, the one nginx and HAProxy operators expect of a server:
//
//   SIGTERM, SIGINT, SIGQUIT         stop: drain in-flight requests, exit
//   SIGHUP                           reload the configuration
//   SIGUSR1                          reopen the log files (logrotate)
//   SIGUSR2, SIGWINCH, SIGTTIN,      ignored (nginx's binary upgrade and
//   SIGTTOU                          worker stop, HAProxy's listener pause
//                                    and resume): never fatal
#pragma once

#include <span>

namespace userkey {

/// What the signal loop does with a signal.
enum class SignalAction {
  stop,         ///< SIGTERM, SIGINT, SIGQUIT
  reload,       ///< SIGHUP
  reopen_logs,  ///< SIGUSR1
  ignore,       ///< SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU (and any signal not in the table)
};

/// Every signal of the table, in the order above.
std::span<const int> watched_signals();
/// What the table says for `sig`; `ignore` for a signal not in it.
SignalAction signal_action(int sig);
/// "SIGUSR1", ... for a signal of the table (and SIGPIPE); "signal not in the
/// table" otherwise.
const char* signal_name(int sig);

class SignalWatcher {
public:
  /// Blocks the table's signals in the calling thread; ignores SIGPIPE.
  SignalWatcher();
  /// Blocks until a signal of the table arrives; returns its number.
  int wait();
};

}  // namespace userkey
