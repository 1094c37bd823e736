// Chat requests -> prompt text, through the model's chat template (spec §6).
//
// A request is an OpenAI-style JSON object:
//   {"messages": [...], "tools": [...], "enable_thinking": bool, "add_generation_prompt": bool,
//    ...any other key is passed to the template as a variable, like Hugging Face's kwargs}
// Messages: {"role": "system"|"developer"|"user"|"assistant"|"tool", "content": string | parts
// | null, "tool_calls": [...], "tool_call_id", "name", "reasoning_content"}. Content parts use
// OpenAI or Hugging Face spellings; they are renamed to what Gemma templates test for:
//   {"type":"text"}                                       -> text
//   {"type":"image_url"|"input_image"|"image"}            -> {"type":"image", ...}
//   {"type":"input_audio"|"audio_url"|"audio"}            -> {"type":"audio", ...}
//   {"type":"video_url"|"video"}                          -> {"type":"video", ...}
// Other request fixes (each a case the template would otherwise render wrongly):
//   - tool-call "arguments" given as a JSON string (OpenAI) are parsed into an object;
//   - a system/developer message whose content is a list of text parts becomes one string
//     (parts joined with "\n\n"), since Gemma templates only trim a string there.
// Variables are then set as Hugging Face's apply_chat_template sets them: messages, tools (null
// when absent), documents (null when absent), add_generation_prompt and the special tokens.
// Unlike Hugging Face, add_generation_prompt defaults to true (a server renders prompts to
// generate from; the fixture renderings were made that way too).
//
// The media placeholders the template writes (<|image|>, <|audio|>, <|video|>) appear in the
// prompt in the order of the media parts in the messages.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "text/jinja.h"

namespace g4 {

struct ChatTemplateOptions {
  // Special tokens as the template sees them (read them from the vocabulary where possible).
  std::string bos_token = "<bos>";
  std::string eos_token = "<eos>";
  std::string pad_token = "<pad>";
  std::string unk_token = "<unk>";
  jinja::RenderOptions render;
};

class ChatTemplate {
 public:
  // Parses a template; throws g4::Error naming `name`, the line and the column.
  static ChatTemplate parse(std::string_view source, std::string name = "chat template");
  // The model's template (e.g. GGUF tokenizer.chat_template) when it has a non-empty one, else
  // the built-in Gemma 4 template.
  static ChatTemplate from_model(const std::optional<std::string>& model_template);

  // Renders a request; throws g4::Error for malformed requests and template errors (including
  // the template's own raise_exception messages).
  std::string render(const nlohmann::ordered_json& request,
                     const ChatTemplateOptions& options = {}) const;

  bool is_builtin() const { return builtin_; }

 private:
  jinja::Template template_;
  bool builtin_ = false;
};

// One-shot convenience: parse `template_source` and render `request`.
std::string render_chat(std::string_view template_source, const nlohmann::ordered_json& request,
                        const ChatTemplateOptions& options = {});

// The template variables render() passes, after the request fixes above (for tests and tools).
nlohmann::ordered_json chat_template_variables(const nlohmann::ordered_json& request,
                                               const ChatTemplateOptions& options = {});

// gemma4.cpp's own Gemma 4 chat template, written from the prompt structure in spec §6, for
// model files without one. It renders the same text as the Gemma 4 template revision shipped in
// ../shared/fixtures/chat-template for the conversations there.
std::string_view builtin_gemma4_chat_template();

}  // namespace g4
