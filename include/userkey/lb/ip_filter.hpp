// Client-IP access control for the load balancer.
//
// IpAddress  - a parsed IPv4 or IPv6 address (inet_pton). IPv4-mapped IPv6
//              addresses (::ffff:a.b.c.d, as seen on dual-stack sockets) are
//              normalised to IPv4, so "10.0.0.0/8" matches them too.
// Cidr       - an address block "ADDR/LEN" (or a single address, = /32 or
//              /128). Host bits beyond LEN are ignored ("10.1.2.3/8" is
//              10.0.0.0/8). ::ffff:0:0/96-style blocks with LEN >= 96 are
//              normalised to the equivalent IPv4 block.
// IpFilter   - allow and deny lists: a client is rejected if it matches any
//              deny entry (deny wins); otherwise, if the allow list is
//              non-empty, it must match an allow entry; with both lists empty
//              everything passes. An unparsable client address is rejected.
// ConnectionLimiter - caps concurrent connections per client IP.
//
// Errors: parse functions return nullopt and, when given, set `*error` to a
// message naming the offending input. Nothing here throws except on
// allocation failure.
//
// Thread-safety: IpAddress, Cidr and IpFilter are immutable after
// construction (IpFilter's add_* must not race with allowed()); const members
// are safe to call concurrently. ConnectionLimiter is fully thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace userkey::lb {

struct IpAddress {
  enum class Family : std::uint8_t { v4, v6 };
  Family family = Family::v4;
  /// Network byte order; IPv4 uses bytes[0..3], the rest are zero.
  std::array<std::uint8_t, 16> bytes{};

  /// Parses a textual IPv4 or IPv6 address (no port, no brackets, no zone).
  static std::optional<IpAddress> parse(std::string_view text);
  std::size_t bit_width() const { return family == Family::v4 ? 32 : 128; }
  std::string to_string() const;
  bool operator==(const IpAddress&) const = default;
};

class Cidr {
public:
  /// "ADDR/LEN" or "ADDR". LEN is decimal, 0..32 for IPv4, 0..128 for IPv6.
  static std::optional<Cidr> parse(std::string_view text, std::string* error = nullptr);

  bool contains(const IpAddress& ip) const;
  /// False for an unparsable `ip`.
  bool contains(std::string_view ip) const;

  const IpAddress& network() const { return network_; }
  unsigned prefix_length() const { return prefix_; }
  /// Canonical "network/len".
  std::string to_string() const;

private:
  Cidr(IpAddress network, unsigned prefix);
  IpAddress network_;  // host bits cleared
  unsigned prefix_ = 0;
};

class IpFilter {
public:
  /// An empty filter allows everyone.
  IpFilter() = default;
  IpFilter(std::vector<Cidr> allow, std::vector<Cidr> deny);

  /// Parses both lists; nullopt with `*error` naming the first bad entry.
  static std::optional<IpFilter> parse(std::span<const std::string> allow, std::span<const std::string> deny,
                                       std::string* error = nullptr);

  void add_allow(Cidr c) { allow_.push_back(std::move(c)); }
  void add_deny(Cidr c) { deny_.push_back(std::move(c)); }

  /// Deny wins; a non-empty allow list must match; unparsable -> false.
  bool allowed(std::string_view ip) const;
  bool allowed(const IpAddress& ip) const;

  /// True when both lists are empty (allowed() is always true for a valid IP).
  bool empty() const { return allow_.empty() && deny_.empty(); }
  const std::vector<Cidr>& allow_list() const { return allow_; }
  const std::vector<Cidr>& deny_list() const { return deny_; }

private:
  std::vector<Cidr> allow_;
  std::vector<Cidr> deny_;
};

/// Per-client-IP cap on concurrent connections. Every successful
/// try_acquire(ip) must be paired with exactly one release(ip). Entries are
/// erased when their count drops to zero, so memory is bounded by the number
/// of clients with open connections. Sharded (kShards mutex + map pairs) so
/// threads serving different clients rarely contend. Thread-safe.
class ConnectionLimiter {
public:
  static constexpr std::size_t kShards = 16;

  /// `max_per_ip` == 0 means unlimited (nothing is tracked).
  explicit ConnectionLimiter(std::uint32_t max_per_ip) : cap_(max_per_ip) {}

  std::uint32_t cap() const { return cap_; }
  /// True and counts the connection if `ip` is below the cap.
  bool try_acquire(std::string_view ip);
  /// Ends a connection counted by try_acquire(); no-op for an untracked ip.
  void release(std::string_view ip);
  /// Current connections of `ip` (0 when unlimited or untracked).
  std::uint32_t count(std::string_view ip) const;
  /// Number of tracked IPs.
  std::size_t size() const;

private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> counts;
  };
  Shard& shard_for(std::string_view ip) const;

  std::uint32_t cap_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace userkey::lb
