#include "userkey/core/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <mutex>
#include <stdexcept>

#include <unistd.h>

namespace userkey {

namespace {

constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";
constexpr std::size_t kQueueLines = 8192;
constexpr std::size_t kBatchBytes = 64 * 1024;

// The async writer thread's sink: lines collect in memory and go to `fd` in
// one write(2) once the queue behind them is empty (or kBatchBytes are
// waiting). At rest every line is written as it arrives; under load one
// system call carries many lines, where spdlog's stdout/stderr sinks make one
// call and one flush per line.
class BatchingFdSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  BatchingFdSink(int fd, const spdlog::details::thread_pool& pool) : fd_(fd), pool_(pool) {}
  ~BatchingFdSink() override {
    const std::lock_guard lock(mutex_);
    write_out();
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    formatter_->format(msg, pending_);
    // (queue_size() is not const in spdlog 1.10, though it only reads.)
    if (pending_.size() >= kBatchBytes || const_cast<spdlog::details::thread_pool&>(pool_).queue_size() == 0)
      write_out();
  }
  void flush_() override { write_out(); }

private:
  void write_out() {
    const char* p = pending_.data();
    std::size_t left = pending_.size();
    while (left > 0) {
      const auto n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the stream is gone: nothing better to do with the lines
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    pending_.clear();
  }

  int fd_;
  const spdlog::details::thread_pool& pool_;
  spdlog::memory_buf_t pending_;
};

// An async logger with its own writer thread (no spdlog globals). The logger
// keeps only a weak reference to its thread pool, so the pair lives here and
// the returned pointer aliases the logger while owning both. The logger must
// itself be owned by a shared_ptr (it posts shared_from_this() with every
// line). Destruction drops the logger reference first, then the pool, whose
// thread writes what is still queued before it stops.
struct AsyncLoggerWithPool {
  AsyncLoggerWithPool(const std::string& name, int fd)
      : pool(std::make_shared<spdlog::details::thread_pool>(kQueueLines, 1)),
        logger(std::make_shared<spdlog::async_logger>(name, std::make_shared<BatchingFdSink>(fd, *pool), pool,
                                                      spdlog::async_overflow_policy::overrun_oldest)) {}
  std::shared_ptr<spdlog::details::thread_pool> pool;
  std::shared_ptr<spdlog::async_logger> logger;
};

// Async: no flush_on, as each flush would be one more message through the
// queue (the sink writes whenever the queue runs empty). Sync: each line is
// flushed as it is written.
std::shared_ptr<spdlog::logger> logger_with_sink(const std::string& name, int fd, LogDelivery delivery) {
  if (delivery == LogDelivery::async) {
    auto holder = std::make_shared<AsyncLoggerWithPool>(name, fd);
    return std::shared_ptr<spdlog::logger>(holder, holder->logger.get());
  }
  spdlog::sink_ptr sink;
  if (fd == STDOUT_FILENO) sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  else sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
  logger->flush_on(spdlog::level::info);
  return logger;
}

}  // namespace

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::string& level,
                                            LogDelivery delivery) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    throw std::invalid_argument("unknown log level '" + level + "' (trace, debug, info, warn, error, critical, off)");
  auto logger = logger_with_sink(name, STDERR_FILENO, delivery);
  logger->set_level(lvl);
  logger->set_pattern(kPattern);
  return logger;
}

std::shared_ptr<spdlog::logger> make_line_logger(const std::string& name, LogDelivery delivery) {
  auto logger = logger_with_sink(name, STDOUT_FILENO, delivery);
  logger->set_level(spdlog::level::info);
  logger->set_pattern("%v");
  return logger;
}

}  // namespace userkey
