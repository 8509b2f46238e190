// Request ids: which client X-Request-Id is kept, and the fresh ones made on
// each event loop.
//
// Owns: the rule for a well-formed id (1-128 characters of [A-Za-z0-9._:-],
// in exactly one X-Request-Id field), the in-place holder a session keeps an
// id in (no allocation), and the per-loop generator of fresh ids (128 bits
// of xoshiro256** as 32 lower-case hex digits, seeded from std::random_device;
// one per loop, so generating takes no lock and touches no shared state).
//
// Leaves to others: putting the id in the upstream request and the client's
// response (http1_codec), deciding when to do it (downstream_session).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>

namespace userkey::lb::engine {

/// The longest client request id kept.
inline constexpr std::size_t kMaxRequestIdLength = 128;

/// The header field the id travels in, both ways.
inline constexpr std::string_view kRequestIdField = "X-Request-Id";

/// True when `id` is 1-128 characters, each a letter, a digit or one of
/// `.`, `_`, `:`, `-` (enough for UUIDs, ULIDs and hex or dotted ids, and
/// nothing that could break a header, a log line or a JSON string).
constexpr bool valid_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (const char ch : id) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                    ch == '_' || ch == ':' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

/// A request id held in place (up to kMaxRequestIdLength characters); empty
/// when the request has none.
class RequestId {
public:
  std::string_view view() const noexcept { return {data_.data(), size_}; }
  bool empty() const noexcept { return size_ == 0; }
  /// Holds `id`, cut to kMaxRequestIdLength characters.
  void assign(std::string_view id) noexcept {
    size_ = id.size() < data_.size() ? id.size() : data_.size();
    for (std::size_t i = 0; i < size_; ++i) data_[i] = id[i];
  }
  void clear() noexcept { size_ = 0; }

private:
  friend class RequestIdGenerator;
  std::array<char, kMaxRequestIdLength> data_{};
  std::size_t size_ = 0;
};

/// Fresh request ids for one event loop: not thread-safe, keep one per loop.
class RequestIdGenerator {
public:
  /// Seeded from std::random_device.
  RequestIdGenerator();
  /// Seeded from `seed` (tests: the same seed gives the same ids).
  explicit RequestIdGenerator(std::uint64_t seed) noexcept;

  /// Puts a fresh id in `out`: 32 lower-case hex digits (128 bits).
  void next(RequestId& out) noexcept;
  /// 64 pseudo-random bits (xoshiro256**).
  std::uint64_t next64() noexcept;

private:
  void seed(std::uint64_t s) noexcept;
  std::array<std::uint64_t, 4> state_{};
};

/// The id a request goes on with. `fields` are its head's fields: when they
/// hold exactly one X-Request-Id and it is well-formed, `out` holds it and
/// the result is true; otherwise (none, several, malformed) `out` holds a
/// fresh id from `ids` and the result is false.
template <class Fields>
bool take_request_id(const Fields& fields, RequestIdGenerator& ids, RequestId& out) {
  auto [first, last] = fields.equal_range({kRequestIdField.data(), kRequestIdField.size()});
  if (first != last && std::next(first) == last) {
    const auto v = first->value();
    const std::string_view value(v.data(), v.size());
    if (valid_request_id(value)) {
      out.assign(value);
      return true;
    }
  }
  ids.next(out);
  return false;
}

}  // namespace userkey::lb::engine
