// Unit tests for make_logger (lib/core/logging): what reaches stderr. fd 2
// is pointed at a temporary file for the duration of each case.
#include <doctest/doctest.h>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

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
