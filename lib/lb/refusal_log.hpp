// The log lines for requests and connections the lb refuses itself: one
// line per reason per interval (10 s), saying how many more were refused for
// that reason since the last line, so a flood (a rate-limited client, a
// scanner sending garbage) is visible in the log without filling the disk.
// Every refusal is counted in userkey_lb_rejections_total all the same.
//
// One per event loop (its throttles are atomics: a shared one would work
// too, at the cost of a line per loop per interval at most).
//
// Leaves to others: deciding to refuse (admission, the codec), counting
// (ProxyStats), the answer itself (local_reply).
#pragma once

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/log_throttle.hpp"
#include "userkey/lb/proxy_metrics.hpp"

namespace userkey::lb::engine {

class RefusalLog {
public:
  explicit RefusalLog(std::chrono::milliseconds interval = std::chrono::seconds(10)) {
    for (auto& t : throttles_) t = std::make_unique<LogThrottle>(interval);
  }

  /// A refusal for `why` of `client`, answered `status` (0: closed
  /// unanswered) at `now`: logged at info unless this reason logged within
  /// the interval. True when a line was written.
  bool note(spdlog::logger& log, Rejection why, unsigned status, std::string_view client,
            LogThrottle::Clock::time_point now = LogThrottle::Clock::now()) {
    std::uint64_t held_back = 0;
    if (!throttles_[static_cast<std::size_t>(why)]->allow(now, held_back)) return false;
    if (held_back > 0)
      log.info("refused a request from {} ({}, {}); {} more refused for this reason since the last such line",
               client, to_string(why), status == 0 ? std::string("closed") : std::to_string(status), held_back);
    else
      log.info("refused a request from {} ({}, {})", client, to_string(why),
               status == 0 ? std::string("closed") : std::to_string(status));
    return true;
  }

private:
  std::array<std::unique_ptr<LogThrottle>, static_cast<std::size_t>(Rejection::count_)> throttles_;
};

}  // namespace userkey::lb::engine
