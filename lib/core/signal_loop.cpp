// The signal loop. See userkey/core/signal_loop.hpp.
#include "userkey/core/signal_loop.hpp"

#include <pthread.h>

#include <csignal>

namespace userkey {

namespace {

// The loop itself; `cancelled` (may be null) ends it without calling stop.
int loop(SignalWatcher& signals, const SignalHandlers& handlers, const std::atomic<bool>* cancelled,
         std::atomic<int>* stopped_by) {
  for (;;) {
    const int sig = signals.wait();
    if (cancelled != nullptr && cancelled->load()) return 0;
    const SignalAction action = signal_action(sig);
    if (action == SignalAction::reload) {
      if (handlers.reload) handlers.reload();
      continue;
    }
    if (action == SignalAction::reopen_logs) {
      if (handlers.reopen_logs) handlers.reopen_logs();
      continue;
    }
    if (action == SignalAction::ignore) {
      if (handlers.ignored) handlers.ignored(sig);
      continue;
    }
    if (stopped_by != nullptr) stopped_by->store(sig);
    if (handlers.stop) handlers.stop(sig);
    return sig;
  }
}

}  // namespace

int run_signal_loop(SignalWatcher& signals, const SignalHandlers& handlers) {
  return loop(signals, handlers, nullptr, nullptr);
}

SignalLoopThread::SignalLoopThread(SignalWatcher& signals, SignalHandlers handlers) {
  // The new thread must start with the signals blocked, whichever thread
  // creates it, or one could arrive before it waits.
  sigset_t set, old;
  sigemptyset(&set);
  for (const int sig : watched_signals()) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  thread_ = std::thread([this, &signals, h = std::move(handlers)] { loop(signals, h, &cancelled_, &stopped_by_); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

SignalLoopThread::~SignalLoopThread() { cancel(); }

void SignalLoopThread::cancel() {
  if (!thread_.joinable()) return;
  cancelled_.store(true);
  // Wake the wait; a loop already stopping just finishes its handler. The
  // signal is directed at that one thread, where it is blocked and waited for.
  if (stopped_by_.load() == 0) pthread_kill(thread_.native_handle(), SIGTERM);
  thread_.join();
}

void SignalLoopThread::send(int sig) {
  if (thread_.joinable()) pthread_kill(thread_.native_handle(), sig);
}

}  // namespace userkey
