// End-to-end: one request followed through both processes' logs. A real
// userkey-lb (access log to a file, text or JSON) in front of a real
// userkey-backend (--log-file): the client's X-Request-Id and traceparent
// (kept), none (made by the lb) and an invalid traceparent (replaced) show
// up as the same request id and trace-id in the lb's access line and the
// backend's; found with the commands docs/operations.md gives ("One id from
// the edge to the database log": curl, then grep -F over both files). And
// the backend alone: a well-formed X-Request-Id echoed and logged, an
// invalid one or traceparent logged as `-`.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "support/backend_process.hpp"
#include "support/certificates.hpp"
#include "support/lb_process.hpp"
#include "support/process.hpp"

using namespace userkey::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string kClientParent = "00f067aa0ba902b7";
const std::string kTraceparent = "00-" + kTrace + "-" + kClientParent + "-01";

bool lower_hex(const std::string& s, std::size_t size) {
  if (s.size() != size) return false;
  for (const char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// The lines of `text` that hold `needle`.
std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

// The value after `key=` in a text line, up to the next space.
std::string word_after(const std::string& line, const std::string& key) {
  const auto at = line.find(" " + key + "=");
  if (at == std::string::npos) return {};
  const auto from = at + key.size() + 2;
  return line.substr(from, line.find(' ', from) - from);
}

// The response header `name` (lower-case) in curl -D - output, or "".
std::string header_of(const std::string& curl_output, const std::string& name) {
  std::istringstream in(curl_output);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (key == name) return line.substr(line.find_first_not_of(' ', colon + 1));
  }
  return {};
}

// A backend logging to a file, and an lb in front of it writing its access
// lines (text or JSON) to a file of their own.
struct Stack {
  TempDir logs;
  std::filesystem::path backend_log = logs.path() / "backend.log";
  std::filesystem::path lb_access = logs.path() / "lb-access.log";
  BackendProcess backend{{"--name", "backend-1", "--dump", dump_dir().string(), "--log-file", backend_log.string()}};
  LbProcess lb;
  explicit Stack(const std::string& format)
      : lb({"--upstream", backend.upstream(), "--no-active-health", "--access-log-format", format,
            "--access-log-file", lb_access.string()}) {}

  // The request as the docs show it: curl with the given headers, the
  // response head on stdout.
  std::string curl(const std::string& target, const std::vector<std::string>& headers) const {
    std::string cmd = "curl -sS --noproxy '*' --max-time 10 -D - -o /dev/null";
    for (const auto& h : headers) cmd += " -H '" + h + "'";
    cmd += " 'http://127.0.0.1:" + std::to_string(lb.port) + target + "'";
    const auto r = run_command(cmd);
    REQUIRE_MESSAGE(r.status == 0, r.output);
    return r.output;
  }

  // grep -hF `needle` over both logs, as the docs do: the lb's line and the
  // backend's, once both are written (the logs are written in batches).
  struct Found {
    std::string lb, backend;
  };
  Found grep_both(const std::string& needle) const {
    const std::string cmd = "grep -hF '" + needle + "' " + q(lb_access) + " " + q(backend_log);
    Found f;
    const bool both = eventually(
        [&] {
          const auto r = run_command(cmd);
          const auto lb_lines = lines_with(read_text_file(lb_access), needle);
          const auto be_lines = lines_with(read_text_file(backend_log), needle);
          if (r.status != 0 || lb_lines.size() != 1 || be_lines.size() != 1) return false;
          // What grep printed is those two lines.
          if (r.output != lb_lines[0] + "\n" + be_lines[0] + "\n") return false;
          f = {lb_lines[0], be_lines[0]};
          return true;
        },
        5s);
    REQUIRE_MESSAGE(both, "lb:\n" << read_text_file(lb_access) << "\nbackend:\n" << read_text_file(backend_log));
    return f;
  }
};

// The request id and trace-id of an lb access line, text or JSON.
struct LbIds {
  std::string id, trace;
};
LbIds lb_ids(const std::string& line, const std::string& format) {
  if (format == "json") {
    const json j = json::parse(line);
    return {j["request_id"].get<std::string>(), j["trace_id"].get<std::string>()};
  }
  return {word_after(line, "id"), word_after(line, "trace")};
}

}  // namespace

TEST_CASE("request identity: the client's X-Request-Id and traceparent in both processes' logs") {
  for (const std::string format : {"text", "json"}) {
    CAPTURE(format);
    Stack s(format);
    const std::string id = "checkout-42." + format;
    const auto head = s.curl("/?user_id=1", {"X-Request-Id: " + id, "traceparent: " + kTraceparent,
                                             "tracestate: congo=t61rcWkgMzE"});
    CHECK(head.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(header_of(head, "x-request-id") == id);

    // By the request id: one line in each log, with the client's trace-id.
    const auto by_id = s.grep_both(id);
    const auto lb = lb_ids(by_id.lb, format);
    CHECK(lb.id == id);
    CHECK(lb.trace == kTrace);
    CHECK(by_id.backend.find("GET /?user_id=1 200 ") != std::string::npos);
    CHECK(word_after(by_id.backend, "id") == id);
    CHECK(word_after(by_id.backend, "trace") == kTrace);
    // By the trace-id: the same two lines.
    const auto by_trace = s.grep_both(kTrace);
    CHECK(by_trace.lb == by_id.lb);
    CHECK(by_trace.backend == by_id.backend);
  }
}

TEST_CASE("request identity: without X-Request-Id and traceparent the lb makes both; the backend logs them") {
  for (const std::string format : {"text", "json"}) {
    CAPTURE(format);
    Stack s(format);
    const auto head = s.curl("/?user_id=2", {});
    CHECK(head.rfind("HTTP/1.1 200", 0) == 0);
    // The response's X-Request-Id is the key to both logs.
    const std::string id = header_of(head, "x-request-id");
    REQUIRE(lower_hex(id, 32));
    const auto found = s.grep_both(id);
    const auto lb = lb_ids(found.lb, format);
    CHECK(lb.id == id);
    CHECK(lower_hex(lb.trace, 32));
    CHECK(word_after(found.backend, "id") == id);
    CHECK(word_after(found.backend, "trace") == lb.trace);
  }
}

TEST_CASE("request identity: an invalid traceparent is replaced by a new trace, which both logs show") {
  Stack s("json");
  const std::vector<std::string> invalid{
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + kClientParent + "-01",   // upper case
      "00-00000000000000000000000000000000-" + kClientParent + "-01",   // all-zero trace-id
      "00-" + kTrace + "-0000000000000000-01",                           // all-zero parent-id
      "ff-" + kTrace + "-" + kClientParent + "-01",                      // version ff
      "00-" + kTrace.substr(2) + "-" + kClientParent + "-01",            // too short
  };
  int n = 0;
  for (const auto& bad : invalid) {
    CAPTURE(bad);
    const std::string id = "invalid-trace-" + std::to_string(++n);
    const auto head = s.curl("/?user_id=3", {"X-Request-Id: " + id, "traceparent: " + bad});
    CHECK(head.rfind("HTTP/1.1 200", 0) == 0);
    const auto found = s.grep_both(id);
    const auto lb = lb_ids(found.lb, "json");
    CHECK(lower_hex(lb.trace, 32));
    CHECK(lb.trace != kTrace);
    CHECK(word_after(found.backend, "trace") == lb.trace);
  }
}

TEST_CASE("backend alone: a well-formed X-Request-Id is echoed and logged; invalid ids and traceparents log as -") {
  TempDir logs;
  const auto log = logs.path() / "backend.log";
  BackendProcess b({"--name", "backend-1", "--dump", dump_dir().string(), "--log-file", log.string()});

  const auto good = raw_exchange(b.port, "GET /?user_id=1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: direct-1\r\ntraceparent: " +
                                             kTraceparent + "\r\nConnection: close\r\n\r\n");
  CHECK(status_of(good) == 200);
  CHECK(good.find("\r\nX-Request-Id: direct-1\r\n") != std::string::npos);
  REQUIRE(eventually([&] { return file_contains(log, " id=direct-1 trace=" + kTrace); }, 3s));

  // Invalid (a space; a second field) or absent: no echo, `-` in the line.
  const auto spaced = raw_exchange(b.port, "GET /?user_id=4 HTTP/1.1\r\nHost: x\r\nX-Request-Id: has space\r\n"
                                           "traceparent: 00-" + kTrace + "-" + kClientParent + "-1\r\n"
                                           "Connection: close\r\n\r\n");
  CHECK(status_of(spaced) == 200);
  CHECK(spaced.find("X-Request-Id") == std::string::npos);
  const auto twice = raw_exchange(b.port, "GET /?user_id=5 HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\n"
                                          "X-Request-Id: b\r\nConnection: close\r\n\r\n");
  CHECK(status_of(twice) == 200);
  CHECK(twice.find("X-Request-Id") == std::string::npos);
  const auto none = raw_exchange(b.port, "GET /?user_id=6 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(status_of(none) == 200);
  for (const std::string target : {"/?user_id=4", "/?user_id=5", "/?user_id=6"}) {
    CAPTURE(target);
    const std::string line = "GET " + target + " 200 ";
    REQUIRE_MESSAGE(eventually([&] { return file_contains(log, line); }, 3s), read_text_file(log));
    const auto lines = lines_with(read_text_file(log), line);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].ends_with(" id=- trace=-"));
  }
}
