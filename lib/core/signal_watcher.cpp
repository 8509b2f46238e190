#include "userkey/core/signal_watcher.hpp"

#include <pthread.h>
#include <signal.h>

namespace userkey {

namespace {
sigset_t watched() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

SignalWatcher::SignalWatcher() {
  const sigset_t set = watched();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A write to a closed peer must be an error code, not a process kill.
  signal(SIGPIPE, SIG_IGN);
}

int SignalWatcher::wait() {
  const sigset_t set = watched();
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

}  // namespace userkey
