// Query-string handling for request targets ("/path?a=1&b=2").
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace userkey {

/// Splits a request target into path and query (without the '?').
struct TargetParts {
  std::string_view path;
  std::string_view query;
};
TargetParts split_target(std::string_view target);

/// Decodes %XX escapes and '+' (as space). nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view in);

/// Result of looking a parameter up in a query string.
struct QueryParam {
  std::size_t count = 0;     ///< how many times the (decoded) name occurs
  std::string_view raw;      ///< raw value of the first occurrence
};

/// Finds parameter `name` in `query`. Names are compared after decoding.
/// `malformed` is set when any name in the query has a bad escape.
QueryParam find_query_param(std::string_view query, std::string_view name, bool* malformed = nullptr);

}  // namespace userkey
