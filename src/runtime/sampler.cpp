#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/error.h"
#include "formats/gguf.h"

namespace g4 {

SamplingParams default_sampling_params(const GgufFile& f) {
  SamplingParams p;
  if (auto v = f.get_float_opt("general.sampling.temp")) p.temperature = float(*v);
  if (auto v = f.get_int_opt("general.sampling.top_k")) p.top_k = int(*v);
  if (auto v = f.get_float_opt("general.sampling.top_p")) p.top_p = float(*v);
  if (auto v = f.get_float_opt("general.sampling.min_p")) p.min_p = float(*v);
  return p;
}

int32_t argmax(std::span<const float> values) {
  int32_t best = 0;
  for (size_t i = 1; i < values.size(); ++i)
    if (values[i] > values[size_t(best)]) best = int32_t(i);
  return best;
}

Sampler::Sampler(const SamplingParams& params, std::vector<int32_t> suppressed_tokens)
    : params_(params), suppressed_(std::move(suppressed_tokens)), rng_(params.seed) {
  if (!(params.top_p > 0.0f)) fail("top_p must be > 0 (got ", params.top_p, ")");
  if (params.min_p < 0.0f || params.min_p > 1.0f) fail("min_p must be within [0, 1] (got ", params.min_p, ")");
  if (!(params.repeat_penalty > 0.0f)) fail("repeat_penalty must be > 0 (got ", params.repeat_penalty, ")");
  if (!std::isfinite(params.temperature)) fail("temperature must be finite");
}

TokenLogprobs token_logprobs(std::span<const float> logits, int32_t token, int n_top) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  double max_logit = kNegInf;
  for (float l : logits) max_logit = std::max<double>(max_logit, l);
  double sum = 0.0;
  for (float l : logits)
    if (l > kNegInf) sum += std::exp(double(l) - max_logit);
  const double log_z = max_logit + std::log(sum);
  auto logprob = [&](int32_t id) { return float(double(logits[size_t(id)]) - log_z); };
  TokenLogprobs out;
  out.token = token;
  out.logprob = logprob(token);
  const size_t k = std::min(logits.size(), size_t(std::max(0, n_top)));
  if (k > 0) {
    std::vector<int32_t> ids(logits.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i);
    std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(k), ids.end(), [&](int32_t a, int32_t b) {
      return logits[size_t(a)] != logits[size_t(b)] ? logits[size_t(a)] > logits[size_t(b)] : a < b;
    });
    for (size_t i = 0; i < k; ++i) out.top.emplace_back(ids[i], logprob(ids[i]));
  }
  return out;
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history, TokenLogprobs& logprobs,
                        int n_top) {
  const int32_t token = sample(logits, history);  // leaves the suppressed and penalized logits
  logprobs = token_logprobs(logits, token, n_top);
  return token;
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int64_t n_vocab = int64_t(logits.size());
  for (int32_t id : suppressed_)
    if (id < n_vocab) logits[size_t(id)] = kNegInf;

  // Penalties over the recent history.
  const bool penalize = params_.repeat_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                        params_.frequency_penalty != 0.0f;
  if (penalize && !history.empty()) {
    size_t start = 0;
    if (params_.penalty_last_n >= 0 && history.size() > size_t(params_.penalty_last_n))
      start = history.size() - size_t(params_.penalty_last_n);
    std::unordered_map<int32_t, int> counts;
    for (size_t i = start; i < history.size(); ++i)
      if (history[i] >= 0 && history[i] < n_vocab) ++counts[history[i]];
    for (const auto& [id, count] : counts) {
      float& l = logits[size_t(id)];
      l = l > 0.0f ? l / params_.repeat_penalty : l * params_.repeat_penalty;
      l -= params_.presence_penalty + params_.frequency_penalty * float(count);
    }
  }

  if (params_.temperature <= 0.0f) return argmax(logits);

  // Candidates sorted by logit (descending; ties by id) after top-k.
  candidates_.clear();
  for (int64_t i = 0; i < n_vocab; ++i)
    if (logits[size_t(i)] > kNegInf) candidates_.emplace_back(logits[size_t(i)], int32_t(i));
  if (candidates_.empty()) fail("sampling: every token is masked");
  auto by_logit = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && size_t(params_.top_k) < keep) keep = size_t(params_.top_k);
  std::partial_sort(candidates_.begin(), candidates_.begin() + std::ptrdiff_t(keep), candidates_.end(), by_logit);
  candidates_.resize(keep);

  // Probabilities at temperature, then top-p and min-p cut the tail.
  std::vector<double> probs(keep);
  const double max_logit = candidates_[0].first;
  double sum = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((double(candidates_[i].first) - max_logit) / params_.temperature);
    sum += probs[i];
  }
  size_t cut = keep;
  if (params_.top_p < 1.0f) {
    double cumulative = 0.0;
    for (size_t i = 0; i < keep; ++i) {
      cumulative += probs[i] / sum;
      if (cumulative >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0f) {
    size_t i = 1;
    while (i < cut && probs[i] >= params_.min_p * probs[0]) ++i;
    cut = i;
  }
  std::discrete_distribution<size_t> pick(probs.begin(), probs.begin() + std::ptrdiff_t(cut));
  return candidates_[pick(rng_)].second;
}

}  // namespace g4
