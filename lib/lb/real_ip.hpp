// The real client address of a request that came through trusted proxies.
//
// Owns: the set of trusted proxies (CIDR blocks, from --trusted-proxies) and
// the rule for believing the one header that names the client
// (--real-ip-header, as nginx's real_ip_header): X-Forwarded-For, or
// Forwarded (RFC 7239 `for=`). It is believed only when the connection's
// peer is trusted; then its list is walked right to left, skipping addresses
// that are themselves trusted, and the first untrusted one is the client
// (all trusted: the leftmost). An entry that is not an address stops the
// walk: the last good address is the client.
//
// The two grammars differ, and each is read as its own: X-Forwarded-For is a
// plain comma-separated list where a quote is just a character (an entry
// with one is not an address), so what a client writes can never swallow the
// address its proxy appended; Forwarded is RFC 7239's, where a quoted-string
// may hold commas and semicolons. An entry may carry a :port, and IPv6 may be
// in [brackets]; "unknown", an obfuscated name or garbage are not addresses.
// The header not chosen is never read: a client's X-Forwarded-For cannot win
// over the Forwarded its trusted proxy wrote.
//
// Pure: immutable once built, const members safe from any thread; no I/O.
//
// Leaves to others: knowing the connection's peer (downstream_session, after
// any PROXY protocol header), using the result (admission, the router, the
// access log) and what goes upstream (http1_codec).
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <boost/beast/http/fields.hpp>

#include "userkey/lb/ip_filter.hpp"
#include "userkey/lb/proxy_config.hpp"

namespace userkey::lb::engine {

using userkey::lb::RealIpHeader;

class TrustedProxies {
public:
  /// None trusted: no request's forwarded headers are believed.
  TrustedProxies() = default;
  /// Throws std::invalid_argument for a bad CIDR.
  explicit TrustedProxies(std::span<const std::string> cidrs,
                          RealIpHeader header = RealIpHeader::x_forwarded_for);

  bool empty() const { return blocks_.empty(); }
  bool trusted(const IpAddress& ip) const;
  /// False for an unparsable address.
  bool trusted(std::string_view ip) const;

  RealIpHeader header() const { return header_; }

  /// The client of a request whose connection comes from `peer`: `peer`
  /// itself unless it is trusted and the request's chosen header (all its
  /// fields, in order) names someone else. Writes the result into `out` (an
  /// address in canonical text).
  void resolve(std::string_view peer, const boost::beast::http::fields& headers, std::string& out) const;

  /// The same over one X-Forwarded-For value (comma-separated entries),
  /// whichever header is chosen.
  void resolve_forwarded_for(std::string_view peer, std::string_view list, std::string& out) const;

private:
  std::vector<Cidr> blocks_;
  RealIpHeader header_ = RealIpHeader::x_forwarded_for;
};

/// One X-Forwarded-For entry as an address: IPv4 or IPv6, with a :port
/// (IPv6 then in [brackets]) taken off. Nullopt when it is not an address
/// (a quote included: X-Forwarded-For has no quoting).
std::optional<IpAddress> forwarded_for_address(std::string_view entry);

/// One Forwarded `for=` value as an address: the same, inside an optional
/// quoted-string (RFC 7239 §6). Nullopt when it is not an address.
std::optional<IpAddress> forwarded_node_address(std::string_view node);

/// Calls `each` with every `for=` value of a Forwarded field value, in
/// order; an element without one gives an empty value (not an address).
void forwarded_for_values(std::string_view field_value, const std::function<void(std::string_view)>& each);

}  // namespace userkey::lb::engine
