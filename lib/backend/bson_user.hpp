// Reading a user document's fields (internal; shared by the BSON file and the
// MongoDB repositories so both accept the same document shapes).
#pragma once

#include <bson/bson.h>

#include <optional>
#include <string>

#include "userkey/backend/user_repository.hpp"

namespace userkey::detail {

/// user_id as int32, int64, integral double, or canonical decimal string
/// ("7"; not "007", which a MongoDB query for 7 would not match either),
/// within 0..kMaxUserId: an id no request can name is no user (nullopt).
std::optional<UserId> read_user_id(const bson_t* doc);
/// user_key as a UTF-8 string.
std::optional<std::string> read_user_key(const bson_t* doc);

}  // namespace userkey::detail
