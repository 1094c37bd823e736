// Test helpers that drive the forward pass directly: logits of every prompt position, greedy
// decoding. The cache types are a parameter because the references keep K and V in float32.
#pragma once

#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "runtime/sampler.h"

namespace g4::test {

// Logits of every position of `ids` ([n][n_vocab]) from one batched prefill.
inline std::vector<float> prefill_logits(const Gemma4Model& model, const std::vector<int32_t>& ids,
                                         ThreadPool& pool, MatmulMode mode, GgmlType cache_type) {
  KvCache cache(model.hp, KvCacheConfig{int64_t(ids.size()) + 1, cache_type, cache_type});
  ForwardPass forward(model, pool, mode);
  SequenceInput in;
  in.cache = &cache;
  in.tokens = ids;
  for (size_t i = 0; i < ids.size(); ++i) in.output_rows.push_back(int32_t(i));
  std::vector<float> logits;
  forward.run(std::span<SequenceInput>(&in, 1), logits);
  return logits;
}

// Greedy decoding, one token per step (argmax ties to the lowest id, as the references do).
inline std::vector<int32_t> greedy_tokens(const Gemma4Model& model, const std::vector<int32_t>& ids,
                                          int n, ThreadPool& pool, MatmulMode mode,
                                          GgmlType cache_type) {
  KvCache cache(model.hp, KvCacheConfig{int64_t(ids.size()) + n + 1, cache_type, cache_type});
  ForwardPass forward(model, pool, mode);
  SequenceInput in;
  in.cache = &cache;
  in.tokens = ids;
  in.output_rows = {int32_t(ids.size() - 1)};
  std::vector<float> logits;
  std::vector<int32_t> out;
  forward.run(std::span<SequenceInput>(&in, 1), logits);
  for (int step = 0; step < n; ++step) {
    out.push_back(argmax(logits));
    in.tokens = {out.back()};
    in.output_rows = {0};
    forward.run(std::span<SequenceInput>(&in, 1), logits);
  }
  return out;
}

}  // namespace g4::test
