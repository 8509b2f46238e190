#include "userkey/core/user_id.hpp"

namespace userkey {

std::optional<UserId> parse_user_id(std::string_view text, UserIdError* error) {
  auto fail = [&](const char* msg) -> std::optional<UserId> {
    if (error) error->message = msg;
    return std::nullopt;
  };
  if (text.empty()) return fail("user_id is empty");
  if (text.size() > kMaxUserIdLength) return fail("user_id is too long (at most 10 digits)");
  UserId value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return fail("user_id must be decimal digits");
    value = value * 10 + (c - '0');
  }
  if (value > kMaxUserId) return fail("user_id is out of range (0..2147483647)");
  return value;
}

}  // namespace userkey
