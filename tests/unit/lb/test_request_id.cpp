// Unit tests for request ids and traces in the lb (lib/lb/request_id): which
// client ids and traceparents are kept, and the fresh ones each loop makes.
// (The rules themselves: tests/unit/core/test_request_id.cpp and
// test_trace_context.cpp.)
#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <doctest/doctest.h>

#include <boost/beast/http/fields.hpp>

#include <set>
#include <string>
#include <vector>

#include "lb/request_id.hpp"

namespace engine = userkey::lb::engine;

namespace {

bool all_lower_hex(std::string_view s) {
  for (const char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

TEST_CASE("request id: the generator gives 32 lower-case hex digits, different every time") {
  engine::RequestIdGenerator gen;
  engine::RequestId id;
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    gen.next(id);
    REQUIRE(id.view().size() == 32);
    REQUIRE(all_lower_hex(id.view()));
    CHECK(userkey::valid_request_id(id.view()));
    seen.emplace(id.view());
  }
  CHECK(seen.size() == 10000);

  // Two generators (two loops) seeded from std::random_device do not repeat each other.
  engine::RequestIdGenerator other;
  engine::RequestId a, b;
  gen.next(a);
  other.next(b);
  CHECK(a.view() != b.view());

  // A fixed seed gives a fixed sequence; every hex digit turns up.
  engine::RequestIdGenerator s1(42), s2(42);
  std::set<char> digits;
  for (int i = 0; i < 100; ++i) {
    s1.next(a);
    s2.next(b);
    CHECK(a.view() == b.view());
    digits.insert(a.view().begin(), a.view().end());
  }
  CHECK(digits.size() == 16);
}

TEST_CASE("request id: a client's single well-formed id is kept; none, several or malformed get a fresh one") {
  engine::RequestIdGenerator gen(7);
  engine::RequestId id;
  namespace http = boost::beast::http;

  http::fields given;
  given.set("X-Request-Id", "client.id-1");
  CHECK(engine::take_request_id(given, gen, id));
  CHECK(id.view() == "client.id-1");

  http::fields lower;  // field names are case-insensitive
  lower.set("x-request-id", std::string(128, 'k'));
  CHECK(engine::take_request_id(lower, gen, id));
  CHECK(id.view() == std::string(128, 'k'));

  http::fields none;
  none.set("X-Other", "x");
  CHECK_FALSE(engine::take_request_id(none, gen, id));
  CHECK(id.view().size() == 32);
  CHECK(all_lower_hex(id.view()));

  http::fields repeated;
  repeated.insert("X-Request-Id", "one");
  repeated.insert("X-Request-Id", "two");
  CHECK_FALSE(engine::take_request_id(repeated, gen, id));
  CHECK(id.view().size() == 32);

  for (const std::string& bad : std::vector<std::string>{"", "has space", "quote\"d", std::string(129, 'x'), "%41", "caf\xc3\xa9"}) {
    http::fields f;
    f.set("X-Request-Id", bad);
    CHECK_FALSE(engine::take_request_id(f, gen, id));
    CHECK(id.view().size() == 32);
    CHECK(id.view() != bad);
  }

  // The holder keeps at most 128 characters and can be emptied.
  id.assign(std::string(200, 'z'));
  CHECK(id.view().size() == 128);
  id.clear();
  CHECK(id.empty());
}

TEST_CASE("trace: a client's one valid traceparent keeps its trace-id and flags under the lb's own parent-id") {
  engine::RequestIdGenerator gen(11);
  engine::RequestTrace trace;
  namespace http = boost::beast::http;
  const std::string client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  http::fields given;
  given.set("traceparent", client);
  given.set("tracestate", "vendor=x");
  CHECK(engine::take_trace(given, gen, trace));
  CHECK(trace.continued);
  CHECK(trace.parent.trace_id() == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(trace.parent.flags() == 0x01);
  CHECK(trace.parent.parent_id() != "00f067aa0ba902b7");  // the lb's hop
  CHECK(all_lower_hex(trace.parent.parent_id()));
  const std::string first_hop(trace.parent.parent_id());
  CHECK(engine::take_trace(given, gen, trace));  // the next request: a hop of its own
  CHECK(trace.parent.parent_id() != first_hop);

  // A later version: the same trace, sent on as version 00.
  http::fields later;
  later.set("TraceParent", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more");
  CHECK(engine::take_trace(later, gen, trace));
  CHECK(trace.parent.text().substr(0, 36) == "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  CHECK(trace.parent.text().substr(52) == "-00");
}

TEST_CASE("trace: none, several or invalid traceparents start a new trace, flags 00") {
  engine::RequestIdGenerator gen(12);
  engine::RequestTrace trace;
  namespace http = boost::beast::http;
  std::set<std::string> traces;

  http::fields none;
  CHECK_FALSE(engine::take_trace(none, gen, trace));
  CHECK_FALSE(trace.continued);
  traces.emplace(trace.parent.trace_id());

  const std::string valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  http::fields several;
  several.insert("traceparent", valid);
  several.insert("traceparent", valid);
  CHECK_FALSE(engine::take_trace(several, gen, trace));
  traces.emplace(trace.parent.trace_id());

  for (const std::string& bad : {std::string("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
                                 std::string("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
                                 std::string("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), valid + "-x"}) {
    http::fields f;
    f.set("traceparent", bad);
    CHECK_FALSE(engine::take_trace(f, gen, trace));
    CHECK(trace.parent.trace_id() != "4bf92f3577b34da6a3ce929d0e0e4736");
    traces.emplace(trace.parent.trace_id());
  }
  for (const auto& t : traces) {
    CHECK(t.size() == 32);
    CHECK(all_lower_hex(t));
  }
  CHECK(traces.size() == 6);  // a fresh trace each time
  // What was made is itself valid, with flags 00 (the lb records no spans).
  userkey::TraceParent check;
  CHECK(check.parse(trace.parent.text()));
  CHECK(trace.parent.flags() == 0);

  // Request ids off: nothing of the lb's.
  engine::RequestId id;
  engine::clear_identity(id, trace);
  CHECK(id.empty());
  CHECK(trace.parent.empty());
  CHECK_FALSE(trace.continued);
}

TEST_CASE("identity: a session takes the id and the trace from one head") {
  engine::RequestIdGenerator gen(13);
  engine::RequestId id;
  engine::RequestTrace trace;
  boost::beast::http::fields f;
  f.set("X-Request-Id", "edge-7");
  f.set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  engine::take_identity(f, gen, id, trace);
  CHECK(id.view() == "edge-7");
  CHECK(trace.continued);
  CHECK(trace.parent.trace_id() == "4bf92f3577b34da6a3ce929d0e0e4736");
}
