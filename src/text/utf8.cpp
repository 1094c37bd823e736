#include "text/utf8.h"

namespace g4 {

namespace {

// Unicode Table 3-7: the lead byte fixes the sequence length and the allowed range of the
// second byte; every later byte is 0x80..0xBF.
struct LeadRule {
  uint8_t length;  // 0 = byte can never start a sequence
  uint8_t second_lo;
  uint8_t second_hi;
};

LeadRule lead_rule(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};  // continuation byte or overlong 2-byte lead
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};  // no overlong 3-byte forms
  if (b == 0xED) return {3, 0x80, 0x9F};  // no surrogates
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};  // no overlong 4-byte forms
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {0, 0, 0};
}

}  // namespace

Utf8Step utf8_step(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(pos);
  const LeadRule rule = lead_rule(lead);
  if (rule.length == 1) return {Utf8Status::Valid, 1, lead};
  if (rule.length == 0) return {Utf8Status::Invalid, 1, 0};

  uint32_t codepoint = lead & (0xFFu >> (rule.length + 1));
  for (uint32_t k = 1; k < rule.length; ++k) {
    if (pos + k >= text.size()) return {Utf8Status::Incomplete, k, 0};
    const uint8_t b = byte(pos + k);
    const uint8_t lo = k == 1 ? rule.second_lo : 0x80;
    const uint8_t hi = k == 1 ? rule.second_hi : 0xBF;
    if (b < lo || b > hi) return {Utf8Status::Invalid, k, 0};
    codepoint = (codepoint << 6) | (b & 0x3Fu);
  }
  return {Utf8Status::Valid, rule.length, codepoint};
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const Utf8Step step = utf8_step(text, pos);
    if (step.status == Utf8Status::Valid) {
      out.append(text.substr(pos, step.length));
    } else {
      out.append(kUtf8Replacement);
    }
    pos += step.length;
  }
  return out;
}

size_t utf8_complete_prefix(std::string_view text) {
  // Only the last three bytes can belong to an unfinished sequence.
  const size_t start = text.size() > 3 ? text.size() - 3 : 0;
  for (size_t pos = start; pos < text.size(); ++pos) {
    const uint8_t b = static_cast<uint8_t>(text[pos]);
    if (b >= 0x80 && b < 0xC0) continue;  // continuation byte: look for its lead
    if (utf8_step(text, pos).status == Utf8Status::Incomplete) return pos;
  }
  return text.size();
}

}  // namespace g4
