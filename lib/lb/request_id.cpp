// Request ids: see request_id.hpp.
#include "request_id.hpp"

#include <random>

#include "hash.hpp"

namespace userkey::lb::engine {

namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

}  // namespace

RequestIdGenerator::RequestIdGenerator() {
  std::random_device rd;
  std::uint64_t s = 0;
  for (int i = 0; i < 2; ++i) s = (s << 32) ^ rd();
  seed(s);
}

RequestIdGenerator::RequestIdGenerator(std::uint64_t s) noexcept { seed(s); }

// The four state words from a 64-bit seed through splitmix64 (never all zero).
void RequestIdGenerator::seed(std::uint64_t s) noexcept {
  for (auto& word : state_) {
    s += detail::kGolden;
    word = detail::mix64(s);
  }
}

std::uint64_t RequestIdGenerator::next64() noexcept {
  auto& s = state_;
  const std::uint64_t out = rotl(s[1] * 5, 7) * 9;
  const std::uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

void RequestIdGenerator::next(RequestId& out) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = next64();
    for (int i = 15; i >= 0; --i, v >>= 4) out.data_[static_cast<std::size_t>(half * 16 + i)] = kHex[v & 15];
  }
  out.size_ = 32;
}

}  // namespace userkey::lb::engine
