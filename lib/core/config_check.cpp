// The shared parts of --check-config. See userkey/core/config_check.hpp.
#include "userkey/core/config_check.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <ostream>
#include <system_error>

#include "userkey/core/settings.hpp"

namespace userkey {

namespace {

[[noreturn]] void cannot_open(std::string_view key, const std::string& path, int error) {
  std::string msg(key);
  msg.append(": cannot open log file ").append(path).append(": ").append(std::generic_category().message(error));
  throw ConfigError(msg);
}

}  // namespace

void check_log_file(std::string_view key, const std::string& path) {
  if (path.empty()) return;
  // As a start opens it, less O_CREAT; O_NONBLOCK so a FIFO without a
  // reader fails instead of blocking the check.
  int fd = -1;
  do fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NONBLOCK);
  while (fd < 0 && errno == EINTR);
  if (fd >= 0) {
    ::close(fd);
    return;
  }
  if (errno != ENOENT) cannot_open(key, path, errno);
  // Missing: a start creates it, so its directory must exist and take files.
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) cannot_open(key, path, ENOENT);
  if (::access(dir.c_str(), W_OK | X_OK) != 0) cannot_open(key, path, errno);
}

int report_config_check(std::string_view program, const std::function<std::string()>& check, std::ostream& out,
                        std::ostream& err) {
  try {
    const std::string summary = check();
    out << program << ": configuration OK (" << summary << ")\n";
    return 0;
  } catch (const std::exception& e) {
    err << program << ": invalid configuration: " << e.what() << "\n";
    return kInvalidConfigurationExit;
  }
}

}  // namespace userkey
