// HashKeySpec: which part of a request the hash-based policies
// (consistent_hash) key on, configured as a string:
//
//   "query:NAME"   the value of the first NAME=... parameter in the query
//                  string of the request target (e.g. "query:user_id")
//   "header:NAME"  the value of request header NAME (lookup delegated to the
//                  caller, which is expected to match names case-insensitively)
//   "ip"           the client IP
//   "path"         the path part of the target (before '?')
//
// extract() returns a view of the *raw* bytes as they appear in the request:
// values are NOT percent-decoded and '+' is not turned into a space, so
// "user_id=a%40b" and "user_id=a@b" differ here. That keeps extract()
// allocation-free; ProxyServer decodes the value before hashing when it
// holds an escape, so the two reach the same upstream there. An absent value
// is returned as an empty view; the policy then falls back to the client IP.
//
// Errors: parse() returns nullopt and sets `*error` for anything else
// (unknown kind, empty NAME, stray text).
// Thread-safety: immutable after parse(); extract() is const, allocation-free
// and safe to call concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace userkey::lb {

/// Non-owning reference to a callable `std::string_view(std::string_view
/// header_name)` returning the header's value, or an empty view when absent.
/// Like std::function but never allocates; the referenced callable must
/// outlive the HeaderLookup (pass a lambda directly to extract()).
class HeaderLookup {
public:
  template <typename F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, HeaderLookup> &&
             std::is_invocable_r_v<std::string_view, F&, std::string_view>)
  HeaderLookup(F&& f) noexcept {  // NOLINT(google-explicit-constructor): implicit by design
    using T = std::remove_reference_t<F>;
    if constexpr (std::is_function_v<T>) {
      fn_ = &f;
      call_ = [](const HeaderLookup& self, std::string_view name) { return self.fn_(name); };
    } else {
      obj_ = const_cast<void*>(static_cast<const void*>(std::addressof(f)));
      call_ = [](const HeaderLookup& self, std::string_view name) -> std::string_view {
        return (*static_cast<T*>(self.obj_))(name);
      };
    }
  }

  std::string_view operator()(std::string_view name) const { return call_(*this, name); }

private:
  void* obj_ = nullptr;                                // a callable object, or
  std::string_view (*fn_)(std::string_view) = nullptr;  // a plain function
  std::string_view (*call_)(const HeaderLookup&, std::string_view) = nullptr;
};

class HashKeySpec {
public:
  enum class Kind { query, header, ip, path };

  /// Parses "query:NAME" | "header:NAME" | "ip" | "path".
  static std::optional<HashKeySpec> parse(std::string_view text, std::string* error = nullptr);

  /// The key for one request; see the file comment for the exact rules.
  std::string_view extract(std::string_view target, HeaderLookup header, std::string_view client_ip) const;

  Kind kind() const { return kind_; }
  /// Parameter / header name; empty for ip and path.
  const std::string& name() const { return name_; }
  /// The spec in its configuration syntax.
  std::string to_string() const;

private:
  HashKeySpec(Kind kind, std::string name) : kind_(kind), name_(std::move(name)) {}
  Kind kind_ = Kind::ip;
  std::string name_;
};

/// The value of the first `name=` parameter in the query string of `target`
/// (raw, not decoded); empty when absent. A parameter written without '='
/// does not match.
std::string_view query_param(std::string_view target, std::string_view name);

}  // namespace userkey::lb
