#include "backend/bson_user.hpp"

#include <cmath>

#include "userkey/core/user_id.hpp"

namespace userkey::detail {

namespace {

// An id a request can name (0..kMaxUserId); any other is no user of ours.
std::optional<UserId> servable(std::optional<UserId> id) {
  if (id && (*id < 0 || *id > kMaxUserId)) return std::nullopt;
  return id;
}

std::optional<UserId> read_any_user_id(const bson_t* doc) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, "user_id")) return std::nullopt;
  switch (bson_iter_type(&it)) {
    case BSON_TYPE_INT32: return bson_iter_int32(&it);
    case BSON_TYPE_INT64: return bson_iter_int64(&it);
    case BSON_TYPE_DOUBLE: {
      double d = bson_iter_double(&it);
      if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) return std::nullopt;
      return static_cast<UserId>(d);
    }
    case BSON_TYPE_UTF8: {
      uint32_t len = 0;
      const char* s = bson_iter_utf8(&it, &len);
      // Only the canonical form ("7", not "007"): it is the one string a
      // MongoDB query for id 7 matches, and both stores must agree.
      if (len > 1 && s[0] == '0') return std::nullopt;
      return parse_user_id(std::string_view(s, len));
    }
    default: return std::nullopt;
  }
}

}  // namespace

std::optional<UserId> read_user_id(const bson_t* doc) { return servable(read_any_user_id(doc)); }

std::optional<std::string> read_user_key(const bson_t* doc) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, "user_key") || !BSON_ITER_HOLDS_UTF8(&it)) return std::nullopt;
  uint32_t len = 0;
  const char* s = bson_iter_utf8(&it, &len);
  return std::string(s, len);
}

}  // namespace userkey::detail
