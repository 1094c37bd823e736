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

std::vector<float> evaluate_prompt(ForwardPass& forward, KvCache& cache, const Prompt& prompt,
                                   std::span<const int64_t> output_positions, const PrefillOptions& options) {
  const int64_t n = int64_t(prompt.size());
  if (n == 0) fail("the prompt is empty");
  if (cache.n_past() + n > cache.n_ctx())
    fail("the prompt has ", n, " tokens but only ", cache.n_ctx() - cache.n_past(), " of the context (",
         cache.n_ctx(), ") are free; raise -c or shorten the prompt");
  for (size_t i = 0; i < output_positions.size(); ++i)
    if (output_positions[i] < 0 || output_positions[i] >= n || (i > 0 && output_positions[i] <= output_positions[i - 1]))
      fail("output positions must be ascending and within the prompt");
  const int64_t batch = std::max<int64_t>(1, options.batch_size);
  std::vector<float> logits, chunk_logits;
  size_t next_output = 0;
  int64_t soft_before = 0;  // soft embeddings consumed by earlier chunks
  for (int64_t start = 0; start < n;) {
    const int64_t end = prompt_chunk_end(prompt, start, batch);
    SequenceInput in = prompt_chunk_input(prompt, start, end, soft_before, forward.n_embd(), cache);
    for (int32_t t : in.tokens) soft_before += t == kSoftToken;
    while (next_output < output_positions.size() && output_positions[next_output] < end)
      in.output_rows.push_back(int32_t(output_positions[next_output++] - start));
    forward.run(std::span<SequenceInput>(&in, 1), chunk_logits);
    logits.insert(logits.end(), chunk_logits.begin(), chunk_logits.end());
    start = end;
    if (options.on_progress) options.on_progress(start, n);
  }
  return logits;
}

SequenceInput prompt_chunk_input(const Prompt& prompt, int64_t start, int64_t end, int64_t soft_before,
                                 int64_t n_embd, KvCache& cache) {
  SequenceInput in;
  in.cache = &cache;
  in.tokens.assign(prompt.tokens.begin() + start, prompt.tokens.begin() + end);
  if (!prompt.block_ids.empty())
    in.block_ids.assign(prompt.block_ids.begin() + start, prompt.block_ids.begin() + end);
  in.soft_embeddings = prompt.soft_embeddings.data() + soft_before * n_embd;
  return in;
}

GenerationResult generate(const Gemma4Model& model, ForwardPass& forward, KvCache& cache,
                          std::span<const int32_t> prompt, Sampler& sampler, int64_t max_tokens,
                          const TokenCallback& on_token, const PrefillOptions& prefill) {
  return generate(model, forward, cache, Prompt::from_tokens(prompt), sampler, max_tokens, on_token, prefill);
}

GenerationResult generate(const Gemma4Model& model, ForwardPass& forward, KvCache& cache,
                          const Prompt& prompt, Sampler& sampler, int64_t max_tokens,
                          const TokenCallback& on_token, const PrefillOptions& prefill) {
  GenerationResult result;
  std::vector<int32_t> history;
  for (int32_t t : prompt.tokens)
    if (t != kSoftToken) history.push_back(t);

  auto start = std::chrono::steady_clock::now();
  const int64_t last = int64_t(prompt.size()) - 1;
  std::vector<float> logits = evaluate_prompt(forward, cache, prompt, std::span<const int64_t>(&last, 1), prefill);
  result.stats.prompt_tokens = int64_t(prompt.size());
  result.stats.prefill_seconds = seconds_since(start);

  start = std::chrono::steady_clock::now();
  SequenceInput input;
  input.cache = &cache;
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
