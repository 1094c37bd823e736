// Errors: one exception type for everything a user can cause (bad files, bad arguments, bad media).
// Messages carry the context a user needs to act: the file, the key or tensor, expected vs found.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace g4 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// cat("tensor ", name, " has ", n, " dims") -> one string; avoids a format library dependency.
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace g4
