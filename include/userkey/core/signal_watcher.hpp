// SignalWatcher: turns SIGINT / SIGTERM / SIGHUP into a value a thread waits
// for, instead of async handlers.
//
// Construct it in main() before starting any thread: it blocks those signals
// in the calling thread, and threads created afterwards inherit the mask, so
// only wait() ever receives them.
#pragma once

namespace userkey {

class SignalWatcher {
public:
  SignalWatcher();
  /// Blocks until SIGINT, SIGTERM or SIGHUP arrives; returns its number.
  int wait();
};

}  // namespace userkey
