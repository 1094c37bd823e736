#include "model/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace g4 {
namespace {

int64_t layer_slots(const LayerGeometry& g, int64_t n_ctx, int64_t ring) {
  return g.sliding ? std::min(n_ctx, ring) : n_ctx;
}

}  // namespace

KvCache::KvCache(const Gemma4HParams& hp, int64_t n_ctx, int64_t ring_extra)
    : hp_(&hp), n_ctx_(n_ctx), ring_(hp.sliding_window + ring_extra) {
  if (n_ctx <= 0) fail("context size must be positive (got ", n_ctx, ")");
  if (ring_extra < 0) fail("ring_extra must not be negative");
  for (const LayerGeometry& g : hp.layers) {
    const int64_t row_len = int64_t(g.n_head_kv) * g.head_dim;
    const size_t n = size_t(layer_slots(g, n_ctx, ring_) * row_len);
    row_len_.push_back(row_len);
    k_.emplace_back(n);
    v_.emplace_back(n);
  }
}

float* KvCache::row(std::vector<float>& buf, int layer, int64_t pos) {
  const LayerGeometry& g = hp_->layer(layer);
  const int64_t slot = g.sliding ? pos % ring_ : pos;
  return buf.data() + slot * row_len_[size_t(layer)];
}

int64_t KvCache::oldest_available(int layer) const {
  return hp_->layer(layer).sliding ? std::max<int64_t>(0, n_past_ - ring_) : 0;
}

void KvCache::truncate(int64_t n) {
  if (n < 0 || n > n_past_) fail("cannot truncate a cache of ", n_past_, " positions to ", n);
  // Position n attends to keys down to n - window + 1; they must not have been overwritten.
  const int64_t needed_from = std::max<int64_t>(0, n - hp_->sliding_window + 1);
  if (needed_from < std::max<int64_t>(0, n_past_ - ring_))
    fail("cannot roll the sliding-window cache back from ", n_past_, " to ", n,
         " positions: the ring keeps only ", ring_, " (re-process the prompt instead)");
  n_past_ = n;
}

int64_t KvCache::planned_bytes(const Gemma4HParams& hp, int64_t n_ctx, int64_t ring_extra) {
  int64_t total = 0;
  for (const LayerGeometry& g : hp.layers)
    total += 2 * layer_slots(g, n_ctx, hp.sliding_window + ring_extra) * g.n_head_kv * g.head_dim *
             int64_t(sizeof(float));
  return total;
}

int64_t KvCache::size_bytes() const {
  int64_t total = 0;
  for (size_t l = 0; l < k_.size(); ++l) total += int64_t((k_[l].size() + v_[l].size()) * sizeof(float));
  return total;
}

}  // namespace g4
