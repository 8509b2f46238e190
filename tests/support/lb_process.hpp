// Test support: a real userkey-lb process on free 127.0.0.1 ports (its
// listener and its admin endpoint). The constructor waits until it accepts
// connections (a doctest REQUIRE failure with its log otherwise); it is
// stopped (SIGTERM) at destruction.
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace userkey::test {

struct LbProcess {
  TempDir dir;
  std::uint16_t port = free_port();
  std::uint16_t admin = free_port();
  ChildProcess proc;

  /// `args` follow `--listen 127.0.0.1:PORT --admin 127.0.0.1:ADMIN`.
  explicit LbProcess(const std::vector<std::string>& args) {
    std::vector<std::string> argv{USERKEY_LB_BIN, "--listen", "127.0.0.1:" + std::to_string(port), "--admin",
                                  "127.0.0.1:" + std::to_string(admin)};
    argv.insert(argv.end(), args.begin(), args.end());
    proc = ChildProcess(argv, dir.path() / "lb.log");
    REQUIRE_MESSAGE(wait_for_port(port, std::chrono::seconds(10)), proc.log());
  }

  std::string metrics() const { return http_get(admin, "/metrics").body; }

  /// The value of one metric line (`name` with its labels), or -1.
  long long metric(const std::string& name) const {
    const std::string text = metrics();
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(text.substr(at + name.size() + 2));
  }

  /// Resident set size of the process, KiB (VmRSS in /proc/PID/status), or -1.
  long rss_kib() const {
    std::ifstream status("/proc/" + std::to_string(proc.pid()) + "/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
  }
};

}  // namespace userkey::test
