// Runtime values of the Jinja interpreter: Python's object model reduced to what chat templates
// touch. Lists and dicts are immutable once built and shared by pointer (the sandbox Hugging Face
// renders with forbids mutating them); namespaces and loop contexts are the only mutable objects.
// Dicts keep insertion order, as Python's do.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace g4::jinja {

class Value;
class Renderer;

// Arguments of a call: f(a, b, key=c).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;
};

// Anything callable from a template: built-in functions, bound methods, macros, caller().
struct Callable {
  std::string name;
  std::function<Value(Renderer&, CallArgs&)> invoke;
};

struct Dict;
struct Object;
using ListPtr = std::shared_ptr<const std::vector<Value>>;
using DictPtr = std::shared_ptr<const Dict>;
using CallablePtr = std::shared_ptr<const Callable>;
using ObjectPtr = std::shared_ptr<Object>;

// Values nest at most this deep (lists in lists ...); deeper input or construction is an error,
// which keeps every recursive walk (printing, comparing, destroying) within a bounded stack.
constexpr int kMaxValueDepth = 256;

class Value {
 public:
  enum class Kind : uint8_t {
    Undefined,
    None,
    Bool,
    Int,
    Float,
    String,
    List,
    Dict,
    Callable,
    Object
  };

  Value() = default;  // undefined
  Value(bool b) : kind_(Kind::Bool), data_(b) {}
  Value(int i) : kind_(Kind::Int), data_(int64_t{i}) {}
  Value(int64_t i) : kind_(Kind::Int), data_(i) {}
  Value(double f) : kind_(Kind::Float), data_(f) {}
  Value(std::string s) : kind_(Kind::String), data_(std::move(s)) {}
  Value(std::string_view s) : kind_(Kind::String), data_(std::string(s)) {}
  Value(const char* s) : kind_(Kind::String), data_(std::string(s)) {}

  // An undefined value remembers why it is undefined, for the error raised when it is used.
  static Value undefined(std::string hint);
  static Value none();
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  static Value dict(Dict entries);
  static Value callable(std::string name, std::function<Value(Renderer&, CallArgs&)> invoke);
  static Value object(ObjectPtr object);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const {
    return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool;
  }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }  // lists and tuples
  bool is_tuple() const { return kind_ == Kind::List && tuple_; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_callable() const { return kind_ == Kind::Callable; }
  bool is_object() const { return kind_ == Kind::Object; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const;   // Int or Bool
  double as_float() const;  // any number
  const std::string& as_string() const { return std::get<std::string>(data_); }
  const std::vector<Value>& as_list() const { return *std::get<ListPtr>(data_); }
  const Dict& as_dict() const { return *std::get<DictPtr>(data_); }
  const Callable& as_callable() const { return *std::get<CallablePtr>(data_); }
  Object& as_object() const { return *std::get<ObjectPtr>(data_); }
  const ObjectPtr& object_ptr() const { return std::get<ObjectPtr>(data_); }
  const CallablePtr& callable_ptr() const { return std::get<CallablePtr>(data_); }
  const std::string& undefined_hint() const;
  int depth() const { return depth_; }

 private:
  Kind kind_ = Kind::Undefined;
  bool tuple_ = false;
  int16_t depth_ = 0;
  std::variant<std::monostate, bool, int64_t, double, std::string, ListPtr, DictPtr, CallablePtr,
               ObjectPtr>
      data_;
};

struct Dict {
  std::vector<std::pair<Value, Value>> entries;

  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  // Python d[key] = value: replaces the value of an equal key in place, else appends.
  void set(Value key, Value value);
  size_t size() const { return entries.size(); }
};

// Mutable attribute bags: namespace() objects and loop contexts.
struct Object {
  std::string type_name;    // "Namespace", "LoopContext": for messages and str()
  bool assignable = false;  // {% set ns.attr = value %} is allowed
  Dict attrs;               // string keys
};

// Python truthiness, str(), repr() and type names.
bool truthy(const Value& value);
std::string to_str(const Value& value);
std::string to_repr(const Value& value);
std::string type_name(const Value& value);

// Python ==, and <, <=, >, >= (throws g4::Error for unorderable types, naming `op`).
bool values_equal(const Value& a, const Value& b);
int compare_values(const Value& a, const Value& b, std::string_view op);

// JSON data in (objects keep their key order); throws g4::Error for nesting deeper than
// kMaxValueDepth.
Value from_json(const nlohmann::ordered_json& json);

// json.dumps(value, ensure_ascii, indent, separators, sort_keys) as Hugging Face's tojson filter
// calls it. `indent` unset means single-line output.
struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;
  std::optional<std::string> item_separator;  // default ", " (single line) or "," (indented)
  std::optional<std::string> key_separator;   // default ": "
  bool sort_keys = false;
};
std::string to_json(const Value& value, const JsonDumpOptions& options);

}  // namespace g4::jinja
