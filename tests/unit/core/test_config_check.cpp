// Unit tests for lib/core/config_check.cpp: the log file check of
// --check-config (what a start would open, never created by a check) and
// how a check's outcome is reported.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "support/process.hpp"
#include "userkey/core/config_check.hpp"
#include "userkey/core/settings.hpp"

namespace fs = std::filesystem;
using userkey::check_log_file;
using userkey::ConfigError;

namespace {

std::string failure(const std::string& path) {
  try {
    check_log_file("log_file", path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("a log file that a start could open passes, and the check creates or changes nothing") {
  userkey::test::TempDir dir;
  CHECK(failure("").empty());  // stderr
  const auto missing = dir.path() / "new.log";
  CHECK(failure(missing.string()).empty());
  CHECK_FALSE(fs::exists(missing));
  const auto existing = dir.path() / "old.log";
  std::ofstream(existing) << "kept\n";
  CHECK(failure(existing.string()).empty());
  CHECK(userkey::test::read_text_file(existing) == "kept\n");
}

TEST_CASE("a log file a start could not open: the key, the path and the reason") {
  userkey::test::TempDir dir;
  const auto in_missing_dir = (dir.path() / "nodir" / "x.log").string();
  CHECK(failure(in_missing_dir) == "log_file: cannot open log file " + in_missing_dir + ": No such file or directory");
  CHECK(failure(dir.path().string()).find("Is a directory") != std::string::npos);
  const auto under_file = dir.path() / "plain";
  std::ofstream(under_file) << "";
  CHECK(failure((under_file / "x.log").string()).find("Not a directory") != std::string::npos);
  if (::geteuid() != 0) {  // root writes anywhere
    const auto read_only = dir.path() / "ro";
    fs::create_directory(read_only);
    ::chmod(read_only.c_str(), 0500);
    CHECK(failure((read_only / "x.log").string()).find("Permission denied") != std::string::npos);
    ::chmod(read_only.c_str(), 0700);
  }
}

TEST_CASE("report_config_check: the summary on stdout and 0, or the first error on stderr and 2") {
  std::ostringstream out, err;
  CHECK(userkey::report_config_check("prog", [] { return std::string("3 things"); }, out, err) == 0);
  CHECK(out.str() == "prog: configuration OK (3 things)\n");
  CHECK(err.str().empty());
  std::ostringstream out2, err2;
  CHECK(userkey::report_config_check(
            "prog", []() -> std::string { throw ConfigError("lb.toml:3: rise: must be between 1 and 1000, got 0"); },
            out2, err2) == userkey::kInvalidConfigurationExit);
  CHECK(userkey::kInvalidConfigurationExit == 2);
  CHECK(out2.str().empty());
  CHECK(err2.str() == "prog: invalid configuration: lb.toml:3: rise: must be between 1 and 1000, got 0\n");
  std::ostringstream out3, err3;
  CHECK(userkey::report_config_check(
            "prog", []() -> std::string { throw std::invalid_argument("cannot resolve upstream x.invalid:1"); }, out3,
            err3) == 2);
  CHECK(err3.str() == "prog: invalid configuration: cannot resolve upstream x.invalid:1\n");
}
