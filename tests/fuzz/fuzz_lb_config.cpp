// Fuzz target: the lb's TOML config loader on arbitrary text. It either gives
// a configuration that passes validate() or throws ConfigError with a
// message; anything else (another exception, a crash) is a finding. Each
// upstream it gives must survive parse_upstream(format_upstream(u)).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "userkey/lb/proxy_config_loader.hpp"
#include "userkey/lb/upstream.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto cfg = userkey::lb::load_proxy_config_toml_from_string(text, "fuzz.toml");
    userkey::lb::validate(cfg);  // what the loader returns is always valid
    // Every upstream it returns is one record: its text reads back as itself.
    for (const auto& u : cfg.upstreams)
      if (userkey::lb::parse_upstream(userkey::lb::format_upstream(u)) != u) std::abort();
  } catch (const userkey::lb::ConfigError& e) {
    if (std::string_view(e.what()).empty()) std::abort();
  }
  return 0;
}
