// The PROXY protocol header (versions 1 and 2) that a proxy in front of the
// lb (HAProxy, an AWS Network Load Balancer, ...) sends at the start of a
// connection to say whom the connection is really from.
//
// Owns: reading one header from the first bytes of a connection: whether it
// is complete yet, how long it is and the source address and port it names.
// Version 1 is the text line "PROXY TCP4|TCP6|UNKNOWN ...\r\n" (at most 107
// bytes); version 2 the binary form (a 12-byte signature, a command, a
// family and a payload length). v1 UNKNOWN, the v2 LOCAL command and v2
// families other than TCP over IPv4 / IPv6 name no address (the connection's
// own is kept); v2 TLVs are skipped; a v2 payload over kMaxV2Payload bytes
// is refused.
//
// Pure: a function of its input, no I/O, no allocation but the address
// text; safe to call from any thread.
//
// Leaves to others: reading the bytes from the socket (without taking what
// follows the header), the deadline and closing a connection whose header is
// invalid (downstream_session).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace userkey::lb::engine::proxy_protocol {

/// The longest v1 line, CRLF included (the specification's bound).
inline constexpr std::size_t kMaxV1Length = 107;
/// The v2 fixed part: signature, command, family, length.
inline constexpr std::size_t kV2FixedLength = 16;
/// The longest v2 payload accepted (addresses + TLVs).
inline constexpr std::size_t kMaxV2Payload = 2048;
/// The most bytes a header can take: what a reader should look at.
inline constexpr std::size_t kMaxHeaderLength = kV2FixedLength + kMaxV2Payload;

/// Where the header says the connection comes from.
struct Source {
  std::string address;  ///< textual IPv4 or IPv6 (no brackets)
  std::uint16_t port = 0;
};

struct Result {
  enum class Status {
    need_more,  ///< a valid header's beginning: read more
    invalid,    ///< not a header, or a malformed one (`reason` says why)
    parsed,     ///< a complete header of `length` bytes
  };
  Status status = Status::need_more;
  std::string_view reason;  ///< for invalid: static text
  std::size_t length = 0;   ///< for parsed: the header's bytes (what follows is the client's)
  std::optional<Source> source;  ///< for parsed: empty when the connection's own address stays
  int version = 0;               ///< for parsed: 1 or 2
};

/// Reads the header at the start of `bytes` (everything the connection has
/// sent so far, or a prefix of it). Bytes after the header are not looked at.
Result parse(std::span<const std::uint8_t> bytes);
inline Result parse(std::string_view bytes) {
  return parse(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

}  // namespace userkey::lb::engine::proxy_protocol
