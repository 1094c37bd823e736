#include "text/jinja_renderer.h"

#include "core/error.h"
#include "text/jinja_lexer.h"

namespace g4::jinja {

const Value* Scope::find_local(std::string_view name) const {
  for (const auto& [key, value] : vars)
    if (key == name) return &value;
  return nullptr;
}

void Scope::set(std::string_view name, Value value) {
  for (auto& [key, existing] : vars) {
    if (key == name) {
      existing = std::move(value);
      return;
    }
  }
  vars.emplace_back(std::string(name), std::move(value));
}

Renderer::Renderer(const TemplateProgram& program, const RenderOptions& options)
    : program_(program), options_(options) {}

Renderer::~Renderer() {
  // Break cycles so that every scope and object of this render is freed.
  for (const auto& weak : closure_scopes_) {
    if (auto scope = weak.lock()) scope->vars.clear();
  }
  for (const auto& weak : objects_) {
    if (auto object = weak.lock()) object->attrs.entries.clear();
  }
}

std::string Renderer::render(const nlohmann::ordered_json& variables) {
  if (!variables.is_object() && !variables.is_null()) {
    fail(program_.name, ": template variables must be a JSON object, got ", variables.type_name());
  }
  auto globals = std::make_shared<Scope>(nullptr);
  if (variables.is_object()) {
    for (const auto& [key, value] : variables.items()) {
      try {
        globals->set(key, from_json(value));
      } catch (const Error& error) {
        fail(program_.name, ": template variable '", key, "': ", error.what());
      }
    }
  }
  auto root = std::make_shared<Scope>(globals);
  std::string out;
  try {
    exec_body(program_.body, root, out);
  } catch (const Error& error) {
    fail_at(program_.name, pos_.line, pos_.column, error.what());
  }
  return out;
}

void Renderer::charge(uint64_t steps) {
  steps_ += steps;
  if (steps_ > options_.limits.max_steps) {
    fail("template exceeded the step limit (", options_.limits.max_steps,
         " statements, loop iterations and calls)");
  }
}

void Renderer::check_string_size(size_t bytes) {
  if (bytes > options_.limits.max_output_bytes) {
    fail("template output or string value exceeds the limit of ", options_.limits.max_output_bytes,
         " bytes");
  }
}

void Renderer::check_sequence_size(size_t items) {
  if (items > options_.limits.max_sequence_items) {
    fail("sequence of ", items, " items exceeds the limit of ", options_.limits.max_sequence_items);
  }
}

Value Renderer::make_namespace(Dict attributes) {
  auto object = std::make_shared<Object>();
  object->type_name = "Namespace";
  object->assignable = true;
  object->attrs = std::move(attributes);
  objects_.push_back(object);
  return Value::object(std::move(object));
}

void Renderer::append(std::string& out, std::string_view text) {
  check_string_size(out.size() + text.size());
  out += text;
}

// --- statements ---

Renderer::Flow Renderer::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const Node& node : body) {
    const Flow flow = exec(node, scope, out);
    if (flow != Flow::Normal) return flow;
  }
  return Flow::Normal;
}

std::string Renderer::render_block(const Body& body, const ScopePtr& scope) {
  std::string out;
  exec_body(body, scope, out);
  return out;
}

Renderer::Flow Renderer::exec(const Node& node, const ScopePtr& scope, std::string& out) {
  pos_ = node.pos;
  charge(1);
  switch (node.kind) {
    case NodeKind::Text:
      append(out, node.text);
      break;
    case NodeKind::Output: {
      const Value value = eval(*node.expr, scope);
      if (value.is_string()) {
        append(out, value.as_string());
      } else {
        append(out, to_str(value));
      }
      break;
    }
    case NodeKind::If:
      for (const IfBranch& branch : node.branches) {
        if (truthy(eval(*branch.condition, scope))) return exec_body(branch.body, scope, out);
      }
      return exec_body(node.else_body, scope, out);
    case NodeKind::For:
      exec_for(node, scope, out);
      break;
    case NodeKind::Set:
      assign(node.target, eval(*node.expr, scope), scope);
      break;
    case NodeKind::SetBlock: {
      Value value(render_block(node.body, scope));
      if (node.filter) value = eval_filter(*node.filter, scope, &value);
      assign(node.target, std::move(value), scope);
      break;
    }
    case NodeKind::Macro:
      define_macro(node, scope);
      break;
    case NodeKind::CallBlock: {
      const Value caller = make_caller(node, scope);
      const Value result = eval_call(*node.expr, scope, &caller);
      append(out, to_str(result));
      break;
    }
    case NodeKind::FilterBlock: {
      const Value body(render_block(node.body, scope));
      append(out, to_str(eval_filter(*node.filter, scope, &body)));
      break;
    }
    case NodeKind::Break:
      return Flow::Break;
    case NodeKind::Continue:
      return Flow::Continue;
    case NodeKind::With: {
      auto inner = std::make_shared<Scope>(scope);
      for (const Assignment& assignment : node.assignments) {
        assign(assignment.target, eval(*assignment.value, scope), inner);
      }
      return exec_body(node.body, inner, out);
    }
    case NodeKind::Generation:
      return exec_body(node.body, scope, out);
  }
  return Flow::Normal;
}

namespace {

// The `loop` variable. Like Jinja2's LoopContext it is one object per loop whose attributes
// advance with each iteration (so `{% set outer = loop %}` follows the outer loop).
enum LoopAttr : size_t {
  kIndex,
  kIndex0,
  kRevindex,
  kRevindex0,
  kFirst,
  kLast,
  kPrevitem,
  kNextitem
};

ObjectPtr make_loop(int64_t length, Value cycle, Value changed) {
  auto loop = std::make_shared<Object>();
  loop->type_name = "LoopContext";
  auto& attrs = loop->attrs.entries;
  for (const char* name :
       {"index", "index0", "revindex", "revindex0", "first", "last", "previtem", "nextitem"}) {
    attrs.emplace_back(Value(name), Value());
  }
  attrs.emplace_back("length", length);
  attrs.emplace_back("depth", int64_t{1});
  attrs.emplace_back("depth0", int64_t{0});
  attrs.emplace_back("cycle", std::move(cycle));
  attrs.emplace_back("changed", std::move(changed));
  return loop;
}

void advance_loop(Object& loop, const std::vector<Value>& items, size_t i) {
  const auto n = static_cast<int64_t>(items.size());
  const auto index = static_cast<int64_t>(i);
  auto& attrs = loop.attrs.entries;
  attrs[kIndex].second = Value(index + 1);
  attrs[kIndex0].second = Value(index);
  attrs[kRevindex].second = Value(n - index);
  attrs[kRevindex0].second = Value(n - index - 1);
  attrs[kFirst].second = Value(index == 0);
  attrs[kLast].second = Value(index == n - 1);
  attrs[kPrevitem].second = i > 0 ? items[i - 1] : Value::undefined("there is no previous item");
  attrs[kNextitem].second =
      i + 1 < items.size() ? items[i + 1] : Value::undefined("there is no next item");
}

}  // namespace

void Renderer::exec_for(const Node& node, const ScopePtr& scope, std::string& out) {
  const Value iterable = eval(*node.expr, scope);
  std::vector<Value> items = iterate(iterable);
  if (node.condition) {  // {% for x in xs if cond %}: loop.* counts the kept items only
    std::vector<Value> kept;
    for (Value& item : items) {
      charge(1);
      auto probe = std::make_shared<Scope>(scope);
      assign(Target{node.targets, {}}, item, probe);
      if (truthy(eval(*node.condition, probe))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec_body(node.else_body, scope, out);
    return;
  }
  auto index = std::make_shared<size_t>(0);
  Value cycle = Value::callable("loop.cycle", [index](Renderer&, CallArgs& args) -> Value {
    if (args.positional.empty()) fail("loop.cycle() needs at least one argument");
    return args.positional[*index % args.positional.size()];
  });
  auto last_seen = std::make_shared<std::optional<std::vector<Value>>>();
  Value changed = Value::callable("loop.changed", [last_seen](Renderer&, CallArgs& args) {
    if (*last_seen && last_seen->value().size() == args.positional.size()) {
      bool same = true;
      for (size_t i = 0; i < args.positional.size() && same; ++i)
        same = values_equal(last_seen->value()[i], args.positional[i]);
      if (same) return Value(false);
    }
    *last_seen = args.positional;
    return Value(true);
  });
  const ObjectPtr loop =
      make_loop(static_cast<int64_t>(items.size()), std::move(cycle), std::move(changed));
  objects_.push_back(loop);  // items may hold a namespace that stores `loop`: a cycle
  const Value loop_value = Value::object(loop);
  for (size_t i = 0; i < items.size(); ++i) {
    charge(1);
    *index = i;
    advance_loop(*loop, items, i);
    auto iteration = std::make_shared<Scope>(scope);  // Jinja: each iteration starts fresh
    assign(Target{node.targets, {}}, items[i], iteration);
    iteration->set("loop", loop_value);
    const Flow flow = exec_body(node.body, iteration, out);
    if (flow == Flow::Break) break;
  }
}

void Renderer::assign(const Target& target, Value value, const ScopePtr& scope) {
  if (!target.attribute.empty()) {
    const std::string& name = target.names[0];
    const Value holder = lookup(name, scope);
    if (!holder.is_object() || !holder.as_object().assignable) {
      fail("cannot assign attribute '", target.attribute, "' on '", name,
           "': it is not a namespace object (", type_name(holder), ")");
    }
    holder.as_object().attrs.set(Value(target.attribute), std::move(value));
    return;
  }
  if (target.names.size() == 1) {
    scope->set(target.names[0], std::move(value));
    return;
  }
  const std::vector<Value> parts = iterate(value);
  if (value.is_undefined()) fail_undefined(value);
  if (parts.size() != target.names.size()) {
    fail(parts.size() > target.names.size() ? "too many" : "not enough",
         " values to unpack (expected ", target.names.size(), ", got ", parts.size(), ")");
  }
  for (size_t i = 0; i < parts.size(); ++i) scope->set(target.names[i], parts[i]);
}

// Binds macro (or caller) arguments like Python: positional, then keywords, then defaults
// evaluated in the new scope; extras go to `varargs` / `kwargs`.
Value Renderer::invoke_body(const Node& node, const ScopePtr& defining_scope, CallArgs& args,
                            const std::string& what) {
  if (call_depth_ >= options_.limits.max_call_depth) {
    fail("maximum macro call depth (", options_.limits.max_call_depth, ") exceeded in ", what);
  }
  struct DepthGuard {
    int& depth;
    explicit DepthGuard(int& d) : depth(d) { ++depth; }
    ~DepthGuard() { --depth; }
  } guard(call_depth_);
  charge(1);
  const SourcePos call_site = pos_;
  auto scope = std::make_shared<Scope>(defining_scope);
  const auto& params = node.params;
  std::vector<bool> bound(params.size(), false);
  std::vector<Value> varargs;
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < params.size()) {
      scope->set(params[i].name, args.positional[i]);
      bound[i] = true;
    } else {
      varargs.push_back(args.positional[i]);
    }
  }
  Dict kwargs;
  for (auto& [key, value] : args.keywords) {
    if (key == "caller") {
      scope->set("caller", value);
      continue;
    }
    size_t p = 0;
    while (p < params.size() && params[p].name != key) ++p;
    if (p == params.size()) {
      kwargs.set(Value(key), value);
      continue;
    }
    if (bound[p]) fail(what, " got multiple values for argument '", key, "'");
    scope->set(key, value);
    bound[p] = true;
  }
  for (size_t p = 0; p < params.size(); ++p) {
    if (bound[p]) continue;
    if (params[p].default_value) {
      scope->set(params[p].name, eval(*params[p].default_value, scope));
    } else {
      scope->set(params[p].name,
                 Value::undefined("parameter '" + params[p].name + "' was not provided"));
    }
  }
  scope->set("varargs", Value::tuple(std::move(varargs)));
  scope->set("kwargs", Value::dict(std::move(kwargs)));
  std::string out;
  exec_body(node.body, scope, out);
  pos_ = call_site;
  return Value(std::move(out));
}

void Renderer::define_macro(const Node& node, const ScopePtr& scope) {
  const Node* macro = &node;
  ScopePtr captured = scope;
  closure_scopes_.push_back(scope);
  const std::string what = "macro '" + node.name + "'";
  scope->set(node.name,
             Value::callable(node.name, [macro, captured, what](Renderer& r, CallArgs& args) {
               return r.invoke_body(*macro, captured, args, what);
             }));
}

Value Renderer::make_caller(const Node& node, const ScopePtr& scope) {
  const Node* block = &node;
  ScopePtr captured = scope;
  closure_scopes_.push_back(scope);
  return Value::callable("caller", [block, captured](Renderer& r, CallArgs& args) {
    return r.invoke_body(*block, captured, args, "caller()");
  });
}

// --- expressions ---

Value Renderer::lookup(const std::string& name, const ScopePtr& scope) {
  for (const Scope* s = scope.get(); s; s = s->parent.get()) {
    if (const Value* value = s->find_local(name)) return *value;
  }
  Value global = global_function(name);
  if (!global.is_undefined()) return global;
  return Value::undefined("'" + name + "' is undefined");
}

CallArgs Renderer::eval_args(const Expr& expr, size_t first_arg, const ScopePtr& scope) {
  CallArgs args;
  args.positional.reserve(expr.args.size() - first_arg);
  for (size_t i = first_arg; i < expr.args.size(); ++i) {
    args.positional.push_back(eval(*expr.args[i], scope));
  }
  for (const Keyword& keyword : expr.keywords) {
    args.keywords.emplace_back(keyword.name, eval(*keyword.value, scope));
  }
  return args;
}

Value Renderer::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) fail_undefined(callee);
  if (!callee.is_callable()) fail("'", type_name(callee), "' object is not callable");
  return callee.as_callable().invoke(*this, args);
}

Value Renderer::eval_call(const Expr& expr, const ScopePtr& scope, const Value* caller) {
  const Value callee = eval(*expr.args[0], scope);
  CallArgs args = eval_args(expr, 1, scope);
  if (caller) args.keywords.emplace_back("caller", *caller);
  pos_ = expr.pos;
  return call(callee, args);
}

Value Renderer::apply_filter(std::string_view name, const Value& input, CallArgs& args) {
  charge(1);
  return call_filter(*this, name, input, args);
}

bool Renderer::apply_test(std::string_view name, const Value& input, CallArgs& args) {
  return call_test(*this, name, input, args);
}

// A filter chain; the innermost input is null for {% filter %} and {% set x | f %} blocks.
Value Renderer::eval_filter(const Expr& expr, const ScopePtr& scope, const Value* block_input) {
  Value input;
  if (expr.args[0]) {
    input = expr.args[0]->kind == ExprKind::Filter && block_input
                ? eval_filter(*expr.args[0], scope, block_input)
                : eval(*expr.args[0], scope);
  } else if (block_input) {
    input = *block_input;
  }
  CallArgs args = eval_args(expr, 1, scope);
  pos_ = expr.pos;
  return apply_filter(expr.name, input, args);
}

Value Renderer::eval_compare(const Expr& expr, const ScopePtr& scope) {
  Value left = eval(*expr.args[0], scope);
  for (size_t i = 0; i < expr.ops.size(); ++i) {
    Value right = eval(*expr.args[i + 1], scope);
    pos_ = expr.pos;
    const std::string& op = expr.ops[i];
    bool result;
    if (op == "==") {
      result = values_equal(left, right);
    } else if (op == "!=") {
      result = !values_equal(left, right);
    } else if (op == "in") {
      result = contains(right, left);
    } else if (op == "notin") {
      result = !contains(right, left);
    } else {
      const int c = compare_values(left, right, op);
      result = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
    }
    if (!result) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Renderer::eval(const Expr& expr, const ScopePtr& scope) {
  pos_ = expr.pos;
  switch (expr.kind) {
    case ExprKind::Literal:
      return expr.literal;
    case ExprKind::Name:
      return lookup(expr.name, scope);
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      items.reserve(expr.args.size());
      for (const ExprPtr& item : expr.args) items.push_back(eval(*item, scope));
      return expr.kind == ExprKind::List ? Value::list(std::move(items))
                                         : Value::tuple(std::move(items));
    }
    case ExprKind::Dict: {
      Dict dict;
      for (size_t i = 0; i + 1 < expr.args.size(); i += 2) {
        Value key = eval(*expr.args[i], scope);
        if (key.is_list() && !key.is_tuple()) fail("unhashable type: 'list'");
        if (key.is_dict()) fail("unhashable type: 'dict'");
        dict.set(std::move(key), eval(*expr.args[i + 1], scope));
      }
      return Value::dict(std::move(dict));
    }
    case ExprKind::GetAttr: {
      const Value object = eval(*expr.args[0], scope);
      pos_ = expr.pos;
      if (object.is_undefined()) fail_undefined(object);
      return get_attribute(object, expr.name);
    }
    case ExprKind::GetItem: {
      const Value object = eval(*expr.args[0], scope);
      const Value key = eval(*expr.args[1], scope);
      pos_ = expr.pos;
      if (object.is_undefined()) fail_undefined(object);
      return get_item(object, key);
    }
    case ExprKind::Slice: {
      const Value object = eval(*expr.args[0], scope);
      const auto part = [&](size_t i) {
        return expr.args[i] ? eval(*expr.args[i], scope) : Value::none();
      };
      const Value start = part(1);
      const Value stop = part(2);
      const Value step = part(3);
      pos_ = expr.pos;
      if (object.is_undefined()) fail_undefined(object);
      return slice_value(object, start, stop, step);
    }
    case ExprKind::Call:
      return eval_call(expr, scope, nullptr);
    case ExprKind::Filter:
      return eval_filter(expr, scope, nullptr);
    case ExprKind::Test: {
      const Value input = eval(*expr.args[0], scope);
      CallArgs args = eval_args(expr, 1, scope);
      pos_ = expr.pos;
      return Value(apply_test(expr.name, input, args));
    }
    case ExprKind::Unary: {
      const Value operand = eval(*expr.args[0], scope);
      pos_ = expr.pos;
      if (operand.is_undefined()) fail_undefined(operand);
      if (!operand.is_number()) {
        fail("bad operand type for unary ", expr.name, ": '", type_name(operand), "'");
      }
      if (expr.name == "+") return operand.is_float() ? operand : Value(operand.as_int());
      if (operand.is_float()) return Value(-operand.as_float());
      if (operand.as_int() == INT64_MIN) fail("integer overflow in unary -");
      return Value(-operand.as_int());
    }
    case ExprKind::Binary: {
      const Value left = eval(*expr.args[0], scope);
      const Value right = eval(*expr.args[1], scope);
      pos_ = expr.pos;
      return binary_op(*this, expr.name, left, right);
    }
    case ExprKind::And: {
      Value left = eval(*expr.args[0], scope);
      if (!truthy(left)) return left;
      return eval(*expr.args[1], scope);
    }
    case ExprKind::Or: {
      Value left = eval(*expr.args[0], scope);
      if (truthy(left)) return left;
      return eval(*expr.args[1], scope);
    }
    case ExprKind::Not:
      return Value(!truthy(eval(*expr.args[0], scope)));
    case ExprKind::Compare:
      return eval_compare(expr, scope);
    case ExprKind::Concat: {
      std::string text;
      for (const ExprPtr& part : expr.args) {
        const Value value = eval(*part, scope);
        text += to_str(value);
        check_string_size(text.size());
      }
      return Value(std::move(text));
    }
    case ExprKind::Condition: {
      if (truthy(eval(*expr.args[1], scope))) return eval(*expr.args[0], scope);
      if (expr.args[2]) return eval(*expr.args[2], scope);
      return Value::undefined(
          "the inline if-expression evaluated to false and no else section was defined");
    }
  }
  fail("internal error: unknown expression kind");
}

}  // namespace g4::jinja
