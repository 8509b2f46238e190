// Which kind of failure a mongo-c-driver error is (internal; unit-tested in
// tests/unit/backend/test_mongo_errors.cpp with the errors the driver reports).
#pragma once

#include <bson/bson.h>

#include "userkey/backend/repository_stats.hpp"

namespace userkey::detail {

/// The kind MongoRepository counts and answers for a driver error:
///  - unauthorized only when the server refused the login: its own error
///    (AuthenticationFailed, Unauthorized), or the driver's authentication
///    error carrying the server's refusal, also inside a server-selection
///    error;
///  - a connection that broke or timed out while logging in is `network`,
///    not a refusal: the driver reports it as an authentication error too
///    ("Failed to send "saslStart" ...: socket error or timeout"), which
///    under load would otherwise log a credentials problem that is not one;
///  - a login conversation the driver could not follow is `other`;
///  - a server-selection failure is `unreachable`, any other stream error
///    `network`, the rest `other`.
DatabaseError classify_driver_error(const bson_error_t& e);

}  // namespace userkey::detail
