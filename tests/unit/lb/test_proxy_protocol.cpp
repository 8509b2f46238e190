// Unit tests for the PROXY protocol header parser (lib/lb/proxy_protocol):
// v1 and v2, what they name, every truncation, and what is refused.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "lb/proxy_protocol.hpp"

namespace pp = userkey::lb::engine::proxy_protocol;
using Status = pp::Result::Status;

namespace {

const std::string kSignature("\r\n\r\n\0\r\nQUIT\n", 12);

std::string be16(unsigned v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }

std::string v2(unsigned command, unsigned family, const std::string& payload) {
  return kSignature + static_cast<char>(0x20 | command) + static_cast<char>(family) + be16(payload.size()) + payload;
}

// 203.0.113.7:56324 -> 192.0.2.1:443
const std::string kV4Payload = std::string("\xCB\x00\x71\x07\xC0\x00\x02\x01", 8) + be16(56324) + be16(443);
// [2001:db8::7]:56324 -> [2001:db8::1]:443
const std::string kV6Payload = std::string("\x20\x01\x0d\xb8", 4) + std::string(11, '\0') + "\x07" +
                               std::string("\x20\x01\x0d\xb8", 4) + std::string(11, '\0') + "\x01" + be16(56324) +
                               be16(443);

// Every strict prefix of a complete header asks for more.
void check_prefixes_need_more(const std::string& header) {
  for (std::size_t n = 0; n < header.size(); ++n) {
    CAPTURE(n);
    CHECK(pp::parse(std::string_view(header).substr(0, n)).status == Status::need_more);
  }
}

}  // namespace

TEST_CASE("PROXY v1 TCP4: the source address and port, and the header's length") {
  const std::string header = "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n";
  const auto r = pp::parse(header + "GET / HTTP/1.1\r\n\r\n");
  REQUIRE(r.status == Status::parsed);
  CHECK(r.version == 1);
  CHECK(r.length == header.size());
  REQUIRE(r.source);
  CHECK(r.source->address == "203.0.113.7");
  CHECK(r.source->port == 56324);
  check_prefixes_need_more(header);
}

TEST_CASE("PROXY v1 TCP6, with an IPv4-mapped source read as IPv4") {
  const auto r = pp::parse("PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n");
  REQUIRE(r.status == Status::parsed);
  REQUIRE(r.source);
  CHECK(r.source->address == "2001:db8::7");
  CHECK(r.source->port == 1);
  const auto mapped = pp::parse("PROXY TCP6 ::ffff:198.51.100.2 ::1 0 80\r\n");
  REQUIRE(mapped.status == Status::parsed);
  CHECK(mapped.source->address == "198.51.100.2");
}

TEST_CASE("PROXY v1 UNKNOWN keeps the connection's address; what follows UNKNOWN is ignored") {
  for (const std::string header : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n"}) {
    CAPTURE(header);
    const auto r = pp::parse(header + "GET");
    REQUIRE(r.status == Status::parsed);
    CHECK(r.length == header.size());
    CHECK_FALSE(r.source);
  }
}

TEST_CASE("PROXY v1 malformed lines are invalid") {
  for (const std::string line : {
           "PROXY TCP4 203.0.113.7 192.0.2.1 56324\r\n",             // a port missing
           "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443 9\r\n",       // a field too many
           "PROXY TCP4 203.0.113.7  192.0.2.1 56324 443\r\n",        // two spaces
           "PROXY TCP4 2001:db8::7 192.0.2.1 56324 443\r\n",         // IPv6 under TCP4
           "PROXY TCP6 203.0.113.7 192.0.2.1 56324 443\r\n",         // IPv4 under TCP6
           "PROXY TCP4 203.0.113.300 192.0.2.1 56324 443\r\n",       // not an address
           "PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n",         // port out of range
           "PROXY TCP4 203.0.113.7 192.0.2.1 0443 443\r\n",          // leading zero
           "PROXY TCP4 203.0.113.7 192.0.2.1 -1 443\r\n",            // a sign
           "PROXY UDP4 203.0.113.7 192.0.2.1 56324 443\r\n",         // not TCP
           "PROXY tcp4 203.0.113.7 192.0.2.1 56324 443\r\n",         // case matters
           "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\rX",          // CR without LF
           "PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\n",           // LF alone
           "PROXY \r\n",                                             // nothing
       }) {
    CAPTURE(line);
    const auto r = pp::parse(line);
    CHECK(r.status == Status::invalid);
    CHECK_FALSE(r.reason.empty());
  }
}

TEST_CASE("PROXY v1: a line longer than 107 bytes is invalid, one of 107 is fine") {
  // "PROXY UNKNOWN " + padding + CRLF = 107 bytes.
  const std::string longest = "PROXY UNKNOWN " + std::string(107 - 16, 'x') + "\r\n";
  REQUIRE(longest.size() == 107);
  CHECK(pp::parse(longest).status == Status::parsed);
  const std::string too_long = "PROXY UNKNOWN " + std::string(107 - 15, 'x') + "\r\n";
  CHECK(pp::parse(too_long).status == Status::invalid);
  // Without a CR in the first 107 bytes, no more bytes are waited for.
  CHECK(pp::parse("PROXY UNKNOWN " + std::string(200, 'x')).status == Status::invalid);
  CHECK(pp::parse("PROXY UNKNOWN " + std::string(92, 'x') + "\r").status == Status::invalid);
}

TEST_CASE("no PROXY signature: invalid at the first byte that differs") {
  CHECK(pp::parse("GET / HTTP/1.1\r\n\r\n").status == Status::invalid);
  CHECK(pp::parse("G").status == Status::invalid);
  CHECK(pp::parse("\x16\x03\x01").status == Status::invalid);  // a TLS ClientHello
  CHECK(pp::parse("PROXZ").status == Status::invalid);
  CHECK(pp::parse("PROX").status == Status::need_more);
  CHECK(pp::parse(kSignature.substr(0, 5) + "x").status == Status::invalid);
  CHECK(pp::parse(kSignature.substr(0, 7)).status == Status::need_more);
  CHECK(pp::parse("").status == Status::need_more);
}

TEST_CASE("PROXY v2 over IPv4 and IPv6: the source, the length; every truncation needs more") {
  SUBCASE("IPv4") {
    const auto header = v2(1, 0x11, kV4Payload);
    const auto r = pp::parse(header + "\x16\x03\x01");
    REQUIRE(r.status == Status::parsed);
    CHECK(r.version == 2);
    CHECK(r.length == 16 + 12);
    REQUIRE(r.source);
    CHECK(r.source->address == "203.0.113.7");
    CHECK(r.source->port == 56324);
    check_prefixes_need_more(header);
  }
  SUBCASE("IPv6") {
    const auto header = v2(1, 0x21, kV6Payload);
    const auto r = pp::parse(header);
    REQUIRE(r.status == Status::parsed);
    CHECK(r.length == 16 + 36);
    REQUIRE(r.source);
    CHECK(r.source->address == "2001:db8::7");
    CHECK(r.source->port == 56324);
    check_prefixes_need_more(header);
  }
}

TEST_CASE("PROXY v2: TLVs after the addresses are skipped") {
  const std::string tlvs = std::string("\x04\x00\x03", 3) + "abc" + std::string("\x01\x00\x02", 3) + "h2";
  const auto header = v2(1, 0x11, kV4Payload + tlvs);
  const auto r = pp::parse(header + "GET");
  REQUIRE(r.status == Status::parsed);
  CHECK(r.length == header.size());
  CHECK(r.source->address == "203.0.113.7");
  check_prefixes_need_more(header);
}

TEST_CASE("PROXY v2 LOCAL, UNSPEC, UNIX and UDP keep the connection's address") {
  for (const auto& header : {v2(0, 0x00, ""), v2(0, 0x11, kV4Payload), v2(1, 0x00, ""),
                             v2(1, 0x31, std::string(216, '\0')), v2(1, 0x12, kV4Payload)}) {
    const auto r = pp::parse(header);
    REQUIRE(r.status == Status::parsed);
    CHECK(r.length == header.size());
    CHECK_FALSE(r.source);
  }
}

TEST_CASE("PROXY v2: refused versions, commands, families, short address blocks and oversize payloads") {
  std::string bad_version = v2(1, 0x11, kV4Payload);
  bad_version[12] = 0x11;
  CHECK(pp::parse(bad_version).status == Status::invalid);
  CHECK(pp::parse(v2(2, 0x11, kV4Payload)).status == Status::invalid);  // command 2
  CHECK(pp::parse(v2(1, 0x41, kV4Payload)).status == Status::invalid);  // family 4
  CHECK(pp::parse(v2(1, 0x13, kV4Payload)).status == Status::invalid);  // transport 3
  CHECK(pp::parse(v2(1, 0x11, kV4Payload.substr(0, 11))).status == Status::invalid);
  CHECK(pp::parse(v2(1, 0x21, kV4Payload)).status == Status::invalid);  // 12 bytes for IPv6
  // Over the cap: refused from the fixed part alone, without waiting for it.
  const std::string oversize = kSignature + "\x21\x11" + be16(pp::kMaxV2Payload + 1);
  CHECK(pp::parse(oversize).status == Status::invalid);
  const auto at_cap = v2(1, 0x11, kV4Payload + std::string(pp::kMaxV2Payload - 12, '\0'));
  const auto r = pp::parse(at_cap);
  CHECK(r.status == Status::parsed);
  CHECK(r.length == pp::kMaxHeaderLength);
}
