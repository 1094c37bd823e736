#include "text/jinja_pystr.h"

#include <locale.h>
#include <wctype.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace g4::jinja {

namespace {

// Lone surrogates U+DC80..U+DCFF stand for ill-formed bytes 0x80..0xFF (surrogateescape).
constexpr uint32_t kEscapedByteBase = 0xDC00;

bool is_escaped_byte(uint32_t cp) {
  return cp >= 0xDC80 && cp <= 0xDCFF;
}

// Decodes one code point at text[pos]; sets `length` to the bytes consumed.
uint32_t decode_one(std::string_view text, size_t pos, size_t& length) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(pos);
  length = 1;
  if (lead < 0x80) return lead;
  size_t need = 0;
  uint32_t cp = 0;
  uint32_t min_cp = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1, cp = lead & 0x1F, min_cp = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2, cp = lead & 0x0F, min_cp = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3, cp = lead & 0x07, min_cp = 0x10000;
  } else {
    return kEscapedByteBase + lead;
  }
  if (pos + need >= text.size()) return kEscapedByteBase + lead;  // truncated sequence
  for (size_t i = 1; i <= need; ++i) {
    const uint8_t next = byte(pos + i);
    if ((next & 0xC0) != 0x80) return kEscapedByteBase + lead;
    cp = (cp << 6) | (next & 0x3F);
  }
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return kEscapedByteBase + lead;
  }
  length = need + 1;
  return cp;
}

// C.UTF-8 gives the C library's Unicode tables for case mapping and classes; without it (some
// platforms) only ASCII is case-mapped.
locale_t utf8_locale() {
  static const locale_t locale = [] {
    locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    if (!loc) loc = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", static_cast<locale_t>(0));
    return loc;
  }();
  return locale;
}

uint32_t upper_cp(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') ? cp - 32 : cp;
  if (is_escaped_byte(cp)) return cp;
  locale_t loc = utf8_locale();
  return loc ? static_cast<uint32_t>(towupper_l(static_cast<wint_t>(cp), loc)) : cp;
}

uint32_t lower_cp(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  if (is_escaped_byte(cp)) return cp;
  locale_t loc = utf8_locale();
  return loc ? static_cast<uint32_t>(towlower_l(static_cast<wint_t>(cp), loc)) : cp;
}

template <class Fn>
bool classify(uint32_t cp, bool ascii_result, Fn&& fn) {
  if (cp < 0x80) return ascii_result;
  if (is_escaped_byte(cp)) return false;
  locale_t loc = utf8_locale();
  return loc && fn(static_cast<wint_t>(cp), loc) != 0;
}

// Decodes the code point that ends at text[end-1]; sets `start` to its first byte.
uint32_t decode_last(std::string_view text, size_t end, size_t& start) {
  size_t begin = end - 1;
  // Walk back over at most 3 continuation bytes to a plausible lead byte.
  while (begin > 0 && end - begin < 4 && (static_cast<uint8_t>(text[begin]) & 0xC0) == 0x80) {
    --begin;
  }
  size_t length = 0;
  uint32_t cp = decode_one(text, begin, length);
  if (begin + length == end) {
    start = begin;
    return cp;
  }
  start = end - 1;  // not a whole sequence: the last byte stands alone
  return decode_one(text, start, length);
}

}  // namespace

std::vector<uint32_t> decode_utf8(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    size_t length = 0;
    out.push_back(decode_one(text, pos, length));
    pos += length;
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (is_escaped_byte(cp)) {
    out.push_back(static_cast<char>(cp - kEscapedByteBase));
  } else if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(const std::vector<uint32_t>& code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (uint32_t cp : code_points) append_utf8(out, cp);
  return out;
}

size_t count_code_points(std::string_view text) {
  size_t count = 0;
  for (size_t pos = 0; pos < text.size(); ++count) {
    size_t length = 0;
    decode_one(text, pos, length);
    pos += length;
  }
  return count;
}

std::vector<size_t> code_point_offsets(std::string_view text) {
  std::vector<size_t> offsets;
  offsets.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    offsets.push_back(pos);
    size_t length = 0;
    decode_one(text, pos, length);
    pos += length;
  }
  offsets.push_back(text.size());
  return offsets;
}

bool is_py_space(uint32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_py_alpha(uint32_t cp) {
  const bool ascii = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  return classify(cp, ascii, [](wint_t c, locale_t l) { return iswalpha_l(c, l); });
}
bool is_py_digit(uint32_t cp) {
  return classify(cp, cp >= '0' && cp <= '9',
                  [](wint_t c, locale_t l) { return iswdigit_l(c, l); });
}
bool is_py_alnum(uint32_t cp) {
  return is_py_alpha(cp) || is_py_digit(cp);
}
bool is_py_upper(uint32_t cp) {
  return classify(cp, cp >= 'A' && cp <= 'Z',
                  [](wint_t c, locale_t l) { return iswupper_l(c, l); });
}
bool is_py_lower(uint32_t cp) {
  return classify(cp, cp >= 'a' && cp <= 'z',
                  [](wint_t c, locale_t l) { return iswlower_l(c, l); });
}

std::string_view py_strip(std::string_view text, bool left, bool right) {
  size_t begin = 0;
  size_t end = text.size();
  if (left) {
    while (begin < end) {
      size_t length = 0;
      if (!is_py_space(decode_one(text, begin, length))) break;
      begin += length;
    }
  }
  if (right) {
    while (end > begin) {
      size_t start = 0;
      if (!is_py_space(decode_last(text, end, start))) break;
      end = start;
    }
  }
  return text.substr(begin, end - begin);
}

std::string py_strip_chars(std::string_view text, std::string_view chars, bool left, bool right) {
  const std::vector<uint32_t> set = decode_utf8(chars);
  const auto in_set = [&](uint32_t cp) {
    for (uint32_t c : set)
      if (c == cp) return true;
    return false;
  };
  const std::vector<uint32_t> cps = decode_utf8(text);
  size_t begin = 0;
  size_t end = cps.size();
  if (left)
    while (begin < end && in_set(cps[begin])) ++begin;
  if (right)
    while (end > begin && in_set(cps[end - 1])) --end;
  return encode_utf8(std::vector<uint32_t>(cps.begin() + begin, cps.begin() + end));
}

// Python's upper()/lower() use Unicode's full case mappings; these are the unconditional
// one-to-many entries of SpecialCasing.txt that occur in Latin text (the C library only has the
// one-to-one mappings).
const char* special_upper(uint32_t cp) {
  switch (cp) {
    case 0x00DF:
      return "SS";  // ß
    case 0x0149:
      return "\u02BCN";  // ŉ
    case 0x01F0:
      return "J\u030C";  // ǰ
    case 0xFB00:
      return "FF";
    case 0xFB01:
      return "FI";
    case 0xFB02:
      return "FL";
    case 0xFB03:
      return "FFI";
    case 0xFB04:
      return "FFL";
    case 0xFB05:
    case 0xFB06:
      return "ST";
    default:
      return nullptr;
  }
}

std::string py_upper(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (uint32_t cp : decode_utf8(text)) {
    if (const char* special = cp >= 0xDF ? special_upper(cp) : nullptr) {
      out += special;
    } else {
      append_utf8(out, upper_cp(cp));
    }
  }
  return out;
}

std::string py_lower(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (uint32_t cp : decode_utf8(text)) {
    if (cp == 0x0130) {
      out += "i\u0307";  // İ lowers to i + combining dot above
    } else {
      append_utf8(out, lower_cp(cp));
    }
  }
  return out;
}

std::string py_capitalize(std::string_view text) {
  std::string out;
  bool first = true;
  for (uint32_t cp : decode_utf8(text)) {
    append_utf8(out, first ? upper_cp(cp) : lower_cp(cp));
    first = false;
  }
  return out;
}

std::string py_title(std::string_view text) {
  std::string out;
  bool previous_cased = false;
  for (uint32_t cp : decode_utf8(text)) {
    const bool cased = is_py_upper(cp) || is_py_lower(cp);
    append_utf8(out, cased ? (previous_cased ? lower_cp(cp) : upper_cp(cp)) : cp);
    previous_cased = cased;
  }
  return out;
}

std::string py_swapcase(std::string_view text) {
  std::string out;
  for (uint32_t cp : decode_utf8(text)) {
    append_utf8(out, is_py_upper(cp) ? lower_cp(cp) : is_py_lower(cp) ? upper_cp(cp) : cp);
  }
  return out;
}

std::vector<std::string> py_split(std::string_view text, std::string_view sep, bool whitespace,
                                  int64_t max_split) {
  std::vector<std::string> parts;
  if (whitespace) {
    size_t pos = 0;
    while (true) {
      // skip leading whitespace
      while (pos < text.size()) {
        size_t length = 0;
        if (!is_py_space(decode_one(text, pos, length))) break;
        pos += length;
      }
      if (pos >= text.size()) break;
      if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
        parts.emplace_back(text.substr(pos));  // Python keeps the remainder as it is
        break;
      }
      size_t end = pos;
      while (end < text.size()) {
        size_t length = 0;
        if (is_py_space(decode_one(text, end, length))) break;
        end += length;
      }
      parts.emplace_back(text.substr(pos, end - pos));
      pos = end;
    }
    return parts;
  }
  size_t pos = 0;
  while (true) {
    const size_t hit = (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split)
                           ? std::string_view::npos
                           : text.find(sep, pos);
    if (hit == std::string_view::npos) {
      parts.emplace_back(text.substr(pos));
      return parts;
    }
    parts.emplace_back(text.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
}

std::vector<std::string> py_rsplit(std::string_view text, std::string_view sep, bool whitespace,
                                   int64_t max_split) {
  if (max_split < 0) return py_split(text, sep, whitespace, max_split);
  std::vector<std::string> parts;
  if (whitespace) {
    size_t end = text.size();
    while (true) {
      while (end > 0) {
        size_t start = 0;
        if (!is_py_space(decode_last(text, end, start))) break;
        end = start;
      }
      if (end == 0) break;
      if (static_cast<int64_t>(parts.size()) == max_split) {
        parts.emplace_back(text.substr(0, end));
        break;
      }
      size_t begin = end;
      while (begin > 0) {
        size_t start = 0;
        if (is_py_space(decode_last(text, begin, start))) break;
        begin = start;
      }
      parts.emplace_back(text.substr(begin, end - begin));
      end = begin;
    }
  } else {
    size_t end = text.size();
    while (true) {
      size_t hit = std::string_view::npos;
      if (static_cast<int64_t>(parts.size()) < max_split && end >= sep.size()) {
        hit = text.rfind(sep, end - sep.size());
      }
      if (hit == std::string_view::npos) {
        parts.emplace_back(text.substr(0, end));
        break;
      }
      parts.emplace_back(text.substr(hit + sep.size(), end - hit - sep.size()));
      end = hit;
    }
  }
  return {parts.rbegin(), parts.rend()};
}

std::vector<std::string> py_splitlines(std::string_view text, bool keep_ends) {
  std::vector<std::string> lines;
  size_t start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t length = 0;
    const uint32_t cp = decode_one(text, pos, length);
    const bool is_break = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C ||
                          cp == 0x1D || cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
    if (!is_break) {
      pos += length;
      continue;
    }
    size_t break_end = pos + length;
    if (cp == '\r' && break_end < text.size() && text[break_end] == '\n') ++break_end;
    lines.emplace_back(text.substr(start, (keep_ends ? break_end : pos) - start));
    start = pos = break_end;
  }
  if (start < text.size()) lines.emplace_back(text.substr(start));
  return lines;
}

std::string py_replace(std::string_view text, std::string_view old, std::string_view replacement,
                       int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts the replacement before every code point and at the end.
    const std::vector<size_t> offsets = code_point_offsets(text);
    int64_t done = 0;
    for (size_t i = 0; i + 1 < offsets.size(); ++i) {
      if (count < 0 || done < count) out += replacement, ++done;
      out += text.substr(offsets[i], offsets[i + 1] - offsets[i]);
    }
    if (count < 0 || done < count) out += replacement;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t hit = text.find(old, pos);
    if (hit == std::string_view::npos) break;
    out += text.substr(pos, hit - pos);
    out += replacement;
    pos = hit + old.size();
    ++done;
  }
  out += text.substr(pos);
  return out;
}

int64_t py_count(std::string_view text, std::string_view needle) {
  if (needle.empty()) return static_cast<int64_t>(count_code_points(text)) + 1;
  int64_t count = 0;
  for (size_t pos = text.find(needle); pos != std::string_view::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++count;
  }
  return count;
}

std::string py_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout rule (float_repr_style 'short'): plain
  // notation when -4 <= exponent < 16, otherwise d.ddde+XX.
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(result.ptr - buf));
  const bool negative = sci.front() == '-';
  if (negative) sci.remove_prefix(1);
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos))
    if (c != '.') digits.push_back(c);
  const int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0.";
      out.append(static_cast<size_t>(-exponent - 1), '0');
      out += digits;
    } else {
      const size_t int_digits = static_cast<size_t>(exponent) + 1;
      if (digits.size() <= int_digits) {
        out += digits;
        out.append(int_digits - digits.size(), '0');
        out += ".0";
      } else {
        out += digits.substr(0, int_digits);
        out += '.';
        out += digits.substr(int_digits);
      }
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  out += exp_buf;
  return out;
}

std::string py_string_repr(std::string_view text) {
  const bool has_single = text.find('\'') != std::string_view::npos;
  const bool has_double = text.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (uint32_t cp : decode_utf8(text)) {
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0xA0) || cp == 0xAD ||
               is_escaped_byte(cp)) {
      // Python escapes non-printable code points; lone surrogates print as \udcXX.
      char buf[16];
      if (cp <= 0xFF) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", cp);
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      }
      out += buf;
    } else if ((cp >= 0x2028 && cp <= 0x2029) || (cp >= 0x200B && cp <= 0x200F) || cp == 0xFEFF ||
               (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2064) ||
               (is_py_space(cp) && cp != ' ')) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      out += buf;
    } else {
      append_utf8(out, cp);
    }
  }
  out.push_back(quote);
  return out;
}

void append_json_string(std::string& out, std::string_view text, bool ensure_ascii) {
  out.push_back('"');
  const auto append_u = [&](uint32_t unit) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "\\u%04x", unit);
    out += buf;
  };
  for (uint32_t cp : decode_utf8(text)) {
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp < 0x20) {
      append_u(cp);
    } else if (cp < 0x80 || !ensure_ascii) {
      append_utf8(out, cp);
    } else if (cp < 0x10000) {
      append_u(cp);
    } else {
      const uint32_t v = cp - 0x10000;
      append_u(0xD800 + (v >> 10));
      append_u(0xDC00 + (v & 0x3FF));
    }
  }
  out.push_back('"');
}

std::string json_float(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value < 0 ? "-Infinity" : "Infinity";
  return py_float_repr(value);
}

}  // namespace g4::jinja
