// Unit tests for the access log (lib/lb/access_log): the JSON escaping of
// client-controlled text, the time and duration formats, the JSON line and
// the text line's end (request id, trace-id).
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "lb/access_log.hpp"

namespace engine = userkey::lb::engine;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string escaped(std::string_view s) {
  std::string out;
  engine::append_json_bytes(out, s);
  return out;
}

}  // namespace

TEST_CASE("access log: JSON escaping keeps printable ASCII and escapes everything else") {
  CHECK(escaped("") == "\"\"");
  CHECK(escaped("/?user_id=1&x=a~b") == "\"/?user_id=1&x=a~b\"");
  CHECK(escaped("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(escaped("\n\r\t") == "\"\\u000a\\u000d\\u0009\"");
  CHECK(escaped(std::string("\0\x1f\x7f", 3)) == "\"\\u0000\\u001f\\u007f\"");
  // Bytes from 0x80, valid UTF-8 or not, are \u00XX: the string's code points are its bytes.
  CHECK(escaped("caf\xc3\xa9") == "\"caf\\u00c3\\u00a9\"");
  CHECK(escaped("\xff\xfe") == "\"\\u00ff\\u00fe\"");
  // What a hostile target tries: closing the string and the object, a new line.
  const std::string hostile = "/\"},\"status\":1}\n{\"x\":\"\\\xc0\xaf";
  const std::string out = escaped(hostile);
  CHECK(out.find('\n') == std::string::npos);
  // Any byte string round-trips through a JSON parser, one code point per byte.
  std::string every;
  for (int c = 0; c < 256; ++c) every.push_back(static_cast<char>(c));
  for (const std::string& s : {hostile, every}) {
    const auto parsed = json::parse(escaped(s)).get<std::string>();  // UTF-8 of the code points
    std::u32string points;
    for (std::size_t i = 0; i < parsed.size();) {
      const auto b = static_cast<unsigned char>(parsed[i]);
      if (b < 0x80) {
        points.push_back(b);
        i += 1;
      } else {
        REQUIRE(i + 1 < parsed.size());
        points.push_back(((b & 0x1f) << 6) | (static_cast<unsigned char>(parsed[i + 1]) & 0x3f));
        i += 2;
      }
    }
    REQUIRE(points.size() == s.size());
    for (std::size_t i = 0; i < s.size(); ++i) CHECK(points[i] == static_cast<unsigned char>(s[i]));
  }
}

TEST_CASE("access log: RFC 3339 UTC time with milliseconds, durations in milliseconds") {
  std::string out;
  engine::append_rfc3339_ms(out, std::chrono::system_clock::time_point{});
  CHECK(out == "1970-01-01T00:00:00.000Z");
  out.clear();
  // 2026-11-29T14:03:07.042Z (and the microseconds below it dropped).
  const auto t = std::chrono::sys_days{std::chrono::year{2026} / 11 / 29} + 14h + 3min + 7s + 42ms + 999us;
  engine::append_rfc3339_ms(out, std::chrono::time_point_cast<std::chrono::system_clock::duration>(t));
  CHECK(out == "2026-11-29T14:03:07.042Z");
  out.clear();
  engine::append_rfc3339_ms(out, std::chrono::sys_days{std::chrono::year{2000} / 2 / 29} + 23h + 59min + 59s + 999ms);
  CHECK(out == "2000-02-29T23:59:59.999Z");

  out.clear();
  engine::append_millis(out, 0us);
  CHECK(out == "0.000");
  out.clear();
  engine::append_millis(out, 12345us);
  CHECK(out == "12.345");
  out.clear();
  engine::append_millis(out, 3'000'007us);
  CHECK(out == "3000.007");
}

TEST_CASE("access log: a JSON line is one object with every field, null where there is nothing") {
  engine::AccessRecord r;
  r.time = std::chrono::system_clock::time_point{} + 86'400'123ms;
  r.client = "192.0.2.1";
  r.method = "GET";
  r.target = "/?user_id=\"1\"\xff";
  r.status = 200;
  r.bytes_in = 78;
  r.bytes_out = 190;
  r.duration = 1500us;
  r.upstream_time = 1200us;
  r.upstream = "127.0.0.1:5001";
  r.request_id = "abc-1";
  r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  r.retries = 1;
  std::string line = "left over";
  engine::format_json_line(line, r);
  CHECK(line.find('\n') == std::string::npos);
  const json j = json::parse(line);
  CHECK(j.size() == 14);
  CHECK(j["time"] == "1970-01-02T00:00:00.123Z");
  CHECK(j["client"] == "192.0.2.1");
  CHECK(j["method"] == "GET");
  CHECK(j["target"] == "/?user_id=\"1\"\xc3\xbf");  // the byte 0xff as U+00FF
  CHECK(j["status"] == 200);
  CHECK(j["bytes_in"] == 78);
  CHECK(j["bytes_out"] == 190);
  CHECK(j["duration_ms"].get<double>() == doctest::Approx(1.5));
  CHECK(j["upstream_ms"].get<double>() == doctest::Approx(1.2));
  CHECK(j["upstream"] == "127.0.0.1:5001");
  CHECK(j["request_id"] == "abc-1");
  CHECK(j["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(j["retries"] == 1);
  CHECK(j["tls"].is_null());

  // No upstream tried (the lb's own answer), request ids off.
  engine::AccessRecord own;
  own.client = "::1";
  own.method = "GET";
  own.target = "/";
  own.status = 503;
  engine::format_json_line(line, own);
  const json k = json::parse(line);
  CHECK(k["upstream_ms"].is_null());
  CHECK(k["upstream"].is_null());
  CHECK(k["request_id"].is_null());
  CHECK(k["trace_id"].is_null());
  CHECK(k["retries"] == 0);
}

TEST_CASE("access log: the text line ends with the request id and the trace-id, or neither with ids off") {
  std::ostringstream text;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(text);
  sink->set_pattern("%v");
  spdlog::logger log("access-test", sink);
  engine::AccessLog access(true, userkey::lb::AccessLogFormat::text, log, nullptr);
  REQUIRE(access.enabled());

  engine::AccessRecord r;
  r.client = "192.0.2.1";
  r.method = "GET";
  r.target = "/?user_id=1";
  r.status = 200;
  r.duration = 412us;
  r.upstream = "backend-2:5000";
  r.request_id = "edge-1";
  r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  access.write(r);
  r.request_id = {};
  r.trace_id = {};
  r.upstream = {};
  access.write(r);
  log.flush();
  CHECK(text.str() ==
        "192.0.2.1 GET /?user_id=1 200 412us upstream=backend-2:5000 id=edge-1 trace=4bf92f3577b34da6a3ce929d0e0e4736\n"
        "192.0.2.1 GET /?user_id=1 200 412us upstream=-\n");
}
