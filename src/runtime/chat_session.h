// A multi-turn conversation that keeps its KV cache between turns: each turn evaluates only its
// own new tokens (the closing of the previous model turn, the user message, the generation
// prompt), never the earlier turns again.
//
// The cache is the truth: what the model generated stays in context exactly as generated
// (thoughts included, as in llama.cpp's chat). A new turn's text is what the chat template adds
// for it: render(history + message) minus render(history). Changing the system prompt or the
// thinking switch changes the start of the prompt, so the next turn re-evaluates the conversation.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "model/kv_cache.h"
#include "model/model.h"
#include "runtime/chat.h"
#include "runtime/generate.h"
#include "runtime/prompt.h"

namespace g4 {

class ThreadPool;

struct ChatTurn {
  GenerationResult generation;
  ParsedOutput output;           // reasoning / content / tool calls of the reply
  int64_t prompt_tokens = 0;     // tokens evaluated for this turn before generating
  bool reprocessed = false;      // the whole conversation had to be evaluated again
};

class ChatSession {
 public:
  // `projector` (may be null) lets user messages carry images, audio and video.
  ChatSession(const Gemma4Model& model, ThreadPool& pool, const KvCacheConfig& cache,
              MatmulMode mode = MatmulMode::kFast, const MultimodalProjector* projector = nullptr);

  void set_system(std::optional<std::string> system);  // takes effect at the next turn
  void set_thinking(bool on);
  bool thinking() const { return thinking_; }
  void reset();  // forget the conversation

  // Adds a user message (a string, or OpenAI content parts) and generates the reply.
  // on_event sees reasoning / content / tool-call events as they stream; return false to stop.
  ChatTurn send(const nlohmann::ordered_json& content, Sampler& sampler, int64_t max_tokens,
                const std::function<bool(const OutputEvent&)>& on_event = {});
  // The same with media: each item fills the next placeholder of its kind that the content's
  // parts make the template write (or that the text contains).
  ChatTurn send(const nlohmann::ordered_json& content, const std::vector<MediaItem>& media, Sampler& sampler,
                int64_t max_tokens, const std::function<bool(const OutputEvent&)>& on_event = {});

  const nlohmann::ordered_json& messages() const { return messages_; }
  const KvCache& cache() const { return cache_; }

 private:
  nlohmann::ordered_json request(bool add_generation_prompt) const;

  const Gemma4Model& model_;
  ThreadPool& pool_;
  const MultimodalProjector* projector_;
  std::vector<MediaItem> media_;  // every turn's media, in order: a re-read needs them all
  ForwardPass forward_;
  KvCache cache_;
  std::optional<std::string> system_;
  bool thinking_ = false;
  bool stale_ = false;  // system or thinking changed: the cached prefix no longer matches
  nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();
};

}  // namespace g4
