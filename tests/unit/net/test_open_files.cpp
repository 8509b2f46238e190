// Unit tests for lib/net/open_files: this test process's own limit.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <algorithm>
#include <string>

#include "net/open_files.hpp"

TEST_CASE("raise_open_file_limit: the soft RLIMIT_NOFILE becomes the hard one") {
  rlimit rl{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
  const rlim_t hard = rl.rlim_max;
  // Lower the soft limit first (a process may always do that), so that
  // there is something to raise.
  rl.rlim_cur = std::min<rlim_t>(hard, 256);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &rl) == 0);

  std::string error;
  const auto now = userkey::net::raise_open_file_limit(&error);
  CHECK(error.empty());
  CHECK(now == hard);
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
  CHECK(rl.rlim_cur == hard);
  // Already raised: nothing to do, same answer.
  CHECK(userkey::net::raise_open_file_limit() == hard);
}
