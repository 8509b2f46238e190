// The access log: one line per request, as text or as one JSON object.
//
// Owns: what a line says (AccessRecord), both formats, the JSON escaping of
// the client-controlled strings in it (every byte outside printable ASCII is
// written \u00XX, so any byte sequence makes a valid JSON string and nothing
// a client sends can end the object or the line), the RFC 3339 time, and
// the line buffer each loop reuses. One AccessLog per event loop: not thread-safe.
//
// Leaves to others: what is measured and when a line is written
// (downstream_session), where lines go (the spdlog loggers given to it).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "userkey/lb/proxy_config.hpp"

namespace spdlog {
class logger;
}

namespace userkey::lb::engine {

/// What one access log line says about a request.
struct AccessRecord {
  std::chrono::system_clock::time_point time;  ///< when the request's head was in
  std::string_view client;
  std::string_view method;
  std::string_view target;
  unsigned status = 0;
  std::uint64_t bytes_in = 0;   ///< request head and body as read from the client
  std::uint64_t bytes_out = 0;  ///< response head and body as written to the client
  std::chrono::microseconds duration{0};
  std::chrono::microseconds upstream_time{-1};  ///< negative: no upstream was tried
  std::string_view upstream;                      ///< the upstream that answered; empty: none
  std::string_view request_id;                    ///< empty: none (request ids off)
  std::string_view trace_id;                      ///< the traceparent's sent upstream; empty: none (request ids off)
  std::uint32_t retries = 0;
  std::string_view tls;  ///< the TLS version; empty: plain HTTP
};

/// Appends `s` as a JSON string literal (quotes included): `"` and `\`
/// escaped, every byte below 0x20, 0x7f and every byte from 0x80 written
/// \u00XX (a string's code points are then exactly its bytes, valid UTF-8
/// or not).
void append_json_bytes(std::string& out, std::string_view s);

/// Appends `t` as RFC 3339 UTC with milliseconds: 2026-11-29T14:03:07.042Z.
void append_rfc3339_ms(std::string& out, std::chrono::system_clock::time_point t);

/// Appends `d` in milliseconds with three decimals ("12.345").
void append_millis(std::string& out, std::chrono::microseconds d);

/// `r` as one JSON object (no newline), into `out` (cleared first).
void format_json_line(std::string& out, const AccessRecord& r);

/// One event loop's access log.
class AccessLog {
public:
  /// Text lines go to `text_log` at info, JSON lines as they are to
  /// `json_log` (null: JSON lines go to `text_log` too). Off when
  /// `enabled` is false, or for text when `text_log` would drop info.
  AccessLog(bool enabled, AccessLogFormat format, spdlog::logger& text_log, spdlog::logger* json_log);
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  bool enabled() const noexcept { return enabled_; }
  void write(const AccessRecord& r);

private:
  bool enabled_;
  AccessLogFormat format_;
  spdlog::logger& text_log_;
  spdlog::logger& json_log_;
  std::string line_;  // reused: a line allocates only when it outgrows the longest so far
};

}  // namespace userkey::lb::engine
