// Fuzz target: the request-target parsing every user_id goes through
// (split_target, find_query_param, percent_decode, parse_user_id). Whatever
// the bytes, nothing crashes, and an id that parses is always 0..2^31-1.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "userkey/core/query_string.hpp"
#include "userkey/core/user_id.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view target(reinterpret_cast<const char*>(data), size);
  const auto parts = userkey::split_target(target);
  bool malformed = false;
  const auto param = userkey::find_query_param(parts.query, "user_id", &malformed);
  if (const auto decoded = userkey::percent_decode(param.raw)) {
    userkey::UserIdError error;
    if (const auto id = userkey::parse_user_id(*decoded, &error)) {
      if (*id < 0 || *id > userkey::kMaxUserId) std::abort();
    } else if (error.message.empty()) {
      std::abort();  // a refusal always says why
    }
  }
  (void)userkey::parse_user_id(target);
  return 0;
}
