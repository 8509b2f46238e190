// Unit tests for the real client address behind trusted proxies
// (lib/lb/real_ip): when X-Forwarded-For / Forwarded are believed, and which
// address of them is the client.
#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <doctest/doctest.h>

#include <boost/beast/http/fields.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "lb/real_ip.hpp"

namespace engine = userkey::lb::engine;

namespace {

engine::TrustedProxies trusted(std::vector<std::string> cidrs) { return engine::TrustedProxies(cidrs); }

std::string resolve(const engine::TrustedProxies& t, std::string_view peer, std::string_view xff) {
  std::string out;
  t.resolve_forwarded_for(peer, xff, out);
  return out;
}

}  // namespace

TEST_CASE("X-Forwarded-For from a trusted peer: right to left, the first untrusted address") {
  const auto t = trusted({"127.0.0.1/32", "10.0.0.0/8"});
  CHECK(resolve(t, "127.0.0.1", "203.0.113.7, 10.0.0.1") == "203.0.113.7");
  CHECK(resolve(t, "127.0.0.1", "198.51.100.9, 203.0.113.7, 10.0.0.1") == "203.0.113.7");  // the spoofable left ignored
  CHECK(resolve(t, "127.0.0.1", "203.0.113.7") == "203.0.113.7");
  CHECK(resolve(t, "127.0.0.1", "2001:db8::7,10.0.0.2") == "2001:db8::7");
}

TEST_CASE("X-Forwarded-For: all trusted gives the leftmost; a malformed entry stops the walk") {
  const auto t = trusted({"127.0.0.1", "10.0.0.0/8"});
  CHECK(resolve(t, "127.0.0.1", "10.0.0.3, 10.0.0.2, 10.0.0.1") == "10.0.0.3");
  CHECK(resolve(t, "127.0.0.1", "203.0.113.7, garbage, 10.0.0.1") == "10.0.0.1");
  CHECK(resolve(t, "127.0.0.1", "203.0.113.7, unknown") == "127.0.0.1");
  CHECK(resolve(t, "127.0.0.1", "203.0.113.7, , 10.0.0.1") == "10.0.0.1");
  CHECK(resolve(t, "127.0.0.1", "") == "127.0.0.1");
}

TEST_CASE("X-Forwarded-For from an untrusted peer, or with no trusted proxies, is not believed") {
  CHECK(resolve(trusted({"10.0.0.0/8"}), "127.0.0.1", "203.0.113.7") == "127.0.0.1");
  CHECK(resolve(engine::TrustedProxies{}, "127.0.0.1", "203.0.113.7") == "127.0.0.1");
  CHECK(engine::TrustedProxies{}.empty());
  CHECK_FALSE(engine::TrustedProxies{}.trusted("127.0.0.1"));
}

TEST_CASE("X-Forwarded-For is a plain comma list: a quote is no grouping, the appended address counts") {
  const auto t = trusted({"127.0.0.1/32"});
  // A client's `"x` would once have swallowed its proxy's appended address.
  CHECK(resolve(t, "127.0.0.1", "\"x, 198.51.100.9") == "198.51.100.9");
  CHECK(resolve(t, "127.0.0.1", "\"a,b\", 198.51.100.9") == "198.51.100.9");
  CHECK(resolve(t, "127.0.0.1", "1.2.3.4, 198.51.100.9") == "198.51.100.9");
  // A quoted entry is not an address: the walk stops after the last good one.
  CHECK(resolve(t, "127.0.0.1", "\"203.0.113.7\"") == "127.0.0.1");
  CHECK(resolve(t, "127.0.0.1", "203.0.113.7, \"10.0.0.1\", 198.51.100.9") == "198.51.100.9");
  CHECK_FALSE(engine::forwarded_for_address("\"203.0.113.7\""));
  CHECK(engine::forwarded_for_address(" 203.0.113.7:80 ")->to_string() == "203.0.113.7");
  CHECK(engine::forwarded_for_address("[2001:db8::7]:443")->to_string() == "2001:db8::7");
}

TEST_CASE("--real-ip-header forwarded: only Forwarded is read, a client's X-Forwarded-For never wins") {
  const engine::TrustedProxies t(std::vector<std::string>{"127.0.0.1"}, engine::RealIpHeader::forwarded);
  CHECK(t.header() == engine::RealIpHeader::forwarded);
  std::string out;
  boost::beast::http::fields h;
  h.insert("X-Forwarded-For", "192.0.2.99");  // the client's own claim
  h.insert("Forwarded", "for=203.0.113.7;proto=https");
  t.resolve("127.0.0.1", h, out);
  CHECK(out == "203.0.113.7");

  boost::beast::http::fields only_xff;
  only_xff.insert("X-Forwarded-For", "192.0.2.99");
  t.resolve("127.0.0.1", only_xff, out);
  CHECK(out == "127.0.0.1");

  // And the default, x-forwarded-for, never reads Forwarded.
  const auto x = trusted({"127.0.0.1"});
  boost::beast::http::fields only_fwd;
  only_fwd.insert("Forwarded", "for=203.0.113.7");
  x.resolve("127.0.0.1", only_fwd, out);
  CHECK(out == "127.0.0.1");
}

TEST_CASE("Forwarded values: quoted-strings keep commas and semicolons; a quoted-pair is no address") {
  std::vector<std::string> seen;
  engine::forwarded_for_values("for=\"[2001:db8::1]:80\";host=\"a,b;c\", by=x, for=_x",
                               [&](std::string_view v) { seen.emplace_back(v); });
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == "\"[2001:db8::1]:80\"");
  CHECK(seen[1].empty());
  CHECK(seen[2] == "_x");
  CHECK_FALSE(engine::forwarded_node_address("\"203.0.113.7\\\""));
  CHECK_FALSE(engine::forwarded_node_address("\"203.0.113.7"));
}

TEST_CASE("forwarded nodes: ports, brackets and quotes come off; names and junk are not addresses") {
  CHECK(engine::forwarded_node_address("203.0.113.7:8080")->to_string() == "203.0.113.7");
  CHECK(engine::forwarded_node_address("[2001:db8::7]:443")->to_string() == "2001:db8::7");
  CHECK(engine::forwarded_node_address("\"[2001:db8::7]\"")->to_string() == "2001:db8::7");
  CHECK(engine::forwarded_node_address(" ::ffff:203.0.113.7 ")->to_string() == "203.0.113.7");
  CHECK_FALSE(engine::forwarded_node_address("unknown"));
  CHECK_FALSE(engine::forwarded_node_address("_hidden"));
  CHECK_FALSE(engine::forwarded_node_address("[203.0.113.7]"));
  CHECK_FALSE(engine::forwarded_node_address("203.0.113.7:http"));
  CHECK_FALSE(engine::forwarded_node_address("[2001:db8::7"));
  CHECK_FALSE(engine::forwarded_node_address(""));
}

TEST_CASE("headers: every field of the chosen header, in order") {
  const auto t = trusted({"127.0.0.1", "10.0.0.0/8"});
  const engine::TrustedProxies fwd(std::vector<std::string>{"127.0.0.1", "10.0.0.0/8"},
                                   engine::RealIpHeader::forwarded);
  std::string out;
  boost::beast::http::fields h;
  h.insert("X-Forwarded-For", "198.51.100.1, 203.0.113.7");
  h.insert("X-Forwarded-For", "10.0.0.1");
  h.insert("Forwarded", "for=192.0.2.99");
  t.resolve("127.0.0.1", h, out);
  CHECK(out == "203.0.113.7");
  fwd.resolve("127.0.0.1", h, out);
  CHECK(out == "192.0.2.99");

  boost::beast::http::fields f;
  f.insert("Forwarded", "for=198.51.100.1;proto=https, For=\"[2001:db8::7]:4711\";by=10.0.0.9");
  f.insert("Forwarded", "for=10.0.0.1;host=\"a,b\"");
  fwd.resolve("127.0.0.1", f, out);
  CHECK(out == "2001:db8::7");

  boost::beast::http::fields hidden;
  hidden.insert("Forwarded", "for=203.0.113.7, for=_hidden, for=10.0.0.1");
  fwd.resolve("127.0.0.1", hidden, out);
  CHECK(out == "10.0.0.1");

  t.resolve("192.0.2.1", h, out);  // an untrusted peer
  CHECK(out == "192.0.2.1");
  boost::beast::http::fields none;
  t.resolve("10.0.0.5", none, out);
  CHECK(out == "10.0.0.5");
}

TEST_CASE("a bad trusted-proxy CIDR is refused") {
  CHECK_THROWS_AS(trusted({"10.0.0.0/33"}), std::invalid_argument);
}
