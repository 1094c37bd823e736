// Errors the HTTP API reports, as OpenAI-shaped JSON objects:
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "temperature", "code": null}}
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/error.h"

namespace g4::server {

class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string type = "invalid_request_error", std::string param = "",
           std::string code = "")
      : Error(message), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}

  int status;
  std::string type;   // invalid_request_error, authentication_error, server_error, ...
  std::string param;  // the offending field, when there is one
  std::string code;   // machine-readable reason, when there is one
  std::optional<int> retry_after_seconds;  // 503: sent as Retry-After
};

// 400 invalid_request_error naming the field.
inline ApiError bad_request(const std::string& message, const std::string& param = "", const std::string& code = "") {
  return ApiError(400, message, "invalid_request_error", param, code);
}

inline nlohmann::ordered_json error_json(const std::string& message, const std::string& type,
                                         const std::string& param = "", const std::string& code = "") {
  nlohmann::ordered_json e;
  e["message"] = message;
  e["type"] = type;
  e["param"] = param.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(param);
  e["code"] = code.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(code);
  return {{"error", e}};
}

inline nlohmann::ordered_json error_json(const ApiError& e) { return error_json(e.what(), e.type, e.param, e.code); }

}  // namespace g4::server
