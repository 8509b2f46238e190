// Unit tests for lib/backend/mongo_errors.cpp.
//
// How a mongo-c-driver error is counted and answered: a refused login is
// "unauthorized" (a credentials problem for the operator), a login that timed
// out or broke is a network failure. The messages are the ones mongo-c-driver
// 1.23 reported against FerretDB: a wrong password, and 64 concurrent lookups
// on a cold pool (bench/stack.py, backend without cache), where logins timed
// out and were logged as "database refused our credentials".
#include <doctest/doctest.h>

#include <mongoc/mongoc.h>

#include "backend/mongo_errors.hpp"

using userkey::DatabaseError;
using userkey::detail::classify_driver_error;

namespace {

DatabaseError kind(std::uint32_t domain, std::uint32_t code, const char* message) {
  bson_error_t e;
  bson_set_error(&e, domain, code, "%s", message);
  return classify_driver_error(e);
}

}  // namespace

TEST_CASE("a login the server refused is unauthorized") {
  CHECK(kind(MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE, "Authentication failed.") ==
        DatabaseError::unauthorized);
  CHECK(kind(MONGOC_ERROR_SERVER_SELECTION, MONGOC_ERROR_SERVER_SELECTION_FAILURE,
             "No suitable servers found: `serverSelectionTimeoutMS` expired: [Authentication failed.]") ==
        DatabaseError::unauthorized);
  // (Not seen here: a refusal wrapped the way transport failures are. The
  // server's words win.)
  CHECK(kind(MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE,
             "Failed to send \"saslContinue\" command with database \"admin\": Authentication failed.") ==
        DatabaseError::unauthorized);
  CHECK(kind(MONGOC_ERROR_SERVER, 18, "Authentication failed.") == DatabaseError::unauthorized);
  CHECK(kind(MONGOC_ERROR_SERVER, 13, "command find requires authentication") == DatabaseError::unauthorized);
}

TEST_CASE("a login that timed out or broke is a network failure, not a refusal") {
  CHECK(kind(MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE,
             "Failed to send \"saslStart\" command with database \"admin\": Failed to read 4 bytes: socket error or "
             "timeout") == DatabaseError::network);
  CHECK(kind(MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE,
             "Failed to send \"saslContinue\" command with database \"admin\": socket error or timeout") ==
        DatabaseError::network);
  // A login conversation out of step is not a refusal either.
  CHECK(kind(MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE, "Incorrect step for 'done'") ==
        DatabaseError::other);
}

TEST_CASE("no server, broken streams and failed commands") {
  CHECK(kind(MONGOC_ERROR_SERVER_SELECTION, MONGOC_ERROR_SERVER_SELECTION_FAILURE,
             "No suitable servers found: `serverSelectionTimeoutMS` expired: [socket timeout calling hello on "
             "'127.0.0.1:1']") == DatabaseError::unreachable);
  CHECK(kind(MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET, "Failed to read 4 bytes: socket error or timeout") ==
        DatabaseError::network);
  CHECK(kind(MONGOC_ERROR_SERVER, 2, "BadValue") == DatabaseError::other);
  CHECK(kind(MONGOC_ERROR_QUERY, MONGOC_ERROR_QUERY_FAILURE, "cursor error") == DatabaseError::other);
}
