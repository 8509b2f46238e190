// Client keys and their hash: see userkey/lb/client_table.hpp.
#include "userkey/lb/client_table.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "hash.hpp"
#include "userkey/lb/ip_filter.hpp"

namespace userkey::lb {

std::string_view client_key(std::string_view ip, unsigned v6_prefix, ClientKeyBuffer& buf) {
  if (ip.find(':') == std::string_view::npos) return ip;  // IPv4 (the common case): no parsing
  const auto addr = IpAddress::parse(ip);
  if (!addr) return ip;
  if (addr->family == IpAddress::Family::v4) {  // v4-mapped: the same client as its IPv4 form
    if (inet_ntop(AF_INET, addr->bytes.data(), buf.data(), buf.size()) == nullptr) return ip;
    return std::string_view(buf.data());
  }
  const unsigned prefix = std::clamp(v6_prefix, 1u, 128u);
  auto bytes = addr->bytes;
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned bit = i * 8;
    if (bit >= prefix) bytes[i] = 0;
    else if (prefix - bit < 8) bytes[i] &= static_cast<std::uint8_t>(0xff << (8 - (prefix - bit)));
  }
  if (inet_ntop(AF_INET6, bytes.data(), buf.data(), buf.size()) == nullptr) return ip;
  std::size_t len = std::strlen(buf.data());
  if (len + 4 >= buf.size()) return ip;  // (never: an address is at most 45 characters)
  buf[len++] = '/';
  const auto [end, ec] = std::to_chars(buf.data() + len, buf.data() + buf.size(), prefix);
  if (ec != std::errc{}) return ip;
  return std::string_view(buf.data(), static_cast<std::size_t>(end - buf.data()));
}

std::uint64_t client_key_hash(std::string_view key) noexcept { return detail::hash64(key); }

}  // namespace userkey::lb
