// UTF-8 helpers shared by the tokenizer and the streaming detokenizer.
//
// Well-formedness follows the Unicode Standard, Table 3-7 (no overlong forms, no surrogates,
// nothing above U+10FFFF). Ill-formed input is replaced with U+FFFD per *maximal subpart*
// (Unicode §3.9 "U+FFFD substitution of maximal subparts", the practice WHATWG also uses), so
// the result does not depend on where a byte stream was cut.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace g4 {

inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";  // U+FFFD

enum class Utf8Status : uint8_t {
  Valid,       // `length` bytes form one well-formed code point
  Invalid,     // the first `length` bytes are a maximal ill-formed subpart: replace with U+FFFD
  Incomplete,  // the input ends inside a sequence that could still become well-formed
};

struct Utf8Step {
  Utf8Status status;
  uint32_t length;     // bytes consumed (>= 1)
  uint32_t codepoint;  // valid only when status == Valid
};

// Examines the sequence starting at `text[pos]` (pos < text.size()).
Utf8Step utf8_step(std::string_view text, size_t pos);

// Appends the UTF-8 encoding of `codepoint` (must be a Unicode scalar value).
void append_utf8(std::string& out, uint32_t codepoint);

// Copies `text`, replacing every maximal ill-formed subpart (including a truncated sequence at
// the end) with U+FFFD.
std::string sanitize_utf8(std::string_view text);

// Length of the longest prefix of `text` that can be emitted now: everything except a trailing
// sequence that is still Incomplete.
size_t utf8_complete_prefix(std::string_view text);

}  // namespace g4
