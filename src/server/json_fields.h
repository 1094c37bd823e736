// Strict reading of JSON request bodies: every field is checked for its type and range, and a
// field the endpoint does not know is an error (a misspelt "max_token" must not be silently
// ignored). Errors are 400 ApiErrors naming the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace g4::server {

using Json = nlohmann::ordered_json;

// Parses a request body. Refuses (400) what is not JSON, nesting deeper than max_depth (checked
// before parsing, so hostile input cannot exhaust the stack) and anything but an object.
Json parse_request_body(std::string_view body, int max_depth = 128);

class JsonFields {
 public:
  // `where` prefixes field names in messages ("" at the top level, "stream_options." inside).
  JsonFields(const Json& object, std::string where = "");

  bool has(const std::string& key) const;
  // The value when present and not null; throws when it has the wrong type or range.
  std::optional<bool> boolean(const std::string& key);
  std::optional<double> number(const std::string& key, double min, double max);
  std::optional<int64_t> integer(const std::string& key, int64_t min, int64_t max);
  std::optional<std::string> string(const std::string& key);
  // Any JSON value (null counts as absent); the caller checks it.
  const Json* value(const std::string& key);
  // Accepted and not used (e.g. "user").
  void ignore(const std::string& key);
  // Throws for the first field nobody read.
  void reject_unknown() const;

  std::string name(const std::string& key) const { return where_ + key; }

 private:
  const Json& object_;
  std::string where_;
  std::set<std::string> read_;
};

}  // namespace g4::server
