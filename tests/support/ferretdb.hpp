// Test support: a real FerretDB (MongoDB wire protocol, SQLite storage) on a
// free 127.0.0.1 port, with authentication on. The user is created in the
// `admin` database (authSource=admin, as MongoRepository defaults to);
// FerretDB 1.x has no roles, so it can read and write `myusers`. Stopped and
// its data removed at destruction.
#pragma once

#include <cstdint>
#include <string>

#include "support/process.hpp"

namespace userkey::test {

class FerretDb {
public:
  static constexpr const char* kUser = "userkey";
  static constexpr const char* kPassword = "s3cret-pass";

  /// Starts FerretDB and waits until it accepts connections; throws on failure.
  FerretDb();
  ~FerretDb();

  std::uint16_t port() const { return port_; }
  /// URI without credentials (they come from MongoConfig / env).
  std::string uri() const;
  /// URI with the given credentials and authSource=admin... as given.
  std::string uri_with(const std::string& user, const std::string& password) const;

  void stop();     ///< SIGKILL (a crash, as far as clients can tell)
  void restart();  ///< start again on the same port and data
  /// SIGSTOP: a hung server. Connections are still accepted (by the kernel),
  /// nothing is answered.
  void pause();
  void resume();  ///< SIGCONT

private:
  void start();
  TempDir dir_;
  std::uint16_t port_;
  ChildProcess proc_;
};

}  // namespace userkey::test
