// Test support: child processes on 127.0.0.1, free ports, temp dirs, HTTP.
// Every process a test starts is killed and reaped by its owner's destructor,
// so a failing test leaves nothing running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace userkey::test {

/// A port on 127.0.0.1 that was free a moment ago (bound, then closed), below
/// the kernel's ephemeral range so no outgoing connection takes it meanwhile.
std::uint16_t free_port();

/// A fresh directory under the system temp dir, removed at destruction.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

private:
  std::filesystem::path path_;
};

class ChildProcess {
public:
  ChildProcess() = default;
  /// Starts argv[0] with argv; stdout goes to `log_file`, and so does stderr
  /// unless `stderr_file` is given. `env` entries are added to (or override)
  /// the current environment; an empty value removes the variable.
  ChildProcess(std::vector<std::string> argv, std::filesystem::path log_file,
               std::map<std::string, std::string> env = {}, std::filesystem::path stderr_file = {});
  /// stop(): a process still running is asked to exit like an operator would.
  ~ChildProcess();
  ChildProcess(ChildProcess&& o) noexcept;
  ChildProcess& operator=(ChildProcess&& o) noexcept;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  /// Waits for exit up to `timeout`; the exit status (as from waitpid's
  /// WEXITSTATUS, or 128+signal) or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  /// SIGKILL and reap: a crash, as far as the process can tell.
  void kill();
  /// SIGTERM, up to `grace` for the process to exit, then SIGKILL; reaps.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(3));
  std::string log() const;

private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path log_file_;
};

/// The whole of a file ("" when it cannot be read).
std::string read_text_file(const std::filesystem::path& path);

/// How a program run to its exit went: its status (-1: still running after
/// the wait, then killed) and its stdout and stderr apart.
struct RunOutcome {
  int rc = -1;
  std::string out, err;
};

/// Runs `argv` with `env` added to the environment until it exits (30 s at
/// most).
RunOutcome run_to_exit(const std::vector<std::string>& argv, std::map<std::string, std::string> env = {});
/// Whether `path` holds `text` now.
bool file_contains(const std::filesystem::path& path, const std::string& text);

/// True once something accepts TCP connections on 127.0.0.1:port.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout);

struct HttpResult {
  int status = 0;  ///< 0 when no response arrived
  std::string body;
  std::map<std::string, std::string> headers;  ///< lower-cased names
};

/// One GET to 127.0.0.1:port with optional extra headers.
HttpResult http_get(std::uint16_t port, const std::string& target,
                    const std::map<std::string, std::string>& headers = {},
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

/// Polls `condition` every `step` until it holds (true) or `timeout` passes (false).
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(50)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
  return true;
}

/// Polls `target` until it answers `status`, up to `timeout`.
bool wait_for_status(std::uint16_t port, const std::string& target, int status, std::chrono::milliseconds timeout);

/// Path of the committed embedded dump.
std::filesystem::path dump_dir();

}  // namespace userkey::test

namespace userkey::test {

/// Sends `bytes` as-is on a new connection to 127.0.0.1:port and returns
/// everything read until the peer closes or `timeout` passes.
std::string raw_exchange(std::uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

/// The status code of the first response in `raw` ("HTTP/1.1 431 ..."), or 0.
int status_of(const std::string& raw);

}  // namespace userkey::test

namespace userkey::test {

/// A TCP connection to 127.0.0.1:port that stays open until destroyed.
/// A TCP connection to 127.0.0.1:`port`: its descriptor (the caller closes
/// it), or -1 when the connect failed.
int connect_loopback(std::uint16_t port);

class RawConnection {
public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool connected() const { return fd_ >= 0; }
  void send(const std::string& bytes);
  /// What arrives within `timeout` (returns early once something came).
  std::string receive(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

private:
  int fd_ = -1;
};

}  // namespace userkey::test
