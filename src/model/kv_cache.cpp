#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "ops/kernels.h"
#include "ops/quant.h"

namespace g4 {
namespace {

int64_t layer_slots(bool sliding, int64_t n_ctx, int64_t ring) {
  return sliding ? std::min(n_ctx, ring) : n_ctx;
}

}  // namespace

bool is_kv_cache_type(GgmlType type) {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0: case GgmlType::Q4_0:
      return true;
    default:
      return false;
  }
}

GgmlType kv_cache_type_from_name(const std::string& name) {
  GgmlType type;
  try {
    type = ggml_type_from_name(name);
  } catch (const Error&) {
    type = GgmlType::Q2_K;  // anything that is not a cache type
  }
  if (!is_kv_cache_type(type))
    fail("unknown KV cache type '", name, "' (expected f32, f16, bf16, q8_0 or q4_0)");
  return type;
}

KvCache::KvCache(const Gemma4HParams& hp, int64_t n_ctx) : KvCache(hp, KvCacheConfig{n_ctx}) {}

KvCache::KvCache(const Gemma4HParams& hp, const KvCacheConfig& config)
    : config_(config), ring_(hp.sliding_window + config.ring_extra), sliding_window_(hp.sliding_window) {
  if (config.n_ctx <= 0) fail("context size must be positive (got ", config.n_ctx, ")");
  if (config.ring_extra < 0) fail("ring_extra must not be negative");
  if (!is_kv_cache_type(config.type_k) || !is_kv_cache_type(config.type_v))
    fail("KV cache types must be f32, f16, bf16, q8_0 or q4_0");
  for (const LayerGeometry& g : hp.layers) {
    const int64_t block = std::max(ggml_type_info(config.type_k).block_size, ggml_type_info(config.type_v).block_size);
    if (g.head_dim % block != 0)
      fail("head size ", g.head_dim, " is not a multiple of the KV cache type's block of ", block);
    Layer l;
    l.sliding = g.sliding;
    l.n_head_kv = g.n_head_kv;
    l.head_dim = g.head_dim;
    l.k_head_bytes = ggml_row_bytes(config.type_k, g.head_dim);
    l.v_head_bytes = ggml_row_bytes(config.type_v, g.head_dim);
    // Committed now, so a long generation cannot run out of memory half way.
    l.allocate(layer_slots(g.sliding, config.n_ctx, ring_));
    layers_.push_back(std::move(l));
  }
}

void KvCache::store(int layer, int64_t pos, const float* k, const float* v) {
  Layer& l = layers_[size_t(layer)];
  const int64_t s = slot(l, pos);
  // Per head: the blocks of every cache type lie within a head (head_dim is whole blocks), so the
  // bytes are those of quantizing the whole row.
  for (int h = 0; h < l.n_head_kv; ++h) {
    quantize_row(config_.type_k, k + h * l.head_dim, l.row(true, h, s), l.head_dim);
    quantize_row(config_.type_v, v + h * l.head_dim, l.row(false, h, s), l.head_dim);
  }
}

void KvCache::load(int layer, bool keys, int head, int64_t pos, int64_t n, float* out) const {
  const GgmlType type = keys ? config_.type_k : config_.type_v;
  const int64_t head_dim = layers_[size_t(layer)].head_dim;
  // The SIMD dequantizer (bit-exact to dequantize_row, tests/test_kernels.cpp) where the type has
  // one; F32 has none and is copied.
  const DequantizeFn decode = active_kernels().dequantizer(type);
  for_each_run(layer, keys, head, pos, n, [&](int64_t p, const uint8_t* rows, int64_t count) {
    float* dst = out + (p - pos) * head_dim;
    if (decode)
      decode(rows, dst, count * head_dim);
    else
      dequantize_row(type, rows, dst, count * head_dim);
  });
}

void KvCache::load_k(int layer, int head, int64_t pos, int64_t n, float* out) const {
  load(layer, true, head, pos, n, out);
}

void KvCache::load_v(int layer, int head, int64_t pos, int64_t n, float* out) const {
  load(layer, false, head, pos, n, out);
}

int64_t KvCache::oldest_available(int layer) const {
  return layers_[size_t(layer)].sliding ? std::max<int64_t>(0, n_past_ - ring_) : 0;
}

bool KvCache::can_truncate(int64_t n) const {
  if (n < 0 || n > n_past_) return false;
  // Position n attends to keys down to n - window + 1; they must not have been overwritten.
  const int64_t needed_from = std::max<int64_t>(0, n - sliding_window_ + 1);
  return needed_from >= std::max<int64_t>(0, n_past_ - ring_);
}

void KvCache::truncate(int64_t n) {
  if (n < 0 || n > n_past_) fail("cannot truncate a cache of ", n_past_, " positions to ", n);
  if (!can_truncate(n))
    fail("cannot roll the sliding-window cache back from ", n_past_, " to ", n,
         " positions: the ring keeps only ", ring_, " (re-process the prompt instead)");
  n_past_ = n;
}

void KvCache::resize(int64_t n_ctx) {
  if (n_ctx <= 0 || n_ctx < n_past_)
    fail("cannot resize a KV cache holding ", n_past_, " positions to a context of ", n_ctx);
  for (Layer& l : layers_) {
    // Sliding slots are p % ring: below the ring size that is p itself, so cutting or extending
    // the slot range up to the ring keeps every stored position in place.
    const int64_t slots = layer_slots(l.sliding, n_ctx, ring_);
    if (slots == l.slots) continue;
    const int64_t kept = std::min(slots, l.slots);
    Layer resized{l.sliding, l.n_head_kv, l.head_dim, 0, l.k_head_bytes, l.v_head_bytes, {}, {}};
    resized.allocate(slots);
    for (int h = 0; h < l.n_head_kv; ++h)
      for (bool keys : {true, false})
        std::memcpy(resized.row(keys, h, 0), l.row(keys, h, 0), size_t(kept * l.head_bytes(keys)));
    l = std::move(resized);
  }
  config_.n_ctx = n_ctx;
}

KvCache::Plan KvCache::plan(const Gemma4HParams& hp, const KvCacheConfig& config) {
  Plan p;
  const int64_t ring = hp.sliding_window + config.ring_extra;
  for (const LayerGeometry& g : hp.layers) {
    const int64_t row = int64_t(g.n_head_kv) * g.head_dim;
    const int64_t bytes =
        layer_slots(g.sliding, config.n_ctx, ring) * (ggml_row_bytes(config.type_k, row) + ggml_row_bytes(config.type_v, row));
    (g.sliding ? p.sliding_bytes : p.full_bytes) += bytes;
  }
  return p;
}

int64_t KvCache::planned_bytes(const Gemma4HParams& hp, int64_t n_ctx) {
  return plan(hp, KvCacheConfig{n_ctx}).total();
}

int64_t KvCache::size_bytes() const {
  int64_t total = 0;
  for (const Layer& l : layers_) total += int64_t(l.k.size() + l.v.size());
  return total;
}

}  // namespace g4
