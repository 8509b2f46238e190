// Unit tests for IpAddress, Cidr, IpFilter and ConnectionLimiter.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "userkey/lb/ip_filter.hpp"

namespace lb = userkey::lb;

namespace {

lb::Cidr cidr(const char* s) {
  std::string err;
  auto c = lb::Cidr::parse(s, &err);
  INFO(s << ": " << err);
  REQUIRE(c.has_value());
  return *c;
}

}  // namespace

TEST_CASE("IpAddress parsing") {
  auto v4 = lb::IpAddress::parse("192.0.2.1");
  REQUIRE(v4);
  CHECK(v4->family == lb::IpAddress::Family::v4);
  CHECK(v4->to_string() == "192.0.2.1");

  auto v6 = lb::IpAddress::parse("2001:DB8::1");
  REQUIRE(v6);
  CHECK(v6->family == lb::IpAddress::Family::v6);
  CHECK(v6->to_string() == "2001:db8::1");

  auto mapped = lb::IpAddress::parse("::ffff:10.1.2.3");
  REQUIRE(mapped);
  CHECK(mapped->family == lb::IpAddress::Family::v4);
  CHECK(*mapped == *lb::IpAddress::parse("10.1.2.3"));

  for (const char* bad : {"", "1.2.3", "1.2.3.256", "01.2.3.4x", "::g", "fe80::1%eth0", "[::1]", " 1.2.3.4",
                          "1.2.3.4:80", "a very long string that is certainly not an ip address at all"}) {
    CAPTURE(bad);
    CHECK_FALSE(lb::IpAddress::parse(bad).has_value());
  }
}

TEST_CASE("CIDR IPv4 matching") {
  auto ten = cidr("10.0.0.0/8");
  CHECK(ten.contains("10.0.0.0"));
  CHECK(ten.contains("10.255.1.1"));
  CHECK_FALSE(ten.contains("11.0.0.1"));
  CHECK_FALSE(ten.contains("9.255.255.255"));
  CHECK_FALSE(ten.contains("not-an-ip"));
  CHECK(ten.to_string() == "10.0.0.0/8");

  auto odd = cidr("192.168.0.0/23");  // not byte aligned
  CHECK(odd.contains("192.168.0.1"));
  CHECK(odd.contains("192.168.1.255"));
  CHECK_FALSE(odd.contains("192.168.2.0"));

  auto single = cidr("203.0.113.7");
  CHECK(single.prefix_length() == 32);
  CHECK(single.contains("203.0.113.7"));
  CHECK_FALSE(single.contains("203.0.113.8"));

  auto host_bits = cidr("10.1.2.3/8");  // host bits are cleared
  CHECK(host_bits.to_string() == "10.0.0.0/8");
  CHECK(host_bits.contains("10.9.9.9"));

  auto all = cidr("0.0.0.0/0");
  CHECK(all.contains("255.255.255.255"));
  CHECK_FALSE(all.contains("::1"));  // families never mix

  // Dual-stack clients: a v4-mapped address matches the IPv4 block.
  CHECK(ten.contains("::ffff:10.20.30.40"));
}

TEST_CASE("CIDR IPv6 matching") {
  auto doc = cidr("2001:db8::/32");
  CHECK(doc.contains("2001:db8::1"));
  CHECK(doc.contains("2001:db8:ffff:1::5"));
  CHECK_FALSE(doc.contains("2001:db9::1"));
  CHECK_FALSE(doc.contains("10.0.0.1"));
  CHECK(doc.to_string() == "2001:db8::/32");

  auto nibble = cidr("fd00::/7");  // odd prefix: fc00::/7 after masking
  CHECK(nibble.to_string() == "fc00::/7");
  CHECK(nibble.contains("fc12::1"));
  CHECK(nibble.contains("fdff::1"));
  CHECK_FALSE(nibble.contains("fe80::1"));

  auto loop = cidr("::1");
  CHECK(loop.prefix_length() == 128);
  CHECK(loop.contains("::1"));
  CHECK_FALSE(loop.contains("::2"));

  auto mapped_block = cidr("::ffff:10.0.0.0/104");  // == 10.0.0.0/8
  CHECK(mapped_block.network().family == lb::IpAddress::Family::v4);
  CHECK(mapped_block.prefix_length() == 8);
  CHECK(mapped_block.contains("10.3.3.3"));
  CHECK(mapped_block.contains("::ffff:10.3.3.3"));
}

TEST_CASE("garbage CIDRs are rejected with a message") {
  for (const char* bad : {"", "abc", "10.0.0.0/33", "10.0.0.0/", "/8", "10.0.0.0/8x", "10.0.0.0/-1",
                          "10.0.0.0/+8", "::1/129", "10.0.0.256/8", "10.0.0.0 /8", "10.0.0.0/8/8", "2001:db8::/3 2",
                          "10/8"}) {
    CAPTURE(bad);
    std::string err;
    CHECK_FALSE(lb::Cidr::parse(bad, &err).has_value());
    CHECK_FALSE(err.empty());
  }
  std::string err;
  lb::Cidr::parse("10.0.0.0/33", &err);
  CHECK(err.find("10.0.0.0/33") != std::string::npos);
  CHECK(err.find("0..32") != std::string::npos);
}

TEST_CASE("IpFilter: empty allows all, deny wins, allow list restricts") {
  lb::IpFilter open;
  CHECK(open.empty());
  CHECK(open.allowed("1.2.3.4"));
  CHECK(open.allowed("2001:db8::1"));
  CHECK_FALSE(open.allowed("garbage"));  // unparsable client address

  lb::IpFilter f({cidr("10.0.0.0/8"), cidr("2001:db8::/32")}, {cidr("10.1.0.0/16"), cidr("2001:db8:bad::/48")});
  CHECK(f.allowed("10.2.0.1"));
  CHECK_FALSE(f.allowed("10.1.2.3"));        // denied although allowed: deny wins
  CHECK_FALSE(f.allowed("11.0.0.1"));        // not on the allow list
  CHECK(f.allowed("2001:db8:1::1"));
  CHECK_FALSE(f.allowed("2001:db8:bad::1"));
  CHECK_FALSE(f.allowed("2001:db9::1"));
  CHECK(f.allowed("::ffff:10.2.0.1"));
  CHECK_FALSE(f.allowed("::ffff:10.1.0.1"));

  lb::IpFilter deny_only({}, {cidr("192.0.2.0/24")});
  CHECK_FALSE(deny_only.allowed("192.0.2.99"));
  CHECK(deny_only.allowed("192.0.3.1"));
  CHECK(deny_only.allowed("::1"));

  lb::IpFilter built;
  built.add_allow(cidr("127.0.0.1"));
  CHECK(built.allowed("127.0.0.1"));
  CHECK_FALSE(built.allowed("127.0.0.2"));
  built.add_deny(cidr("127.0.0.0/8"));
  CHECK_FALSE(built.allowed("127.0.0.1"));
}

TEST_CASE("IpFilter::parse reports the bad entry") {
  const std::vector<std::string> allow = {"10.0.0.0/8", "::1"};
  const std::vector<std::string> deny = {"10.1.0.0/16"};
  std::string err;
  auto f = lb::IpFilter::parse(allow, deny, &err);
  REQUIRE(f);
  CHECK(f->allow_list().size() == 2);
  CHECK(f->deny_list().size() == 1);
  CHECK_FALSE(f->allowed("10.1.0.1"));

  const std::vector<std::string> bad_deny = {"10.1.0.0/16", "10.2.0.0/99"};
  CHECK_FALSE(lb::IpFilter::parse(allow, bad_deny, &err).has_value());
  CHECK(err.find("deny list") != std::string::npos);
  CHECK(err.find("10.2.0.0/99") != std::string::npos);

  const std::vector<std::string> bad_allow = {"nope"};
  CHECK_FALSE(lb::IpFilter::parse(bad_allow, deny, &err).has_value());
  CHECK(err.find("allow list") != std::string::npos);
}

TEST_CASE("ConnectionLimiter caps concurrent connections per IP") {
  using Admit = lb::ConnectionLimiter::Admit;
  lb::ConnectionLimiter lim(2);
  CHECK(lim.try_acquire("10.0.0.1") == Admit::counted);
  CHECK(lim.try_acquire("10.0.0.1") == Admit::counted);
  CHECK(lim.try_acquire("10.0.0.1") == Admit::refused);
  CHECK(lim.count("10.0.0.1") == 2);
  CHECK(lim.try_acquire("10.0.0.2") == Admit::counted);  // other clients unaffected
  CHECK(lim.size() == 2);

  lim.release("10.0.0.1");
  CHECK(lim.try_acquire("10.0.0.1") == Admit::counted);
  lim.release("10.0.0.1");
  lim.release("10.0.0.1");
  CHECK(lim.count("10.0.0.1") == 0);
  lim.release("10.0.0.2");
  CHECK(lim.size() == 0);            // entries vanish at zero
  lim.release("never-seen");         // no-op
  CHECK(lim.size() == 0);

  lb::ConnectionLimiter unlimited(0);
  for (int i = 0; i < 1000; ++i) CHECK(unlimited.try_acquire("10.0.0.1") == Admit::untracked);
  CHECK(unlimited.size() == 0);
  unlimited.release("10.0.0.1");
}
