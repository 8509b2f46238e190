#include "userkey/core/signal_watcher.hpp"

#include <pthread.h>
#include <signal.h>

#include <array>

namespace userkey {

namespace {

constexpr std::array<int, 9> kWatched{SIGTERM, SIGINT,  SIGQUIT, SIGHUP, SIGUSR1,
                                      SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU};

sigset_t watched_set() {
  sigset_t set;
  sigemptyset(&set);
  for (const int sig : kWatched) sigaddset(&set, sig);
  return set;
}

}  // namespace

std::span<const int> watched_signals() { return kWatched; }

SignalAction signal_action(int sig) {
  switch (sig) {
    case SIGTERM:
    case SIGINT:
    case SIGQUIT:
      return SignalAction::stop;
    case SIGHUP:
      return SignalAction::reload;
    case SIGUSR1:
      return SignalAction::reopen_logs;
    default:
      return SignalAction::ignore;
  }
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGHUP: return "SIGHUP";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGWINCH: return "SIGWINCH";
    case SIGTTIN: return "SIGTTIN";
    case SIGTTOU: return "SIGTTOU";
    case SIGPIPE: return "SIGPIPE";
    default: return "signal not in the table";
  }
}

SignalWatcher::SignalWatcher() {
  const sigset_t set = watched_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A write to a closed peer must be an error code, not a process kill.
  signal(SIGPIPE, SIG_IGN);
}

int SignalWatcher::wait() {
  const sigset_t set = watched_set();
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

}  // namespace userkey
