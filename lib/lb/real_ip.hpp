// The real client address of a request that came through trusted proxies.
//
// Owns: the set of trusted proxies (CIDR blocks, from --trusted-proxies) and
// the rule for believing a request's X-Forwarded-For / Forwarded (RFC 7239
// `for=`): only when the connection's peer is trusted; then the list is
// walked right to left, skipping addresses that are themselves trusted, and
// the first untrusted one is the client (all trusted: the leftmost). An
// entry that is not an address (a port, brackets and quotes are accepted
// around one; "unknown", an obfuscated name or garbage are not) stops the
// walk: the last good address is the client. X-Forwarded-For wins over
// Forwarded when a request has both.
//
// Pure: immutable once built, const members safe from any thread; no I/O.
//
// Leaves to others: knowing the connection's peer (downstream_session, after
// any PROXY protocol header), using the result (admission, the router, the
// access log) and what goes upstream (http1_codec).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <boost/beast/http/fields.hpp>

#include "userkey/lb/ip_filter.hpp"

namespace userkey::lb::engine {

class TrustedProxies {
public:
  /// None trusted: no request's forwarded headers are believed.
  TrustedProxies() = default;
  /// Throws std::invalid_argument for a bad CIDR.
  explicit TrustedProxies(std::span<const std::string> cidrs);

  bool empty() const { return blocks_.empty(); }
  bool trusted(const IpAddress& ip) const;
  /// False for an unparsable address.
  bool trusted(std::string_view ip) const;

  /// The client of a request whose connection comes from `peer`: `peer`
  /// itself unless it is trusted and the request's X-Forwarded-For (all its
  /// fields, in order) or, without one, Forwarded names someone else.
  /// Writes the result into `out` (an address in canonical text).
  void resolve(std::string_view peer, const boost::beast::http::fields& headers, std::string& out) const;

  /// The same over one list of X-Forwarded-For entries (comma-separated).
  void resolve_forwarded_for(std::string_view peer, std::string_view list, std::string& out) const;

private:
  std::vector<Cidr> blocks_;
};

/// One X-Forwarded-For or Forwarded `for=` node as an address: surrounding
/// quotes, [brackets] and a :port are taken off. Nullopt when it is not an
/// address.
std::optional<IpAddress> forwarded_node_address(std::string_view node);

}  // namespace userkey::lb::engine
