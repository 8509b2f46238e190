// Fuzz target: the PROXY protocol header parser (lib/lb/proxy_protocol), raw
// bytes in. Whatever the bytes:
//  - a parsed header is 1..kMaxHeaderLength bytes long and no longer than
//    the input; v1 at most 107 bytes ending in CRLF; its source address, if
//    any, parses back as an address;
//  - every prefix of an input that parses is need-more or the same header
//    (a reader that peeks byte by byte decides the same), and every prefix
//    of an invalid input is need-more or invalid;
//  - an invalid result gives a reason.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "lb/proxy_protocol.hpp"
#include "userkey/lb/ip_filter.hpp"

namespace pp = userkey::lb::engine::proxy_protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  const auto r = pp::parse(bytes);
  using S = pp::Result::Status;
  if (r.status == S::parsed) {
    if (r.length == 0 || r.length > size || r.length > pp::kMaxHeaderLength) std::abort();
    if (r.version == 1 && (r.length > pp::kMaxV1Length || data[r.length - 2] != '\r' || data[r.length - 1] != '\n'))
      std::abort();
    if (r.version != 1 && r.version != 2) std::abort();
    if (r.source && !userkey::lb::IpAddress::parse(r.source->address)) std::abort();
    // The header alone parses the same.
    const auto alone = pp::parse(bytes.first(r.length));
    if (alone.status != S::parsed || alone.length != r.length) std::abort();
  }
  if (r.status == S::invalid && r.reason.empty()) std::abort();
  // Prefixes (a few, to stay fast): no earlier verdict contradicts this one.
  for (std::size_t n = 0; n < size && n < 64; ++n) {
    const auto p = pp::parse(bytes.first(n));
    if (p.status == S::need_more) continue;
    if (p.status != r.status) std::abort();
    if (p.status == S::parsed && p.length != r.length) std::abort();
  }
  return 0;
}
