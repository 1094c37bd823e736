#include "text/jinja_value.h"

#include <algorithm>

#include "core/error.h"
#include "text/jinja_pystr.h"

namespace g4::jinja {

namespace {

int16_t container_depth(const std::vector<Value>& items) {
  int depth = 0;
  for (const Value& item : items) depth = std::max(depth, item.depth());
  if (depth + 1 > kMaxValueDepth) fail("values nested deeper than ", kMaxValueDepth, " levels");
  return static_cast<int16_t>(depth + 1);
}

int16_t container_depth(const Dict& dict) {
  int depth = 0;
  for (const auto& [key, value] : dict.entries)
    depth = std::max({depth, key.depth(), value.depth()});
  if (depth + 1 > kMaxValueDepth) fail("values nested deeper than ", kMaxValueDepth, " levels");
  return static_cast<int16_t>(depth + 1);
}

const std::string& empty_string() {
  static const std::string empty;
  return empty;
}

}  // namespace

Value Value::undefined(std::string hint) {
  Value v;
  v.data_ = std::move(hint);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}

Value Value::list(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::List;
  v.depth_ = container_depth(items);
  v.data_ = std::make_shared<const std::vector<Value>>(std::move(items));
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.tuple_ = true;
  return v;
}

Value Value::dict(Dict entries) {
  Value v;
  v.kind_ = Kind::Dict;
  v.depth_ = container_depth(entries);
  v.data_ = std::make_shared<const Dict>(std::move(entries));
  return v;
}

Value Value::callable(std::string name, std::function<Value(Renderer&, CallArgs&)> invoke) {
  Value v;
  v.kind_ = Kind::Callable;
  v.data_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(invoke)});
  return v;
}

Value Value::object(ObjectPtr object) {
  Value v;
  v.kind_ = Kind::Object;
  v.data_ = std::move(object);
  return v;
}

int64_t Value::as_int() const {
  if (kind_ == Kind::Bool) return std::get<bool>(data_) ? 1 : 0;
  return std::get<int64_t>(data_);
}

double Value::as_float() const {
  if (kind_ == Kind::Float) return std::get<double>(data_);
  return static_cast<double>(as_int());
}

const std::string& Value::undefined_hint() const {
  if (const auto* hint = std::get_if<std::string>(&data_)) return *hint;
  return empty_string();
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& [k, v] : entries)
    if (values_equal(k, key)) return &v;
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k.is_string() && k.as_string() == key) return &v;
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& [k, v] : entries) {
    if (values_equal(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

bool truthy(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
      return false;
    case Value::Kind::Bool:
      return value.as_bool();
    case Value::Kind::Int:
      return value.as_int() != 0;
    case Value::Kind::Float:
      return value.as_float() != 0.0;
    case Value::Kind::String:
      return !value.as_string().empty();
    case Value::Kind::List:
      return !value.as_list().empty();
    case Value::Kind::Dict:
      return value.as_dict().size() != 0;
    case Value::Kind::Callable:
    case Value::Kind::Object:
      return true;
  }
  return false;
}

std::string type_name(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::Undefined:
      return "Undefined";
    case Value::Kind::None:
      return "NoneType";
    case Value::Kind::Bool:
      return "bool";
    case Value::Kind::Int:
      return "int";
    case Value::Kind::Float:
      return "float";
    case Value::Kind::String:
      return "str";
    case Value::Kind::List:
      return value.is_tuple() ? "tuple" : "list";
    case Value::Kind::Dict:
      return "dict";
    case Value::Kind::Callable:
      return "function";
    case Value::Kind::Object:
      return value.as_object().type_name;
  }
  return "object";
}

namespace {

void append_repr(std::string& out, const Value& value, int depth);

void append_sequence(std::string& out, const Value& value, int depth) {
  const auto& items = value.as_list();
  out += value.is_tuple() ? '(' : '[';
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    append_repr(out, items[i], depth + 1);
  }
  if (value.is_tuple() && items.size() == 1) out += ',';
  out += value.is_tuple() ? ')' : ']';
}

void append_dict(std::string& out, const Dict& dict, int depth) {
  out += '{';
  bool first = true;
  for (const auto& [k, v] : dict.entries) {
    if (!first) out += ", ";
    first = false;
    append_repr(out, k, depth + 1);
    out += ": ";
    append_repr(out, v, depth + 1);
  }
  out += '}';
}

// Objects can reach themselves through their attributes, so printing tracks depth explicitly.
void append_str(std::string& out, const Value& value, int depth) {
  if (depth > kMaxValueDepth) fail("value nested too deeply to print");
  switch (value.kind()) {
    case Value::Kind::Undefined:
      return;
    case Value::Kind::None:
      out += "None";
      return;
    case Value::Kind::Bool:
      out += value.as_bool() ? "True" : "False";
      return;
    case Value::Kind::Int:
      out += std::to_string(value.as_int());
      return;
    case Value::Kind::Float:
      out += py_float_repr(value.as_float());
      return;
    case Value::Kind::String:
      out += value.as_string();
      return;
    case Value::Kind::List:
      append_sequence(out, value, depth);
      return;
    case Value::Kind::Dict:
      append_dict(out, value.as_dict(), depth);
      return;
    case Value::Kind::Callable:
      out += "<function " + value.as_callable().name + ">";
      return;
    case Value::Kind::Object:
      out += "<" + value.as_object().type_name + " ";
      append_dict(out, value.as_object().attrs, depth);
      out += ">";
      return;
  }
}

void append_repr(std::string& out, const Value& value, int depth) {
  if (value.is_string()) {
    out += py_string_repr(value.as_string());
  } else if (value.is_undefined()) {
    out += "Undefined";
  } else {
    append_str(out, value, depth);
  }
}

}  // namespace

std::string to_str(const Value& value) {
  if (value.is_string()) return value.as_string();
  std::string out;
  append_str(out, value, 0);
  return out;
}

std::string to_repr(const Value& value) {
  std::string out;
  append_repr(out, value, 0);
  return out;
}

bool values_equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::Undefined:
    case K::None:
      return true;
    case K::String:
      return a.as_string() == b.as_string();
    case K::List: {
      if (a.is_tuple() != b.is_tuple()) return false;
      const auto& x = a.as_list();
      const auto& y = b.as_list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!values_equal(x[i], y[i])) return false;
      return true;
    }
    case K::Dict: {
      const Dict& x = a.as_dict();
      const Dict& y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [key, value] : x.entries) {
        const Value* other = y.find(key);
        if (!other || !values_equal(value, *other)) return false;
      }
      return true;
    }
    case K::Callable:
      return a.callable_ptr() == b.callable_ptr();
    case K::Object:
      return a.object_ptr() == b.object_ptr();
    default:
      return false;
  }
}

int compare_values(const Value& a, const Value& b, std::string_view op) {
  if (a.is_number() && b.is_number()) {
    if (!a.is_float() && !b.is_float()) {
      return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
    }
    const double x = a.as_float();
    const double y = b.as_float();
    return x < y ? -1 : (x > y ? 1 : 0);  // NaN compares equal here; Python answers False
  }
  if (a.is_string() && b.is_string()) {
    // UTF-8 byte order is code point order, which is how Python orders str.
    const int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.as_list();
    const auto& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (values_equal(x[i], y[i])) continue;
      return compare_values(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.is_undefined() || b.is_undefined()) {
    fail(a.is_undefined() ? a.undefined_hint() : b.undefined_hint());
  }
  fail("'", op, "' not supported between instances of '", type_name(a), "' and '", type_name(b),
       "'");
}

namespace {

Value from_json_at(const nlohmann::ordered_json& json, int depth) {
  if (depth > kMaxValueDepth) fail("input data nested deeper than ", kMaxValueDepth, " levels");
  switch (json.type()) {
    case nlohmann::json::value_t::null:
      return Value::none();
    case nlohmann::json::value_t::boolean:
      return Value(json.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(json.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = json.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value(json.get<double>());
    case nlohmann::json::value_t::string:
      return Value(json.get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json_at(item, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Dict dict;
      dict.entries.reserve(json.size());
      // JSON object keys are unique already, so entries are appended without a lookup.
      for (const auto& [key, item] : json.items()) {
        dict.entries.emplace_back(Value(key), from_json_at(item, depth + 1));
      }
      return Value::dict(std::move(dict));
    }
    default:
      fail("unsupported JSON value of type ", json.type_name(), " in template input");
  }
}

std::string json_key(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::String:
      return key.as_string();
    case Value::Kind::Int:
      return std::to_string(key.as_int());
    case Value::Kind::Float:
      return json_float(key.as_float());
    case Value::Kind::Bool:
      return key.as_bool() ? "true" : "false";
    case Value::Kind::None:
      return "null";
    default:
      fail("keys must be str, int, float, bool or None, not ", type_name(key));
  }
}

struct JsonWriter {
  const JsonDumpOptions& options;
  std::string item_sep;
  std::string key_sep;
  std::string out;

  void newline(int level) {
    out += '\n';
    for (int i = 0; i < level; ++i) out += *options.indent;
  }

  void write(const Value& value, int level) {
    if (level > kMaxValueDepth) fail("value nested too deeply for tojson");
    switch (value.kind()) {
      case Value::Kind::None:
        out += "null";
        return;
      case Value::Kind::Bool:
        out += value.as_bool() ? "true" : "false";
        return;
      case Value::Kind::Int:
        out += std::to_string(value.as_int());
        return;
      case Value::Kind::Float:
        out += json_float(value.as_float());
        return;
      case Value::Kind::String:
        append_json_string(out, value.as_string(), options.ensure_ascii);
        return;
      case Value::Kind::List:
        write_list(value.as_list(), level);
        return;
      case Value::Kind::Dict:
        write_dict(value.as_dict(), level);
        return;
      default:
        fail("Object of type ", type_name(value), " is not JSON serializable");
    }
  }

  void write_list(const std::vector<Value>& items, int level) {
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += item_sep;
      if (options.indent) newline(level + 1);
      write(items[i], level + 1);
    }
    if (options.indent) newline(level);
    out += ']';
  }

  void write_dict(const Dict& dict, int level) {
    if (dict.size() == 0) {
      out += "{}";
      return;
    }
    std::vector<std::pair<std::string, const Value*>> items;
    items.reserve(dict.size());
    for (const auto& [k, v] : dict.entries) items.emplace_back(json_key(k), &v);
    if (options.sort_keys) {
      std::stable_sort(items.begin(), items.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
    }
    out += '{';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += item_sep;
      if (options.indent) newline(level + 1);
      append_json_string(out, items[i].first, options.ensure_ascii);
      out += key_sep;
      write(*items[i].second, level + 1);
    }
    if (options.indent) newline(level);
    out += '}';
  }
};

}  // namespace

Value from_json(const nlohmann::ordered_json& json) {
  return from_json_at(json, 0);
}

std::string to_json(const Value& value, const JsonDumpOptions& options) {
  JsonWriter writer{options,
                    options.item_separator.value_or(options.indent ? "," : ", "),
                    options.key_separator.value_or(": "),
                    {}};
  writer.write(value, 0);
  return std::move(writer.out);
}

}  // namespace g4::jinja
