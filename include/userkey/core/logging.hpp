// The one logger set-up of the apps: a named spdlog logger writing to stderr.
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
  /// Lines go through a bounded queue to a writer thread owned by the
  /// logger, so an event loop never blocks on a slow stderr. The writer
  /// sends what has collected in one write(2) whenever the queue runs empty
  /// (so a line is out as soon as the writer is idle). When the queue is
  /// full the oldest queued lines are dropped rather than stall.
  async,
};

/// A logger called `name` writing to stderr at `level` ("trace", "debug",
/// "info", "warn", "error", "critical", "off"). Throws std::invalid_argument
/// for an unknown level. Not registered globally: it lives as long as the
/// returned pointer (with `async`, queued lines are written before it goes).
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::string& level = "info",
                                            LogDelivery delivery = LogDelivery::sync);

/// A logger called `name` that writes each message as it is, one per line,
/// to standard output, at level info: for lines read by machines (the lb's
/// JSON access log), which carry their own time and fields.
std::shared_ptr<spdlog::logger> make_line_logger(const std::string& name, LogDelivery delivery = LogDelivery::async);

}  // namespace userkey
