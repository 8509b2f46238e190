// Unit tests for the signal loop: SIGHUP calls reload, SIGUSR1 reopen_logs,
// SIGTERM / SIGINT / SIGQUIT call stop once and end the loop, SIGUSR2 /
// SIGWINCH / SIGTTIN / SIGTTOU are handed to `ignored` and the loop goes on;
// cancel() ends it without calling stop. Signals
// are sent to the loop's thread alone (pthread_kill), never to the process.
#include <doctest/doctest.h>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "userkey/core/signal_loop.hpp"

using namespace std::chrono_literals;
using userkey::test::eventually;

namespace {

// SignalWatcher blocks the signals in the calling thread; give the test
// runner its mask back afterwards.
struct RestoreMask {
  sigset_t old;
  RestoreMask() { pthread_sigmask(SIG_SETMASK, nullptr, &old); }
  ~RestoreMask() { pthread_sigmask(SIG_SETMASK, &old, nullptr); }
};

}  // namespace

TEST_CASE("SignalLoopThread: SIGHUP reloads, SIGTERM stops once and ends the loop") {
  RestoreMask mask;
  userkey::SignalWatcher signals;
  std::atomic<int> reloads{0}, stops{0}, stop_signal{0};
  std::atomic<std::thread::id> handler_thread{};
  userkey::SignalLoopThread loop(signals, {.reload =
                                               [&] {
                                                 handler_thread = std::this_thread::get_id();
                                                 ++reloads;
                                               },
                                           .stop =
                                               [&](int sig) {
                                                 ++stops;
                                                 stop_signal = sig;
                                               }});
  loop.send(SIGHUP);
  REQUIRE(eventually([&] { return reloads.load() == 1; }, 2s));
  loop.send(SIGHUP);
  REQUIRE(eventually([&] { return reloads.load() == 2; }, 2s));
  CHECK(handler_thread.load() != std::this_thread::get_id());
  CHECK(loop.stopped_by() == 0);
  loop.send(SIGTERM);
  REQUIRE(eventually([&] { return stops.load() == 1; }, 2s));
  CHECK(stop_signal == SIGTERM);
  CHECK(loop.stopped_by() == SIGTERM);
  loop.send(SIGHUP);  // the loop has ended: nothing more is called
  loop.cancel();
  CHECK(stops == 1);
  CHECK(reloads == 2);
}

TEST_CASE("SignalLoopThread: cancel() ends a waiting loop without calling stop") {
  RestoreMask mask;
  userkey::SignalWatcher signals;
  std::atomic<int> stops{0};
  {
    userkey::SignalLoopThread loop(signals, {.stop = [&](int) { ++stops; }});
    loop.send(SIGHUP);  // no reload handler: ignored
    loop.cancel();
    CHECK(loop.stopped_by() == 0);
    loop.cancel();  // again: nothing to do
  }
  CHECK(stops == 0);
}

TEST_CASE("run_signal_loop runs the handlers on the calling thread and returns the stop signal") {
  RestoreMask mask;
  userkey::SignalWatcher signals;
  std::atomic<int> reloads{0};
  std::atomic<int> result{0};
  std::atomic<bool> same_thread{true};
  std::thread t([&] {
    const auto self = std::this_thread::get_id();
    result = userkey::run_signal_loop(signals, {.reload =
                                                    [&] {
                                                      same_thread = same_thread && std::this_thread::get_id() == self;
                                                      ++reloads;
                                                    },
                                                .stop = [&](int) {
                                                  same_thread = same_thread && std::this_thread::get_id() == self;
                                                }});
  });
  pthread_kill(t.native_handle(), SIGHUP);
  REQUIRE(eventually([&] { return reloads.load() == 1; }, 2s));
  pthread_kill(t.native_handle(), SIGINT);
  t.join();
  CHECK(result == SIGINT);
  CHECK(same_thread);
}

TEST_CASE("SignalLoopThread: each signal of the table reaches its handler; ignored ones do not end the loop") {
  RestoreMask mask;
  userkey::SignalWatcher signals;
  std::atomic<int> reloads{0}, reopens{0}, stops{0}, stop_signal{0};
  std::mutex mu;
  std::vector<int> ignored;
  userkey::SignalLoopThread loop(signals, {.reload = [&] { ++reloads; },
                                           .reopen_logs = [&] { ++reopens; },
                                           .stop =
                                               [&](int sig) {
                                                 ++stops;
                                                 stop_signal = sig;
                                               },
                                           .ignored =
                                               [&](int sig) {
                                                 const std::lock_guard lock(mu);
                                                 ignored.push_back(sig);
                                               }});
  auto ignored_count = [&] {
    const std::lock_guard lock(mu);
    return ignored.size();
  };
  std::size_t expected = 0;
  for (int sig : {SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU}) {
    loop.send(sig);
    ++expected;
    REQUIRE(eventually([&] { return ignored_count() == expected; }, 2s));
  }
  loop.send(SIGUSR1);
  REQUIRE(eventually([&] { return reopens.load() == 1; }, 2s));
  loop.send(SIGHUP);
  REQUIRE(eventually([&] { return reloads.load() == 1; }, 2s));
  CHECK(loop.stopped_by() == 0);  // none of those ended it
  {
    const std::lock_guard lock(mu);
    CHECK(ignored == std::vector<int>{SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU});
  }
  loop.send(SIGQUIT);
  REQUIRE(eventually([&] { return stops.load() == 1; }, 2s));
  CHECK(stop_signal == SIGQUIT);
  CHECK(loop.stopped_by() == SIGQUIT);
  loop.cancel();
  CHECK(reopens == 1);
  CHECK(reloads == 1);
}

TEST_CASE("SignalLoopThread: without handlers, SIGUSR1 and the ignored signals change nothing") {
  RestoreMask mask;
  userkey::SignalWatcher signals;
  std::atomic<int> stops{0};
  userkey::SignalLoopThread loop(signals, {.stop = [&](int) { ++stops; }});
  for (int sig : {SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU, SIGHUP}) loop.send(sig);
  loop.send(SIGINT);
  REQUIRE(eventually([&] { return stops.load() == 1; }, 2s));
  CHECK(loop.stopped_by() == SIGINT);
}
