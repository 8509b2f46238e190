#include "support/ferretdb.hpp"

#include <signal.h>

#include <stdexcept>

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

void FerretDb::pause() { proc_.signal(SIGSTOP); }

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
