#include "core/toml_input_guard.hpp"

namespace userkey::detail {

std::string_view without_utf8_bom(std::string_view text) {
  return text.substr(0, 3) == "\xEF\xBB\xBF" ? text.substr(3) : text;
}

std::optional<std::size_t> first_non_ascii_line(std::string_view text) {
  std::size_t line = 1;
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return line;
    if (c == '\n') ++line;
  }
  return std::nullopt;
}

}  // namespace userkey::detail
