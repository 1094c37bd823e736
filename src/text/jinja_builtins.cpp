// Built-in filters, tests, global functions, Python methods and operators of the Jinja
// interpreter, with Jinja2 3.1 / Python 3 semantics (and Hugging Face's tojson).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <initializer_list>
#include <unordered_map>

#include "core/error.h"
#include "text/jinja_pystr.h"
#include "text/jinja_renderer.h"

namespace g4::jinja {

[[noreturn]] void fail_undefined(const Value& value) {
  const std::string& hint = value.undefined_hint();
  fail(hint.empty() ? "value is undefined" : hint);
}

namespace {

// ------------------------------------------------------------------------------------------
// Argument binding
// ------------------------------------------------------------------------------------------

// Binds call arguments to Python-style named parameters.
class Args {
 public:
  Args(std::string_view function, const CallArgs& call,
       std::initializer_list<std::string_view> params)
      : slots_(params.size(), nullptr) {
    if (call.positional.size() > params.size()) {
      fail(function, "() takes at most ", params.size(), " argument(s) (", call.positional.size(),
           " given)");
    }
    for (size_t i = 0; i < call.positional.size(); ++i) slots_[i] = &call.positional[i];
    for (const auto& [key, value] : call.keywords) {
      size_t i = 0;
      for (std::string_view param : params) {
        if (param == key) break;
        ++i;
      }
      if (i == params.size()) fail(function, "() got an unexpected keyword argument '", key, "'");
      if (slots_[i]) fail(function, "() got multiple values for argument '", key, "'");
      slots_[i] = &value;
    }
  }
  bool has(size_t i) const { return slots_[i] != nullptr && !slots_[i]->is_none(); }
  Value get(size_t i, Value fallback = Value()) const {
    return slots_[i] ? *slots_[i] : std::move(fallback);
  }
  const Value* raw(size_t i) const { return slots_[i]; }

 private:
  std::vector<const Value*> slots_;
};

int64_t require_int(const Value& value, std::string_view what) {
  if (value.is_int() || value.is_bool()) return value.as_int();
  if (value.is_undefined()) fail_undefined(value);
  fail(what, " must be an integer, not '", type_name(value), "'");
}

std::string undefined_attribute_hint(const Value& object, const std::string& name) {
  const std::string type =
      object.is_none() ? "None"
                       : (object.is_object() ? type_name(object) : type_name(object) + " object");
  return "'" + type + "' has no attribute '" + name + "'";
}

size_t py_len(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::String:
      return count_code_points(value.as_string());
    case Value::Kind::List:
      return value.as_list().size();
    case Value::Kind::Dict:
      return value.as_dict().size();
    case Value::Kind::Undefined:
      return 0;
    default:
      fail("object of type '", type_name(value), "' has no len()");
  }
}

std::vector<Value> code_point_strings(std::string_view text) {
  std::vector<Value> chars;
  const std::vector<size_t> offsets = code_point_offsets(text);
  chars.reserve(offsets.size() - 1);
  for (size_t i = 0; i + 1 < offsets.size(); ++i) {
    chars.emplace_back(text.substr(offsets[i], offsets[i + 1] - offsets[i]));
  }
  return chars;
}

// Python's key for case-insensitive comparisons (Jinja's ignore_case).
Value fold_case(const Value& value, bool case_sensitive) {
  if (!case_sensitive && value.is_string()) return Value(py_lower(value.as_string()));
  return value;
}

// Jinja's make_attrgetter: "a.b.0" walks items/attributes; numeric parts index.
Value attribute_path(const Value& item, const std::string& path) {
  Value current = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (current.is_undefined()) fail_undefined(current);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(),
                                                      [](char c) { return c >= '0' && c <= '9'; });
    current = numeric ? get_item(current, Value(static_cast<int64_t>(std::stoll(part))))
                      : get_item(current, Value(part));
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

// ------------------------------------------------------------------------------------------
// Python string formatting: "fmt" % args and str.format
// ------------------------------------------------------------------------------------------

std::string pad_text(const std::string& text, size_t width, char align, const std::string& fill) {
  const size_t length = count_code_points(text);
  if (length >= width) return text;
  const size_t pad = width - length;
  std::string out;
  const auto repeat = [&](size_t n) {
    for (size_t i = 0; i < n; ++i) out += fill;
  };
  if (align == '<') {
    out = text;
    repeat(pad);
  } else if (align == '^') {
    repeat(pad / 2);
    out += text;
    repeat(pad - pad / 2);
  } else {
    repeat(pad);
    out += text;
  }
  return out;
}

std::string c_format(const std::string& spec, auto value) {
  char buf[512];
  const int n = std::snprintf(buf, sizeof(buf), spec.c_str(), value);
  if (n < 0) fail("invalid format specification");
  if (static_cast<size_t>(n) < sizeof(buf)) return std::string(buf, static_cast<size_t>(n));
  std::string big(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(big.data(), big.size(), spec.c_str(), value);
  big.resize(static_cast<size_t>(n));
  return big;
}

std::string percent_format(Renderer& renderer, const std::string& format, const Value& args) {
  std::vector<Value> positional;
  const Dict* mapping = nullptr;
  if (args.is_tuple()) {
    positional = args.as_list();
  } else {
    if (args.is_dict()) mapping = &args.as_dict();
    positional.push_back(args);
  }
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) fail("incomplete format");
    std::string key;
    bool has_key = false;
    if (format[i] == '(') {
      const size_t close = format.find(')', i);
      if (close == std::string::npos) fail("incomplete format key");
      key = format.substr(i + 1, close - i - 1);
      has_key = true;
      i = close + 1;
    }
    std::string flags;
    while (i < format.size() && std::string_view("-+ #0").find(format[i]) != std::string_view::npos)
      flags += format[i++];
    std::string width;
    while (i < format.size() && format[i] >= '0' && format[i] <= '9') width += format[i++];
    std::string precision;
    if (i < format.size() && format[i] == '.') {
      precision = ".";
      ++i;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') precision += format[i++];
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) fail("incomplete format");
    const char conv = format[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    Value arg;
    if (has_key) {
      if (!mapping) fail("format requires a mapping");
      const Value* found = mapping->find(std::string_view(key));
      if (!found) fail("KeyError: '", key, "'");
      arg = *found;
      used_mapping = true;
    } else {
      if (next >= positional.size()) fail("not enough arguments for format string");
      arg = positional[next++];
    }
    const std::string spec_head = "%" + flags + width + precision;
    switch (conv) {
      case 's':
      case 'r':
      case 'a': {
        std::string text = conv == 's' ? to_str(arg) : to_repr(arg);
        if (precision.size() > 1) {
          const size_t keep = static_cast<size_t>(std::stoul(precision.substr(1)));
          const std::vector<size_t> offsets = code_point_offsets(text);
          if (keep + 1 < offsets.size()) text.resize(offsets[keep]);
        }
        const size_t w = width.empty() ? 0 : static_cast<size_t>(std::stoul(width));
        out += pad_text(text, w, flags.find('-') != std::string::npos ? '<' : '>', " ");
        break;
      }
      case 'd':
      case 'i':
      case 'u':
        if (!arg.is_number()) {
          fail("%", std::string(1, conv), " format: a real number is required, not ",
               type_name(arg));
        }
        out += c_format(
            spec_head + "lld",
            static_cast<long long>(arg.is_float() ? std::trunc(arg.as_float()) : arg.as_int()));
        break;
      case 'x':
      case 'X':
      case 'o':
        if (!arg.is_int() && !arg.is_bool()) {
          fail("%", std::string(1, conv), " format: an integer is required, not ", type_name(arg));
        }
        if (arg.as_int() < 0) {
          out += "-" + c_format(spec_head + "ll" + std::string(1, conv),
                                static_cast<long long>(-arg.as_int()));
        } else {
          out += c_format(spec_head + "ll" + std::string(1, conv),
                          static_cast<long long>(arg.as_int()));
        }
        break;
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G':
        if (!arg.is_number()) {
          fail("must be real number, not ", type_name(arg));
        }
        out += c_format(spec_head + std::string(1, conv), arg.as_float());
        break;
      case 'c':
        if (arg.is_int()) {
          append_utf8(out, static_cast<uint32_t>(arg.as_int()));
        } else if (arg.is_string() && count_code_points(arg.as_string()) == 1) {
          out += arg.as_string();
        } else {
          fail("%c requires int or char");
        }
        break;
      default:
        fail("unsupported format character '", std::string(1, conv), "'");
    }
    renderer.check_string_size(out.size());
  }
  if (!used_mapping && !mapping && next < positional.size()) {
    fail("not all arguments converted during string formatting");
  }
  return out;
}

// Python's format-spec mini language: [[fill]align][sign][#][0][width][,][.precision][type].
std::string apply_format_spec(const Value& value, const std::string& spec) {
  if (spec.empty()) return to_str(value);
  const std::vector<uint32_t> cps = decode_utf8(spec);
  size_t i = 0;
  std::string fill = " ";
  char align = 0;
  const auto is_align = [](uint32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (cps.size() >= 2 && is_align(cps[1])) {
    fill.clear();
    append_utf8(fill, cps[0]);
    align = static_cast<char>(cps[1]);
    i = 2;
  } else if (!cps.empty() && is_align(cps[0])) {
    align = static_cast<char>(cps[0]);
    i = 1;
  }
  char sign = 0;
  if (i < cps.size() && (cps[i] == '+' || cps[i] == '-' || cps[i] == ' '))
    sign = static_cast<char>(cps[i++]);
  bool alternate = false;
  if (i < cps.size() && cps[i] == '#') alternate = true, ++i;
  bool zero = false;
  if (i < cps.size() && cps[i] == '0') zero = true, ++i;
  size_t width = 0;
  while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') width = width * 10 + (cps[i++] - '0');
  if (i < cps.size() && (cps[i] == ',' || cps[i] == '_'))
    fail("grouping in format specs is not supported");
  int precision = -1;
  if (i < cps.size() && cps[i] == '.') {
    ++i;
    precision = 0;
    while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9')
      precision = precision * 10 + static_cast<int>(cps[i++] - '0');
  }
  char type = 0;
  if (i < cps.size()) type = static_cast<char>(cps[i++]);
  if (i != cps.size()) fail("invalid format specifier '", spec, "'");
  if (zero && !align) fill = "0", align = '=';
  std::string body;
  bool numeric = false;
  if (type == 0 || type == 's') {
    if (type == 's' && !value.is_string()) fail("unknown format code 's' for ", type_name(value));
    body = to_str(value);
    if (precision >= 0 && value.is_string()) {
      const std::vector<size_t> offsets = code_point_offsets(body);
      if (static_cast<size_t>(precision) + 1 < offsets.size())
        body.resize(offsets[static_cast<size_t>(precision)]);
    }
    numeric = value.is_number();
  } else {
    if (!value.is_number())
      fail("unknown format code '", std::string(1, type), "' for ", type_name(value));
    numeric = true;
    std::string c_spec = "%";
    if (sign == '+' || sign == ' ') c_spec += sign;
    if (alternate) c_spec += '#';
    if (std::string_view("dxXob").find(type) != std::string_view::npos) {
      if (value.is_float()) fail("unknown format code '", std::string(1, type), "' for float");
      if (type == 'b') {
        int64_t v = value.as_int();
        const bool negative = v < 0;
        uint64_t u = negative ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
        std::string bits;
        do {
          bits.insert(bits.begin(), static_cast<char>('0' + (u & 1)));
          u >>= 1;
        } while (u);
        body =
            (negative ? "-" : (sign == '+' ? "+" : "")) + std::string(alternate ? "0b" : "") + bits;
      } else {
        body = c_format(c_spec + "ll" + std::string(1, type == 'd' ? 'd' : type),
                        static_cast<long long>(value.as_int()));
      }
    } else if (std::string_view("eEfFgG%").find(type) != std::string_view::npos) {
      double v = value.as_float();
      const char conv = type == '%' ? 'f' : type;
      if (type == '%') v *= 100;
      c_spec += "." + std::to_string(precision < 0 ? 6 : precision) + conv;
      body = c_format(c_spec, v);
      if (type == '%') body += '%';
    } else {
      fail("unknown format code '", std::string(1, type), "'");
    }
  }
  if (!align) align = numeric ? '>' : '<';
  if (align == '=') {
    // Padding goes after the sign.
    std::string sign_part;
    if (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) {
      sign_part = body.substr(0, 1);
      body = body.substr(1);
    }
    const size_t length = count_code_points(body) + sign_part.size();
    std::string out = sign_part;
    for (size_t k = length; k < width; ++k) out += fill;
    return out + body;
  }
  return pad_text(body, width, align, fill);
}

std::string str_format(Renderer& renderer, const std::string& format, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      fail("single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = format.find('}', i);
    if (close == std::string::npos) fail("single '{' encountered in format string");
    std::string field = format.substr(i + 1, close - i - 1);
    i = close;
    std::string spec;
    const size_t colon = field.find(':');
    if (colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    char conversion = 0;
    const size_t bang = field.find('!');
    if (bang != std::string::npos) {
      if (bang + 2 != field.size()) fail("invalid conversion in format string");
      conversion = field[bang + 1];
      field.resize(bang);
    }
    Value value;
    if (field.empty()) {
      if (auto_index >= args.positional.size()) fail("format string refers to a missing argument");
      value = args.positional[auto_index++];
    } else if (std::all_of(field.begin(), field.end(),
                           [](char d) { return d >= '0' && d <= '9'; })) {
      const size_t index = static_cast<size_t>(std::stoul(field));
      if (index >= args.positional.size()) fail("format string refers to missing argument ", index);
      value = args.positional[index];
    } else {
      bool found = false;
      for (const auto& [key, v] : args.keywords) {
        if (key == field) value = v, found = true;
      }
      if (!found) fail("KeyError: '", field, "'");
    }
    if (conversion == 'r' || conversion == 'a') {
      value = Value(to_repr(value));
    } else if (conversion == 's') {
      value = Value(to_str(value));
    } else if (conversion != 0) {
      fail("unknown conversion specifier ", std::string(1, conversion));
    }
    out += apply_format_spec(value, spec);
    renderer.check_string_size(out.size());
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Methods of str, dict and list
// ------------------------------------------------------------------------------------------

bool is_str_method(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "strip",      "lstrip",       "rstrip",      "split",     "rsplit",    "splitlines",
      "startswith", "endswith",     "upper",       "lower",     "title",     "capitalize",
      "swapcase",   "casefold",     "replace",     "find",      "rfind",     "index",
      "rindex",     "count",        "join",        "format",    "center",    "ljust",
      "rjust",      "zfill",        "isdigit",     "isnumeric", "isdecimal", "isalpha",
      "isalnum",    "isspace",      "isupper",     "islower",   "istitle",   "partition",
      "rpartition", "removeprefix", "removesuffix"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}
bool is_dict_method(std::string_view name) {
  return name == "items" || name == "keys" || name == "values" || name == "get" || name == "copy";
}
bool is_list_method(std::string_view name) {
  return name == "index" || name == "count" || name == "copy";
}
// Mutating methods exist but the sandbox Hugging Face uses refuses them.
bool is_unsafe_method(const Value& object, std::string_view name) {
  if (object.is_dict()) {
    return name == "pop" || name == "popitem" || name == "update" || name == "setdefault" ||
           name == "clear";
  }
  if (object.is_list() && !object.is_tuple()) {
    return name == "append" || name == "extend" || name == "insert" || name == "pop" ||
           name == "remove" || name == "reverse" || name == "sort" || name == "clear";
  }
  return false;
}

// Python str.find & co. return code point indices.
int64_t code_point_index(const std::string& text, size_t byte_offset) {
  return static_cast<int64_t>(count_code_points(std::string_view(text).substr(0, byte_offset)));
}

bool matches_affix(const std::string& text, const Value& affix, bool prefix) {
  const auto one = [&](const Value& candidate) {
    if (!candidate.is_string()) {
      fail(prefix ? "startswith" : "endswith", " first arg must be str or a tuple of str, not ",
           type_name(candidate));
    }
    const std::string& a = candidate.as_string();
    if (a.size() > text.size()) return false;
    return prefix ? text.compare(0, a.size(), a) == 0
                  : text.compare(text.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_tuple()) {
    for (const Value& candidate : affix.as_list())
      if (one(candidate)) return true;
    return false;
  }
  return one(affix);
}

bool str_predicate(const std::string& text, std::string_view name) {
  const std::vector<uint32_t> cps = decode_utf8(text);
  if (name == "isupper" || name == "islower") {
    bool cased = false;
    for (uint32_t cp : cps) {
      if (name == "isupper" ? is_py_lower(cp) : is_py_upper(cp)) return false;
      if (is_py_upper(cp) || is_py_lower(cp)) cased = true;
    }
    return cased;
  }
  if (name == "istitle")
    return !cps.empty() && py_title(text) == text &&
           std::any_of(cps.begin(), cps.end(), [](uint32_t c) { return is_py_upper(c); });
  if (cps.empty()) return false;
  for (uint32_t cp : cps) {
    bool ok = false;
    if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") ok = is_py_digit(cp);
    if (name == "isalpha") ok = is_py_alpha(cp);
    if (name == "isalnum") ok = is_py_alnum(cp);
    if (name == "isspace") ok = is_py_space(cp);
    if (!ok) return false;
  }
  return true;
}

Value call_str_method(Renderer& renderer, const std::string& text, std::string_view name,
                      CallArgs& call) {
  const std::string fn = "str." + std::string(name);
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Args args(fn, call, {"chars"});
    const bool left = name != "rstrip";
    const bool right = name != "lstrip";
    if (args.has(0)) return Value(py_strip_chars(text, to_str(args.get(0)), left, right));
    return Value(py_strip(text, left, right));
  }
  if (name == "split" || name == "rsplit") {
    Args args(fn, call, {"sep", "maxsplit"});
    const bool whitespace = !args.has(0);
    const std::string sep = whitespace ? std::string() : to_str(args.get(0));
    if (!whitespace && sep.empty()) fail("empty separator");
    const int64_t max_split = args.has(1) ? require_int(args.get(1), "maxsplit") : -1;
    std::vector<std::string> parts = name == "split" ? py_split(text, sep, whitespace, max_split)
                                                     : py_rsplit(text, sep, whitespace, max_split);
    std::vector<Value> items(parts.begin(), parts.end());
    return Value::list(std::move(items));
  }
  if (name == "splitlines") {
    Args args(fn, call, {"keepends"});
    std::vector<std::string> lines = py_splitlines(text, truthy(args.get(0, Value(false))));
    return Value::list(std::vector<Value>(lines.begin(), lines.end()));
  }
  if (name == "startswith" || name == "endswith") {
    Args args(fn, call, {"prefix"});
    if (!args.raw(0)) fail(fn, "() takes at least 1 argument");
    return Value(matches_affix(text, args.get(0), name == "startswith"));
  }
  if (name == "upper") return Value(py_upper(text));
  if (name == "lower" || name == "casefold") return Value(py_lower(text));
  if (name == "title") return Value(py_title(text));
  if (name == "capitalize") return Value(py_capitalize(text));
  if (name == "swapcase") return Value(py_swapcase(text));
  if (name == "replace") {
    Args args(fn, call, {"old", "new", "count"});
    if (!args.raw(0) || !args.raw(1)) fail(fn, "() takes at least 2 arguments");
    const int64_t count = args.has(2) ? require_int(args.get(2), "count") : -1;
    std::string result = py_replace(text, to_str(args.get(0)), to_str(args.get(1)), count);
    renderer.check_string_size(result.size());
    return Value(std::move(result));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    Args args(fn, call, {"sub"});
    if (!args.raw(0)) fail(fn, "() takes at least 1 argument");
    const std::string sub = to_str(args.get(0));
    const size_t at = (name == "find" || name == "index") ? text.find(sub) : text.rfind(sub);
    if (at == std::string::npos) {
      if (name == "index" || name == "rindex") fail("substring not found");
      return Value(int64_t{-1});
    }
    return Value(code_point_index(text, at));
  }
  if (name == "count") {
    Args args(fn, call, {"sub"});
    return Value(py_count(text, to_str(args.get(0))));
  }
  if (name == "join") {
    Args args(fn, call, {"iterable"});
    std::string out;
    bool first = true;
    for (const Value& item : iterate(args.get(0))) {
      if (!item.is_string())
        fail("sequence item: expected str instance, ", type_name(item), " found");
      if (!first) out += text;
      first = false;
      out += item.as_string();
      renderer.check_string_size(out.size());
    }
    return Value(std::move(out));
  }
  if (name == "format") return Value(str_format(renderer, text, call));
  if (name == "center" || name == "ljust" || name == "rjust") {
    Args args(fn, call, {"width", "fillchar"});
    const int64_t width = require_int(args.get(0, Value(int64_t{0})), "width");
    renderer.check_string_size(static_cast<size_t>(std::max<int64_t>(width, 0)));
    const std::string fill = args.raw(1) ? to_str(args.get(1)) : " ";
    const size_t length = count_code_points(text);
    if (width <= static_cast<int64_t>(length)) return Value(text);
    if (name == "center") {
      // CPython: left = pad / 2 + (pad & width & 1)
      const size_t pad = static_cast<size_t>(width) - length;
      const size_t left = pad / 2 + (pad & static_cast<size_t>(width) & 1);
      std::string out;
      for (size_t i = 0; i < left; ++i) out += fill;
      out += text;
      for (size_t i = 0; i < pad - left; ++i) out += fill;
      return Value(std::move(out));
    }
    return Value(pad_text(text, static_cast<size_t>(width), name == "ljust" ? '<' : '>', fill));
  }
  if (name == "zfill") {
    Args args(fn, call, {"width"});
    const int64_t width = require_int(args.get(0, Value(int64_t{0})), "width");
    renderer.check_string_size(static_cast<size_t>(std::max<int64_t>(width, 0)));
    const size_t length = count_code_points(text);
    if (width <= static_cast<int64_t>(length)) return Value(text);
    std::string sign;
    std::string rest = text;
    if (!rest.empty() && (rest[0] == '-' || rest[0] == '+'))
      sign = rest.substr(0, 1), rest.erase(0, 1);
    return Value(sign + std::string(static_cast<size_t>(width) - length, '0') + rest);
  }
  if (name.substr(0, 2) == "is") return Value(str_predicate(text, name));
  if (name == "partition" || name == "rpartition") {
    Args args(fn, call, {"sep"});
    const std::string sep = to_str(args.get(0));
    if (sep.empty()) fail("empty separator");
    const size_t at = name == "partition" ? text.find(sep) : text.rfind(sep);
    if (at == std::string::npos) {
      return name == "partition" ? Value::tuple({Value(text), Value(""), Value("")})
                                 : Value::tuple({Value(""), Value(""), Value(text)});
    }
    return Value::tuple(
        {Value(text.substr(0, at)), Value(sep), Value(text.substr(at + sep.size()))});
  }
  if (name == "removeprefix" || name == "removesuffix") {
    Args args(fn, call, {"affix"});
    const std::string affix = to_str(args.get(0));
    if (name == "removeprefix" && text.compare(0, affix.size(), affix) == 0) {
      return Value(text.substr(affix.size()));
    }
    if (name == "removesuffix" && !affix.empty() && text.size() >= affix.size() &&
        text.compare(text.size() - affix.size(), affix.size(), affix) == 0) {
      return Value(text.substr(0, text.size() - affix.size()));
    }
    return Value(text);
  }
  fail("'str' object has no attribute '", name, "'");
}

Value call_dict_method(const Value& object, std::string_view name, CallArgs& call) {
  const Dict& dict = object.as_dict();
  const std::string fn = "dict." + std::string(name);
  if (name == "items") {
    Args args(fn, call, {});
    std::vector<Value> items;
    items.reserve(dict.size());
    for (const auto& [k, v] : dict.entries) items.push_back(Value::tuple({k, v}));
    return Value::list(std::move(items));
  }
  if (name == "keys" || name == "values") {
    Args args(fn, call, {});
    std::vector<Value> items;
    items.reserve(dict.size());
    for (const auto& [k, v] : dict.entries) items.push_back(name == "keys" ? k : v);
    return Value::list(std::move(items));
  }
  if (name == "get") {
    Args args(fn, call, {"key", "default"});
    if (!args.raw(0)) fail("get expected at least 1 argument, got 0");
    const Value* found = dict.find(args.get(0));
    return found ? *found : args.get(1, Value::none());
  }
  if (name == "copy") return object;
  fail("'dict' object has no attribute '", name, "'");
}

Value call_list_method(const Value& object, std::string_view name, CallArgs& call) {
  const auto& items = object.as_list();
  const std::string fn = type_name(object) + "." + std::string(name);
  if (name == "index" || name == "count") {
    Args args(fn, call, {"value"});
    const Value needle = args.get(0);
    int64_t count = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!values_equal(items[i], needle)) continue;
      if (name == "index") return Value(static_cast<int64_t>(i));
      ++count;
    }
    if (name == "index") fail(to_repr(needle), " is not in list");
    return Value(count);
  }
  if (name == "copy") return object;
  fail("'", type_name(object), "' object has no attribute '", name, "'");
}

Value bound_method(const Value& object, std::string_view name) {
  const std::string method(name);
  const std::string qualified = type_name(object) + "." + method;
  if (is_unsafe_method(object, name)) {
    return Value::callable(qualified,
                           [method, type = type_name(object)](Renderer&, CallArgs&) -> Value {
                             fail("access to attribute '", method, "' of '", type,
                                  "' object is unsafe (templates cannot modify lists or dicts)");
                           });
  }
  return Value::callable(qualified, [object, method](Renderer& renderer, CallArgs& args) -> Value {
    if (object.is_string()) return call_str_method(renderer, object.as_string(), method, args);
    if (object.is_dict()) return call_dict_method(object, method, args);
    return call_list_method(object, method, args);
  });
}

// Python attribute lookup only (no items): the `attr` filter and the first half of obj.name.
Value python_attribute(const Value& object, std::string_view name, bool* found) {
  *found = true;
  if (object.is_string() && is_str_method(name)) return bound_method(object, name);
  if (object.is_dict() && (is_dict_method(name) || is_unsafe_method(object, name))) {
    return bound_method(object, name);
  }
  if (object.is_list() && (is_list_method(name) || is_unsafe_method(object, name))) {
    return bound_method(object, name);
  }
  if (object.is_object()) {
    if (const Value* value = object.as_object().attrs.find(name)) return *value;
  }
  *found = false;
  return Value::undefined(undefined_attribute_hint(object, std::string(name)));
}

}  // namespace

Value get_attribute(const Value& object, std::string_view name) {
  bool found = false;
  Value attribute = python_attribute(object, name, &found);
  if (found) return attribute;
  if (object.is_dict()) {
    if (const Value* value = object.as_dict().find(name)) return *value;
  }
  return attribute;  // Undefined with the "has no attribute" hint
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_dict()) {
    if (const Value* value = object.as_dict().find(key)) return *value;
  } else if ((object.is_list() || object.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t index = key.as_int();
    if (object.is_list()) {
      const auto n = static_cast<int64_t>(object.as_list().size());
      if (index < 0) index += n;
      if (index >= 0 && index < n) return object.as_list()[static_cast<size_t>(index)];
    } else {
      const std::vector<size_t> offsets = code_point_offsets(object.as_string());
      const auto n = static_cast<int64_t>(offsets.size() - 1);
      if (index < 0) index += n;
      if (index >= 0 && index < n) {
        const size_t i = static_cast<size_t>(index);
        return Value(object.as_string().substr(offsets[i], offsets[i + 1] - offsets[i]));
      }
    }
  }
  if (key.is_string()) {
    bool found = false;
    Value attribute = python_attribute(object, key.as_string(), &found);
    if (found) return attribute;
  }
  const std::string type =
      object.is_none() ? "None"
                       : (object.is_object() ? type_name(object) : type_name(object) + " object");
  return Value::undefined("'" + type + "' has no attribute " +
                          (key.is_string() ? "'" + key.as_string() + "'" : to_repr(key)));
}

Value slice_value(const Value& object, const Value& start, const Value& stop, const Value& step) {
  const auto as_index = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) fail("slice indices must be integers or None");
    return v.as_int();
  };
  const int64_t s = as_index(step).value_or(1);
  if (s == 0) fail("slice step cannot be zero");
  std::vector<size_t> offsets;
  int64_t n = 0;
  if (object.is_string()) {
    offsets = code_point_offsets(object.as_string());
    n = static_cast<int64_t>(offsets.size() - 1);
  } else if (object.is_list()) {
    n = static_cast<int64_t>(object.as_list().size());
  } else {
    fail("'", type_name(object), "' object is not subscriptable");
  }
  const auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t x = *v;
    if (x < 0) x += n;
    if (s > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  const int64_t first = clamp(as_index(start), s > 0 ? 0 : n - 1);
  const int64_t last = clamp(as_index(stop), s > 0 ? n : -1);
  std::vector<size_t> picked;
  for (int64_t i = first; s > 0 ? i < last : i > last; i += s)
    picked.push_back(static_cast<size_t>(i));
  if (object.is_string()) {
    std::string out;
    for (size_t i : picked) out.append(object.as_string(), offsets[i], offsets[i + 1] - offsets[i]);
    return Value(std::move(out));
  }
  std::vector<Value> items;
  items.reserve(picked.size());
  for (size_t i : picked) items.push_back(object.as_list()[i]);
  return object.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::String:
      if (!item.is_string()) {
        fail("'in <string>' requires string as left operand, not ", type_name(item));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::List:
      for (const Value& candidate : container.as_list())
        if (values_equal(candidate, item)) return true;
      return false;
    case Value::Kind::Dict:
      return container.as_dict().find(item) != nullptr;
    case Value::Kind::Undefined:
      return false;
    default:
      fail("argument of type '", type_name(container), "' is not iterable");
  }
}

std::vector<Value> iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::List:
      return value.as_list();
    case Value::Kind::Dict: {
      std::vector<Value> keys;
      keys.reserve(value.as_dict().size());
      for (const auto& entry : value.as_dict().entries) keys.push_back(entry.first);
      return keys;
    }
    case Value::Kind::String:
      return code_point_strings(value.as_string());
    case Value::Kind::Undefined:
      return {};
    default:
      fail("'", type_name(value), "' object is not iterable");
  }
}

// ------------------------------------------------------------------------------------------
// Operators
// ------------------------------------------------------------------------------------------

namespace {

[[noreturn]] void fail_operands(std::string_view op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for ", op, ": '", type_name(a), "' and '", type_name(b), "'");
}

Value repeat_sequence(Renderer& renderer, const Value& sequence, int64_t times) {
  if (times <= 0)
    return sequence.is_string() ? Value("")
                                : (sequence.is_tuple() ? Value::tuple({}) : Value::list({}));
  if (sequence.is_string()) {
    const std::string& text = sequence.as_string();
    renderer.check_string_size(text.size() *
                               static_cast<size_t>(std::min<int64_t>(times, INT32_MAX)));
    std::string out;
    out.reserve(text.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += text;
    return Value(std::move(out));
  }
  const auto& items = sequence.as_list();
  renderer.check_sequence_size(items.size() *
                               static_cast<size_t>(std::min<int64_t>(times, INT32_MAX)));
  std::vector<Value> out;
  out.reserve(items.size() * static_cast<size_t>(times));
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
  return sequence.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

// Python float floor division and modulo (CPython float_divmod).
std::pair<double, double> float_divmod(double a, double b) {
  if (b == 0) fail("float division by zero");
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) {
      mod += b;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, b);
  }
  double floordiv;
  if (div != 0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, a / b);
  }
  return {floordiv, mod};
}

Value int_power(int64_t base, int64_t exponent) {
  int64_t result = 1;
  int64_t b = base;
  int64_t e = exponent;
  while (e > 0) {
    if (e & 1) {
      if (__builtin_mul_overflow(result, b, &result)) fail("integer overflow in **");
    }
    e >>= 1;
    if (e > 0 && __builtin_mul_overflow(b, b, &b)) fail("integer overflow in **");
  }
  return Value(result);
}

}  // namespace

Value binary_op(Renderer& renderer, std::string_view op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  const bool numbers = a.is_number() && b.is_number();
  const bool floats = numbers && (a.is_float() || b.is_float());
  if (op == "+") {
    if (numbers) {
      if (floats) return Value(a.as_float() + b.as_float());
      int64_t r;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) fail("integer overflow in +");
      return Value(r);
    }
    if (a.is_string() && b.is_string()) {
      renderer.check_string_size(a.as_string().size() + b.as_string().size());
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      renderer.check_sequence_size(a.as_list().size() + b.as_list().size());
      std::vector<Value> items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      return a.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    if (a.is_string()) fail("can only concatenate str (not \"", type_name(b), "\") to str");
    fail_operands(op, a, b);
  }
  if (op == "-") {
    if (!numbers) fail_operands(op, a, b);
    if (floats) return Value(a.as_float() - b.as_float());
    int64_t r;
    if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) fail("integer overflow in -");
    return Value(r);
  }
  if (op == "*") {
    if (numbers) {
      if (floats) return Value(a.as_float() * b.as_float());
      int64_t r;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) fail("integer overflow in *");
      return Value(r);
    }
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) {
      return repeat_sequence(renderer, a, b.as_int());
    }
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) {
      return repeat_sequence(renderer, b, a.as_int());
    }
    fail_operands(op, a, b);
  }
  if (op == "/") {
    if (!numbers) fail_operands(op, a, b);
    if (b.as_float() == 0) fail("division by zero");
    return Value(a.as_float() / b.as_float());
  }
  if (op == "//" || op == "%") {
    if (op == "%" && a.is_string()) return Value(percent_format(renderer, a.as_string(), b));
    if (!numbers) fail_operands(op, a, b);
    if (floats) {
      const auto [div, mod] = float_divmod(a.as_float(), b.as_float());
      return Value(op == "//" ? div : mod);
    }
    const int64_t x = a.as_int();
    const int64_t y = b.as_int();
    if (y == 0) fail(op == "//" ? "integer division by zero" : "integer modulo by zero");
    if (x == INT64_MIN && y == -1) {
      if (op == "%") return Value(int64_t{0});
      fail("integer overflow in //");
    }
    int64_t q = x / y;
    int64_t r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) {  // Python rounds toward negative infinity
      q -= 1;
      r += y;
    }
    return Value(op == "//" ? q : r);
  }
  if (op == "**") {
    if (!numbers) fail_operands(op, a, b);
    if (!floats && b.as_int() >= 0) return int_power(a.as_int(), b.as_int());
    if (a.as_float() == 0 && b.as_float() < 0) fail("0.0 cannot be raised to a negative power");
    return Value(std::pow(a.as_float(), b.as_float()));
  }
  fail("unknown operator ", op);
}

// ------------------------------------------------------------------------------------------
// Filters
// ------------------------------------------------------------------------------------------

namespace {

using FilterFn = Value (*)(Renderer&, const Value&, CallArgs&);
using TestFn = bool (*)(Renderer&, const Value&, CallArgs&);

std::string input_text(const Value& value) {
  return to_str(value);
}

Value filter_abs(Renderer&, const Value& in, CallArgs& call) {
  Args args("abs", call, {});
  if (in.is_float()) return Value(std::fabs(in.as_float()));
  if (in.is_int() || in.is_bool()) {
    if (in.as_int() == INT64_MIN) fail("integer overflow in abs");
    return Value(in.as_int() < 0 ? -in.as_int() : in.as_int());
  }
  if (in.is_undefined()) fail_undefined(in);
  fail("bad operand type for abs(): '", type_name(in), "'");
}

Value filter_attr(Renderer&, const Value& in, CallArgs& call) {
  Args args("attr", call, {"name"});
  if (in.is_undefined()) fail_undefined(in);
  bool found = false;
  return python_attribute(in, to_str(args.get(0)), &found);
}

Value filter_batch(Renderer& renderer, const Value& in, CallArgs& call) {
  Args args("batch", call, {"linecount", "fill_with"});
  const int64_t size = require_int(args.get(0), "linecount");
  if (size <= 0) fail("batch size must be positive");
  std::vector<Value> batches;
  std::vector<Value> current;
  for (const Value& item : iterate(in)) {
    if (static_cast<int64_t>(current.size()) == size) {
      batches.push_back(Value::list(std::move(current)));
      current.clear();
    }
    current.push_back(item);
  }
  if (!current.empty()) {
    if (args.has(1)) {
      renderer.check_sequence_size(static_cast<size_t>(size));
      while (static_cast<int64_t>(current.size()) < size) current.push_back(args.get(1));
    }
    batches.push_back(Value::list(std::move(current)));
  }
  return Value::list(std::move(batches));
}

Value filter_capitalize(Renderer&, const Value& in, CallArgs& call) {
  Args args("capitalize", call, {});
  return Value(py_capitalize(input_text(in)));
}

Value filter_center(Renderer& renderer, const Value& in, CallArgs& call) {
  Args args("center", call, {"width"});
  CallArgs method;
  method.positional.push_back(args.get(0, Value(int64_t{80})));
  return call_str_method(renderer, input_text(in), "center", method);
}

Value filter_default(Renderer&, const Value& in, CallArgs& call) {
  Args args("default", call, {"default_value", "boolean"});
  const bool boolean = truthy(args.get(1, Value(false)));
  if (in.is_undefined() || (boolean && !truthy(in))) return args.get(0, Value(""));
  return in;
}

Value sort_items(Renderer& renderer, std::vector<Value> items, bool reverse,
                 const std::function<Value(const Value&)>& key) {
  renderer.charge(items.size());
  std::vector<std::pair<Value, Value>> keyed;
  keyed.reserve(items.size());
  for (Value& item : items) {
    Value k = key(item);
    keyed.emplace_back(std::move(k), std::move(item));
  }
  // Python's sort is stable, also with reverse=True (equal keys keep their order).
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& x, const auto& y) {
    return reverse ? compare_values(y.first, x.first, "<") < 0
                   : compare_values(x.first, y.first, "<") < 0;
  });
  std::vector<Value> sorted;
  sorted.reserve(keyed.size());
  for (auto& entry : keyed) sorted.push_back(std::move(entry.second));
  return Value::list(std::move(sorted));
}

Value filter_dictsort(Renderer& renderer, const Value& in, CallArgs& call) {
  Args args("dictsort", call, {"case_sensitive", "by", "reverse"});
  if (in.is_undefined()) fail_undefined(in);
  if (!in.is_dict()) fail("dictsort expects a mapping, got '", type_name(in), "'");
  const bool case_sensitive = truthy(args.get(0, Value(false)));
  const std::string by = to_str(args.get(1, Value("key")));
  if (by != "key" && by != "value") fail("You can only sort by either 'key' or 'value'");
  const size_t pos = by == "key" ? 0 : 1;
  std::vector<Value> pairs;
  for (const auto& [k, v] : in.as_dict().entries) pairs.push_back(Value::tuple({k, v}));
  return sort_items(
      renderer, std::move(pairs), truthy(args.get(2, Value(false))),
      [&](const Value& pair) { return fold_case(pair.as_list()[pos], case_sensitive); });
}

Value filter_escape(Renderer&, const Value& in, CallArgs& call) {
  Args args("escape", call, {});
  std::string out;
  for (char c : input_text(in)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return Value(std::move(out));
}

Value filter_first(Renderer&, const Value& in, CallArgs& call) {
  Args args("first", call, {});
  if (in.is_list()) {
    if (in.as_list().empty()) return Value::undefined("No first item, sequence was empty.");
    return in.as_list().front();
  }
  std::vector<Value> items = iterate(in);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value filter_last(Renderer&, const Value& in, CallArgs& call) {
  Args args("last", call, {});
  if (in.is_list()) {
    if (in.as_list().empty()) return Value::undefined("No last item, sequence was empty.");
    return in.as_list().back();
  }
  std::vector<Value> items = iterate(in);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

std::optional<double> parse_py_float(const std::string& text) {
  std::string s(py_strip(text));
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  // strtod also takes hex floats and "infinity"; Python's float() takes the latter only.
  if (s.find_first_of("xX") != std::string::npos) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_py_int(const std::string& text, int base) {
  std::string s(py_strip(text));
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) negative = s[0] == '-', s.erase(0, 1);
  if ((base == 16 || base == 0) && s.size() > 2 && s[0] == '0' && (s[1] | 0x20) == 'x')
    s.erase(0, 2), base = 16;
  if ((base == 8 || base == 0) && s.size() > 2 && s[0] == '0' && (s[1] | 0x20) == 'o')
    s.erase(0, 2), base = 8;
  if ((base == 2 || base == 0) && s.size() > 2 && s[0] == '0' && (s[1] | 0x20) == 'b')
    s.erase(0, 2), base = 2;
  if (base == 0) base = 10;
  if (s.empty() || s.front() == '_' || s.back() == '_') return std::nullopt;
  uint64_t value = 0;
  for (char c : s) {
    if (c == '_') continue;
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
    if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
    if (d < 0 || d >= base) return std::nullopt;
    if (value > (static_cast<uint64_t>(INT64_MAX) - static_cast<uint64_t>(d)) /
                    static_cast<uint64_t>(base)) {
      return std::nullopt;
    }
    value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  return negative ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
}

Value filter_float(Renderer&, const Value& in, CallArgs& call) {
  Args args("float", call, {"default"});
  const Value fallback = args.get(0, Value(0.0));
  if (in.is_number()) return Value(in.as_float());
  if (in.is_string()) {
    if (auto v = parse_py_float(in.as_string())) return Value(*v);
  }
  return fallback;
}

Value filter_int(Renderer&, const Value& in, CallArgs& call) {
  Args args("int", call, {"default", "base"});
  const Value fallback = args.get(0, Value(int64_t{0}));
  const int64_t base = require_int(args.get(1, Value(int64_t{10})), "base");
  if (in.is_int() || in.is_bool()) return Value(in.as_int());
  if (in.is_float()) {
    const double v = in.as_float();
    if (!std::isfinite(v) || std::fabs(v) >= 9.2e18)
      fail("cannot convert float ", py_float_repr(v), " to integer");
    return Value(static_cast<int64_t>(std::trunc(v)));
  }
  if (in.is_undefined()) fail_undefined(in);
  if (in.is_string()) {
    if (auto v = parse_py_int(in.as_string(), static_cast<int>(base))) return Value(*v);
    if (auto f = parse_py_float(in.as_string()); f && std::isfinite(*f) && std::fabs(*f) < 9.2e18) {
      return Value(static_cast<int64_t>(std::trunc(*f)));
    }
  }
  return fallback;
}

Value filter_indent(Renderer& renderer, const Value& in, CallArgs& call) {
  Args args("indent", call, {"width", "first", "blank"});
  const Value width = args.get(0, Value(int64_t{4}));
  std::string indentation;
  if (width.is_string()) {
    indentation = width.as_string();
  } else {
    const int64_t n = require_int(width, "width");
    renderer.check_string_size(static_cast<size_t>(std::max<int64_t>(n, 0)));
    indentation.assign(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
  }
  const bool first = truthy(args.get(1, Value(false)));
  const bool blank = truthy(args.get(2, Value(false)));
  const std::string text = input_text(in) + "\n";  // Jinja's splitlines quirk
  std::vector<std::string> lines = py_splitlines(text, false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += "\n";
      if (blank || !lines[i].empty()) out += indentation;
    }
    out += lines[i];
    renderer.check_string_size(out.size());
  }
  if (first) out = indentation + out;
  return Value(std::move(out));
}

Value filter_items(Renderer&, const Value& in, CallArgs& call) {
  Args args("items", call, {});
  if (in.is_undefined()) return Value::list({});
  if (!in.is_dict()) fail("Can only get item pairs from a mapping.");
  std::vector<Value> pairs;
  for (const auto& [k, v] : in.as_dict().entries) pairs.push_back(Value::tuple({k, v}));
  return Value::list(std::move(pairs));
}

Value filter_join(Renderer& renderer, const Value& in, CallArgs& call) {
  Args args("join", call, {"d", "attribute"});
  const std::string separator = to_str(args.get(0, Value("")));
  const bool by_attribute = args.has(1);
  const std::string attribute = by_attribute ? to_str(args.get(1)) : std::string();
  std::string out;
  bool first = true;
  for (const Value& item : iterate(in)) {
    if (!first) out += separator;
    first = false;
    out += to_str(by_attribute ? attribute_path(item, attribute) : item);
    renderer.check_string_size(out.size());
  }
  return Value(std::move(out));
}

Value filter_length(Renderer&, const Value& in, CallArgs& call) {
  Args args("length", call, {});
  return Value(static_cast<int64_t>(py_len(in)));
}

Value filter_list(Renderer&, const Value& in, CallArgs& call) {
  Args args("list", call, {});
  if (in.is_list() && !in.is_tuple()) return in;
  return Value::list(iterate(in));
}

Value filter_lower(Renderer&, const Value& in, CallArgs& call) {
  Args args("lower", call, {});
  return Value(py_lower(input_text(in)));
}

Value filter_upper(Renderer&, const Value& in, CallArgs& call) {
  Args args("upper", call, {});
  return Value(py_upper(input_text(in)));
}

Value filter_map(Renderer& renderer, const Value& in, CallArgs& call) {
  std::vector<Value> items = iterate(in);
  renderer.charge(items.size());
  std::vector<Value> out;
  out.reserve(items.size());
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [key, value] : call.keywords) {
    if (key == "attribute") attribute = &value;
    if (key == "default") fallback = &value;
  }
  if (call.positional.empty() && attribute) {
    for (const auto& [key, value] : call.keywords) {
      if (key != "attribute" && key != "default") fail("Unexpected keyword argument '", key, "'");
    }
    const std::string path = to_str(*attribute);
    for (const Value& item : items) {
      Value v = attribute_path(item, path);
      if (v.is_undefined() && fallback && !fallback->is_none()) v = *fallback;
      out.push_back(std::move(v));
    }
    return Value::list(std::move(out));
  }
  if (call.positional.empty()) fail("map requires a filter argument");
  const std::string filter = to_str(call.positional[0]);
  CallArgs rest;
  rest.positional.assign(call.positional.begin() + 1, call.positional.end());
  rest.keywords = call.keywords;
  for (const Value& item : items) {
    CallArgs args = rest;
    out.push_back(renderer.apply_filter(filter, item, args));
  }
  return Value::list(std::move(out));
}

Value min_or_max(Renderer& renderer, const Value& in, CallArgs& call, bool want_max) {
  Args args(want_max ? "max" : "min", call, {"case_sensitive", "attribute"});
  const bool case_sensitive = truthy(args.get(0, Value(false)));
  const bool by_attribute = args.has(1);
  const std::string attribute = by_attribute ? to_str(args.get(1)) : std::string();
  std::vector<Value> items = iterate(in);
  renderer.charge(items.size());
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const auto key = [&](const Value& item) {
    return fold_case(by_attribute ? attribute_path(item, attribute) : item, case_sensitive);
  };
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    const int c = compare_values(k, best_key, want_max ? ">" : "<");
    if (want_max ? c > 0 : c < 0) best = i, best_key = std::move(k);
  }
  return items[best];
}

Value filter_max(Renderer& r, const Value& in, CallArgs& call) {
  return min_or_max(r, in, call, true);
}
Value filter_min(Renderer& r, const Value& in, CallArgs& call) {
  return min_or_max(r, in, call, false);
}

Value filter_replace(Renderer& renderer, const Value& in, CallArgs& call) {
  Args args("replace", call, {"old", "new", "count"});
  if (!args.raw(0) || !args.raw(1)) fail("replace() needs 'old' and 'new'");
  const int64_t count = args.has(2) ? require_int(args.get(2), "count") : -1;
  std::string out = py_replace(input_text(in), to_str(args.get(0)), to_str(args.get(1)), count);
  renderer.check_string_size(out.size());
  return Value(std::move(out));
}

Value filter_reverse(Renderer&, const Value& in, CallArgs& call) {
  Args args("reverse", call, {});
  if (in.is_string()) {
    std::vector<uint32_t> cps = decode_utf8(in.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value(encode_utf8(cps));
  }
  std::vector<Value> items = iterate(in);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value filter_round(Renderer&, const Value& in, CallArgs& call) {
  Args args("round", call, {"precision", "method"});
  const int64_t precision = require_int(args.get(0, Value(int64_t{0})), "precision");
  const std::string method = to_str(args.get(1, Value("common")));
  if (method != "common" && method != "ceil" && method != "floor") {
    fail("method must be common, ceil or floor");
  }
  if (!in.is_number()) {
    if (in.is_undefined()) fail_undefined(in);
    fail("type ", type_name(in), " doesn't define __round__ method");
  }
  if (method == "common") {
    if (!in.is_float()) return Value(in.as_int());  // round(int, n) stays an int
    const double v = in.as_float();
    if (!std::isfinite(v)) return Value(v);
    if (precision >= 0 && precision <= 300) {
      // Python rounds the exact binary value half-to-even, which is what printf does.
      char buf[400];
      std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), v);
      return Value(std::strtod(buf, nullptr));
    }
    const double scale = std::pow(10.0, static_cast<double>(-precision));
    return Value(std::nearbyint(v / scale) * scale);
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = in.as_float() * scale;
  return Value((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value filter_safe(Renderer&, const Value& in, CallArgs& call) {
  Args args("safe", call, {});
  return Value(to_str(in));
}

Value select_or_reject(Renderer& renderer, const Value& in, CallArgs& call, bool by_attribute,
                       bool select) {
  std::vector<Value> items = iterate(in);
  renderer.charge(items.size());
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (call.positional.empty()) fail("Missing parameter for attribute name");
    attribute = to_str(call.positional[0]);
    next = 1;
  }
  const bool has_test = call.positional.size() > next;
  const std::string test = has_test ? to_str(call.positional[next]) : std::string();
  CallArgs test_args;
  if (has_test)
    test_args.positional.assign(call.positional.begin() + static_cast<long>(next) + 1,
                                call.positional.end());
  test_args.keywords = call.keywords;
  std::vector<Value> kept;
  for (const Value& item : items) {
    const Value probe = by_attribute ? attribute_path(item, attribute) : item;
    bool passed;
    if (has_test) {
      CallArgs args = test_args;
      passed = renderer.apply_test(test, probe, args);
    } else {
      passed = truthy(probe);
    }
    if (passed == select) kept.push_back(item);
  }
  return Value::list(std::move(kept));
}

Value filter_select(Renderer& r, const Value& in, CallArgs& c) {
  return select_or_reject(r, in, c, false, true);
}
Value filter_reject(Renderer& r, const Value& in, CallArgs& c) {
  return select_or_reject(r, in, c, false, false);
}
Value filter_selectattr(Renderer& r, const Value& in, CallArgs& c) {
  return select_or_reject(r, in, c, true, true);
}
Value filter_rejectattr(Renderer& r, const Value& in, CallArgs& c) {
  return select_or_reject(r, in, c, true, false);
}

// sort(attribute="a,b") sorts by several attributes (Jinja's make_multi_attrgetter).
Value filter_sort(Renderer& renderer, const Value& in, CallArgs& call) {
  Args args("sort", call, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = truthy(args.get(0, Value(false)));
  const bool case_sensitive = truthy(args.get(1, Value(false)));
  std::vector<std::string> paths;
  if (args.has(2)) {
    const Value attribute = args.get(2);
    if (attribute.is_string()) {
      for (const std::string& part : py_split(attribute.as_string(), ",", false, -1))
        paths.push_back(part);
    } else {
      paths.push_back(to_str(attribute));
    }
  }
  return sort_items(renderer, iterate(in), reverse, [&](const Value& item) {
    if (paths.empty()) return fold_case(item, case_sensitive);
    if (paths.size() == 1) return fold_case(attribute_path(item, paths[0]), case_sensitive);
    std::vector<Value> keys;
    for (const std::string& path : paths)
      keys.push_back(fold_case(attribute_path(item, path), case_sensitive));
    return Value::list(std::move(keys));
  });
}

Value filter_string(Renderer&, const Value& in, CallArgs& call) {
  Args args("string", call, {});
  return Value(to_str(in));
}

Value filter_sum(Renderer& renderer, const Value& in, CallArgs& call) {
  Args args("sum", call, {"attribute", "start"});
  const bool by_attribute = args.has(0);
  const std::string attribute = by_attribute ? to_str(args.get(0)) : std::string();
  Value total = args.get(1, Value(int64_t{0}));
  std::vector<Value> items = iterate(in);
  renderer.charge(items.size());
  for (const Value& item : items) {
    total = binary_op(renderer, "+", total, by_attribute ? attribute_path(item, attribute) : item);
  }
  return total;
}

// Jinja's title filter capitalizes each word, where words are split at whitespace, '-', '(',
// '{', '[' and '<' (not Python's str.title).
Value filter_title(Renderer&, const Value& in, CallArgs& call) {
  Args args("title", call, {});
  const auto is_boundary = [](uint32_t cp) {
    return is_py_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
  };
  std::string out;
  bool word_start = true;
  for (uint32_t cp : decode_utf8(input_text(in))) {
    if (is_boundary(cp)) {
      append_utf8(out, cp);
      word_start = true;
      continue;
    }
    std::string one;
    append_utf8(one, cp);
    out += word_start ? py_upper(one) : py_lower(one);
    word_start = false;
  }
  return Value(std::move(out));
}

// Hugging Face's tojson: json.dumps(x, ensure_ascii=False, indent, separators, sort_keys).
Value filter_tojson(Renderer& renderer, const Value& in, CallArgs& call) {
  Args args("tojson", call, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions options;
  options.ensure_ascii = truthy(args.get(0, Value(false)));
  if (args.has(1)) {
    const Value indent = args.get(1);
    if (indent.is_string()) {
      options.indent = indent.as_string();
    } else {
      const int64_t n = require_int(indent, "indent");
      options.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(n, 0, 64)), ' ');
    }
  }
  if (args.has(2)) {
    const Value separators = args.get(2);
    if (!separators.is_list() || separators.as_list().size() != 2) {
      fail("tojson separators must be a pair (item_separator, key_separator)");
    }
    options.item_separator = to_str(separators.as_list()[0]);
    options.key_separator = to_str(separators.as_list()[1]);
  }
  options.sort_keys = truthy(args.get(3, Value(false)));
  std::string json = to_json(in, options);
  renderer.check_string_size(json.size());
  return Value(std::move(json));
}

Value filter_trim(Renderer&, const Value& in, CallArgs& call) {
  Args args("trim", call, {"chars"});
  const std::string text = input_text(in);
  if (args.has(0)) return Value(py_strip_chars(text, to_str(args.get(0)), true, true));
  return Value(std::string(py_strip(text)));
}

Value filter_truncate(Renderer&, const Value& in, CallArgs& call) {
  Args args("truncate", call, {"length", "killwords", "end", "leeway"});
  const std::string text = input_text(in);
  const int64_t length = require_int(args.get(0, Value(int64_t{255})), "length");
  const bool killwords = truthy(args.get(1, Value(false)));
  const std::string end = to_str(args.get(2, Value("...")));
  const int64_t leeway = args.has(3) ? require_int(args.get(3), "leeway") : 5;
  const std::vector<size_t> offsets = code_point_offsets(text);
  const auto n = static_cast<int64_t>(offsets.size() - 1);
  const auto end_length = static_cast<int64_t>(count_code_points(end));
  if (length < end_length) fail("expected length >= ", end_length, ", got ", length);
  if (leeway < 0) fail("expected leeway >= 0, got ", leeway);
  if (n <= length + leeway) return Value(text);
  std::string head = text.substr(0, offsets[static_cast<size_t>(length - end_length)]);
  if (killwords) return Value(head + end);
  const size_t space = head.rfind(' ');
  if (space != std::string::npos) head.resize(space);
  return Value(head + end);
}

Value filter_unique(Renderer& renderer, const Value& in, CallArgs& call) {
  Args args("unique", call, {"case_sensitive", "attribute"});
  const bool case_sensitive = truthy(args.get(0, Value(false)));
  const bool by_attribute = args.has(1);
  const std::string attribute = by_attribute ? to_str(args.get(1)) : std::string();
  std::vector<Value> items = iterate(in);
  renderer.charge(items.size());
  std::vector<Value> seen;
  std::vector<Value> out;
  for (const Value& item : items) {
    Value key = fold_case(by_attribute ? attribute_path(item, attribute) : item, case_sensitive);
    if (std::any_of(seen.begin(), seen.end(),
                    [&](const Value& s) { return values_equal(s, key); })) {
      continue;
    }
    renderer.charge(seen.size() / 64 + 1);
    seen.push_back(std::move(key));
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value filter_wordcount(Renderer&, const Value& in, CallArgs& call) {
  Args args("wordcount", call, {});
  int64_t words = 0;
  bool in_word = false;
  for (uint32_t cp : decode_utf8(input_text(in))) {
    const bool word_char = is_py_alnum(cp) || cp == '_';
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value(words);
}

Value filter_format(Renderer& renderer, const Value& in, CallArgs& call) {
  if (!call.positional.empty() && !call.keywords.empty()) {
    fail("can't handle positional and keyword arguments at the same time");
  }
  if (!call.keywords.empty()) {
    Dict mapping;
    for (const auto& [key, value] : call.keywords) mapping.set(Value(key), value);
    return Value(percent_format(renderer, input_text(in), Value::dict(std::move(mapping))));
  }
  return Value(percent_format(renderer, input_text(in), Value::tuple(call.positional)));
}

const std::unordered_map<std::string_view, FilterFn>& filter_table() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"abs", filter_abs},           {"attr", filter_attr},
      {"batch", filter_batch},       {"capitalize", filter_capitalize},
      {"center", filter_center},     {"count", filter_length},
      {"d", filter_default},         {"default", filter_default},
      {"dictsort", filter_dictsort}, {"e", filter_escape},
      {"escape", filter_escape},     {"first", filter_first},
      {"float", filter_float},       {"forceescape", filter_escape},
      {"format", filter_format},     {"indent", filter_indent},
      {"int", filter_int},           {"items", filter_items},
      {"join", filter_join},         {"last", filter_last},
      {"length", filter_length},     {"list", filter_list},
      {"lower", filter_lower},       {"map", filter_map},
      {"max", filter_max},           {"min", filter_min},
      {"reject", filter_reject},     {"rejectattr", filter_rejectattr},
      {"replace", filter_replace},   {"reverse", filter_reverse},
      {"round", filter_round},       {"safe", filter_safe},
      {"select", filter_select},     {"selectattr", filter_selectattr},
      {"sort", filter_sort},         {"string", filter_string},
      {"sum", filter_sum},           {"title", filter_title},
      {"tojson", filter_tojson},     {"trim", filter_trim},
      {"truncate", filter_truncate}, {"unique", filter_unique},
      {"upper", filter_upper},       {"wordcount", filter_wordcount},
  };
  return table;
}

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

const Value& test_operand(std::string_view test, const CallArgs& call) {
  if (call.positional.size() != 1 || !call.keywords.empty()) {
    fail("test '", test, "' takes exactly one argument");
  }
  return call.positional[0];
}

void no_test_args(std::string_view test, const CallArgs& call) {
  if (!call.positional.empty() || !call.keywords.empty()) {
    fail("test '", test, "' takes no arguments");
  }
}

#define G4_SIMPLE_TEST(fn, name, expr)                  \
  bool fn(Renderer&, const Value& in, CallArgs& call) { \
    no_test_args(name, call);                           \
    (void)in;                                           \
    return (expr);                                      \
  }

G4_SIMPLE_TEST(test_boolean, "boolean", in.is_bool())
G4_SIMPLE_TEST(test_callable, "callable", in.is_callable())
G4_SIMPLE_TEST(test_defined, "defined", !in.is_undefined())
G4_SIMPLE_TEST(test_undefined, "undefined", in.is_undefined())
G4_SIMPLE_TEST(test_escaped, "escaped", false)
G4_SIMPLE_TEST(test_false, "false", in.is_bool() && !in.as_bool())
G4_SIMPLE_TEST(test_true, "true", in.is_bool() && in.as_bool())
G4_SIMPLE_TEST(test_float, "float", in.is_float())
G4_SIMPLE_TEST(test_integer, "integer", in.is_int())
G4_SIMPLE_TEST(test_number, "number", in.is_number())
G4_SIMPLE_TEST(test_mapping, "mapping", in.is_dict())
G4_SIMPLE_TEST(test_none, "none", in.is_none())
G4_SIMPLE_TEST(test_string, "string", in.is_string())
// Jinja: iter() works / len() and __getitem__ exist. Undefined has both.
G4_SIMPLE_TEST(test_iterable, "iterable",
               in.is_string() || in.is_list() || in.is_dict() || in.is_undefined())
G4_SIMPLE_TEST(test_sequence, "sequence",
               in.is_string() || in.is_list() || in.is_dict() || in.is_undefined())
G4_SIMPLE_TEST(test_lower, "lower", in.is_string() && str_predicate(in.as_string(), "islower"))
G4_SIMPLE_TEST(test_upper, "upper", in.is_string() && str_predicate(in.as_string(), "isupper"))
#undef G4_SIMPLE_TEST

bool parity(const Value& in, std::string_view test, int remainder) {
  if (in.is_undefined()) fail_undefined(in);
  if (in.is_float()) return std::fmod(std::fabs(in.as_float()), 2.0) == remainder;
  const int64_t value = require_int(in, std::string("value of '") + std::string(test) + "'");
  return ((value % 2) + 2) % 2 == remainder;
}

bool test_even(Renderer&, const Value& in, CallArgs& call) {
  no_test_args("even", call);
  return parity(in, "even", 0);
}
bool test_odd(Renderer&, const Value& in, CallArgs& call) {
  no_test_args("odd", call);
  return parity(in, "odd", 1);
}
bool test_divisibleby(Renderer& r, const Value& in, CallArgs& call) {
  const Value& n = test_operand("divisibleby", call);
  return values_equal(binary_op(r, "%", in, n), Value(int64_t{0}));
}
bool test_eq(Renderer&, const Value& in, CallArgs& call) {
  return values_equal(in, test_operand("eq", call));
}
bool test_ne(Renderer&, const Value& in, CallArgs& call) {
  return !values_equal(in, test_operand("ne", call));
}
bool test_lt(Renderer&, const Value& in, CallArgs& call) {
  return compare_values(in, test_operand("lt", call), "<") < 0;
}
bool test_le(Renderer&, const Value& in, CallArgs& call) {
  return compare_values(in, test_operand("le", call), "<=") <= 0;
}
bool test_gt(Renderer&, const Value& in, CallArgs& call) {
  return compare_values(in, test_operand("gt", call), ">") > 0;
}
bool test_ge(Renderer&, const Value& in, CallArgs& call) {
  return compare_values(in, test_operand("ge", call), ">=") >= 0;
}
bool test_in(Renderer&, const Value& in, CallArgs& call) {
  return contains(test_operand("in", call), in);
}
bool test_filter(Renderer&, const Value& in, CallArgs& call) {
  no_test_args("filter", call);
  return in.is_string() && has_filter(in.as_string());
}
bool test_test(Renderer&, const Value& in, CallArgs& call) {
  no_test_args("test", call);
  return in.is_string() && has_test(in.as_string());
}
// `is sameas`: identity. Scalars compare by value (Python interns None, booleans, small ints).
bool test_sameas(Renderer&, const Value& in, CallArgs& call) {
  const Value& other = test_operand("sameas", call);
  if (in.kind() != other.kind()) return false;
  switch (in.kind()) {
    case Value::Kind::List:
      return &in.as_list() == &other.as_list();
    case Value::Kind::Dict:
      return &in.as_dict() == &other.as_dict();
    default:
      return values_equal(in, other);
  }
}

const std::unordered_map<std::string_view, TestFn>& test_table() {
  static const std::unordered_map<std::string_view, TestFn> table = {
      {"boolean", test_boolean},
      {"callable", test_callable},
      {"defined", test_defined},
      {"undefined", test_undefined},
      {"divisibleby", test_divisibleby},
      {"eq", test_eq},
      {"equalto", test_eq},
      {"==", test_eq},
      {"escaped", test_escaped},
      {"even", test_even},
      {"odd", test_odd},
      {"false", test_false},
      {"true", test_true},
      {"filter", test_filter},
      {"test", test_test},
      {"float", test_float},
      {"integer", test_integer},
      {"number", test_number},
      {"ge", test_ge},
      {">=", test_ge},
      {"gt", test_gt},
      {"greaterthan", test_gt},
      {">", test_gt},
      {"le", test_le},
      {"<=", test_le},
      {"lt", test_lt},
      {"lessthan", test_lt},
      {"<", test_lt},
      {"ne", test_ne},
      {"!=", test_ne},
      {"in", test_in},
      {"iterable", test_iterable},
      {"lower", test_lower},
      {"upper", test_upper},
      {"mapping", test_mapping},
      {"none", test_none},
      {"sameas", test_sameas},
      {"sequence", test_sequence},
      {"string", test_string},
  };
  return table;
}

// ------------------------------------------------------------------------------------------
// Global functions
// ------------------------------------------------------------------------------------------

Value global_range(Renderer& renderer, CallArgs& call) {
  if (!call.keywords.empty()) fail("range() takes no keyword arguments");
  const auto& a = call.positional;
  if (a.empty() || a.size() > 3) fail("range expected 1 to 3 arguments, got ", a.size());
  int64_t start = 0;
  int64_t stop = 0;
  int64_t step = 1;
  if (a.size() == 1) {
    stop = require_int(a[0], "range() argument");
  } else {
    start = require_int(a[0], "range() argument");
    stop = require_int(a[1], "range() argument");
    if (a.size() == 3) step = require_int(a[2], "range() argument");
  }
  if (step == 0) fail("range() arg 3 must not be zero");
  // Count without overflow, then check the size before building anything.
  const long double span = static_cast<long double>(stop) - static_cast<long double>(start);
  const long double count_ld = span / static_cast<long double>(step);
  const uint64_t count = count_ld <= 0 ? 0 : static_cast<uint64_t>(std::ceil(count_ld));
  renderer.check_sequence_size(count);
  renderer.charge(count);
  std::vector<Value> items;
  items.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    items.emplace_back(static_cast<int64_t>(start + static_cast<int64_t>(i) * step));
  }
  return Value::list(std::move(items));
}

Dict keyword_dict(const CallArgs& call, std::string_view function) {
  Dict dict;
  if (call.positional.size() > 1) fail(function, "() takes at most 1 positional argument");
  if (!call.positional.empty()) {
    const Value& source = call.positional[0];
    if (source.is_dict()) {
      dict = source.as_dict();
    } else {
      for (const Value& pair : iterate(source)) {
        if (!pair.is_list() || pair.as_list().size() != 2) {
          fail(function, "() sequence elements must be pairs");
        }
        dict.set(pair.as_list()[0], pair.as_list()[1]);
      }
    }
  }
  for (const auto& [key, value] : call.keywords) dict.set(Value(key), value);
  return dict;
}

Value global_dict(Renderer&, CallArgs& call) {
  return Value::dict(keyword_dict(call, "dict"));
}

Value global_namespace(Renderer& renderer, CallArgs& call) {
  return renderer.make_namespace(keyword_dict(call, "namespace"));
}

Value global_joiner(Renderer&, CallArgs& call) {
  Args args("joiner", call, {"sep"});
  const std::string separator = to_str(args.get(0, Value(", ")));
  auto used = std::make_shared<bool>(false);
  return Value::callable("joiner", [separator, used](Renderer&, CallArgs&) {
    if (!*used) {
      *used = true;
      return Value("");
    }
    return Value(separator);
  });
}

Value global_raise_exception(Renderer&, CallArgs& call) {
  Args args("raise_exception", call, {"message"});
  fail("raise_exception: ", to_str(args.get(0)));
}

Value global_strftime_now(Renderer& renderer, CallArgs& call) {
  Args args("strftime_now", call, {"format"});
  const std::string format = to_str(args.get(0));
  if (format.size() > 1024) fail("strftime_now format too long");
  const std::time_t now = renderer.options().now.value_or(std::time(nullptr));
  std::tm local{};
  localtime_r(&now, &local);
  if (format.empty()) return Value("");
  std::string buffer(256, '\0');
  while (true) {
    const size_t n = std::strftime(buffer.data(), buffer.size(), format.c_str(), &local);
    if (n > 0) return Value(buffer.substr(0, n));
    if (buffer.size() > 65536) return Value("");  // a format that expands to nothing
    buffer.resize(buffer.size() * 4);
  }
}

using GlobalFn = Value (*)(Renderer&, CallArgs&);

const std::unordered_map<std::string_view, GlobalFn>& global_table() {
  static const std::unordered_map<std::string_view, GlobalFn> table = {
      {"range", global_range},
      {"dict", global_dict},
      {"namespace", global_namespace},
      {"joiner", global_joiner},
      {"raise_exception", global_raise_exception},
      {"strftime_now", global_strftime_now},
  };
  return table;
}

const char* kUnsupportedFilters[] = {"groupby",   "slice",         "pprint", "random",
                                     "striptags", "urlencode",     "urlize", "wordwrap",
                                     "xmlattr",   "filesizeformat"};

}  // namespace

Value call_filter(Renderer& renderer, std::string_view name, const Value& input, CallArgs& args) {
  const auto& table = filter_table();
  const auto it = table.find(name);
  if (it == table.end()) {
    for (const char* unsupported : kUnsupportedFilters) {
      if (name == unsupported) fail("the filter '", name, "' is not supported in chat templates");
    }
    fail("no filter named '", name, "'");
  }
  return it->second(renderer, input, args);
}

bool has_filter(std::string_view name) {
  return filter_table().count(name) != 0;
}

bool call_test(Renderer& renderer, std::string_view name, const Value& input, CallArgs& args) {
  const auto& table = test_table();
  const auto it = table.find(name);
  if (it == table.end()) fail("no test named '", name, "'");
  return it->second(renderer, input, args);
}

bool has_test(std::string_view name) {
  return test_table().count(name) != 0;
}

Value global_function(std::string_view name) {
  const auto& table = global_table();
  const auto it = table.find(name);
  if (it == table.end()) return Value();
  const GlobalFn fn = it->second;
  return Value::callable(std::string(name),
                         [fn](Renderer& r, CallArgs& args) { return fn(r, args); });
}

}  // namespace g4::jinja
