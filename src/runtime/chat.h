// Text in and out around the model (spec §6): conversations rendered through the model's own chat
// template and tokenized, and generated tokens turned back into reasoning, answer text and tool
// calls as they stream.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "text/chat_template.h"
#include "text/output_parser.h"
#include "text/tokenizer.h"

namespace g4 {

struct Gemma4Model;

// The template's special-token variables, read from the vocabulary.
ChatTemplateOptions chat_template_options(const Tokenizer& tokenizer);

// Renders an OpenAI-style request ({"messages": [...], "tools": [...], "enable_thinking": bool,
// "add_generation_prompt": bool}) to prompt text.
std::string render_chat_prompt(const Gemma4Model& model, const nlohmann::ordered_json& request);

// Prompt text to ids: special tokens written as text (<bos>, <|turn>, ...) become their ids.
// A <bos> is prepended only when add_bos is set and the text does not already start with one.
std::vector<TokenId> tokenize_prompt(const Tokenizer& tokenizer, std::string_view text, bool add_bos);

// Generated ids -> text -> reasoning / content / tool-call events, safe to show as they come
// (never half a UTF-8 character, never half a marker).
class OutputStream {
 public:
  explicit OutputStream(const Tokenizer& tokenizer, OutputParserOptions options = {});
  std::vector<OutputEvent> push(TokenId token);
  std::vector<OutputEvent> finish();

  const std::string& text() const { return text_; }            // everything decoded so far
  const ParsedOutput& parsed() const { return parsed_; }        // accumulated events

 private:
  void collect(const std::vector<OutputEvent>& events);
  StreamingDecoder decoder_;
  OutputParser parser_;
  std::string text_;
  ParsedOutput parsed_;
};

}  // namespace g4
