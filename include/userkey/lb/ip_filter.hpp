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
// ConnectionLimiter - caps concurrent connections per client (IPv4 address
//              or IPv6 /64, see client_table.hpp).
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
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "userkey/lb/client_table.hpp"

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

/// Per-client cap on concurrent connections. Clients are keyed by
/// client_key() (an IPv6 client per /v6_prefix network). Every try_acquire()
/// that answers `counted` must be paired with exactly one release(). An
/// entry lives while its client has connections open, and at most about
/// `max_clients` clients are tracked: a new client beyond that is admitted
/// `untracked` (the cap cannot apply to it until entries free up; a global
/// connection limit is the backstop), never at the cost of a tracked
/// client's count. Thread-safe.
class ConnectionLimiter {
public:
  enum class Admit { counted, untracked, refused };

  /// `max_per_ip` == 0 means unlimited (nothing is tracked).
  explicit ConnectionLimiter(std::uint32_t max_per_ip, unsigned v6_prefix = 64,
                             std::size_t max_clients = kDefaultMaxClients)
      : cap_(max_per_ip), v6_prefix_(v6_prefix), table_(max_clients) {}

  std::uint32_t cap() const { return cap_; }
  /// Counts the connection if `ip`'s client is below the cap (`counted`),
  /// refuses it at the cap; `untracked` when unlimited or the table is full.
  Admit try_acquire(std::string_view ip);
  /// Ends a connection counted by try_acquire(); no-op for an untracked client.
  void release(std::string_view ip);
  /// Current connections of `ip`'s client (0 when unlimited or untracked).
  std::uint32_t count(std::string_view ip) const;
  /// Number of tracked clients.
  std::size_t size() const { return table_.size(); }

private:
  std::uint32_t cap_;
  unsigned v6_prefix_;
  ClientTable<std::uint32_t> table_;
};

}  // namespace userkey::lb
