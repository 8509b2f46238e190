// Unit tests for the throttled log lines of refused requests
// (lib/lb/refusal_log.hpp).
#include <doctest/doctest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>

#include "lb/refusal_log.hpp"

namespace lbe = userkey::lb::engine;
using userkey::lb::Rejection;
using namespace std::chrono_literals;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("refusal log: one line per reason per interval, saying how many more were refused since") {
  std::ostringstream out;
  spdlog::logger log("t", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
  log.set_pattern("%v");
  lbe::RefusalLog refusals(10s);
  const auto t0 = userkey::LogThrottle::Clock::now();
  CHECK(refusals.note(log, Rejection::rate_limited, 429, "192.0.2.1", t0));
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(refusals.note(log, Rejection::rate_limited, 429, "192.0.2.1", t0 + 1s));
  // Another reason has its own interval.
  CHECK(refusals.note(log, Rejection::header_too_large, 431, "192.0.2.2", t0 + 1s));
  CHECK(refusals.note(log, Rejection::rate_limited, 429, "192.0.2.3", t0 + 11s));
  const std::string text = out.str();
  CHECK(count(text, "\n") == 3);
  CHECK(text.find("refused a request from 192.0.2.1 (rate_limited, 429)\n") != std::string::npos);
  CHECK(text.find("refused a request from 192.0.2.2 (header_too_large, 431)\n") != std::string::npos);
  CHECK(text.find("refused a request from 192.0.2.3 (rate_limited, 429); 1000 more refused for this reason") !=
        std::string::npos);
}

TEST_CASE("refusal log: a connection closed unanswered says so") {
  std::ostringstream out;
  spdlog::logger log("t", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
  log.set_pattern("%v");
  lbe::RefusalLog refusals;
  refusals.note(log, Rejection::denied, 0, "198.51.100.7");
  CHECK(out.str() == "refused a request from 198.51.100.7 (denied, closed)\n");
}
