// Building the driver's URI from a MongoConfig (internal; unit-tested in
// tests/unit/backend/test_mongo_uri.cpp).
#pragma once

#include "backend/bson_handles.hpp"
#include "userkey/backend/mongo_repository.hpp"

namespace userkey::detail {

/// Parses cfg.uri and completes it from cfg:
///  - credentials from cfg.username / cfg.password when the URI has none;
///  - authSource "admin" when there are credentials and the URI sets no
///    authSource, also when the URI names a database ("mongodb://h/myusers"
///    selects the default database, not where the user lives). Mechanisms
///    whose users live in "$external" (X509, GSSAPI, PLAIN, AWS) are left
///    to the driver;
///  - every timeout, retryReads and the app name unless the URI sets it.
/// Throws std::invalid_argument for a malformed URI; the message never quotes
/// it (the driver's would, password included).
UriPtr build_mongo_uri(const MongoConfig& cfg);

}  // namespace userkey::detail
