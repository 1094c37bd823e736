// The key/value cache of one sequence (spec §2.7).
// Full-attention layers keep every position. Sliding layers keep a ring of the last `ring`
// positions (ring >= the window): position p lives in slot p % ring, so memory for 40 of the 12B's
// 48 layers does not grow with the context.
#pragma once

#include <cstdint>
#include <vector>

#include "model/hparams.h"

namespace g4 {

class KvCache {
 public:
  // n_ctx: the most positions the sequence may hold. ring_extra: sliding slots beyond the window,
  // which let a sequence be rolled back by that many positions (0 is enough for plain generation).
  KvCache(const Gemma4HParams& hp, int64_t n_ctx, int64_t ring_extra = 0);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_past() const { return n_past_; }   // positions already stored
  int64_t ring_size() const { return ring_; }

  // Row of n_head_kv * head_dim floats for `pos` in `layer` (pos must be stored or being stored).
  float* k_row(int layer, int64_t pos) { return row(k_[size_t(layer)], layer, pos); }
  float* v_row(int layer, int64_t pos) { return row(v_[size_t(layer)], layer, pos); }
  const float* k_row(int layer, int64_t pos) const { return const_cast<KvCache*>(this)->k_row(layer, pos); }
  const float* v_row(int layer, int64_t pos) const { return const_cast<KvCache*>(this)->v_row(layer, pos); }

  // Oldest position still available in `layer` given n_past (sliding layers forget).
  int64_t oldest_available(int layer) const;

  void advance(int64_t n) { n_past_ += n; }
  void clear() { n_past_ = 0; }
  // Forget positions >= n. Throws g4::Error when a sliding ring no longer holds what position n
  // would need (roll back further than ring_extra allows).
  void truncate(int64_t n);

  // Bytes allocated for K and V over all layers.
  int64_t size_bytes() const;
  // What a cache for these parameters allocates, without allocating it (for memory plans).
  static int64_t planned_bytes(const Gemma4HParams& hp, int64_t n_ctx, int64_t ring_extra = 0);

 private:
  float* row(std::vector<float>& buf, int layer, int64_t pos);

  const Gemma4HParams* hp_;
  int64_t n_ctx_ = 0;
  int64_t ring_ = 0;
  int64_t n_past_ = 0;
  std::vector<std::vector<float>> k_, v_;
  std::vector<int64_t> row_len_;  // per layer
};

}  // namespace g4
