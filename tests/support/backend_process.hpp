// Test support: a real userkey-backend process on a free 127.0.0.1 port.
// The constructor waits until it accepts connections (a doctest REQUIRE
// failure with its log otherwise); it is stopped (SIGTERM) at destruction.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace userkey::test {

struct BackendProcess {
  TempDir dir;
  std::uint16_t port;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  ChildProcess proc;

  /// `args` follow `--listen 127.0.0.1:PORT`.
  explicit BackendProcess(std::vector<std::string> a, std::map<std::string, std::string> e = {})
      : port(free_port()), args(std::move(a)), env(std::move(e)) {
    // Some tests kill a backend outright; a killed process would leave its
    // mongo-c-driver counters segment in /dev/shm. Nobody reads them here.
    env.try_emplace("MONGOC_DISABLE_SHM", "1");
    start();
  }

  /// (Re)starts the process on the same port with the same arguments.
  void start() {
    std::vector<std::string> argv{USERKEY_BACKEND_BIN, "--listen", "127.0.0.1:" + std::to_string(port)};
    argv.insert(argv.end(), args.begin(), args.end());
    proc = ChildProcess(argv, dir.path() / "backend.log", env);
    REQUIRE_MESSAGE(wait_for_port(port, std::chrono::seconds(10)), proc.log());
  }

  /// "127.0.0.1:PORT", as an lb upstream.
  std::string upstream() const { return "127.0.0.1:" + std::to_string(port); }
};

}  // namespace userkey::test
