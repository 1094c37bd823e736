// Jinja syntax tree. Plain structs with a kind tag and the children each kind uses (listed per
// kind below); the renderer walks them with a switch. Built by parse_template().
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/jinja_value.h"

namespace g4::jinja {

struct SourcePos {
  int line = 0;
  int column = 0;
};

enum class ExprKind : uint8_t {
  Literal,   // literal
  Name,      // name
  List,      // args = items
  Tuple,     // args = items
  Dict,      // args = key0, value0, key1, value1, ...
  GetAttr,   // args[0] = object, name = attribute          (obj.name)
  GetItem,   // args[0] = object, args[1] = key              (obj[key])
  Slice,     // args[0] = object, args[1..3] = start, stop, step (each may be null)
  Call,      // args[0] = callee, args[1..] = positional, keywords
  Filter,    // args[0] = input (null inside {% filter %} / {% set x | f %}), name, args[1..],
             // keywords
  Test,      // args[0] = input, name, args[1..], keywords   (x is name(...))
  Unary,     // name = "-" or "+", args[0]
  Binary,    // name = + - * / // % **, args[0], args[1]
  And,       // args[0], args[1]
  Or,        // args[0], args[1]
  Not,       // args[0]
  Compare,   // args[0], then ops[i] applied with args[i + 1]; ops: == != < <= > >= in notin
  Concat,    // args joined with ~
  Condition  // args[0] = value if true, args[1] = condition, args[2] = else value (may be null)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Keyword {
  std::string name;
  ExprPtr value;
};

struct Expr {
  ExprKind kind = ExprKind::Literal;
  SourcePos pos;
  Value literal;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<Keyword> keywords;
  std::vector<std::string> ops;
  int depth = 1;  // height of this subtree, bounded by kMaxParseDepth
};

enum class NodeKind : uint8_t {
  Text,         // text
  Output,       // expr                          {{ expr }}
  If,           // branches, else_body
  For,          // targets, expr = iterable, condition (may be null), body, else_body
  Set,          // target, expr                  {% set target = expr %}
  SetBlock,     // target, filter (may be null), body
  Macro,        // name, params, body
  CallBlock,    // params (caller's), expr = the call, body
  FilterBlock,  // filter, body
  Break,
  Continue,
  With,        // assignments, body
  Generation,  // body (Hugging Face's {% generation %} marker: renders its body)
};

// Left side of an assignment: one name, several names (unpacking), or namespace.attribute.
struct Target {
  std::vector<std::string> names;
  std::string attribute;  // non-empty: names[0].attribute
};

struct Param {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Node;
using Body = std::vector<Node>;

struct IfBranch {
  ExprPtr condition;
  Body body;
};

struct Assignment {
  Target target;
  ExprPtr value;
};

struct Node {
  NodeKind kind = NodeKind::Text;
  SourcePos pos;
  std::string text;
  std::string name;
  ExprPtr expr;
  ExprPtr condition;
  ExprPtr filter;
  Target target;
  std::vector<std::string> targets;
  std::vector<Param> params;
  std::vector<IfBranch> branches;
  std::vector<Assignment> assignments;
  Body body;
  Body else_body;
};

// Parses a whole template. Throws g4::Error "<template_name>: line L, column C: ..." for syntax
// errors, unsupported tags (include, extends, block, import, ...) and nesting deeper than
// kMaxParseDepth.
constexpr int kMaxParseDepth = 200;
Body parse_template(std::string_view source, const std::string& template_name);

}  // namespace g4::jinja
