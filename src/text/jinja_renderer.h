// The Jinja renderer (tree walker) and the built-in filters, tests, methods and globals it uses.
// Internal to src/text: the public API is jinja.h.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/jinja.h"
#include "text/jinja_ast.h"
#include "text/jinja_value.h"

namespace g4::jinja {

struct TemplateProgram {
  std::string name;
  Body body;
};

// Variables of one lexical scope. Scopes chain to their parent; macros keep the scope they were
// defined in (Jinja's closures), which is why scopes are shared.
struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;

  explicit Scope(std::shared_ptr<Scope> parent_scope) : parent(std::move(parent_scope)) {}
  const Value* find_local(std::string_view name) const;
  void set(std::string_view name, Value value);
};
using ScopePtr = std::shared_ptr<Scope>;

class Renderer {
 public:
  Renderer(const TemplateProgram& program, const RenderOptions& options);
  ~Renderer();
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  std::string render(const nlohmann::ordered_json& variables);

  // --- services for built-ins ---
  Value call(const Value& callee, CallArgs& args);
  Value apply_filter(std::string_view name, const Value& input, CallArgs& args);
  bool apply_test(std::string_view name, const Value& input, CallArgs& args);
  void charge(uint64_t steps);             // counts work against max_steps
  void check_string_size(size_t bytes);    // max_output_bytes
  void check_sequence_size(size_t items);  // max_sequence_items
  Value make_namespace(Dict attributes);   // a namespace() object (tracked for cleanup)
  const RenderOptions& options() const { return options_; }

 private:
  enum class Flow { Normal, Break, Continue };

  const TemplateProgram& program_;
  const RenderOptions& options_;
  SourcePos pos_;  // of the construct being evaluated, for error messages
  uint64_t steps_ = 0;
  int call_depth_ = 0;
  // Scopes captured by closures and namespace objects can form reference cycles
  // (scope -> macro -> scope); they are emptied when rendering ends.
  std::vector<std::weak_ptr<Scope>> closure_scopes_;
  std::vector<std::weak_ptr<Object>> objects_;

  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  Flow exec(const Node& node, const ScopePtr& scope, std::string& out);
  void exec_for(const Node& node, const ScopePtr& scope, std::string& out);
  void assign(const Target& target, Value value, const ScopePtr& scope);
  void define_macro(const Node& node, const ScopePtr& scope);
  Value make_caller(const Node& node, const ScopePtr& scope);
  Value invoke_body(const Node& node, const ScopePtr& defining_scope, CallArgs& args,
                    const std::string& what);
  std::string render_block(const Body& body, const ScopePtr& scope);

  Value eval(const Expr& expr, const ScopePtr& scope);
  Value eval_call(const Expr& expr, const ScopePtr& scope, const Value* caller);
  Value eval_filter(const Expr& expr, const ScopePtr& scope, const Value* block_input);
  Value eval_compare(const Expr& expr, const ScopePtr& scope);
  Value lookup(const std::string& name, const ScopePtr& scope);
  CallArgs eval_args(const Expr& expr, size_t first_arg, const ScopePtr& scope);
  void append(std::string& out, std::string_view text);
};

// --- built-ins (jinja_builtins.cpp) ---
Value call_filter(Renderer& renderer, std::string_view name, const Value& input, CallArgs& args);
bool has_filter(std::string_view name);
bool call_test(Renderer& renderer, std::string_view name, const Value& input, CallArgs& args);
bool has_test(std::string_view name);
// Global functions (range, dict, namespace, joiner, raise_exception, strftime_now); Undefined
// when `name` is none of them.
Value global_function(std::string_view name);

// obj.name: attribute (method) first, then item, like Jinja's environment.getattr.
Value get_attribute(const Value& object, std::string_view name);
// obj[key]: item first, then attribute, like Jinja's environment.getitem.
Value get_item(const Value& object, const Value& key);
Value slice_value(const Value& object, const Value& start, const Value& stop, const Value& step);
// Python `item in container`.
bool contains(const Value& container, const Value& item);
// The items a for loop visits: list items, dict keys, string characters; Undefined is empty.
std::vector<Value> iterate(const Value& value);
// Arithmetic operators + - * / // % ** (also str % args formatting).
Value binary_op(Renderer& renderer, std::string_view op, const Value& a, const Value& b);
// Raises the error an Undefined value carries.
[[noreturn]] void fail_undefined(const Value& value);

}  // namespace g4::jinja
