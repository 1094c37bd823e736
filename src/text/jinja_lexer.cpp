#include "text/jinja_lexer.h"

#include <cerrno>
#include <cstdlib>

#include "core/error.h"
#include "text/jinja_pystr.h"

namespace g4::jinja {

void fail_at(const std::string& template_name, int line, int column, const std::string& message) {
  fail(template_name, ": line ", line, ", column ", column, ": ", message);
}

namespace {

// Source with "\r\n" and "\r" turned into "\n" (Jinja2's newline_sequence default) and, unless
// keep_trailing_newline, one trailing newline removed.
std::string normalize_source(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  Lexer(std::string_view source, const LexerOptions& options, const std::string& name)
      : src_(normalize_source(source, options.keep_trailing_newline)), opt_(options), name_(name) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag_start(pos_);
      if (tag == std::string::npos) {
        emit_text(pos_, src_.substr(pos_));
        break;
      }
      lex_tag_with_leading_text(tag);
    }
    Token end;
    end.kind = TokenKind::EndOfInput;
    set_position(end, src_.size());
    tokens_.push_back(std::move(end));
    return std::move(tokens_);
  }

 private:
  std::string src_;
  const LexerOptions& opt_;
  const std::string& name_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  bool line_starting_ = true;  // the previous match ended with a newline (lstrip_blocks rule)
  // Incremental position tracking: tokens are produced in source order.
  size_t track_offset_ = 0;
  int track_line_ = 1;
  int track_column_ = 1;

  bool starts_with(size_t at, std::string_view what) const {
    return src_.compare(at, what.size(), what) == 0;
  }

  size_t find_tag_start(size_t from) const {
    for (size_t p = src_.find('{', from); p != std::string::npos; p = src_.find('{', p + 1)) {
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) {
        return p;
      }
    }
    return std::string::npos;
  }

  void advance_tracking(size_t offset) {
    while (track_offset_ < offset) {
      const unsigned char c = static_cast<unsigned char>(src_[track_offset_++]);
      if (c == '\n') {
        ++track_line_;
        track_column_ = 1;
      } else if ((c & 0xC0) != 0x80) {
        ++track_column_;
      }
    }
  }

  void set_position(Token& token, size_t offset) {
    if (offset < track_offset_) {  // not expected; recompute from the start
      track_offset_ = 0, track_line_ = 1, track_column_ = 1;
    }
    advance_tracking(offset);
    token.line = track_line_;
    token.column = track_column_;
  }

  [[noreturn]] void error_at(size_t offset, const std::string& message) {
    track_offset_ = 0, track_line_ = 1, track_column_ = 1;
    advance_tracking(std::min(offset, src_.size()));
    fail_at(name_, track_line_, track_column_, message);
  }

  void emit(TokenKind kind, size_t offset, std::string text = {}) {
    Token token;
    token.kind = kind;
    token.text = std::move(text);
    set_position(token, offset);
    tokens_.push_back(std::move(token));
  }

  void emit_text(size_t offset, std::string_view text) {
    if (!text.empty()) emit(TokenKind::Text, offset, std::string(text));
  }

  // Skips whitespace (Python's \s, Unicode-aware) from `at`; returns the new offset.
  size_t skip_space(size_t at) const {
    while (at < src_.size()) {
      const unsigned char c = static_cast<unsigned char>(src_[at]);
      if (c < 0x80) {
        if (!is_py_space(c)) break;
        ++at;
        continue;
      }
      const std::vector<uint32_t> cp = decode_utf8(std::string_view(src_).substr(at, 4));
      if (cp.empty() || !is_py_space(cp[0])) break;
      std::string encoded;
      append_utf8(encoded, cp[0]);
      at += encoded.size();
    }
    return at;
  }

  void note_match_end(size_t end) { line_starting_ = end > 0 && src_[end - 1] == '\n'; }

  // Applies `{%-` stripping or lstrip_blocks to the text that precedes a tag.
  std::string_view control_leading_text(std::string_view text, char sign,
                                        bool is_block_or_comment) {
    if (sign == '-') return py_strip(text, false, true);
    if (sign == '+' || !opt_.lstrip_blocks || !is_block_or_comment) return text;
    const size_t newline = text.rfind('\n');
    const size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
    if ((line_start > 0 || line_starting_) && line_start < text.size() &&
        py_strip(text.substr(line_start), false, true).empty()) {
      return text.substr(0, line_start);
    }
    return text;
  }

  // If a `{% raw %}` opener starts at `tag` (with `after` just past the optional sign), returns
  // the offset after it.
  size_t match_raw_open(size_t after) const {
    size_t p = skip_space(after);
    if (!starts_with(p, "raw")) return std::string::npos;
    p += 3;
    const size_t q = skip_space(p);
    if (q == p && !(starts_with(q, "%}") || starts_with(q, "-%}"))) return std::string::npos;
    if (starts_with(q, "-%}")) return skip_space(q + 3);
    if (starts_with(q, "%}")) return q + 2;
    return std::string::npos;
  }

  void lex_tag_with_leading_text(size_t tag) {
    const char kind = src_[tag + 1];
    size_t after = tag + 2;
    char sign = 0;
    if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
    const std::string_view text(src_.data() + pos_, tag - pos_);
    emit_text(pos_, control_leading_text(text, sign, kind != '{'));
    if (kind == '%') {
      const size_t raw_body = match_raw_open(after);
      if (raw_body != std::string::npos) {
        note_match_end(raw_body);
        lex_raw_body(tag, raw_body);
        return;
      }
    }
    if (kind == '#') {
      lex_comment(tag, after);
    } else {
      lex_expression_tag(kind, tag, after);
    }
  }

  void lex_raw_body(size_t tag, size_t body) {
    for (size_t p = src_.find("{%", body); p != std::string::npos; p = src_.find("{%", p + 1)) {
      size_t q = p + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = skip_space(q);
      if (!starts_with(q, "endraw")) continue;
      q = skip_space(q + 6);
      size_t end;
      if (starts_with(q, "+%}")) {
        end = q + 3;
      } else if (starts_with(q, "-%}")) {
        end = skip_space(q + 3);
      } else if (starts_with(q, "%}")) {
        end = q + 2;
        if (opt_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
      } else {
        continue;
      }
      const std::string_view text(src_.data() + body, p - body);
      emit_text(body, control_leading_text(text, sign, true));
      pos_ = end;
      note_match_end(end);
      return;
    }
    error_at(tag, "missing end of raw directive ({% endraw %})");
  }

  void lex_comment(size_t tag, size_t after) {
    for (size_t q = after; q < src_.size(); ++q) {
      size_t end = std::string::npos;
      if (starts_with(q, "+#}")) {
        end = q + 3;
      } else if (starts_with(q, "-#}")) {
        end = skip_space(q + 3);
      } else if (starts_with(q, "#}")) {
        end = q + 2;
        if (opt_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
      }
      if (end != std::string::npos) {
        pos_ = end;
        note_match_end(end);
        return;
      }
    }
    error_at(tag, "missing end of comment tag '#}'");
  }

  // Inside {{ ... }} or {% ... %}: expression tokens up to the closing delimiter.
  void lex_expression_tag(char kind, size_t tag, size_t after) {
    const bool block = kind == '%';
    emit(block ? TokenKind::BlockBegin : TokenKind::VariableBegin, tag);
    std::string brackets;  // expected closers of open ( [ {
    size_t p = after;
    while (true) {
      p = skip_space(p);
      if (p >= src_.size()) {
        error_at(tag, block ? "unexpected end of template: missing '%}' for this tag"
                            : "unexpected end of template: missing '}}' for this tag");
      }
      if (brackets.empty()) {
        size_t end = std::string::npos;
        if (block) {
          if (starts_with(p, "-%}")) {
            end = skip_space(p + 3);
          } else if (starts_with(p, "+%}")) {
            end = p + 3;
          } else if (starts_with(p, "%}")) {
            end = p + 2;
            if (opt_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
          }
        } else {
          if (starts_with(p, "-}}")) {
            end = skip_space(p + 3);
          } else if (starts_with(p, "}}")) {
            end = p + 2;
          }
        }
        if (end != std::string::npos) {
          emit(block ? TokenKind::BlockEnd : TokenKind::VariableEnd, p);
          pos_ = end;
          note_match_end(end);
          return;
        }
      }
      p = lex_token(p, brackets);
    }
  }

  size_t lex_token(size_t p, std::string& brackets) {
    const char c = src_[p];
    if (is_digit(c)) return lex_number(p);
    if (is_name_start(c)) {
      size_t end = p;
      while (end < src_.size() && is_name_char(src_[end])) ++end;
      emit(TokenKind::Name, p, src_.substr(p, end - p));
      return end;
    }
    if (c == '\'' || c == '"') return lex_string(p);
    static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    for (std::string_view op : kTwoChar) {
      if (starts_with(p, op)) {
        emit(TokenKind::Operator, p, std::string(op));
        return p + 2;
      }
    }
    static constexpr std::string_view kOneChar = "+-*/%~<>=.:|,;()[]{}";
    if (kOneChar.find(c) == std::string_view::npos) {
      error_at(p, cat("unexpected character '", std::string(1, c), "' in tag"));
    }
    if (c == '(' || c == '[' || c == '{') {
      brackets.push_back(c == '(' ? ')' : (c == '[' ? ']' : '}'));
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty()) error_at(p, cat("unexpected '", std::string(1, c), "'"));
      if (brackets.back() != c) {
        error_at(p, cat("unexpected '", std::string(1, c), "', expected '",
                        std::string(1, brackets.back()), "'"));
      }
      brackets.pop_back();
    }
    emit(TokenKind::Operator, p, std::string(1, c));
    return p + 1;
  }

  // Digits with optional '_' separators; returns the end offset.
  size_t scan_digits(size_t p) const {
    while (p < src_.size() && (is_digit(src_[p]) ||
                               (src_[p] == '_' && p + 1 < src_.size() && is_digit(src_[p + 1])))) {
      ++p;
    }
    return p;
  }

  size_t lex_number(size_t start) {
    const bool after_dot = start > 0 && src_[start - 1] == '.';  // foo.0.1 is not a float
    // Prefixed integers 0x / 0o / 0b.
    if (src_[start] == '0' && start + 1 < src_.size()) {
      const char prefix = static_cast<char>(src_[start + 1] | 0x20);
      const int base = prefix == 'x' ? 16 : (prefix == 'o' ? 8 : (prefix == 'b' ? 2 : 0));
      if (base) {
        size_t p = start + 2;
        uint64_t value = 0;
        bool any = false;
        while (p < src_.size()) {
          if (src_[p] == '_') {
            ++p;
            continue;
          }
          const int d = hex_value(src_[p]);
          if (d < 0 || d >= base) break;
          if (value > (static_cast<uint64_t>(INT64_MAX) - static_cast<uint64_t>(d)) /
                          static_cast<uint64_t>(base)) {
            error_at(start, "integer literal too large");
          }
          value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
          any = true;
          ++p;
        }
        if (any) {
          emit_number(start, static_cast<int64_t>(value));
          return p;
        }
      }
    }
    size_t p = scan_digits(start);
    bool is_float = false;
    if (!after_dot && p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
      p = scan_digits(p + 1);
      is_float = true;
    }
    if (!after_dot && p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        p = scan_digits(q);
        is_float = true;
      }
    }
    std::string digits;
    for (size_t i = start; i < p; ++i)
      if (src_[i] != '_') digits.push_back(src_[i]);
    if (is_float) {
      Token token;
      token.kind = TokenKind::Float;
      token.text = digits;
      token.float_value = std::strtod(digits.c_str(), nullptr);
      set_position(token, start);
      tokens_.push_back(std::move(token));
      return p;
    }
    errno = 0;
    const long long value = std::strtoll(digits.c_str(), nullptr, 10);
    if (errno == ERANGE) error_at(start, "integer literal too large");
    emit_number(start, value);
    return p;
  }

  void emit_number(size_t offset, int64_t value) {
    Token token;
    token.kind = TokenKind::Integer;
    token.int_value = value;
    token.text = std::to_string(value);
    set_position(token, offset);
    tokens_.push_back(std::move(token));
  }

  size_t lex_string(size_t start) {
    const char quote = src_[start];
    std::string value;
    size_t p = start + 1;
    while (true) {
      if (p >= src_.size()) error_at(start, "unterminated string literal");
      const char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) error_at(start, "unterminated string literal");
      p = decode_escape(p, value);
    }
    emit(TokenKind::String, start, std::move(value));
    return p + 1;
  }

  // Python's unicode-escape decoding of one backslash sequence at `p`; returns the next offset.
  size_t decode_escape(size_t p, std::string& out) {
    const char e = src_[p + 1];
    switch (e) {
      case '\n':
        return p + 2;  // line continuation
      case '\\':
        out.push_back('\\');
        return p + 2;
      case '\'':
        out.push_back('\'');
        return p + 2;
      case '"':
        out.push_back('"');
        return p + 2;
      case 'a':
        out.push_back('\a');
        return p + 2;
      case 'b':
        out.push_back('\b');
        return p + 2;
      case 'f':
        out.push_back('\f');
        return p + 2;
      case 'n':
        out.push_back('\n');
        return p + 2;
      case 'r':
        out.push_back('\r');
        return p + 2;
      case 't':
        out.push_back('\t');
        return p + 2;
      case 'v':
        out.push_back('\v');
        return p + 2;
      default:
        break;
    }
    if (e >= '0' && e <= '7') {
      uint32_t value = 0;
      size_t q = p + 1;
      for (int i = 0; i < 3 && q < src_.size() && src_[q] >= '0' && src_[q] <= '7'; ++i, ++q) {
        value = value * 8 + static_cast<uint32_t>(src_[q] - '0');
      }
      append_utf8(out, value);
      return q;
    }
    const int width = e == 'x' ? 2 : (e == 'u' ? 4 : (e == 'U' ? 8 : 0));
    if (width) {
      uint32_t value = 0;
      for (int i = 0; i < width; ++i) {
        const size_t q = p + 2 + static_cast<size_t>(i);
        const int d = q < src_.size() ? hex_value(src_[q]) : -1;
        if (d < 0) error_at(p, cat("truncated \\", std::string(1, e), " escape in string literal"));
        value = value * 16 + static_cast<uint32_t>(d);
      }
      if (value > 0x10FFFF) error_at(p, "illegal Unicode character in string literal");
      append_utf8(out, value);
      return p + 2 + static_cast<size_t>(width);
    }
    if (e == 'N') error_at(p, "\\N{...} escapes are not supported");
    out.push_back('\\');  // unknown escapes stay as written
    return p + 1;
  }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexerOptions& options,
                            const std::string& template_name) {
  return Lexer(source, options, template_name).run();
}

}  // namespace g4::jinja
