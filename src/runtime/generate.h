// The generation loop shared by every front end: prefill a prompt, then sample and decode one
// token at a time until an end-of-generation token, the token limit or the context limit.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "runtime/sampler.h"

namespace g4 {

struct Gemma4Model;
class ForwardPass;
class KvCache;

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

// Appends `prompt` to `cache` (which may already hold earlier turns) and generates up to
// max_tokens. The cache ends up holding the prompt and every generated token but the last one
// (and not the end-of-generation token): a caller continuing the sequence feeds that first.
GenerationResult generate(const Gemma4Model& model, ForwardPass& forward, KvCache& cache,
                          std::span<const int32_t> prompt, Sampler& sampler, int64_t max_tokens,
                          const TokenCallback& on_token = {});

}  // namespace g4
