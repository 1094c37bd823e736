#include "runtime/chat.h"

#include "core/error.h"
#include "model/model.h"

namespace g4 {

ChatTemplateOptions chat_template_options(const Tokenizer& tokenizer) {
  ChatTemplateOptions options;
  auto text_of = [&](TokenId id, std::string& out) {
    if (id != kNoToken) out = tokenizer.token_text(id);
  };
  text_of(tokenizer.bos_id(), options.bos_token);
  text_of(tokenizer.eos_id(), options.eos_token);
  text_of(tokenizer.pad_id(), options.pad_token);
  text_of(tokenizer.unk_id(), options.unk_token);
  return options;
}

std::string render_chat_prompt(const Gemma4Model& model, const nlohmann::ordered_json& request) {
  return model.chat().render(request, chat_template_options(model.require_tokenizer()));
}

std::vector<TokenId> tokenize_prompt(const Tokenizer& tokenizer, std::string_view text, bool add_bos) {
  std::vector<TokenId> ids = tokenizer.encode(text, false, /*parse_special=*/true);
  if (add_bos && tokenizer.bos_id() != kNoToken && (ids.empty() || ids.front() != tokenizer.bos_id()))
    ids.insert(ids.begin(), tokenizer.bos_id());
  return ids;
}

OutputStream::OutputStream(const Tokenizer& tokenizer, OutputParserOptions options)
    : decoder_(tokenizer, /*render_special=*/true), parser_(options) {}

void OutputStream::collect(const std::vector<OutputEvent>& events) {
  for (const OutputEvent& e : events) {
    switch (e.kind) {
      case OutputEventKind::Reasoning: parsed_.reasoning += e.text; break;
      case OutputEventKind::Content: parsed_.content += e.text; break;
      case OutputEventKind::ToolCall: parsed_.tool_calls.push_back(e.tool_call); break;
      case OutputEventKind::InvalidToolCall:
        parsed_.content += e.text;
        parsed_.tool_call_errors.push_back(e.error);
        break;
    }
  }
}

std::vector<OutputEvent> OutputStream::push(TokenId token) {
  const std::string piece = decoder_.push(token);
  text_ += piece;
  std::vector<OutputEvent> events = parser_.feed(piece);
  collect(events);
  return events;
}

std::vector<OutputEvent> OutputStream::finish() {
  const std::string rest = decoder_.flush();
  text_ += rest;
  std::vector<OutputEvent> events = parser_.feed(rest);
  std::vector<OutputEvent> tail = parser_.finish();
  events.insert(events.end(), tail.begin(), tail.end());
  collect(events);
  return events;
}

}  // namespace g4
