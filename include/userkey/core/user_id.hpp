// Parsing of the `user_id` request parameter.
//
// A user id is 1 to 10 ASCII decimal digits whose value fits the int32 the
// documents store (0 .. 2147483647). Leading zeros are allowed ("007" is 7).
// Anything else -- signs, spaces, JSON such as {"$ne":null}, operators,
// overlong input -- is rejected, so an id can only ever reach a repository as
// a plain integer, never as a query fragment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace userkey {

/// User ids are integers; documents store them as int32 (the forms a store
/// accepts are listed in mongo_repository.hpp and bson_file_repository.hpp).
using UserId = std::int64_t;

/// Longest raw user_id accepted before it is rejected as oversized.
inline constexpr std::size_t kMaxUserIdLength = 10;
inline constexpr UserId kMaxUserId = 2147483647;

struct UserIdError {
  std::string message;  ///< e.g. "user_id must be decimal digits"
};

/// Parses an already percent-decoded user_id. On failure returns nullopt and,
/// when `error` is given, a message safe to show the client.
std::optional<UserId> parse_user_id(std::string_view text, UserIdError* error = nullptr);

}  // namespace userkey
