// Internal (not installed): the fast, non-cryptographic 64-bit hash the
// load-balancing code uses for ip_hash, consistent_hash, the hash-ring points
// and shard selection.
//
// hash64(bytes) = mix64(FNV-1a-64(bytes)). FNV-1a (Fowler, Noll, Vo) is a
// simple byte-at-a-time hash that is fast on short keys such as IP addresses
// and user ids, but its high bits are poorly mixed; the finalizer is the
// splitmix64 output function (Steele, Lea, Flood: "Fast Splittable
// Pseudorandom Number Generators", OOPSLA 2014), a bijection with full
// avalanche, so every output bit depends on every input bit. That matters
// because the ring compares whole 64-bit values and ip_hash reduces modulo n.
//
// Not resistant to hash flooding: inputs are keys chosen by clients, but the
// only effect of a deliberately colliding key set is that those clients land
// on the same upstream, which they could also get by sending the same key.
#pragma once

#include <cstdint>
#include <string_view>

namespace userkey::lb::detail {

inline constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
inline constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;
inline constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

/// splitmix64 finalizer: a bijective 64-bit mixer with good avalanche.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Plain FNV-1a over the bytes of `s`.
constexpr std::uint64_t fnv1a64(std::string_view s) noexcept {
  std::uint64_t h = kFnvOffset;
  for (char ch : s) {
    h ^= static_cast<unsigned char>(ch);
    h *= kFnvPrime;
  }
  return h;
}

/// The hash to use: FNV-1a followed by the splitmix64 finalizer.
constexpr std::uint64_t hash64(std::string_view s) noexcept { return mix64(fnv1a64(s)); }

/// Derives the i-th independent value from a seed hash (used for the virtual
/// nodes of one upstream: point i depends only on the address and i).
constexpr std::uint64_t derive64(std::uint64_t seed, std::uint64_t i) noexcept {
  return mix64(seed + (i + 1) * kGolden);
}

}  // namespace userkey::lb::detail
