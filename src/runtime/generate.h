// The generation loop shared by every front end: prefill a prompt, then sample and decode one
// token at a time until an end-of-generation token, the token limit or the context limit.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "runtime/prompt.h"
#include "runtime/sampler.h"

namespace g4 {

struct Gemma4Model;
class ForwardPass;
class KvCache;
struct SequenceInput;

enum class FinishReason { kStop, kLength, kContext, kCancelled };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "context", "cancelled"

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated, without the end-of-generation token
  FinishReason finish = FinishReason::kStop;
  GenerationStats stats;
};

// Called with each generated token as soon as it is sampled; return false to stop.
using TokenCallback = std::function<bool(int32_t token)>;

struct PrefillOptions {
  // Prompt positions per forward pass. Long prompts (an hour of audio is 90,000 positions) are
  // evaluated in chunks of this size; a bidirectional block (an image) is never split.
  int64_t batch_size = 512;
  std::function<void(int64_t done, int64_t total)> on_progress;  // after each chunk
};

// Appends `prompt` to `cache` chunk by chunk and returns the logits at `output_positions`
// (indices into the prompt, ascending), [n_outputs][n_vocab]. Throws g4::Error, changing
// nothing, when the prompt does not fit the free context.
std::vector<float> evaluate_prompt(ForwardPass& forward, KvCache& cache, const Prompt& prompt,
                                   std::span<const int64_t> output_positions,
                                   const PrefillOptions& options = {});

// Prompt positions [start, end) as one sequence's input to a forward pass, appended to `cache`
// (no output rows). soft_before: soft-token positions before `start` (their embeddings are
// skipped). Chunk boundaries come from prompt_chunk_end (prompt.h).
SequenceInput prompt_chunk_input(const Prompt& prompt, int64_t start, int64_t end, int64_t soft_before,
                                 int64_t n_embd, KvCache& cache);

// Appends `prompt` to `cache` (which may already hold earlier turns) and generates up to
// max_tokens. The cache ends up holding the prompt and every generated token but the last one
// (and not the end-of-generation token): a caller continuing the sequence feeds that first.
GenerationResult generate(const Gemma4Model& model, ForwardPass& forward, KvCache& cache,
                          const Prompt& prompt, Sampler& sampler, int64_t max_tokens,
                          const TokenCallback& on_token = {}, const PrefillOptions& prefill = {});
GenerationResult generate(const Gemma4Model& model, ForwardPass& forward, KvCache& cache,
                          std::span<const int32_t> prompt, Sampler& sampler, int64_t max_tokens,
                          const TokenCallback& on_token = {}, const PrefillOptions& prefill = {});

}  // namespace g4
