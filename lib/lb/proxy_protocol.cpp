// The PROXY protocol header: see proxy_protocol.hpp.
#include "proxy_protocol.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "userkey/lb/ip_filter.hpp"

namespace userkey::lb::engine::proxy_protocol {

namespace {

using Status = Result::Status;

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::array<std::uint8_t, 12> kV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

Result need_more() { return {}; }
Result invalid(std::string_view reason) {
  Result r;
  r.status = Status::invalid;
  r.reason = reason;
  return r;
}
Result parsed(int version, std::size_t length, std::optional<Source> source = std::nullopt) {
  Result r;
  r.status = Status::parsed;
  r.version = version;
  r.length = length;
  r.source = std::move(source);
  return r;
}

// Whether the first min(size, prefix size) bytes match `prefix`.
bool matches_prefix(std::span<const std::uint8_t> bytes, std::span<const std::uint8_t> prefix) {
  const std::size_t n = std::min(bytes.size(), prefix.size());
  return std::equal(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n), prefix.begin());
}

std::optional<std::uint16_t> v1_port(std::string_view text) {
  // Decimal, no sign, no leading zero (but "0"), at most 65535.
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text.front() == '0')) return std::nullopt;
  unsigned v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size() || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// An address of the family the line names; as text (IPv4-mapped IPv6 as IPv4).
std::optional<std::string> v1_address(std::string_view text, bool v6) {
  if (text.empty() || (text.find(':') != std::string_view::npos) != v6) return std::nullopt;
  const auto ip = IpAddress::parse(text);
  if (!ip) return std::nullopt;
  return ip->to_string();
}

Result parse_v1(std::span<const std::uint8_t> bytes) {
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), std::min(bytes.size(), kMaxV1Length));
  // The line ends at the first CR, which must be followed by LF; before it,
  // only printable characters.
  std::size_t cr = std::string_view::npos;
  for (std::size_t i = kV1Prefix.size(); i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '\r') {
      cr = i;
      break;
    }
    if (ch < 0x20 || ch > 0x7e) return invalid("v1: a control character in the line");
  }
  if (cr == std::string_view::npos) {
    if (text.size() >= kMaxV1Length) return invalid("v1: the line is longer than 107 bytes");
    return need_more();
  }
  if (cr + 1 >= text.size()) {
    // CR is the last byte in: its LF may be on its way, unless the line
    // would then be too long.
    if (cr + 2 > kMaxV1Length) return invalid("v1: the line is longer than 107 bytes");
    return need_more();
  }
  if (text[cr + 1] != '\n') return invalid("v1: CR without LF");
  const std::size_t length = cr + 2;

  // "PROXY " protocol [" " src " " dst " " sport " " dport]
  std::string_view rest = text.substr(kV1Prefix.size(), cr - kV1Prefix.size());
  std::array<std::string_view, 5> fields;
  std::size_t count = 0;
  for (;;) {
    const auto sp = rest.find(' ');
    const std::string_view field = rest.substr(0, sp);
    if (field == "UNKNOWN" && count == 0) return parsed(1, length);  // the rest of the line is ignored
    if (count == fields.size()) return invalid("v1: too many fields");
    fields[count++] = field;
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
  if (fields[0] != "TCP4" && fields[0] != "TCP6") return invalid("v1: the protocol is not TCP4, TCP6 or UNKNOWN");
  if (count != 5) return invalid("v1: expected addresses and ports");
  const bool v6 = fields[0] == "TCP6";
  auto src = v1_address(fields[1], v6);
  const auto dst = v1_address(fields[2], v6);
  if (!src || !dst) return invalid("v1: an address is malformed or of the other family");
  const auto sport = v1_port(fields[3]);
  const auto dport = v1_port(fields[4]);
  if (!sport || !dport) return invalid("v1: a port is malformed");
  return parsed(1, length, Source{std::move(*src), *sport});
}

std::string address_text(const std::uint8_t* bytes, bool v6) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, buf, sizeof buf) == nullptr) return {};
  // IPv4-mapped IPv6 reads as IPv4, like the lb's own accepted addresses.
  if (const auto ip = IpAddress::parse(buf)) return ip->to_string();
  return buf;
}

Result parse_v2(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kV2FixedLength) return need_more();
  const std::uint8_t ver_cmd = bytes[12];
  const std::uint8_t fam = bytes[13];
  const std::size_t payload = (std::size_t{bytes[14]} << 8) | bytes[15];
  if ((ver_cmd >> 4) != 2) return invalid("v2: unknown version");
  const unsigned command = ver_cmd & 0x0F;
  if (command > 1) return invalid("v2: unknown command");
  const unsigned family = fam >> 4;
  const unsigned transport = fam & 0x0F;
  if (family > 3 || transport > 2) return invalid("v2: unknown address family or transport");
  if (payload > kMaxV2Payload) return invalid("v2: the payload is longer than 2048 bytes");
  const std::size_t length = kV2FixedLength + payload;
  if (bytes.size() < length) return need_more();
  if (command == 0) return parsed(2, length);  // LOCAL: the proxy's own connection (a health check)
  const std::uint8_t* addr = bytes.data() + kV2FixedLength;
  // PROXY over TCP: the addresses, then TLVs (skipped).
  if (family == 1) {
    if (payload < 12) return invalid("v2: the payload is too short for IPv4 addresses");
    if (transport != 1) return parsed(2, length);
    return parsed(2, length, Source{address_text(addr, false), static_cast<std::uint16_t>((addr[8] << 8) | addr[9])});
  }
  if (family == 2) {
    if (payload < 36) return invalid("v2: the payload is too short for IPv6 addresses");
    if (transport != 1) return parsed(2, length);
    return parsed(2, length, Source{address_text(addr, true), static_cast<std::uint16_t>((addr[32] << 8) | addr[33])});
  }
  return parsed(2, length);  // UNSPEC or UNIX: nothing the lb can use
}

}  // namespace

Result parse(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return need_more();
  if (bytes[0] == 'P') {
    const std::span<const std::uint8_t> prefix(reinterpret_cast<const std::uint8_t*>(kV1Prefix.data()),
                                               kV1Prefix.size());
    if (!matches_prefix(bytes, prefix)) return invalid("no PROXY protocol signature");
    if (bytes.size() <= kV1Prefix.size()) return need_more();
    return parse_v1(bytes);
  }
  if (!matches_prefix(bytes, kV2Signature)) return invalid("no PROXY protocol signature");
  return parse_v2(bytes);
}

}  // namespace userkey::lb::engine::proxy_protocol
