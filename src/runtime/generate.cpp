#include "runtime/generate.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "model/model.h"

namespace g4 {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kContext: return "context";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "?";
}

GenerationResult generate(const Gemma4Model& model, ForwardPass& forward, KvCache& cache,
                          std::span<const int32_t> prompt, Sampler& sampler, int64_t max_tokens,
                          const TokenCallback& on_token) {
  if (prompt.empty()) fail("the prompt is empty");
  if (cache.n_past() + int64_t(prompt.size()) > cache.n_ctx())
    fail("the prompt has ", prompt.size(), " tokens but only ", cache.n_ctx() - cache.n_past(),
         " of the context (", cache.n_ctx(), ") are free; raise -c or shorten the prompt");

  GenerationResult result;
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  std::vector<float> logits;
  SequenceInput input;
  input.cache = &cache;
  input.tokens.assign(prompt.begin(), prompt.end());
  input.output_rows = {int32_t(prompt.size() - 1)};

  auto start = std::chrono::steady_clock::now();
  forward.run(std::span<SequenceInput>(&input, 1), logits);
  result.stats.prompt_tokens = int64_t(prompt.size());
  result.stats.prefill_seconds = seconds_since(start);

  start = std::chrono::steady_clock::now();
  result.finish = FinishReason::kLength;
  while (int64_t(result.tokens.size()) < max_tokens) {
    const int32_t token = sampler.sample(logits, history);
    if (model.is_end_of_generation(token)) {
      result.finish = FinishReason::kStop;
      break;
    }
    result.tokens.push_back(token);
    history.push_back(token);
    if (on_token && !on_token(token)) {
      result.finish = FinishReason::kCancelled;
      break;
    }
    if (int64_t(result.tokens.size()) >= max_tokens) break;
    if (cache.n_past() >= cache.n_ctx()) {
      result.finish = FinishReason::kContext;
      break;
    }
    input.tokens = {token};
    input.output_rows = {0};
    forward.run(std::span<SequenceInput>(&input, 1), logits);
  }
  result.stats.generated_tokens = int64_t(result.tokens.size());
  result.stats.decode_seconds = seconds_since(start);
  return result;
}

}  // namespace g4
