// The one logger set-up of the apps: a named spdlog logger writing to stderr,
// or to a file that reopen_log_files() opens again after logrotate moved it
// (SIGUSR1 in the apps: userkey/core/signal_loop.hpp).
#pragma once

#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace userkey {

enum class LogDelivery {
  /// The calling thread writes each line (simple; fine for thread-per-
  /// connection servers).
  sync,
  /// The calling thread formats each line into a buffer and a writer thread
  /// owned by the logger sends the buffer in one write(2): at once when the
  /// last write is 50 ms old or more, else when it is (at once for a warning
  /// or worse, or once 64 KiB wait). An event loop never blocks on a slow
  /// stderr, a quiet server's lines appear as they are logged, and a busy
  /// one pays no thread wake-up and no system call per line. Beyond 8 MiB of
  /// unwritten text, new lines are dropped, and how many is logged once
  /// there is room.
  async,
};

/// A logger called `name` writing to stderr at `level` ("trace", "debug",
/// "info", "warn", "error", "critical", "off"), or, when `file` is not
/// empty, to that file, opened for appending (created with mode 0644 less
/// the umask when missing). Throws std::invalid_argument for an unknown
/// level, std::system_error when the file cannot be opened. Not registered
/// globally: it lives as long as the returned pointer (with `async`,
/// buffered lines are written before it goes, and `flush()` writes them at
/// once).
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::string& level = "info",
                                            LogDelivery delivery = LogDelivery::sync, const std::string& file = {});

/// A logger called `name` that writes each message as it is, one per line,
/// to standard output (or `file`, as make_logger), at level info: for lines
/// read by machines (the lb's JSON access log), which carry their own time
/// and fields.
std::shared_ptr<spdlog::logger> make_line_logger(const std::string& name, LogDelivery delivery = LogDelivery::async,
                                                 const std::string& file = {});

/// Opens again, at the same path, every file a sink of `log` writes to (the
/// sinks make_logger / make_line_logger made with a `file`; other sinks are
/// left alone): after `mv app.log app.log.1`, lines logged before the call
/// end in app.log.1, lines logged after in a new app.log, none lost or cut
/// in two, even with LogDelivery::async. Safe from any thread while others
/// log. A file that cannot be opened (e.g. its directory is gone) keeps its
/// sink writing to the old one: returns false with `error` set (the first
/// failure), true otherwise.
bool reopen_log_files(spdlog::logger& log, std::string* error = nullptr);

}  // namespace userkey
