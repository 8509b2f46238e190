// Unit tests for the signal table (lib/core/signal_watcher): what each
// signal means, and that the watcher takes them all.
#include <doctest/doctest.h>

#include <csignal>
#include <string>

#include "userkey/core/signal_watcher.hpp"

TEST_CASE("signal table: stop, reload, reopen_logs, and the rest ignored") {
  using userkey::SignalAction;
  for (int sig : {SIGTERM, SIGINT, SIGQUIT}) CHECK(userkey::signal_action(sig) == SignalAction::stop);
  CHECK(userkey::signal_action(SIGHUP) == SignalAction::reload);
  CHECK(userkey::signal_action(SIGUSR1) == SignalAction::reopen_logs);
  for (int sig : {SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU}) CHECK(userkey::signal_action(sig) == SignalAction::ignore);
  CHECK(userkey::watched_signals().size() == 9);
  for (int sig : userkey::watched_signals()) CHECK(std::string(userkey::signal_name(sig)).rfind("SIG", 0) == 0);
  CHECK(std::string(userkey::signal_name(SIGQUIT)) == "SIGQUIT");
}
