// Fuzz target: the real client address behind trusted proxies
// (lib/lb/real_ip): X-Forwarded-For and Forwarded values in. The first byte
// picks the header (--real-ip-header); the rest, split at '\n', are that
// header's fields. Whatever the bytes:
//  - the client is the peer or an address that parses back as itself;
//  - with X-Forwarded-For, the fields read one by one name the same client
//    as their values joined with commas (one list, however it is split);
//  - an X-Forwarded-For entry holding a quote is never an address;
//  - Forwarded's for= values are found without reading past the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <utility>  // Boost 1.74: before any Asio/Beast header under GCC 12

#include <boost/beast/http/fields.hpp>

#include "lb/real_ip.hpp"
#include "userkey/lb/ip_filter.hpp"

namespace engine = userkey::lb::engine;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto header = (data[0] & 1) ? engine::RealIpHeader::forwarded : engine::RealIpHeader::x_forwarded_for;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  static const std::vector<std::string> cidrs{"127.0.0.0/8", "10.0.0.0/8", "2001:db8::/32"};
  const engine::TrustedProxies trusted(cidrs, header);

  boost::beast::http::fields fields;
  std::string joined;
  std::size_t start = 0;
  for (;;) {
    const auto nl = text.find('\n', start);
    const std::string_view value = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    fields.insert(header == engine::RealIpHeader::forwarded ? "Forwarded" : "X-Forwarded-For",
                  boost::beast::string_view(value.data(), value.size()));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  // The values as stored (Beast trims surrounding whitespace), joined as the
  // lb reads them: non-empty fields, in order.
  for (const auto& f : fields)
    if (!f.value().empty()) joined += (joined.empty() ? "" : ",") + std::string(f.value());

  const std::string peer = "127.0.0.1";
  std::string client;
  trusted.resolve(peer, fields, client);
  if (client != peer) {
    const auto ip = userkey::lb::IpAddress::parse(client);
    if (!ip || ip->to_string() != client) std::abort();
  }
  if (header == engine::RealIpHeader::x_forwarded_for) {
    std::string again;
    trusted.resolve_forwarded_for(peer, joined, again);
    if (again != client) std::abort();
  }
  // An untrusted peer is its own client, whatever it sends.
  std::string untrusted;
  trusted.resolve("192.0.2.1", fields, untrusted);
  if (untrusted != "192.0.2.1") std::abort();

  if (text.find('"') != std::string_view::npos && engine::forwarded_for_address(text)) std::abort();
  std::size_t seen = 0;
  engine::forwarded_for_values(text, [&](std::string_view v) {
    if (!v.empty() && (v.data() < text.data() || v.data() + v.size() > text.data() + text.size())) std::abort();
    ++seen;
  });
  if (seen == 0) std::abort();  // (at least one element, empty or not)
  return 0;
}
