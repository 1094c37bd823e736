// The OpenAI API's request and response shapes, independent of HTTP: strict request reading
// (chat completions, completions) into what the scheduler runs, and the accumulation of a
// choice's events into response objects and stream chunks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/sampler.h"
#include "runtime/scheduler.h"
#include "server/json_fields.h"
#include "server/media_parts.h"
#include "text/output_parser.h"

namespace g4 {
struct Gemma4Model;
class Tokenizer;
}  // namespace g4

namespace g4::server {

// Parameters shared by chat completions and completions.
struct GenerationParams {
  SamplingParams sampling;
  int64_t max_tokens = -1;  // -1: the server's default
  std::vector<std::string> stop;
  int n = 1;                // choices
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int top_logprobs = -1;       // < 0: no logprobs
  std::vector<std::pair<int32_t, float>> logit_bias;
};

struct ApiLimits {
  int max_n = 8;             // most choices per request
  int max_stop = 16;         // most stop strings
  int64_t max_tokens = 1 << 20;
};

// What a chat completion request asks for, after reading and checking it.
struct ChatPlan {
  GenerationParams params;
  std::string prompt_text;         // the conversation through the chat template
  std::vector<MediaItem> media;    // in placeholder order
  std::string forced_prefix;       // prefilled output (tool_choice "required" / a named function)
  bool thinking = false;
};

// Reads a chat completion request. `defaults` are the model's sampling defaults; a request
// without a seed gets a random one.
ChatPlan plan_chat(const Json& body, const Gemma4Model& model, const MediaOptions& media, TempFiles& temps,
                   const ApiLimits& limits = {});

// What a (legacy) completion request asks for: one or more prompts, each run n times.
struct CompletionPlan {
  GenerationParams params;
  std::vector<std::vector<int32_t>> prompts;  // token ids (text prompts tokenized with <bos>)
  std::vector<std::string> prompt_texts;      // for echo
  bool echo = false;
};
CompletionPlan plan_completion(const Json& body, const Gemma4Model& model, const ApiLimits& limits = {});

// The seed of choice i (requests with n > 1 draw different samples, reproducibly).
uint64_t choice_seed(const GenerationParams& params, int choice);

// A chat completion choice being generated: events in, message / stream deltas out.
class ChatChoice {
 public:
  ChatChoice(int index, const Tokenizer& tokenizer, const ChatPlan& plan);

  // Stream chunk "choices" entries produced by an event (possibly none). The kDone event's
  // entries end with the one carrying finish_reason.
  std::vector<Json> on_event(const SequenceEvent& event);
  // The whole choice, for a non-streamed response.
  Json choice() const;
  const GenerationUsage& usage() const { return usage_; }
  bool done() const { return done_; }

 private:
  std::vector<Json> deltas(const std::vector<OutputEvent>& events);
  Json logprob_entry(const TokenLogprobs& lp) const;
  std::string finish_reason() const;

  int index_;
  const Tokenizer& tokenizer_;
  bool want_logprobs_;
  OutputParser parser_;
  std::string content_, reasoning_;
  std::vector<ToolCall> tool_calls_;
  std::vector<std::string> tool_call_ids_;
  Json logprobs_ = Json::array();        // every token's entry (non-streamed response)
  Json pending_logprobs_ = Json::array();  // entries not yet sent in a chunk
  FinishReason finish_ = FinishReason::kStop;
  GenerationUsage usage_;
  bool done_ = false;
  bool role_sent_ = false;
};

// A completion choice: text and legacy logprobs.
class CompletionChoice {
 public:
  CompletionChoice(int index, const Tokenizer& tokenizer, const CompletionPlan& plan, size_t prompt_index);
  // The stream chunk "choices" entry of an event (nullopt when it carries nothing).
  std::optional<Json> on_event(const SequenceEvent& event);
  Json choice() const;
  const GenerationUsage& usage() const { return usage_; }
  bool done() const { return done_; }

 private:
  Json logprobs_json(size_t from) const;

  int index_;
  const Tokenizer& tokenizer_;
  bool want_logprobs_;
  std::string text_;
  std::string echo_;  // the prompt, until the first chunk carries it
  struct TokenEntry {
    std::string piece;
    float logprob;
    std::vector<std::pair<std::string, float>> top;
    size_t offset;
  };
  std::vector<TokenEntry> tokens_;
  FinishReason finish_ = FinishReason::kStop;
  GenerationUsage usage_;
  bool done_ = false;
};

// OpenAI finish_reason of a scheduler finish ("stop", "length").
const char* openai_finish_reason(FinishReason reason);

// {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details": {"cached_tokens"}}.
Json usage_json(int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens);

// "chatcmpl-..." / "cmpl-..." / "call_..." ids: random hex.
std::string random_id(const std::string& prefix);

}  // namespace g4::server
