// A Jinja interpreter for chat templates (the templates stored in GGUF files under
// tokenizer.chat_template and in Hugging Face tokenizer_config.json).
//
// It renders the way Hugging Face transformers does: Jinja2 3.1 semantics in an immutable
// sandbox, trim_blocks and lstrip_blocks on, the loopcontrols extension ({% break %},
// {% continue %}), `tojson` as json.dumps(ensure_ascii=False), and the globals
// raise_exception(message) and strftime_now(format). Undefined variables behave like Jinja2's
// default Undefined: they print as "", are falsy, iterate as empty, and raise an error when an
// attribute, item, call or arithmetic is applied to them.
//
// Supported: {{ }}, {% %}, {# #}, whitespace control, raw, if/elif/else, for (with else, inline
// if-filter and loop.*), set (plain, unpacking, namespace attribute, block), macro (defaults,
// varargs, kwargs, caller), call blocks, filter blocks, with, namespace(), the usual filters,
// tests, operators and Python str/dict/list methods (see jinja_builtins.cpp). Not supported:
// include/extends/block/import (a chat template is one file), recursive loops, *args in calls.
//
// Every error (syntax, unsupported construct, runtime type error, raise_exception) is a
// g4::Error whose message starts with "<template name>: line L, column C: ".
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace g4::jinja {

// Hostile templates must fail cleanly instead of exhausting memory, time or the stack.
struct RenderLimits {
  size_t max_output_bytes = size_t{16} << 20;  // the output and any string built on the way
  size_t max_sequence_items = 1'000'000;       // range(), list repetition and concatenation
  uint64_t max_steps = 20'000'000;             // statements run + loop iterations + calls + filters
  int max_call_depth = 100;                    // nested macro calls
};

struct RenderOptions {
  RenderLimits limits;
  // The time strftime_now() formats (local time); unset means the current time.
  std::optional<std::time_t> now;
};

struct TemplateProgram;  // the parsed tree (jinja_ast.h)

class Template {
 public:
  // Parses `source`. `name` is used in error messages (e.g. "chat template").
  static Template parse(std::string_view source, std::string name = "template");

  // Renders with `variables` (a JSON object) as the template's global variables. Thread-safe:
  // a parsed template can be rendered concurrently.
  std::string render(const nlohmann::ordered_json& variables,
                     const RenderOptions& options = {}) const;

  const std::string& name() const;

 private:
  std::shared_ptr<const TemplateProgram> program_;
};

}  // namespace g4::jinja
