// Recursive-descent parser for the Jinja subset chat templates use. The expression grammar and
// its precedence follow Jinja2 3.1 (lowest first): inline if/else, or, and, not, comparisons
// (== != < <= > >= in, not in), + -, ~, * / // %, **, unary - +, then postfix . [] () and
// filters | / tests `is` (which bind tighter than unary minus's operand chain, as in Jinja2).
#include <algorithm>
#include <initializer_list>

#include "core/error.h"
#include "text/jinja_ast.h"
#include "text/jinja_lexer.h"

namespace g4::jinja {

namespace {

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& name)
      : tokens_(std::move(tokens)), name_(name) {}

  Body parse() {
    std::string end_tag;
    Body body = parse_body({}, end_tag);
    if (cur().kind != TokenKind::EndOfInput) error(cur(), "unexpected " + describe(cur()));
    return body;
  }

 private:
  std::vector<Token> tokens_;
  const std::string& name_;
  size_t index_ = 0;
  int recursion_ = 0;
  int loop_depth_ = 0;  // for {% break %} / {% continue %}
  struct OpenBlock {
    std::string tag;
    SourcePos pos;
  };
  std::vector<OpenBlock> open_blocks_;

  // Bounds parser recursion (and so the depth of the tree and of every walk over it).
  class Guard {
   public:
    Guard(Parser& parser) : parser_(parser) {
      if (++parser_.recursion_ > kMaxParseDepth) {
        parser_.error(parser_.cur(),
                      cat("template nested too deeply (more than ", kMaxParseDepth, " levels)"));
      }
    }
    ~Guard() { --parser_.recursion_; }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    Parser& parser_;
  };

  // --- token access ---
  const Token& cur() const { return tokens_[index_]; }
  const Token& look(size_t n = 1) const {
    return tokens_[std::min(index_ + n, tokens_.size() - 1)];
  }
  void advance() {
    if (index_ + 1 < tokens_.size()) ++index_;
  }
  bool is_op(std::string_view op) const {
    return cur().kind == TokenKind::Operator && cur().text == op;
  }
  bool is_name(std::string_view name) const {
    return cur().kind == TokenKind::Name && cur().text == name;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  static SourcePos pos_of(const Token& token) { return {token.line, token.column}; }

  static std::string describe(const Token& token) {
    switch (token.kind) {
      case TokenKind::Text:
        return "template text";
      case TokenKind::VariableBegin:
        return "'{{'";
      case TokenKind::VariableEnd:
        return "'}}'";
      case TokenKind::BlockBegin:
        return "'{%'";
      case TokenKind::BlockEnd:
        return "'%}'";
      case TokenKind::Name:
        return "'" + token.text + "'";
      case TokenKind::String:
        return "string literal";
      case TokenKind::Integer:
      case TokenKind::Float:
        return "number '" + token.text + "'";
      case TokenKind::Operator:
        return "'" + token.text + "'";
      case TokenKind::EndOfInput:
        return "end of template";
    }
    return "token";
  }

  [[noreturn]] void error(const Token& token, const std::string& message) const {
    fail_at(name_, token.line, token.column, message);
  }

  void expect_op(std::string_view op) {
    if (!skip_op(op)) error(cur(), cat("expected '", op, "', got ", describe(cur())));
  }
  std::string expect_name() {
    if (cur().kind != TokenKind::Name) error(cur(), "expected a name, got " + describe(cur()));
    std::string name = cur().text;
    advance();
    return name;
  }
  void expect_block_end() {
    if (cur().kind != TokenKind::BlockEnd) {
      error(cur(), "expected end of statement '%}', got " + describe(cur()));
    }
    advance();
  }

  // --- tree construction ---
  // Children are attached through add_arg/add_keyword, which keep Expr::depth and reject trees
  // deeper than kMaxParseDepth: a loop like `a+a+a+...` nests without parser recursion, and the
  // renderer and destructor walk the tree recursively.
  ExprPtr make(ExprKind kind, SourcePos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }
  void check_depth(const Expr& e) const {
    if (e.depth > kMaxParseDepth) {
      fail_at(name_, e.pos.line, e.pos.column,
              cat("expression nested too deeply (more than ", kMaxParseDepth, " levels)"));
    }
  }
  void add_arg(Expr& parent, ExprPtr child) {
    if (child) parent.depth = std::max(parent.depth, child->depth + 1);
    check_depth(parent);
    parent.args.push_back(std::move(child));
  }
  void add_keyword(Expr& parent, Keyword keyword) {
    parent.depth = std::max(parent.depth, keyword.value->depth + 1);
    check_depth(parent);
    parent.keywords.push_back(std::move(keyword));
  }

  // --- statements ---
  static std::string expected_list(std::initializer_list<std::string_view> tags) {
    std::string out;
    for (std::string_view tag : tags) out += (out.empty() ? "'" : " or '") + std::string(tag) + "'";
    return out;
  }

  Body parse_body(std::initializer_list<std::string_view> end_tags, std::string& found_end) {
    Guard guard(*this);
    Body body;
    while (true) {
      const Token& token = cur();
      switch (token.kind) {
        case TokenKind::Text: {
          Node node;
          node.kind = NodeKind::Text;
          node.pos = pos_of(token);
          node.text = token.text;
          body.push_back(std::move(node));
          advance();
          break;
        }
        case TokenKind::VariableBegin: {
          Node node;
          node.kind = NodeKind::Output;
          node.pos = pos_of(token);
          advance();
          node.expr = parse_tuple(false, true, {}, false);
          if (cur().kind != TokenKind::VariableEnd) {
            error(cur(), "expected end of print statement '}}', got " + describe(cur()));
          }
          advance();
          body.push_back(std::move(node));
          break;
        }
        case TokenKind::BlockBegin: {
          const Token& tag = look();
          if (tag.kind == TokenKind::Name &&
              std::find(end_tags.begin(), end_tags.end(), tag.text) != end_tags.end()) {
            found_end = tag.text;
            advance();
            advance();
            return body;
          }
          if (tag.kind == TokenKind::Name && !open_blocks_.empty() && end_tags.size() != 0 &&
              (tag.text.rfind("end", 0) == 0 || tag.text == "elif" || tag.text == "else")) {
            const OpenBlock& open = open_blocks_.back();
            error(tag, cat("unexpected '", tag.text, "', expected ", expected_list(end_tags),
                           " to close the '", open.tag, "' block opened at line ", open.pos.line,
                           ", column ", open.pos.column));
          }
          advance();
          body.push_back(parse_statement());
          break;
        }
        case TokenKind::EndOfInput: {
          if (end_tags.size() == 0) return body;
          const OpenBlock& open = open_blocks_.back();
          error(token, cat("unexpected end of template, expected ", expected_list(end_tags),
                           " (the '", open.tag, "' block opened at line ", open.pos.line,
                           ", column ", open.pos.column, " is not closed)"));
        }
        default:
          error(token, "unexpected " + describe(token));
      }
    }
  }

  Node parse_statement() {
    const Token& tag = cur();
    if (tag.kind != TokenKind::Name) error(tag, "expected a statement name, got " + describe(tag));
    const std::string name = tag.text;
    const SourcePos pos = pos_of(tag);
    advance();
    open_blocks_.push_back({name, pos});
    Node node;
    node.pos = pos;
    if (name == "if") {
      parse_if(node);
    } else if (name == "for") {
      parse_for(node);
    } else if (name == "set") {
      parse_set(node);
    } else if (name == "macro") {
      parse_macro(node);
    } else if (name == "call") {
      parse_call_block(node);
    } else if (name == "filter") {
      parse_filter_block(node);
    } else if (name == "with") {
      parse_with(node);
    } else if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) error(tag, "'" + name + "' outside of a loop");
      node.kind = name == "break" ? NodeKind::Break : NodeKind::Continue;
      expect_block_end();
    } else if (name == "generation") {
      node.kind = NodeKind::Generation;
      expect_block_end();
      std::string end;
      node.body = parse_body({"endgeneration"}, end);
      expect_block_end();
    } else if (name == "include" || name == "extends" || name == "block" || name == "import" ||
               name == "from" || name == "do" || name == "autoescape" || name == "trans") {
      error(tag, "the '" + name + "' tag is not supported in chat templates");
    } else if (name.rfind("end", 0) == 0 || name == "elif" || name == "else") {
      error(tag, "unexpected '" + name + "' (no open block it could close)");
    } else {
      error(tag, "unknown tag '" + name + "'");
    }
    open_blocks_.pop_back();
    return node;
  }

  void parse_if(Node& node) {
    node.kind = NodeKind::If;
    IfBranch first;
    first.condition = parse_tuple(false, false, {}, false);
    expect_block_end();
    std::string end;
    first.body = parse_body({"elif", "else", "endif"}, end);
    node.branches.push_back(std::move(first));
    while (true) {
      if (end == "elif") {
        IfBranch branch;
        branch.condition = parse_tuple(false, false, {}, false);
        expect_block_end();
        branch.body = parse_body({"elif", "else", "endif"}, end);
        node.branches.push_back(std::move(branch));
      } else if (end == "else") {
        expect_block_end();
        node.else_body = parse_body({"endif"}, end);
      } else {
        expect_block_end();
        return;
      }
    }
  }

  // Names for `for` / `set` / `with` targets: a, b  or  (a, b).
  std::vector<std::string> parse_target_names(std::string_view stop_name) {
    std::vector<std::string> names;
    const bool parenthesized = skip_op("(");
    while (true) {
      names.push_back(expect_name());
      if (!skip_op(",")) break;
      if (parenthesized && is_op(")")) break;
      if (!parenthesized &&
          (is_name(stop_name) || is_op("=") || cur().kind == TokenKind::BlockEnd)) {
        break;
      }
    }
    if (parenthesized) expect_op(")");
    return names;
  }

  void parse_for(Node& node) {
    node.kind = NodeKind::For;
    node.targets = parse_target_names("in");
    if (!skip_name("in")) error(cur(), "expected 'in' in for loop, got " + describe(cur()));
    node.expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) node.condition = parse_expression(true);
    if (is_name("recursive")) error(cur(), "recursive for loops are not supported");
    expect_block_end();
    std::string end;
    ++loop_depth_;
    node.body = parse_body({"else", "endfor"}, end);
    --loop_depth_;
    if (end == "else") {
      expect_block_end();
      node.else_body = parse_body({"endfor"}, end);
    }
    expect_block_end();
  }

  Target parse_assign_target() {
    Target target;
    if (cur().kind == TokenKind::Name && look().kind == TokenKind::Operator && look().text == "." &&
        look(2).kind == TokenKind::Name) {
      target.names.push_back(cur().text);
      target.attribute = look(2).text;
      advance(), advance(), advance();
      return target;
    }
    target.names = parse_target_names("");
    return target;
  }

  void parse_set(Node& node) {
    node.target = parse_assign_target();
    if (skip_op("=")) {
      node.kind = NodeKind::Set;
      node.expr = parse_tuple(false, true, {}, false);
      expect_block_end();
      return;
    }
    node.kind = NodeKind::SetBlock;
    if (is_op("|")) node.filter = parse_filter(nullptr, false);
    expect_block_end();
    std::string end;
    node.body = parse_body({"endset"}, end);
    expect_block_end();
  }

  std::vector<Param> parse_signature() {
    std::vector<Param> params;
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      Param param;
      param.name = expect_name();
      if (skip_op("=")) {
        param.default_value = parse_expression(true);
      } else if (!params.empty() && params.back().default_value) {
        error(cur(), "non-default argument '" + param.name + "' follows default argument");
      }
      params.push_back(std::move(param));
    }
    expect_op(")");
    return params;
  }

  void parse_macro(Node& node) {
    node.kind = NodeKind::Macro;
    node.name = expect_name();
    node.params = parse_signature();
    expect_block_end();
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    std::string end;
    node.body = parse_body({"endmacro"}, end);
    loop_depth_ = saved_loop_depth;
    if (cur().kind == TokenKind::Name && cur().text == node.name) advance();
    expect_block_end();
  }

  void parse_call_block(Node& node) {
    node.kind = NodeKind::CallBlock;
    if (is_op("(")) node.params = parse_signature();
    const Token& at = cur();
    node.expr = parse_expression(true);
    if (node.expr->kind != ExprKind::Call) error(at, "expected a macro call after 'call'");
    expect_block_end();
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    std::string end;
    node.body = parse_body({"endcall"}, end);
    loop_depth_ = saved_loop_depth;
    expect_block_end();
  }

  void parse_filter_block(Node& node) {
    node.kind = NodeKind::FilterBlock;
    node.filter = parse_filter(nullptr, true);
    expect_block_end();
    std::string end;
    node.body = parse_body({"endfilter"}, end);
    expect_block_end();
  }

  void parse_with(Node& node) {
    node.kind = NodeKind::With;
    while (cur().kind != TokenKind::BlockEnd) {
      if (!node.assignments.empty()) expect_op(",");
      Assignment assignment;
      assignment.target = parse_assign_target();
      if (!assignment.target.attribute.empty())
        error(cur(), "cannot assign to an attribute in 'with'");
      expect_op("=");
      assignment.value = parse_expression(true);
      node.assignments.push_back(std::move(assignment));
    }
    expect_block_end();
    std::string end;
    node.body = parse_body({"endwith"}, end);
    expect_block_end();
  }

  // --- expressions ---
  bool is_tuple_end(std::initializer_list<std::string_view> extra_end_names) const {
    if (cur().kind == TokenKind::VariableEnd || cur().kind == TokenKind::BlockEnd || is_op(")")) {
      return true;
    }
    if (cur().kind == TokenKind::Name) {
      for (std::string_view name : extra_end_names)
        if (cur().text == name) return true;
    }
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr,
                      std::initializer_list<std::string_view> extra_end_names,
                      bool explicit_parentheses) {
    const SourcePos pos = pos_of(cur());
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end_names)) break;
      items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) error(cur(), "expected an expression, got " + describe(cur()));
    }
    ExprPtr tuple = make(ExprKind::Tuple, pos);
    for (ExprPtr& item : items) add_arg(*tuple, std::move(item));
    return tuple;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    Guard guard(*this);
    const SourcePos pos = pos_of(cur());
    ExprPtr value = parse_or();
    while (skip_name("if")) {
      ExprPtr condition = parse_or();
      ExprPtr otherwise = skip_name("else") ? parse_condexpr() : nullptr;
      ExprPtr e = make(ExprKind::Condition, pos);
      add_arg(*e, std::move(value));
      add_arg(*e, std::move(condition));
      add_arg(*e, std::move(otherwise));
      value = std::move(e);
    }
    return value;
  }

  ExprPtr binary(ExprKind kind, SourcePos pos, std::string op, ExprPtr left, ExprPtr right) {
    ExprPtr e = make(kind, pos);
    e->name = std::move(op);
    add_arg(*e, std::move(left));
    add_arg(*e, std::move(right));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const SourcePos pos = pos_of(cur());
      advance();
      left = binary(ExprKind::Or, pos, "or", std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const SourcePos pos = pos_of(cur());
      advance();
      left = binary(ExprKind::And, pos, "and", std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    Guard guard(*this);
    if (is_name("not")) {
      const SourcePos pos = pos_of(cur());
      advance();
      ExprPtr e = make(ExprKind::Not, pos);
      add_arg(*e, parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const SourcePos pos = pos_of(cur());
    ExprPtr first = parse_math1();
    ExprPtr e;
    while (true) {
      std::string op;
      if (cur().kind == TokenKind::Operator &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
           cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && look().kind == TokenKind::Name && look().text == "in") {
        op = "notin";
        advance(), advance();
      } else {
        break;
      }
      if (!e) {
        e = make(ExprKind::Compare, pos);
        add_arg(*e, std::move(first));
      }
      e->ops.push_back(op);
      add_arg(*e, parse_math1());
    }
    return e ? std::move(e) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const SourcePos pos = pos_of(cur());
      std::string op = cur().text;
      advance();
      left = binary(ExprKind::Binary, pos, op, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    const SourcePos pos = pos_of(cur());
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    ExprPtr e = make(ExprKind::Concat, pos);
    add_arg(*e, std::move(first));
    while (skip_op("~")) add_arg(*e, parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const SourcePos pos = pos_of(cur());
      std::string op = cur().text;
      advance();
      left = binary(ExprKind::Binary, pos, op, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const SourcePos pos = pos_of(cur());
      advance();
      left = binary(ExprKind::Binary, pos, "**", std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    Guard guard(*this);
    const SourcePos pos = pos_of(cur());
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      std::string op = cur().text;
      advance();
      node = make(ExprKind::Unary, pos);
      node->name = op;
      add_arg(*node, parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    Guard guard(*this);
    const Token& token = cur();
    const SourcePos pos = pos_of(token);
    switch (token.kind) {
      case TokenKind::Name: {
        ExprPtr e = make(ExprKind::Literal, pos);
        if (token.text == "true" || token.text == "True") {
          e->literal = Value(true);
        } else if (token.text == "false" || token.text == "False") {
          e->literal = Value(false);
        } else if (token.text == "none" || token.text == "None") {
          e->literal = Value::none();
        } else {
          e->kind = ExprKind::Name;
          e->name = token.text;
        }
        advance();
        return e;
      }
      case TokenKind::String: {
        std::string text;
        while (cur().kind == TokenKind::String) {  // adjacent literals concatenate
          text += cur().text;
          advance();
        }
        ExprPtr e = make(ExprKind::Literal, pos);
        e->literal = Value(std::move(text));
        return e;
      }
      case TokenKind::Integer: {
        ExprPtr e = make(ExprKind::Literal, pos);
        e->literal = Value(token.int_value);
        advance();
        return e;
      }
      case TokenKind::Float: {
        ExprPtr e = make(ExprKind::Literal, pos);
        e->literal = Value(token.float_value);
        advance();
        return e;
      }
      case TokenKind::Operator:
        if (token.text == "(") {
          advance();
          ExprPtr e = parse_tuple(false, true, {}, true);
          expect_op(")");
          return e;
        }
        if (token.text == "[") return parse_list();
        if (token.text == "{") return parse_dict();
        break;
      default:
        break;
    }
    error(token, "unexpected " + describe(token) + " in expression");
  }

  ExprPtr parse_list() {
    ExprPtr e = make(ExprKind::List, pos_of(cur()));
    expect_op("[");
    while (!is_op("]")) {
      if (!e->args.empty()) expect_op(",");
      if (is_op("]")) break;
      add_arg(*e, parse_expression(true));
    }
    expect_op("]");
    return e;
  }

  ExprPtr parse_dict() {
    ExprPtr e = make(ExprKind::Dict, pos_of(cur()));
    expect_op("{");
    while (!is_op("}")) {
      if (!e->args.empty()) expect_op(",");
      if (is_op("}")) break;
      add_arg(*e, parse_expression(true));
      expect_op(":");
      add_arg(*e, parse_expression(true));
    }
    expect_op("}");
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter(std::move(node), false);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& token = cur();
    const SourcePos pos = pos_of(token);
    if (token.text == ".") {
      advance();
      const Token& attr = cur();
      if (attr.kind == TokenKind::Name) {
        ExprPtr e = make(ExprKind::GetAttr, pos);
        add_arg(*e, std::move(node));
        e->name = attr.text;
        advance();
        return e;
      }
      if (attr.kind == TokenKind::Integer) {
        ExprPtr e = make(ExprKind::GetItem, pos);
        add_arg(*e, std::move(node));
        ExprPtr key = make(ExprKind::Literal, pos_of(attr));
        key->literal = Value(attr.int_value);
        add_arg(*e, std::move(key));
        advance();
        return e;
      }
      error(attr, "expected an attribute name or number after '.', got " + describe(attr));
    }
    advance();  // '['
    std::vector<ExprPtr> keys;
    while (!is_op("]")) {
      if (!keys.empty()) expect_op(",");
      keys.push_back(parse_subscribed());
    }
    expect_op("]");
    if (keys.empty()) error(token, "expected a subscript inside '[]'");
    if (keys.size() == 1 && keys[0]->kind == ExprKind::Slice) {
      ExprPtr slice = std::move(keys[0]);
      slice->depth = std::max(slice->depth, node->depth + 1);
      check_depth(*slice);
      slice->args[0] = std::move(node);
      return slice;
    }
    for (const ExprPtr& key : keys)
      if (key->kind == ExprKind::Slice) error(token, "multi-dimensional slices are not supported");
    ExprPtr e = make(ExprKind::GetItem, pos);
    add_arg(*e, std::move(node));
    if (keys.size() == 1) {
      add_arg(*e, std::move(keys[0]));
    } else {
      ExprPtr tuple = make(ExprKind::Tuple, pos);
      for (ExprPtr& key : keys) add_arg(*tuple, std::move(key));
      add_arg(*e, std::move(tuple));
    }
    return e;
  }

  // One subscript: an expression or a slice start:stop:step (any part may be missing).
  ExprPtr parse_subscribed() {
    const SourcePos pos = pos_of(cur());
    ExprPtr start;
    if (!skip_op(":")) {
      ExprPtr e = parse_expression(true);
      if (!is_op(":")) return e;
      advance();
      start = std::move(e);
    }
    ExprPtr stop;
    ExprPtr step;
    if (!is_op(":") && !is_op("]") && !is_op(",")) stop = parse_expression(true);
    if (skip_op(":")) {
      if (!is_op("]") && !is_op(",")) step = parse_expression(true);
    }
    ExprPtr slice = make(ExprKind::Slice, pos);
    add_arg(*slice, nullptr);
    add_arg(*slice, std::move(start));
    add_arg(*slice, std::move(stop));
    add_arg(*slice, std::move(step));
    return slice;
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    bool require_comma = false;
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) error(cur(), "*args and **kwargs in calls are not supported");
      if (cur().kind == TokenKind::Name && look().kind == TokenKind::Operator &&
          look().text == "=") {
        Keyword keyword;
        keyword.name = cur().text;
        advance(), advance();
        keyword.value = parse_expression(true);
        add_keyword(e, std::move(keyword));
      } else {
        if (!e.keywords.empty()) error(cur(), "positional argument follows keyword argument");
        add_arg(e, parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    ExprPtr e = make(ExprKind::Call, pos_of(cur()));
    add_arg(*e, std::move(callee));
    parse_call_args(*e);
    return e;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    return name;
  }

  // `| name(args) | name2 ...`; with start_inline the first name comes without a pipe
  // ({% filter upper %}). A null input stands for the block's rendered body.
  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) advance();
      start_inline = false;
      ExprPtr e = make(ExprKind::Filter, pos_of(cur()));
      e->name = parse_dotted_name();
      add_arg(*e, std::move(node));
      if (is_op("(")) parse_call_args(*e);
      node = std::move(e);
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const SourcePos pos = pos_of(cur());
    advance();  // 'is'
    const bool negated = skip_name("not");
    ExprPtr e = make(ExprKind::Test, pos);
    e->name = parse_dotted_name();
    add_arg(*e, std::move(node));
    if (is_op("(")) {
      parse_call_args(*e);
    } else if ((cur().kind == TokenKind::Name || cur().kind == TokenKind::String ||
                cur().kind == TokenKind::Integer || cur().kind == TokenKind::Float || is_op("[") ||
                is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if")) {
      if (is_name("is")) error(cur(), "you cannot chain multiple tests with 'is'");
      add_arg(*e, parse_postfix(parse_primary()));
    }
    if (!negated) return e;
    ExprPtr n = make(ExprKind::Not, pos);
    add_arg(*n, std::move(e));
    return n;
  }
};

}  // namespace

Body parse_template(std::string_view source, const std::string& template_name) {
  return Parser(tokenize(source, LexerOptions{}, template_name), template_name).parse();
}

}  // namespace g4::jinja
