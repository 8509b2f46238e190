#include "userkey/backend/user_repository.hpp"

namespace userkey {

std::string_view to_string(LookupStatus s) {
  switch (s) {
    case LookupStatus::found: return "found";
    case LookupStatus::not_found: return "not_found";
    case LookupStatus::invalid_id: return "invalid_id";
    case LookupStatus::unavailable: return "unavailable";
    case LookupStatus::unauthorized: return "unauthorized";
  }
  return "unknown";
}

std::string_view to_string(StoreStatus::Code c) {
  switch (c) {
    case StoreStatus::Code::ok: return "ok";
    case StoreStatus::Code::invalid_id: return "invalid_id";
    case StoreStatus::Code::unavailable: return "unavailable";
    case StoreStatus::Code::unauthorized: return "unauthorized";
    case StoreStatus::Code::empty: return "empty";
  }
  return "unknown";
}

StoreStatus::StoreStatus(const LookupResult& r) : detail(r.detail) {
  switch (r.status) {
    case LookupStatus::found: code = Code::ok; break;
    case LookupStatus::invalid_id: code = Code::invalid_id; break;
    case LookupStatus::unauthorized: code = Code::unauthorized; break;
    case LookupStatus::not_found:  // "not there" from a readiness check: not usable
    case LookupStatus::unavailable: code = Code::unavailable; break;
  }
}

}  // namespace userkey
