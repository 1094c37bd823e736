#include "runtime/chat_session.h"

#include "core/error.h"

namespace g4 {

ChatSession::ChatSession(const Gemma4Model& model, ThreadPool& pool, const KvCacheConfig& cache, MatmulMode mode,
                         const MultimodalProjector* projector)
    : model_(model), pool_(pool), projector_(projector), forward_(model, pool, mode), cache_(model.hp, cache) {
  model.require_tokenizer();
}

void ChatSession::set_system(std::optional<std::string> system) {
  system_ = std::move(system);
  stale_ = true;
}

void ChatSession::set_thinking(bool on) {
  if (on != thinking_) stale_ = true;
  thinking_ = on;
}

void ChatSession::reset() {
  messages_ = nlohmann::ordered_json::array();
  media_.clear();
  cache_.clear();
  stale_ = false;
}

nlohmann::ordered_json ChatSession::request(bool add_generation_prompt) const {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (system_) messages.push_back({{"role", "system"}, {"content", *system_}});
  for (const auto& m : messages_) messages.push_back(m);
  return {{"messages", messages},
          {"enable_thinking", thinking_},
          {"add_generation_prompt", add_generation_prompt}};
}

ChatTurn ChatSession::send(const nlohmann::ordered_json& content, Sampler& sampler, int64_t max_tokens,
                           const std::function<bool(const OutputEvent&)>& on_event) {
  return send(content, {}, sampler, max_tokens, on_event);
}

ChatTurn ChatSession::send(const nlohmann::ordered_json& content, const std::vector<MediaItem>& media,
                           Sampler& sampler, int64_t max_tokens,
                           const std::function<bool(const OutputEvent&)>& on_event) {
  const Tokenizer& tok = model_.require_tokenizer();
  const std::string before = messages_.empty() ? std::string() : render_chat_prompt(model_, request(false));
  messages_.push_back({{"role", "user"}, {"content", content}});
  std::string after;
  try {
    after = render_chat_prompt(model_, request(true));
  } catch (...) {
    messages_.erase(messages_.size() - 1);
    throw;
  }

  // What to evaluate: the whole prompt when starting (or when the start changed), else the
  // closing of the previous model turn (from its end-of-turn marker on) plus what the template
  // adds for the new message.
  ChatTurn turn;
  std::string new_text;
  const std::string& turn_end = tok.token_text(tok.gemma4_specials().turn_end != kNoToken
                                                   ? tok.gemma4_specials().turn_end
                                                   : tok.eos_id());
  const size_t closing = before.rfind(turn_end);
  if (cache_.n_past() > 0 && !stale_ && after.compare(0, before.size(), before) == 0 &&
      closing != std::string::npos) {
    new_text = before.substr(closing) + after.substr(before.size());
  } else {
    turn.reprocessed = cache_.n_past() > 0;
    cache_.clear();
    stale_ = false;
    new_text = after;
  }
  // The new text holds this turn's placeholders only, unless the whole conversation is re-read.
  std::vector<MediaItem> turn_media = turn.reprocessed || cache_.n_past() == 0 ? media_ : std::vector<MediaItem>{};
  turn_media.insert(turn_media.end(), media.begin(), media.end());
  Prompt prompt;
  try {
    prompt = PromptBuilder(model_, projector_, pool_).build(new_text, turn_media, /*add_bos=*/cache_.n_past() == 0);
  } catch (...) {
    messages_.erase(messages_.size() - 1);
    throw;
  }
  turn.prompt_tokens = int64_t(prompt.size());

  OutputStream stream(tok);
  bool keep_going = true;
  auto forward_events = [&](const std::vector<OutputEvent>& events) {
    for (const OutputEvent& e : events)
      if (keep_going && on_event && !on_event(e)) keep_going = false;
  };
  try {
    turn.generation = generate(model_, forward_, cache_, prompt, sampler, max_tokens, [&](int32_t token) {
      forward_events(stream.push(token));
      return keep_going;
    });
  } catch (...) {
    messages_.erase(messages_.size() - 1);
    throw;
  }
  forward_events(stream.finish());
  turn.output = stream.parsed();

  nlohmann::ordered_json reply = {{"role", "assistant"}, {"content", turn.output.content}};
  if (!turn.output.reasoning.empty()) reply["reasoning_content"] = turn.output.reasoning;
  if (!turn.output.tool_calls.empty()) {
    nlohmann::ordered_json calls = nlohmann::ordered_json::array();
    for (const ToolCall& c : turn.output.tool_calls)
      calls.push_back({{"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    reply["tool_calls"] = calls;
  }
  messages_.push_back(reply);
  media_.insert(media_.end(), media.begin(), media.end());
  return turn;
}

}  // namespace g4
