// The access log: see access_log.hpp.
#include "access_log.hpp"

#include <spdlog/spdlog.h>

#include <charconv>

namespace userkey::lb::engine {

namespace {

constexpr char kHex[] = "0123456789abcdef";

// `v` in decimal, at least `width` digits (zero-padded).
void append_uint(std::string& out, std::uint64_t v, int width = 1) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;  // 24 bytes hold any 64-bit value
  for (auto len = end - buf; len < width; ++len) out.push_back('0');
  out.append(buf, end);
}

void append_key(std::string& out, std::string_view key) {
  out.push_back(',');
  out.push_back('"');
  out.append(key);
  out.append("\":");
}

void append_string_or_null(std::string& out, std::string_view s) {
  if (s.empty())
    out.append("null");
  else
    append_json_bytes(out, s);
}

}  // namespace

void append_json_bytes(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(ch);
    } else {
      out.append("\\u00");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  out.push_back('"');
}

void append_rfc3339_ms(std::string& out, std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss hms{ms - day};
  append_uint(out, static_cast<std::uint64_t>(static_cast<int>(ymd.year())), 4);
  out.push_back('-');
  append_uint(out, static_cast<unsigned>(ymd.month()), 2);
  out.push_back('-');
  append_uint(out, static_cast<unsigned>(ymd.day()), 2);
  out.push_back('T');
  append_uint(out, static_cast<std::uint64_t>(hms.hours().count()), 2);
  out.push_back(':');
  append_uint(out, static_cast<std::uint64_t>(hms.minutes().count()), 2);
  out.push_back(':');
  append_uint(out, static_cast<std::uint64_t>(hms.seconds().count()), 2);
  out.push_back('.');
  append_uint(out, static_cast<std::uint64_t>(hms.subseconds().count()), 3);
  out.push_back('Z');
}

void append_millis(std::string& out, std::chrono::microseconds d) {
  std::int64_t us = d.count();
  if (us < 0) {
    out.push_back('-');
    us = -us;
  }
  append_uint(out, static_cast<std::uint64_t>(us / 1000));
  out.push_back('.');
  append_uint(out, static_cast<std::uint64_t>(us % 1000), 3);
}

void format_json_line(std::string& out, const AccessRecord& r) {
  out.clear();
  out.append("{\"time\":\"");
  append_rfc3339_ms(out, r.time);
  out.push_back('"');
  append_key(out, "client");
  append_json_bytes(out, r.client);
  append_key(out, "method");
  append_json_bytes(out, r.method);
  append_key(out, "target");
  append_json_bytes(out, r.target);
  append_key(out, "status");
  append_uint(out, r.status);
  append_key(out, "bytes_in");
  append_uint(out, r.bytes_in);
  append_key(out, "bytes_out");
  append_uint(out, r.bytes_out);
  append_key(out, "duration_ms");
  append_millis(out, r.duration);
  append_key(out, "upstream_ms");
  if (r.upstream_time.count() < 0)
    out.append("null");
  else
    append_millis(out, r.upstream_time);
  append_key(out, "upstream");
  append_string_or_null(out, r.upstream);
  append_key(out, "request_id");
  append_string_or_null(out, r.request_id);
  append_key(out, "trace_id");
  append_string_or_null(out, r.trace_id);
  append_key(out, "retries");
  append_uint(out, r.retries);
  append_key(out, "tls");
  append_string_or_null(out, r.tls);
  out.push_back('}');
}

AccessLog::AccessLog(bool enabled, AccessLogFormat format, spdlog::logger& text_log, spdlog::logger* json_log)
    : enabled_(enabled && (format == AccessLogFormat::json || text_log.should_log(spdlog::level::info))),
      format_(format),
      text_log_(text_log),
      json_log_(json_log ? *json_log : text_log) {
  if (enabled_ && format_ == AccessLogFormat::json) line_.reserve(512);
}

void AccessLog::write(const AccessRecord& r) {
  if (!enabled_) return;
  if (format_ == AccessLogFormat::json) {
    format_json_line(line_, r);
    json_log_.log(spdlog::level::info, spdlog::string_view_t(line_.data(), line_.size()));
    return;
  }
  // The text line, as it has always been, with the request id and the
  // trace-id at the end (`-` for one missing while the other is there).
  const auto us = r.duration.count();
  const std::string_view upstream = r.upstream.empty() ? std::string_view("-") : r.upstream;
  if (r.request_id.empty() && r.trace_id.empty())
    text_log_.info("{} {} {} {} {}us upstream={}", r.client, r.method, r.target, r.status, us, upstream);
  else
    text_log_.info("{} {} {} {} {}us upstream={} id={} trace={}", r.client, r.method, r.target, r.status, us,
                   upstream, r.request_id.empty() ? std::string_view("-") : r.request_id,
                   r.trace_id.empty() ? std::string_view("-") : r.trace_id);
}

}  // namespace userkey::lb::engine
