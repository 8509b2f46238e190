// Internal: the documented ranges of lb settings, shared by the settings
// table, validate() and the [[upstream]] table reader.
#pragma once

#include <cstdint>

namespace userkey::lb {

inline constexpr std::uint32_t kMaxWeight = 1000;
inline constexpr std::uint32_t kMaxRetries = 10;
inline constexpr std::uint32_t kMaxThreads = 256;
inline constexpr std::uint32_t kMaxFails = 1000;
inline constexpr std::uint32_t kMaxRiseFall = 1000;
inline constexpr std::uint32_t kMinHeaderBytes = 1024;
// Beast stores a field value in at most 65535 bytes and throws beyond it.
inline constexpr std::uint32_t kMaxHeaderBytes = 65535;

}  // namespace userkey::lb
