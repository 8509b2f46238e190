#include "userkey/core/logging.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace userkey {

namespace {

constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";
// The least time between two writes of info lines: what comes sooner waits
// to share the next write(2).
constexpr auto kFlushInterval = std::chrono::milliseconds(50);
// Written at once, without waiting out the interval.
constexpr std::size_t kBatchBytes = 64 * 1024;
// Beyond this much unwritten text (stderr blocked or far too slow), new
// lines are dropped and counted rather than held or waited for.
constexpr std::size_t kMaxPendingBytes = 8 * 1024 * 1024;

// A descriptor closed when it goes.
class UniqueFd {
public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }

private:
  int fd_;
};

// Opens `path` for appending, creating it (0644 less the umask) if missing.
UniqueFd open_append(const std::string& path) {
  int fd = -1;
  do fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open log file " + path);
  return UniqueFd(fd);
}

// Writes all of `text` to `fd`, or as much as it takes.
void write_all(int fd, const spdlog::memory_buf_t& text) {
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const auto n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the stream is gone: nothing better to do with the lines
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

// Where a sink writes: a standard stream (borrowed: never closed, never
// reopened) or a file it opened itself. Not locked: its sink orders the
// calls.
class LogOutput {
public:
  static LogOutput stream(int fd) { return LogOutput(fd, {}, UniqueFd()); }
  static LogOutput file(const std::string& path) {
    UniqueFd fd = open_append(path);
    const int raw = fd.get();
    return LogOutput(raw, path, std::move(fd));
  }
  int fd() const { return fd_; }
  // Fixed at construction: may be read without the sink's locks.
  bool is_file() const { return !path_.empty(); }
  // The file at the path again (the old one may have been renamed away);
  // throws std::system_error, changing nothing, when it cannot be opened.
  UniqueFd open_again() const { return open_append(path_); }
  // From now on, writes go to `fresh` (the old file is closed).
  void replace(UniqueFd fresh) {
    fd_ = fresh.get();
    owned_ = std::move(fresh);
  }

private:
  LogOutput(int fd, std::string path, UniqueFd owned) : fd_(fd), path_(std::move(path)), owned_(std::move(owned)) {}
  int fd_;
  std::string path_;
  UniqueFd owned_;
};

// What reopen_log_files() looks for among a logger's sinks.
class ReopenableSink {
public:
  virtual ~ReopenableSink() = default;
  // Throws std::system_error, writing on to the old file, when the path
  // cannot be opened.
  virtual void reopen() = 0;
};

// A file written line by line by the calling thread.
class SyncFileSink final : public spdlog::sinks::base_sink<std::mutex>, public ReopenableSink {
public:
  explicit SyncFileSink(LogOutput out) : out_(std::move(out)) {}
  void reopen() override {
    if (!out_.is_file()) return;
    UniqueFd fresh = out_.open_again();  // outside the lock: the open may be slow
    const std::lock_guard lock(mutex_);
    out_.replace(std::move(fresh));
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    write_all(out_.fd(), line);
  }
  void flush_() override {}

private:
  LogOutput out_;  // mutex_
};

// The deferred sink: the calling thread formats each line into a buffer;
// the sink's writer thread sends the buffer in one write(2). A line that
// comes when the last write is kFlushInterval old or more goes out at once;
// sooner, it waits until then with whatever else comes (a warning or worse,
// or kBatchBytes waiting, goes at once). A caller wakes the writer only when
// the buffer was empty, so under load the writer wakes about twice per
// write (one write per interval or per kBatchBytes), not once per line as
// with a queue that hands every line to a sleeping consumer, and a quiet
// server's lines appear as they are logged.
//
// Locks: base_sink's mutex_ guards the buffer and the flags and is held by
// every sink_it_ / flush_; write_mutex_ orders writes and guards the output
// (the writer takes it, under mutex_, before letting go of mutex_ to write),
// so a flush_ from a caller never overtakes lines the writer has already
// taken, and a reopen() never cuts a write in two: each write(2) goes
// whole to the old file or to the new one.
class DeferredFdSink final : public spdlog::sinks::base_sink<std::mutex>, public ReopenableSink {
public:
  explicit DeferredFdSink(LogOutput out) : out_(std::move(out)) { writer_ = std::thread([this] { run(); }); }
  ~DeferredFdSink() override {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
  }
  DeferredFdSink(const DeferredFdSink&) = delete;
  DeferredFdSink& operator=(const DeferredFdSink&) = delete;

  // Lines logged before go to the old file (written now, with the lock held:
  // reopens are rare), lines logged after to the new one.
  void reopen() override {
    if (!out_.is_file()) return;
    UniqueFd fresh = out_.open_again();  // outside the locks: the open may be slow
    const std::lock_guard lock(mutex_);
    const std::lock_guard order(write_mutex_);
    note_dropped();
    write_all(out_.fd(), pending_);
    pending_.clear();
    out_.replace(std::move(fresh));
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (pending_.size() >= kMaxPendingBytes) {
      ++dropped_;
      return;
    }
    const bool was_empty = pending_.size() == 0;
    formatter_->format(msg, pending_);
    if (msg.level >= spdlog::level::warn) urgent_ = true;
    if (was_empty || urgent_ || pending_.size() >= kBatchBytes) wake_.notify_one();
  }
  // logger->flush(): what is written so far is out when this returns.
  void flush_() override {
    const std::lock_guard order(write_mutex_);
    note_dropped();
    write_all(out_.fd(), pending_);
    pending_.clear();
  }

private:
  bool due() const { return stopping_ || urgent_ || pending_.size() >= kBatchBytes; }

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || pending_.size() > 0; });
      if (!due()) wake_.wait_until(lock, last_write_ + kFlushInterval, [this] { return due(); });
      note_dropped();
      std::swap(pending_, writing_);
      urgent_ = false;
      const bool last = stopping_;
      last_write_ = std::chrono::steady_clock::now();
      {
        const std::lock_guard order(write_mutex_);
        lock.unlock();
        write_all(out_.fd(), writing_);
        writing_.clear();
      }
      lock.lock();
      if (last && pending_.size() == 0) return;
    }
  }

  // (mutex_ held) Says how many lines were dropped, once there is room.
  void note_dropped() {
    if (dropped_ == 0) return;
    fmt::format_to(std::back_inserter(pending_), "{} log lines dropped: the log output did not keep up\n", dropped_);
    dropped_ = 0;
  }

  LogOutput out_;  // write_mutex_
  std::condition_variable wake_;
  std::mutex write_mutex_;
  spdlog::memory_buf_t pending_;  // mutex_
  spdlog::memory_buf_t writing_;  // the writer thread only
  std::chrono::steady_clock::time_point last_write_{};  // the writer thread only
  std::size_t dropped_ = 0;       // mutex_
  bool urgent_ = false;           // mutex_
  bool stopping_ = false;         // mutex_
  std::thread writer_;            // last: started once the rest exists
};

// Deferred: no flush_on, the sink's writer sends lines out itself. Sync:
// each line is flushed as it is written. `file` empty: the stream `fd`.
std::shared_ptr<spdlog::logger> logger_with_sink(const std::string& name, int fd, const std::string& file,
                                                 LogDelivery delivery) {
  LogOutput out = file.empty() ? LogOutput::stream(fd) : LogOutput::file(file);
  spdlog::sink_ptr sink;
  if (delivery == LogDelivery::async) sink = std::make_shared<DeferredFdSink>(std::move(out));
  else if (out.is_file()) sink = std::make_shared<SyncFileSink>(std::move(out));
  else if (fd == STDOUT_FILENO) sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  else sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
  if (delivery == LogDelivery::sync) logger->flush_on(spdlog::level::info);
  return logger;
}

}  // namespace

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::string& level,
                                            LogDelivery delivery, const std::string& file) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    throw std::invalid_argument("unknown log level '" + level + "' (trace, debug, info, warn, error, critical, off)");
  auto logger = logger_with_sink(name, STDERR_FILENO, file, delivery);
  logger->set_level(lvl);
  logger->set_pattern(kPattern);
  return logger;
}

std::shared_ptr<spdlog::logger> make_line_logger(const std::string& name, LogDelivery delivery,
                                                 const std::string& file) {
  auto logger = logger_with_sink(name, STDOUT_FILENO, file, delivery);
  logger->set_level(spdlog::level::info);
  logger->set_pattern("%v");
  return logger;
}

bool reopen_log_files(spdlog::logger& log, std::string* error) {
  bool ok = true;
  for (const auto& sink : log.sinks()) {
    auto* file = dynamic_cast<ReopenableSink*>(sink.get());
    if (file == nullptr) continue;
    try {
      file->reopen();
    } catch (const std::system_error& e) {
      if (error != nullptr && ok) *error = e.what();
      ok = false;
    }
  }
  return ok;
}

}  // namespace userkey
