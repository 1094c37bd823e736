// Jinja lexer: template source -> tokens (text runs, tag delimiters, expression tokens).
//
// Whitespace control follows Jinja2 3.1 exactly, because chat templates depend on it byte for byte:
// `{%-`/`-%}` strip all whitespace on that side, `{%+`/`+%}` opt out of lstrip/trim, trim_blocks
// drops the first newline after a block or comment tag, lstrip_blocks drops spaces and tabs
// between the start of a line and a block or comment tag, and (keep_trailing_newline off) one
// trailing newline of the source is dropped. Newlines in the source are normalized to "\n".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace g4::jinja {

enum class TokenKind : uint8_t {
  Text,           // literal template text (already whitespace-controlled)
  VariableBegin,  // {{
  VariableEnd,    // }}
  BlockBegin,     // {%
  BlockEnd,       // %}
  Name,
  String,  // text = decoded value
  Integer,
  Float,
  Operator,  // text = spelling: + - * / // % ** ~ == != < <= > >= = . : | , ( ) [ ] { } ;
  EndOfInput,
};

struct Token {
  TokenKind kind = TokenKind::EndOfInput;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;  // in code points, 1-based
};

// Hugging Face renders chat templates with trim_blocks and lstrip_blocks on.
struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Throws g4::Error "<template_name>: line L, column C: ..." for malformed input.
std::vector<Token> tokenize(std::string_view source, const LexerOptions& options,
                            const std::string& template_name);

// The error format shared by the lexer, parser and renderer.
[[noreturn]] void fail_at(const std::string& template_name, int line, int column,
                          const std::string& message);

}  // namespace g4::jinja
