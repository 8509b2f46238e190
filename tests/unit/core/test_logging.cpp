// Unit tests for make_logger (lib/core/logging): what reaches stderr (fd 2
// is pointed at a temporary file for the duration of each case), and log
// files reopened after a rename (logrotate).
#include <doctest/doctest.h>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "userkey/core/logging.hpp"

namespace {

// Sends fd 2 to a fresh file until destroyed.
class CapturedStderr {
public:
  CapturedStderr() : path_(make_path()) {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~CapturedStderr() {
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    ::unlink(path_.c_str());
  }
  CapturedStderr(const CapturedStderr&) = delete;
  CapturedStderr& operator=(const CapturedStderr&) = delete;

  std::string text() const {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

private:
  static std::string make_path() {
    char tmpl[] = "/tmp/userkey-log-test-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd >= 0) ::close(fd);
    return tmpl;
  }
  std::string path_;
  int saved_ = -1;
};

std::size_t count_lines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n' ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("logging: the async logger writes every line, in order, with the pattern") {
  CapturedStderr err;
  {
    auto log = userkey::make_logger("t", "info", userkey::LogDelivery::async);
    for (int i = 0; i < 5000; ++i) log->info("line {}", i);  // several 64 KiB batches
  }  // buffered lines are written before the logger goes
  const auto text = err.text();
  CHECK(count_lines(text) == 5000);
  CHECK(text.find(" info [t] line 0\n") != std::string::npos);
  CHECK(text.find(" info [t] line 4999\n") != std::string::npos);
  CHECK(text.find("line 1\n") < text.find("line 2\n"));
  CHECK(text.find("line 3998\n") < text.find("line 3999\n"));
}

TEST_CASE("logging: an async line is out while the logger lives, without a flush") {
  // Batching must not hold a lone line back until more arrive.
  CapturedStderr err;
  auto log = userkey::make_logger("t", "info", userkey::LogDelivery::async);
  log->info("lonely line");
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {  // a bound, not a timing assertion
    seen = err.text().find("lonely line\n") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(seen);
  log.reset();
}

TEST_CASE("logging: lines below the level are dropped; an unknown level is refused") {
  CapturedStderr err;
  {
    auto log = userkey::make_logger("t", "warn", userkey::LogDelivery::async);
    log->info("quiet");
    log->warn("loud");
  }
  const auto text = err.text();
  CHECK(text.find("quiet") == std::string::npos);
  CHECK(text.find(" warning [t] loud\n") != std::string::npos);
  CHECK_THROWS_AS(userkey::make_logger("t", "chatty"), std::invalid_argument);
}

TEST_CASE("logging: flush() writes what an async logger holds before it returns") {
  CapturedStderr err;
  auto log = userkey::make_logger("t", "info", userkey::LogDelivery::async);
  for (int i = 0; i < 3; ++i) log->info("held {}", i);
  log->flush();
  const auto text = err.text();
  CHECK(count_lines(text) == 3);
  CHECK(text.find(" info [t] held 2\n") != std::string::npos);
  log.reset();
}

TEST_CASE("logging: a stalled output never blocks the caller; the lines it drops are counted") {
  // stderr is a pipe nobody reads until every line has been logged: the
  // writer blocks in write(2) once the pipe is full, the buffer fills to its
  // bound and the rest is dropped (a hang here would be the bug). Then the
  // pipe is drained: every line is either in it or counted as dropped.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(stderr);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(fds[1], STDERR_FILENO);
  ::close(fds[1]);
  constexpr long kLines = 200000;  // ~19 MB: more than the 8 MiB the sink holds
  const std::string filler(80, 'x');
  auto log = userkey::make_logger("t", "info", userkey::LogDelivery::async);
  for (long i = 0; i < kLines; ++i) log->info("{} {}", filler, i);

  std::string out;
  std::thread reader([&] {
    char buf[65536];
    for (;;) {
      const auto n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
  });
  log.reset();                    // what is held is written, then the writer stops
  ::dup2(saved, STDERR_FILENO);   // the pipe's last write end goes: the reader sees its end
  ::close(saved);
  reader.join();
  ::close(fds[0]);

  // (one note per spell of dropping; here there is one spell)
  const std::string tail = " log lines dropped: the log output did not keep up\n";
  long dropped = 0, notes = 0;
  for (auto at = out.find(tail); at != std::string::npos; at = out.find(tail, at + 1)) {
    const auto line_start = out.rfind('\n', at) + 1;
    dropped += std::stol(out.substr(line_start, at - line_start));
    ++notes;
  }
  CHECK(notes >= 1);
  CHECK(dropped > 0);
  CHECK(static_cast<long>(count_lines(out)) - notes + dropped == kLines);
  CHECK(out.find(filler + " 0\n") != std::string::npos);
}

namespace {

// A fresh directory for log files, removed with what it holds.
class LogDir {
public:
  LogDir() {
    char tmpl[] = "/tmp/userkey-logdir-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~LogDir() { std::filesystem::remove_all(path_); }
  LogDir(const LogDir&) = delete;
  LogDir& operator=(const LogDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

private:
  std::filesystem::path path_;
};

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("logging: a file logger appends; after a rename, reopen_log_files sends new lines to a new file") {
  for (const auto delivery : {userkey::LogDelivery::sync, userkey::LogDelivery::async}) {
    CAPTURE(static_cast<int>(delivery));
    LogDir dir;
    const std::string path = dir / "app.log";
    { std::ofstream(path) << "kept from before\n"; }
    auto log = userkey::make_logger("t", "info", delivery, path);
    log->info("before the rotation");
    std::filesystem::rename(path, dir / "app.log.1");
    log->info("after the rename, before the reopen");  // still the open (renamed) file
    std::string error;
    REQUIRE(userkey::reopen_log_files(*log, &error));
    CHECK(error.empty());
    log->info("after the reopen");
    log->flush();
    const std::string old_text = file_text(dir / "app.log.1");
    const std::string new_text = file_text(path);
    CHECK(old_text.rfind("kept from before\n", 0) == 0);  // appended, not truncated
    CHECK(old_text.find(" info [t] before the rotation\n") != std::string::npos);
    CHECK(old_text.find(" info [t] after the rename, before the reopen\n") != std::string::npos);
    CHECK(old_text.find("after the reopen") == std::string::npos);
    CHECK(count_lines(new_text) == 1);
    CHECK(new_text.find(" info [t] after the reopen\n") != std::string::npos);
    log.reset();
  }
}

TEST_CASE("logging: reopen while other threads log: every line lands whole in one of the files, in order") {
  LogDir dir;
  const std::string path = dir / "busy.log";
  auto log = userkey::make_line_logger("t", userkey::LogDelivery::async, path);
  constexpr int kThreads = 2, kLines = 20000;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < kLines; ++i) log->info("writer {} line {:06} {}", t, i, std::string(40, 'y'));
    });
  std::vector<std::string> rotated;
  for (int r = 0; r < 5; ++r) {  // rotate while they write
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    rotated.push_back(dir / ("busy.log." + std::to_string(r)));
    std::filesystem::rename(path, rotated.back());
    REQUIRE(userkey::reopen_log_files(*log));
  }
  for (auto& w : writers) w.join();
  log.reset();
  rotated.push_back(path);

  int next[kThreads] = {};
  const std::string tail = " " + std::string(40, 'y');
  for (const auto& file : rotated) {
    std::istringstream in(file_text(file));
    for (std::string line; std::getline(in, line);) {
      int t = -1, i = -1;
      REQUIRE_MESSAGE(std::sscanf(line.c_str(), "writer %d line %d", &t, &i) == 2, line);
      REQUIRE((t >= 0 && t < kThreads));
      CHECK(line.size() >= tail.size());
      CHECK(line.compare(line.size() - tail.size(), tail.size(), tail) == 0);  // not torn
      CHECK(i == next[t]);  // none lost, none twice, in order across the files
      next[t] = i + 1;
    }
  }
  for (int t = 0; t < kThreads; ++t) CHECK(next[t] == kLines);
}

TEST_CASE("logging: a log file that cannot be opened is an error at start, and keeps the old one on reopen") {
  LogDir dir;
  CHECK_THROWS_AS(userkey::make_logger("t", "info", userkey::LogDelivery::async, dir / "no/such/dir/x.log"),
                  std::system_error);
  const std::string sub = dir / "sub";
  std::filesystem::create_directory(sub);
  auto log = userkey::make_logger("t", "info", userkey::LogDelivery::async, sub + "/app.log");
  std::filesystem::rename(sub, dir / "gone");  // the directory itself moved away
  std::string error;
  CHECK_FALSE(userkey::reopen_log_files(*log, &error));
  CHECK(error.find("cannot open log file") != std::string::npos);
  log->info("still logged");
  log->flush();
  CHECK(file_text(dir / "gone/app.log").find("still logged\n") != std::string::npos);
}

TEST_CASE("logging: reopen_log_files on a stderr logger changes nothing") {
  CapturedStderr err;
  auto log = userkey::make_logger("t", "info", userkey::LogDelivery::async);
  CHECK(userkey::reopen_log_files(*log));
  log->info("on stderr");
  log->flush();
  CHECK(err.text().find("on stderr\n") != std::string::npos);
}
