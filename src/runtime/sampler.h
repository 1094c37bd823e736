// Turning logits into the next token: penalties, top-k, top-p, min-p, temperature, seeded draw.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

namespace g4 {

class GgufFile;

struct SamplingParams {
  float temperature = 1.0f;  // <= 0: greedy (argmax, ties to the lowest id)
  int top_k = 64;            // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.0f;        // <= 0: off; keeps tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f;     // 1: off; divides positive / multiplies negative logits of seen tokens
  float presence_penalty = 0.0f;   // subtracted once from the logit of every seen token
  float frequency_penalty = 0.0f;  // subtracted per occurrence
  int penalty_last_n = 64;         // how much history the penalties look at (-1: all)
  uint64_t seed = 0;
};

// Gemma 4's published defaults (temperature 1.0, top_k 64, top_p 0.95), overridden by the file's
// general.sampling.* keys when it has them.
SamplingParams default_sampling_params(const GgufFile& file);

// What the model thought of a sampled token, for OpenAI-style logprobs: natural-log
// probabilities of the distribution the sampler starts from, i.e. after suppressed tokens and
// penalties but before temperature, top-k/top-p/min-p and the draw. That is the model's own view
// (what OpenAI and vLLM report): a greedy request still learns how sure the model was, and the
// alternatives a truncation removed still get their probability.
struct TokenLogprobs {
  int32_t token = -1;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // the n_top most likely tokens, most likely first
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, std::vector<int32_t> suppressed_tokens);

  // Picks the next token from one row of logits (modified in place). `history` is what the
  // sequence holds so far (prompt and generated), for the penalties.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);
  // The same, also filling `logprobs` for the sampled token and its n_top most likely alternatives.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history, TokenLogprobs& logprobs, int n_top);

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::vector<int32_t> suppressed_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

// Log-probabilities (log-softmax) of `logits` for `token` and the n_top largest, ties to the lower id.
TokenLogprobs token_logprobs(std::span<const float> logits, int32_t token, int n_top);

// Index of the largest value, ties to the lowest index.
int32_t argmax(std::span<const float> values);

}  // namespace g4
