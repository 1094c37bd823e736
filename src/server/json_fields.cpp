#include "server/json_fields.h"

#include <cmath>

#include "server/api_error.h"

namespace g4::server {

namespace {

// Deepest nesting of arrays/objects, counting brackets outside strings.
int nesting_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') deepest = std::max(deepest, ++depth);
    else if (c == ']' || c == '}') --depth;
    if (deepest > limit) break;
  }
  return deepest;
}

const char* type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::string: return "a string";
    case Json::value_t::array: return "an array";
    case Json::value_t::object: return "an object";
    case Json::value_t::number_float: return "a number";
    default: return "an integer";
  }
}

}  // namespace

Json parse_request_body(std::string_view body, int max_depth) {
  if (nesting_depth(body, max_depth) > max_depth)
    throw bad_request(cat("the request body nests deeper than ", max_depth, " levels"));
  Json json;
  try {
    json = Json::parse(body.begin(), body.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw bad_request(cat("the request body is not valid JSON: ", e.what()), "", "invalid_json");
  }
  if (!json.is_object()) throw bad_request(cat("the request body must be a JSON object, not ", type_name(json)));
  return json;
}

JsonFields::JsonFields(const Json& object, std::string where) : object_(object), where_(std::move(where)) {
  if (!object.is_object()) throw bad_request(cat(where_.empty() ? "the body" : where_, " must be an object"));
}

bool JsonFields::has(const std::string& key) const {
  auto it = object_.find(key);
  return it != object_.end() && !it->is_null();
}

const Json* JsonFields::value(const std::string& key) {
  read_.insert(key);
  auto it = object_.find(key);
  return it == object_.end() || it->is_null() ? nullptr : &*it;
}

void JsonFields::ignore(const std::string& key) { read_.insert(key); }

std::optional<bool> JsonFields::boolean(const std::string& key) {
  const Json* v = value(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) throw bad_request(cat(name(key), " must be a boolean, not ", type_name(*v)), name(key));
  return v->get<bool>();
}

std::optional<double> JsonFields::number(const std::string& key, double min, double max) {
  const Json* v = value(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw bad_request(cat(name(key), " must be a number, not ", type_name(*v)), name(key));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < min || x > max)
    throw bad_request(cat(name(key), " must be within [", min, ", ", max, "] (got ", x, ")"), name(key));
  return x;
}

std::optional<int64_t> JsonFields::integer(const std::string& key, int64_t min, int64_t max) {
  const Json* v = value(key);
  if (!v) return std::nullopt;
  int64_t x = 0;
  if (v->is_number_integer()) {
    x = v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : v->get<int64_t>();
  } else if (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
             std::abs(v->get<double>()) < 9e15) {
    x = int64_t(v->get<double>());  // 16.0 is an integer too
  } else {
    throw bad_request(cat(name(key), " must be an integer, not ", type_name(*v)), name(key));
  }
  if (x < min || x > max)
    throw bad_request(cat(name(key), " must be within [", min, ", ", max, "] (got ", x, ")"), name(key));
  return x;
}

std::optional<std::string> JsonFields::string(const std::string& key) {
  const Json* v = value(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw bad_request(cat(name(key), " must be a string, not ", type_name(*v)), name(key));
  return v->get<std::string>();
}

void JsonFields::reject_unknown() const {
  for (auto it = object_.begin(); it != object_.end(); ++it)
    if (!read_.count(it.key()))
      throw bad_request(cat("unknown field '", name(it.key()), "'"), name(it.key()), "unknown_field");
}

}  // namespace g4::server
