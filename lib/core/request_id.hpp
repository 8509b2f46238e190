// Request ids (X-Request-Id): the one rule for a well-formed id, shared by
// the lb (which keeps a client's or makes one) and the backend (which logs
// and echoes the one it gets), so both accept exactly the same ids.
//
// Owns: the field's name, the well-formed rule (1-128 characters of
// [A-Za-z0-9._:-]), "exactly one field" (single_field), and the id a request
// carries by those rules (request_id_of). Header-only, no allocation: the
// results view the request's own fields.
//
// Leaves to others: making fresh ids (lb/request_id), where the id is logged
// and echoed (lb/downstream_session, backend/backend_connection).
#pragma once

#include <cstddef>
#include <iterator>
#include <string_view>

namespace userkey {

/// The longest request id kept.
inline constexpr std::size_t kMaxRequestIdLength = 128;

/// The header field the id travels in, both ways.
inline constexpr std::string_view kRequestIdField = "X-Request-Id";

/// True when `id` is 1-128 characters, each a letter, a digit or one of
/// `.`, `_`, `:`, `-` (enough for UUIDs, ULIDs and hex or dotted ids, and
/// nothing that could break a header, a log line or a JSON string).
constexpr bool valid_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (const char ch : id) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                    ch == '_' || ch == ':' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

/// The value of the one field named `name` (case-insensitive) in `fields`
/// (a Beast fields container, or anything with its equal_range); empty when
/// there is none or more than one. A view of the field's value.
template <class Fields>
std::string_view single_field(const Fields& fields, std::string_view name) {
  auto [first, last] = fields.equal_range({name.data(), name.size()});
  if (first == last || std::next(first) != last) return {};
  const auto v = first->value();
  return {v.data(), v.size()};
}

/// The request id `fields` carry: the value of their one X-Request-Id
/// field when it is well-formed; empty otherwise (none, several,
/// malformed).
template <class Fields>
std::string_view request_id_of(const Fields& fields) {
  const std::string_view id = single_field(fields, kRequestIdField);
  return valid_request_id(id) ? id : std::string_view{};
}

}  // namespace userkey
