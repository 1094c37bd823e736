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

class Sampler {
 public:
  Sampler(const SamplingParams& params, std::vector<int32_t> suppressed_tokens);

  // Picks the next token from one row of logits (modified in place). `history` is what the
  // sequence holds so far (prompt and generated), for the penalties.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::vector<int32_t> suppressed_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

// Index of the largest value, ties to the lowest index.
int32_t argmax(std::span<const float> values);

}  // namespace g4
