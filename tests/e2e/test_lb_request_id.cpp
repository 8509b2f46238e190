// End-to-end: request ids and the access log formats, with a real userkey-lb
// in front of a raw upstream that records the request heads it gets: which
// X-Request-Id reaches the upstream and comes back to the client (the lb's
// own error replies included), --request-id off, the text line's id and the
// JSON lines (parsed, a hostile target included); the traceparent and
// tracestate the upstream gets.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/lb_process.hpp"
#include "support/process.hpp"
#include "support/raw_upstream.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// The recording upstream answers with an X-Request-Id of its own (which the
// lb must replace).
const RecordingUpstream::Headers kUpstreamOwnId{{"X-Request-Id", "upstream-made"}};

// The values of every `name:` header line in a raw head (case-insensitive name).
std::vector<std::string> header_values(const std::string& raw, const std::string& name) {
  std::vector<std::string> out;
  const auto head_end = raw.find("\r\n\r\n");
  std::istringstream lines(raw.substr(0, head_end));
  std::string line;
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos || lower(line.substr(0, colon)) != lower(name)) continue;
    auto value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    out.push_back(value);
  }
  return out;
}

bool is_generated_id(const std::string& id) {
  if (id.size() != 32) return false;
  for (const char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// GET `target` with `extra` header lines, Connection: close, raw.
std::string get(std::uint16_t port, const std::string& target, const std::string& extra = "") {
  return raw_exchange(port, "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "Connection: close\r\n\r\n");
}

// A userkey-lb whose standard output (JSON access lines) and standard error
// (everything else) go to separate files.
struct SplitLogLb {
  TempDir dir;
  std::uint16_t port = free_port();
  ChildProcess proc;
  explicit SplitLogLb(const std::vector<std::string>& args) {
    std::vector<std::string> argv{USERKEY_LB_BIN, "--listen", "127.0.0.1:" + std::to_string(port), "--admin", "off"};
    argv.insert(argv.end(), args.begin(), args.end());
    proc = ChildProcess(argv, dir.path() / "stdout.log", {}, dir.path() / "stderr.log");
    REQUIRE_MESSAGE(wait_for_port(port, 10s), read("stderr.log"));
  }
  std::string read(const std::string& name) const {
    std::ifstream in(dir.path() / name, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  std::vector<std::string> stdout_lines() const {
    std::vector<std::string> out;
    std::istringstream in(read("stdout.log"));
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
};

}  // namespace

TEST_CASE("request id: generated when absent, kept when well-formed, replaced when malformed; upstream and client see the same") {
  RecordingUpstream up(kUpstreamOwnId);
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false"});

  SUBCASE("absent: a fresh id goes upstream and comes back") {
    const auto raw = get(lb.port, "/a");
    REQUIRE(status_of(raw) == 200);
    const auto echoed = header_values(raw, "X-Request-Id");
    REQUIRE(echoed.size() == 1);  // the upstream's own id replaced, not added to
    CHECK(is_generated_id(echoed[0]));
    CHECK(header_values(up.last_head(), "X-Request-Id") == echoed);
    // Each request gets its own.
    const auto again = header_values(get(lb.port, "/a"), "X-Request-Id");
    REQUIRE(again.size() == 1);
    CHECK(again[0] != echoed[0]);
  }
  SUBCASE("well-formed: kept end to end") {
    const std::string id = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6.retry_2:x";
    const auto raw = get(lb.port, "/b", "X-Request-Id: " + id + "\r\n");
    REQUIRE(status_of(raw) == 200);
    CHECK(header_values(raw, "X-Request-Id") == std::vector<std::string>{id});
    CHECK(header_values(up.last_head(), "X-Request-Id") == std::vector<std::string>{id});
  }
  SUBCASE("malformed, too long or repeated: replaced, never forwarded") {
    for (const std::string& given :
         {std::string("X-Request-Id: has space\r\n"), std::string("X-Request-Id: a\"b\r\n"),
          "X-Request-Id: " + std::string(129, 'a') + "\r\n", std::string("X-Request-Id: one\r\nX-Request-Id: two\r\n"),
          std::string("X-Request-Id:\r\n")}) {
      CAPTURE(given);
      const auto raw = get(lb.port, "/c", given);
      REQUIRE(status_of(raw) == 200);
      const auto echoed = header_values(raw, "X-Request-Id");
      REQUIRE(echoed.size() == 1);
      CHECK(is_generated_id(echoed[0]));
      CHECK(header_values(up.last_head(), "X-Request-Id") == echoed);
    }
  }
}

TEST_CASE("request id: the lb's own error replies carry it once the request head is read") {
  // An upstream that refuses connections: 502 (upstream failed), then 503
  // (passive health took it out).
  const std::uint16_t dead = free_port();
  LbProcess lb({"--upstream", "127.0.0.1:" + std::to_string(dead), "--no-active-health", "--retries", "0",
                "--panic-threshold-percent", "0", "--access-log", "false"});
  const auto failed = get(lb.port, "/", "X-Request-Id: client-502\r\n");
  CHECK(status_of(failed) == 502);
  CHECK(header_values(failed, "X-Request-Id") == std::vector<std::string>{"client-502"});
  const auto none = get(lb.port, "/");
  CHECK(status_of(none) == 503);
  const auto generated = header_values(none, "X-Request-Id");
  REQUIRE(generated.size() == 1);
  CHECK(is_generated_id(generated[0]));
  CHECK(none.find("{\"error\":\"no healthy upstream\"}") != std::string::npos);

  // Refused by the Host rules after the head is in: 400 with the id.
  const auto framing = raw_exchange(lb.port, "GET / HTTP/1.1\r\nX-Request-Id: client-400\r\n\r\n");
  CHECK(status_of(framing) == 400);
  CHECK(framing.find("missing Host field") != std::string::npos);
  CHECK(header_values(framing, "X-Request-Id") == std::vector<std::string>{"client-400"});
  // A head that could not be read has no id to echo (431).
  const auto huge = raw_exchange(lb.port, "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(9000, 'a') + "\r\n\r\n");
  CHECK(status_of(huge) == 431);
  CHECK(header_values(huge, "X-Request-Id").empty());
}

TEST_CASE("request id off: the client's X-Request-Id passes through untouched and none is made or echoed") {
  RecordingUpstream up(kUpstreamOwnId);
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false", "--request-id", "off"});
  const auto plain = get(lb.port, "/");
  REQUIRE(status_of(plain) == 200);
  CHECK(header_values(up.last_head(), "X-Request-Id").empty());
  CHECK(header_values(plain, "X-Request-Id") == std::vector<std::string>{"upstream-made"});  // relayed as it is
  const auto odd = get(lb.port, "/", "X-Request-Id: not checked here\r\n");
  CHECK(status_of(odd) == 200);
  CHECK(header_values(up.last_head(), "X-Request-Id") == std::vector<std::string>{"not checked here"});
}

TEST_CASE("access log: the text line ends with the request id") {
  RecordingUpstream up(kUpstreamOwnId);
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health"});
  REQUIRE(status_of(get(lb.port, "/text?x=1", "X-Request-Id: text-line-id\r\n")) == 200);
  const std::string expected = "127.0.0.1 GET /text?x=1 200 ";
  const std::string tail = "us upstream=" + up.upstream() + " id=text-line-id";
  CHECK_MESSAGE(eventually([&] { return lb.proc.log().find(tail) != std::string::npos; }, 3s), lb.proc.log());
  CHECK(lb.proc.log().find(expected) != std::string::npos);
}

TEST_CASE("access log: --access-log-format json writes one parseable object per request on stdout") {
  RecordingUpstream up(kUpstreamOwnId);
  SplitLogLb lb({"--upstream", up.upstream(), "--no-active-health", "--access-log-format", "json"});
  REQUIRE(status_of(get(lb.port, "/?user_id=1", "X-Request-Id: json-1\r\n")) == 200);
  // A hostile target: quotes, a backslash, braces and bytes that are not UTF-8.
  const std::string hostile = "/x?a=\"},\"status\":999,\"b\":{\"\\\xff\xfe\xc3(";
  REQUIRE(status_of(get(lb.port, hostile)) == 200);
  const auto head = raw_exchange(lb.port, "HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  REQUIRE(status_of(head) == 200);

  std::vector<json> lines;
  REQUIRE_MESSAGE(eventually(
                      [&] {
                        lines.clear();
                        for (const auto& l : lb.stdout_lines()) {
                          auto j = json::parse(l, nullptr, /*allow_exceptions=*/false);
                          if (j.is_discarded()) return false;
                          lines.push_back(std::move(j));
                        }
                        return lines.size() == 3;
                      },
                      5s),
                  (std::string("stdout:\n") + lb.read("stdout.log") + "\nstderr:\n" + lb.read("stderr.log")));
  // Diagnostics stay on standard error; the access lines do not go there.
  CHECK(lb.read("stderr.log").find("listening on") != std::string::npos);
  CHECK(lb.read("stderr.log").find("json-1") == std::string::npos);

  const json& first = lines[0];
  CHECK(first.size() == 14);
  const std::string time = first["time"].get<std::string>();
  CHECK(time.size() == 24);  // 2026-11-29T14:03:07.042Z
  CHECK(time[10] == 'T');
  CHECK(time.back() == 'Z');
  CHECK(first["client"] == "127.0.0.1");
  CHECK(first["method"] == "GET");
  CHECK(first["target"] == "/?user_id=1");
  CHECK(first["status"] == 200);
  CHECK(first["bytes_in"] == std::string("GET /?user_id=1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: json-1\r\n"
                                         "Connection: close\r\n\r\n")
                                 .size());
  CHECK(first["bytes_out"].get<int>() > 2);
  CHECK(first["duration_ms"].get<double>() >= 0);
  CHECK(first["upstream_ms"].get<double>() >= 0);
  CHECK(first["duration_ms"].get<double>() >= first["upstream_ms"].get<double>());
  CHECK(first["upstream"] == up.upstream());
  CHECK(first["request_id"] == "json-1");
  CHECK(first["trace_id"].get<std::string>().size() == 32);  // a trace the lb started
  CHECK(first["retries"] == 0);
  CHECK(first["tls"].is_null());

  // The hostile target comes back byte for byte (bytes from 0x80 as U+0080..U+00FF),
  // and did not add or change a field.
  const json& second = lines[1];
  CHECK(second.size() == 14);
  CHECK(second["status"] == 200);
  std::string bytes;
  const std::string decoded = second["target"].get<std::string>();
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    const auto b = static_cast<unsigned char>(decoded[i]);
    if (b < 0x80) {
      bytes.push_back(static_cast<char>(b));
    } else {
      REQUIRE(i + 1 < decoded.size());
      bytes.push_back(static_cast<char>(((b & 0x1f) << 6) | (static_cast<unsigned char>(decoded[i + 1]) & 0x3f)));
      ++i;
    }
  }
  CHECK(bytes == hostile);
  CHECK(is_generated_id(second["request_id"].get<std::string>()));

  CHECK(lines[2]["method"] == "HEAD");
  CHECK(lines[2]["target"] == "/h");
}

TEST_CASE("trace context: what reaches the upstream (kept trace with the lb's parent-id, or a new one; tracestate)") {
  RecordingUpstream up(kUpstreamOwnId);
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false"});
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string client = "00-" + trace + "-00f067aa0ba902b7-01";

  // Valid: the trace-id and flags go on, under a parent-id of the lb's; tracestate as it was.
  REQUIRE(status_of(get(lb.port, "/t", "traceparent: " + client + "\r\ntracestate: congo=t61rcWkgMzE\r\n")) == 200);
  auto sent = header_values(up.last_head(), "traceparent");
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].size() == 55);
  CHECK(sent[0].substr(0, 36) == "00-" + trace + "-");
  CHECK(sent[0].substr(52) == "-01");
  CHECK(sent[0] != client);
  CHECK(header_values(up.last_head(), "tracestate") == std::vector<std::string>{"congo=t61rcWkgMzE"});

  // Absent: a new trace, flags 00.
  REQUIRE(status_of(get(lb.port, "/t")) == 200);
  sent = header_values(up.last_head(), "traceparent");
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].size() == 55);
  CHECK(sent[0].substr(0, 3) == "00-");
  CHECK(is_generated_id(sent[0].substr(3, 32)));
  CHECK(sent[0].substr(52) == "-00");

  // Invalid (upper case): replaced by a new trace, and its tracestate dropped.
  std::string upper = client;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  REQUIRE(status_of(get(lb.port, "/t", "traceparent: " + upper + "\r\ntracestate: congo=t61rcWkgMzE\r\n")) == 200);
  sent = header_values(up.last_head(), "traceparent");
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].find(trace) == std::string::npos);
  CHECK(sent[0].substr(52) == "-00");
  CHECK(header_values(up.last_head(), "tracestate").empty());
}

TEST_CASE("trace context with request ids off: traceparent and tracestate pass through untouched") {
  RecordingUpstream up(kUpstreamOwnId);
  LbProcess lb({"--upstream", up.upstream(), "--no-active-health", "--access-log", "false", "--request-id", "off"});
  REQUIRE(status_of(get(lb.port, "/", "traceparent: not-checked\r\ntracestate: a=b\r\n")) == 200);
  CHECK(header_values(up.last_head(), "traceparent") == std::vector<std::string>{"not-checked"});
  CHECK(header_values(up.last_head(), "tracestate") == std::vector<std::string>{"a=b"});
  REQUIRE(status_of(get(lb.port, "/")) == 200);
  CHECK(header_values(up.last_head(), "traceparent").empty());
}
