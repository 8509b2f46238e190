#include "backend/mongo_errors.hpp"

#include <mongoc/mongoc.h>

#include <string_view>

namespace userkey::detail {

namespace {

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// The driver wraps every failed send or receive of a command, the login's
// included, as "Failed to send "<command>" command with database ...: <why>".
bool transport_failure(std::string_view message) {
  return message.starts_with("Failed to send") || contains(message, "socket error or timeout") ||
         contains(message, "Failed to read") || contains(message, "Failed to write");
}

// The SCRAM conversation went out of step (an answer the driver did not expect).
bool conversation_failure(std::string_view message) { return contains(message, "Incorrect step"); }

}  // namespace

DatabaseError classify_driver_error(const bson_error_t& e) {
  const std::string_view message(e.message);
  if (e.domain == MONGOC_ERROR_SERVER && (e.code == 18 /* AuthenticationFailed */ || e.code == 13 /* Unauthorized */))
    return DatabaseError::unauthorized;
  if (e.domain == MONGOC_ERROR_CLIENT && e.code == MONGOC_ERROR_CLIENT_AUTHENTICATE) {
    // The server's own refusal wins, whatever wrapped it.
    if (contains(message, "Authentication failed")) return DatabaseError::unauthorized;
    if (transport_failure(message)) return DatabaseError::network;
    if (conversation_failure(message)) return DatabaseError::other;
    return DatabaseError::unauthorized;
  }
  if (e.domain == MONGOC_ERROR_SERVER_SELECTION) {
    // A pooled client's selection error lists each server's last error.
    return contains(message, "Authentication failed") ? DatabaseError::unauthorized : DatabaseError::unreachable;
  }
  if (e.domain == MONGOC_ERROR_STREAM) return DatabaseError::network;
  return DatabaseError::other;
}

}  // namespace userkey::detail
