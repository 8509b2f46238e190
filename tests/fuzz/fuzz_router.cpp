// Fuzz target: the backend's `/` contract on arbitrary requests. The input is
// split at the first two NUL bytes into method, target and Accept header.
// Whatever arrives, the answer is one of the contract's statuses, and a JSON
// answer is one JSON object (checked cheaply: braces, one line).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "userkey/backend/router.hpp"
#include "userkey/backend/user_repository.hpp"

namespace {

class SevenUsers final : public userkey::UserRepository {
public:
  userkey::LookupResult find_key(userkey::UserId id) override {
    if (id == 5) return userkey::LookupResult::error(userkey::LookupStatus::unavailable, "scripted outage");
    if (id >= 1 && id <= 7) return userkey::LookupResult::found("key-\"" + std::to_string(id) + "\"<b>");
    return userkey::LookupResult::not_found();
  }
  userkey::StoreStatus ready() override { return userkey::StoreStatus::success(); }
  std::string describe() const override { return "seven"; }
};

std::string_view next_part(std::string_view& rest) {
  const auto nul = rest.find('\0');
  const auto part = rest.substr(0, nul);
  rest = nul == std::string_view::npos ? std::string_view{} : rest.substr(nul + 1);
  return part;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const userkey::Router router(std::make_shared<SevenUsers>(), {"backend-\"1\"", 5001});
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const auto method = next_part(rest);
  const auto target = next_part(rest);
  const auto accept = rest;
  const auto res = router.handle({method, target, accept});
  switch (res.status) {
    case 200: case 400: case 404: case 405: case 503: break;
    default: std::abort();
  }
  if (res.content_type == "application/json") {
    const auto& b = res.body;
    if (b.size() < 3 || b.front() != '{' || b[b.size() - 2] != '}' || b.back() != '\n') std::abort();
    if (b.find('\n') != b.size() - 1) std::abort();  // raw newlines would have to be escaped
  }
  return 0;
}
