// Unit tests for W3C traceparent (lib/core/trace_context): which values are
// valid (version 00, later versions by the forward-compatible rule, never
// ff), what a parsed one holds and is sent on as, and starting a trace.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/trace_context.hpp"

using userkey::TraceParent;

namespace {

const std::string kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string kParent = "00f067aa0ba902b7";
const std::string kValid = "00-" + kTrace + "-" + kParent + "-01";

bool parses(const std::string& value) {
  TraceParent t;
  return t.parse(value);
}

}  // namespace

TEST_CASE("traceparent: a version-00 value is kept as it is, its fields readable") {
  TraceParent t;
  CHECK(t.empty());
  CHECK(t.text().empty());
  CHECK(t.trace_id().empty());
  CHECK(t.parent_id().empty());
  CHECK(t.flags() == 0);

  REQUIRE(t.parse(kValid));
  CHECK_FALSE(t.empty());
  CHECK(t.text() == kValid);
  CHECK(t.text().size() == TraceParent::kLength);
  CHECK(t.trace_id() == kTrace);
  CHECK(t.parent_id() == kParent);
  CHECK(t.flags() == 0x01);

  REQUIRE(t.parse("00-" + kTrace + "-" + kParent + "-00"));
  CHECK(t.flags() == 0x00);
  // Flags the spec leaves undefined are set to zero; sampled and Level 2's
  // random-trace-id are kept.
  REQUIRE(t.parse("00-" + kTrace + "-" + kParent + "-ff"));
  CHECK(t.flags() == 0x03);
  CHECK(t.text() == "00-" + kTrace + "-" + kParent + "-03");
  REQUIRE(t.parse("00-" + kTrace + "-" + kParent + "-fe"));
  CHECK(t.flags() == 0x02);

  // A failed parse leaves it empty, whatever it held.
  CHECK_FALSE(t.parse("garbage"));
  CHECK(t.empty());
  CHECK(t.trace_id().empty());
}

TEST_CASE("traceparent: invalid values (all-zero ids, upper case, wrong lengths or separators, version ff)") {
  CHECK(parses(kValid));
  const std::vector<std::string> bad{
      "",
      "00",
      // All-zero ids.
      "00-00000000000000000000000000000000-" + kParent + "-01",
      "00-" + kTrace + "-0000000000000000-01",
      // Upper-case hex anywhere.
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + kParent + "-01",
      "00-" + kTrace + "-00F067AA0BA902B7-01",
      "00-" + kTrace + "-" + kParent + "-0A",
      "0A-" + kTrace + "-" + kParent + "-01",
      // Wrong lengths: each field one short or one long, the whole value too.
      "00-" + kTrace.substr(1) + "-" + kParent + "-01",
      "00-" + kTrace + "0-" + kParent + "-01",
      "00-" + kTrace + "-" + kParent.substr(1) + "-01",
      "00-" + kTrace + "-" + kParent + "0-01",
      "00-" + kTrace + "-" + kParent + "-1",
      "00-" + kTrace + "-" + kParent + "-011",
      "0-" + kTrace + "-" + kParent + "-01",
      "000-" + kTrace + "-" + kParent + "-01",
      kValid.substr(0, 54),
      // Version 00 has nothing after its flags.
      kValid + "-",
      kValid + "-extra",
      kValid + " ",
      // Not hex, wrong separators.
      "00-" + kTrace.substr(0, 31) + "g-" + kParent + "-01",
      "00-" + kTrace + "-" + kParent.substr(0, 15) + "z-01",
      "00_" + kTrace + "-" + kParent + "-01",
      "00-" + kTrace + "_" + kParent + "-01",
      "00-" + kTrace + "-" + kParent + "_01",
      " 00-" + kTrace + "-" + kParent + "-0",
      // Version ff is never valid, whatever follows.
      "ff-" + kTrace + "-" + kParent + "-01",
      "ff-" + kTrace + "-" + kParent + "-01-what-ever",
      "zz-" + kTrace + "-" + kParent + "-01",
  };
  for (const auto& value : bad) CHECK_MESSAGE(!parses(value), value);
}

TEST_CASE("traceparent: a later version is read by its first four fields and held as version 00") {
  TraceParent t;
  REQUIRE(t.parse("01-" + kTrace + "-" + kParent + "-01"));
  CHECK(t.text() == kValid);
  REQUIRE(t.parse("cc-" + kTrace + "-" + kParent + "-01-what-the-future-will-add"));
  CHECK(t.text() == kValid);
  CHECK(t.trace_id() == kTrace);
  REQUIRE(t.parse("fe-" + kTrace + "-" + kParent + "-09-x"));
  CHECK(t.flags() == 0x01);
  // The fields' rules are the same; the fourth must end the value or be
  // followed by a dash.
  CHECK_FALSE(t.parse("cc-" + kTrace + "-" + kParent + "-01x"));
  CHECK_FALSE(t.parse("cc-" + kTrace + "-" + kParent + "-0"));
  CHECK_FALSE(t.parse("cc-00000000000000000000000000000000-" + kParent + "-01"));
  CHECK_FALSE(t.parse("cc-" + kTrace + "-" + kParent + "-0A-x"));
}

TEST_CASE("traceparent: starting a trace and a new parent-id give valid version-00 values") {
  TraceParent t;
  t.start(0x0123456789abcdefULL, 0xfedcba9876543210ULL, 0x00000000deadbeefULL, 0);
  CHECK(t.text() == "00-0123456789abcdeffedcba9876543210-00000000deadbeef-00");
  CHECK(parses(std::string(t.text())));
  t.set_parent_id(0xb7ad6b7169203331ULL);
  CHECK(t.text() == "00-0123456789abcdeffedcba9876543210-b7ad6b7169203331-00");

  // All-zero ids are never made.
  t.start(0, 0, 0, 1);
  CHECK(t.text() == "00-00000000000000000000000000000001-0000000000000001-01");
  CHECK(parses(std::string(t.text())));
  t.set_parent_id(0);
  CHECK(t.parent_id() == "0000000000000001");

  // A parsed one keeps its trace and flags under a new parent-id.
  REQUIRE(t.parse(kValid));
  t.set_parent_id(0x1111111111111111ULL);
  CHECK(t.text() == "00-" + kTrace + "-1111111111111111-01");
}
