// A guard in front of toml++ (internal).
//
// Debian 12's toml++ 3.3.0 asks "is this horizontal whitespace?" of non-ASCII
// characters, and for most code points in U+00A1-U+0499, U+2CCE-U+30C7 and
// U+FB06-U+FEFE that function reaches __builtin_unreachable(): undefined
// behaviour on input a typo or an attacker can produce (found by
// tests/fuzz/fuzz_lb_config). It is asked in code, in some strings and in
// the parser's error paths, where a lexical view of the text cannot tell
// what toml++ will do, so config text must be ASCII before it gets there.
// Valid configs lose little: every setting is ASCII; only comments and
// strings could have held other text.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace userkey::detail {

/// `text` without a leading UTF-8 byte-order mark (some editors write one).
std::string_view without_utf8_bom(std::string_view text);

/// Line (1-based) of the first byte of `text` that is not ASCII; nullopt
/// when it is all ASCII.
std::optional<std::size_t> first_non_ascii_line(std::string_view text);

}  // namespace userkey::detail
