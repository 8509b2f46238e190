#include "support/ferretdb.hpp"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace userkey::test {

FerretDb::FerretDb() : port_(free_port()) { start(); }

FerretDb::~FerretDb() { stop(); }

void FerretDb::start() {
  std::filesystem::create_directories(dir_.path() / "data");
  proc_ = ChildProcess({USERKEY_FERRETDB, "--handler=sqlite", "--sqlite-url=file:" + (dir_.path() / "data").string() + "/",
                        "--listen-addr=127.0.0.1:" + std::to_string(port_), "--state-dir=" + dir_.path().string(),
                        "--telemetry=disable", "--debug-addr=-",
                        "--log-level=warn", "--test-enable-new-auth", "--setup-database=admin",
                        std::string("--setup-username=") + kUser, std::string("--setup-password=") + kPassword},
                       dir_.path() / "ferretdb.log");
  if (!wait_for_port(port_, std::chrono::seconds(30)))
    throw std::runtime_error("FerretDB did not start on port " + std::to_string(port_) + ": " + proc_.log());
}

void FerretDb::stop() { proc_.kill(); }

namespace {

/// True once every thread of `pid` is stopped ('T' in /proc/PID/task/*/stat).
bool all_threads_stopped(pid_t pid) {
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  bool any = false;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream in(task.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;  // the thread just exited
    // The state follows the command name, which is in parentheses and may
    // itself hold spaces or parentheses: read after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) return false;
    const char state = line[close + 2];
    if (state != 'T' && state != 't') return false;
    any = true;
  }
  return !ec && any;
}

}  // namespace

// kill(2) only queues SIGSTOP: a thread that is running on another core goes
// on until it next enters the kernel, and a query already on its way can
// still be answered. Tests that "hang the database" then race it, so wait
// until every thread really is stopped.
void FerretDb::pause() {
  proc_.signal(SIGSTOP);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!all_threads_stopped(proc_.pid())) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("FerretDB did not stop within 5 s of SIGSTOP");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void FerretDb::resume() { proc_.signal(SIGCONT); }

void FerretDb::restart() {
  stop();
  start();
}

std::string FerretDb::uri() const { return "mongodb://127.0.0.1:" + std::to_string(port_) + "/"; }

std::string FerretDb::uri_with(const std::string& user, const std::string& password) const {
  return "mongodb://" + user + ":" + password + "@127.0.0.1:" + std::to_string(port_) + "/";
}

}  // namespace userkey::test
