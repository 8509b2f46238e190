#include "userkey/core/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

namespace userkey {

namespace {

constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";
constexpr std::size_t kQueueLines = 8192;

// An async logger with its own writer thread (no spdlog globals). The logger
// keeps only a weak reference to its thread pool, so the pair lives here and
// the returned pointer aliases the logger while owning both. The logger must
// itself be owned by a shared_ptr (it posts shared_from_this() with every
// line). Destruction drops the logger reference first, then the pool, whose
// thread writes what is still queued before it stops.
struct AsyncLoggerWithPool {
  AsyncLoggerWithPool(const std::string& name, spdlog::sink_ptr sink)
      : pool(std::make_shared<spdlog::details::thread_pool>(kQueueLines, 1)),
        logger(std::make_shared<spdlog::async_logger>(name, std::move(sink), pool,
                                                      spdlog::async_overflow_policy::overrun_oldest)) {}
  std::shared_ptr<spdlog::details::thread_pool> pool;
  std::shared_ptr<spdlog::async_logger> logger;
};

std::shared_ptr<spdlog::logger> logger_with_sink(const std::string& name, spdlog::sink_ptr sink, LogDelivery delivery) {
  if (delivery == LogDelivery::async) {
    auto holder = std::make_shared<AsyncLoggerWithPool>(name, std::move(sink));
    return std::shared_ptr<spdlog::logger>(holder, holder->logger.get());
  }
  return std::make_shared<spdlog::logger>(name, std::move(sink));
}

}  // namespace

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::string& level,
                                            LogDelivery delivery) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    throw std::invalid_argument("unknown log level '" + level + "' (trace, debug, info, warn, error, critical, off)");
  auto logger = logger_with_sink(name, std::make_shared<spdlog::sinks::stderr_sink_mt>(), delivery);
  logger->set_level(lvl);
  logger->set_pattern(kPattern);
  logger->flush_on(spdlog::level::info);
  return logger;
}

std::shared_ptr<spdlog::logger> make_line_logger(const std::string& name, LogDelivery delivery) {
  auto logger = logger_with_sink(name, std::make_shared<spdlog::sinks::stdout_sink_mt>(), delivery);
  logger->set_level(spdlog::level::info);
  logger->set_pattern("%v");
  logger->flush_on(spdlog::level::info);
  return logger;
}

}  // namespace userkey
