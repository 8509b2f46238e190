#include "userkey/lb/ip_filter.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>


namespace userkey::lb {

namespace {

void set_error(std::string* error, std::string msg) {
  if (error != nullptr) *error = std::move(msg);
}

constexpr std::array<std::uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_v4_mapped(const std::array<std::uint8_t, 16>& b) {
  return std::memcmp(b.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0;
}

// Clears every bit after the first `prefix` bits.
void mask_host_bits(std::array<std::uint8_t, 16>& b, unsigned prefix) {
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned bit = i * 8;
    if (bit >= prefix) {
      b[i] = 0;
    } else if (prefix - bit < 8) {
      b[i] &= static_cast<std::uint8_t>(0xff << (8 - (prefix - bit)));
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// IpAddress
// ---------------------------------------------------------------------------

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';

  IpAddress ip;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, ip.bytes.data()) != 1) return std::nullopt;
    ip.family = Family::v4;
    return ip;
  }
  if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) return std::nullopt;
  if (is_v4_mapped(ip.bytes)) {
    std::array<std::uint8_t, 16> v4{};
    std::memcpy(v4.data(), ip.bytes.data() + 12, 4);
    ip.bytes = v4;
    ip.family = Family::v4;
  } else {
    ip.family = Family::v6;
  }
  return ip;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  const int af = family == Family::v4 ? AF_INET : AF_INET6;
  if (inet_ntop(af, bytes.data(), buf, sizeof(buf)) == nullptr) return {};
  return buf;
}

// ---------------------------------------------------------------------------
// Cidr
// ---------------------------------------------------------------------------

Cidr::Cidr(IpAddress network, unsigned prefix) : network_(network), prefix_(prefix) {
  mask_host_bits(network_.bytes, prefix_);
}

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* error) {
  const std::string quoted = "CIDR '" + std::string(text) + "': ";
  const auto slash = text.find('/');
  const std::string_view addr_text = text.substr(0, slash);
  // Parse the address without v4-mapped normalisation first, so that
  // "::ffff:0:0/96" keeps its IPv6 prefix length meaning.
  char buf[INET6_ADDRSTRLEN + 1];
  if (addr_text.empty() || addr_text.size() >= sizeof(buf)) {
    set_error(error, quoted + "missing or invalid address");
    return std::nullopt;
  }
  std::memcpy(buf, addr_text.data(), addr_text.size());
  buf[addr_text.size()] = '\0';
  IpAddress ip;
  if (addr_text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, ip.bytes.data()) != 1) {
      set_error(error, quoted + "invalid IPv4 address");
      return std::nullopt;
    }
    ip.family = IpAddress::Family::v4;
  } else {
    if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) {
      set_error(error, quoted + "invalid IPv6 address");
      return std::nullopt;
    }
    ip.family = IpAddress::Family::v6;
  }

  unsigned prefix = static_cast<unsigned>(ip.bit_width());
  if (slash != std::string_view::npos) {
    const std::string_view len = text.substr(slash + 1);
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), v);
    if (len.empty() || ec != std::errc{} || ptr != len.data() + len.size() || v > ip.bit_width()) {
      set_error(error, quoted + "prefix length must be a number in 0.." + std::to_string(ip.bit_width()));
      return std::nullopt;
    }
    prefix = v;
  }

  if (ip.family == IpAddress::Family::v6 && prefix >= 96 && is_v4_mapped(ip.bytes)) {
    std::array<std::uint8_t, 16> v4{};
    std::memcpy(v4.data(), ip.bytes.data() + 12, 4);
    ip.bytes = v4;
    ip.family = IpAddress::Family::v4;
    prefix -= 96;
  }
  return Cidr(ip, prefix);
}

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.family != network_.family) return false;
  const unsigned full = prefix_ / 8;
  if (std::memcmp(ip.bytes.data(), network_.bytes.data(), full) != 0) return false;
  const unsigned rest = prefix_ % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (ip.bytes[full] & mask) == network_.bytes[full];
}

bool Cidr::contains(std::string_view ip) const {
  const auto parsed = IpAddress::parse(ip);
  return parsed && contains(*parsed);
}

std::string Cidr::to_string() const { return network_.to_string() + "/" + std::to_string(prefix_); }

// ---------------------------------------------------------------------------
// IpFilter
// ---------------------------------------------------------------------------

IpFilter::IpFilter(std::vector<Cidr> allow, std::vector<Cidr> deny)
    : allow_(std::move(allow)), deny_(std::move(deny)) {}

std::optional<IpFilter> IpFilter::parse(std::span<const std::string> allow, std::span<const std::string> deny,
                                        std::string* error) {
  IpFilter f;
  for (const auto& s : allow) {
    auto c = Cidr::parse(s, error);
    if (!c) {
      if (error != nullptr) *error = "allow list: " + *error;
      return std::nullopt;
    }
    f.allow_.push_back(*c);
  }
  for (const auto& s : deny) {
    auto c = Cidr::parse(s, error);
    if (!c) {
      if (error != nullptr) *error = "deny list: " + *error;
      return std::nullopt;
    }
    f.deny_.push_back(*c);
  }
  return f;
}

bool IpFilter::allowed(const IpAddress& ip) const {
  for (const auto& c : deny_) {
    if (c.contains(ip)) return false;
  }
  if (allow_.empty()) return true;
  for (const auto& c : allow_) {
    if (c.contains(ip)) return true;
  }
  return false;
}

bool IpFilter::allowed(std::string_view ip) const {
  const auto parsed = IpAddress::parse(ip);
  return parsed && allowed(*parsed);
}

// ---------------------------------------------------------------------------
// ConnectionLimiter
// ---------------------------------------------------------------------------

ConnectionLimiter::Admit ConnectionLimiter::try_acquire(std::string_view ip) {
  if (cap_ == 0) return Admit::untracked;
  ClientKeyBuffer buf;
  const std::string_view key = client_key(ip, v6_prefix_, buf);
  return table_.with_shard(key, [&](auto& counts) {
    std::uint32_t* count = counts.find(key);
    if (count == nullptr) {
      if (counts.full()) return Admit::untracked;
      counts.insert(key, 1u);
      return Admit::counted;
    }
    if (*count >= cap_) return Admit::refused;
    ++*count;
    return Admit::counted;
  });
}

void ConnectionLimiter::release(std::string_view ip) {
  if (cap_ == 0) return;
  ClientKeyBuffer buf;
  const std::string_view key = client_key(ip, v6_prefix_, buf);
  table_.with_shard(key, [&](auto& counts) {
    std::uint32_t* count = counts.find(key);
    if (count != nullptr && --*count == 0) counts.erase(key);
  });
}

std::uint32_t ConnectionLimiter::count(std::string_view ip) const {
  if (cap_ == 0) return 0;
  ClientKeyBuffer buf;
  const std::string_view key = client_key(ip, v6_prefix_, buf);
  return table_.with_shard(key, [&](const auto& counts) {
    const std::uint32_t* count = counts.peek(key);
    return count == nullptr ? 0u : *count;
  });
}

}  // namespace userkey::lb
