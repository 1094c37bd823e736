// The key/value cache of one sequence (spec §2.7).
// Full-attention layers keep every position. Sliding layers keep a ring of the last `ring`
// positions (ring >= the window): position p lives in slot p % ring, so memory for 40 of the 12B's
// 48 layers does not grow with the context. Rows are stored in the cache type (F32, F16, BF16,
// Q8_0 or Q4_0), head-major: each KV head's rows of consecutive slots follow each other, so
// attention, which reads one head's keys at a time, streams them instead of picking a few hundred
// bytes out of every position's row (a 12B sliding layer's rows are 4 KiB apart per key).
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/ggml_type.h"
#include "core/large_buffer.h"
#include "model/hparams.h"

namespace g4 {

struct KvCacheConfig {
  int64_t n_ctx = 4096;               // the most positions the sequence may hold
  GgmlType type_k = GgmlType::F16;    // F16 by default: half the memory of F32 (spec §2.7)
  GgmlType type_v = GgmlType::F16;
  int64_t ring_extra = 0;             // sliding slots beyond the window: allows rolling back
};

// Whether `type` can store KV rows (F32, F16, BF16, Q8_0, Q4_0).
bool is_kv_cache_type(GgmlType type);
GgmlType kv_cache_type_from_name(const std::string& name);  // throws g4::Error naming the choices

class KvCache {
 public:
  KvCache(const Gemma4HParams& hp, const KvCacheConfig& config);
  KvCache(const Gemma4HParams& hp, int64_t n_ctx);  // default types

  int64_t n_ctx() const { return config_.n_ctx; }
  int64_t n_past() const { return n_past_; }  // positions already stored
  int64_t ring_size() const { return ring_; }
  GgmlType type_k() const { return config_.type_k; }
  GgmlType type_v() const { return config_.type_v; }
  const KvCacheConfig& config() const { return config_; }

  // Stores float K and V rows (n_head_kv * head_dim) of `pos` in `layer`, converting to the
  // cache types.
  void store(int layer, int64_t pos, const float* k, const float* v);
  // Decodes head `head` of the K (or V) rows of positions [pos, pos + n) into out[n][head_dim].
  // The positions must be stored and still held (see oldest_available).
  void load_k(int layer, int head, int64_t pos, int64_t n, float* out) const;
  void load_v(int layer, int head, int64_t pos, int64_t n, float* out) const;
  // Head `head`'s K (keys) or V rows of positions [pos, pos + n) as stored (in type_k() or
  // type_v(), head_dim values each, one right after the other): fn(first position, its row's
  // bytes, row count) for each run of consecutive slots, in position order (one run, or two where
  // a sliding ring wraps). Lets attention read an F16 cache without decoding it first.
  template <class Fn>
  void for_each_run(int layer, bool keys, int head, int64_t pos, int64_t n, Fn&& fn) const {
    const Layer& l = layers_[size_t(layer)];
    for (int64_t i = 0; i < n;) {
      const int64_t s = slot(l, pos + i), run = std::min(n - i, l.slots - s);
      fn(pos + i, l.row(keys, head, s), run);
      i += run;
    }
  }

  // Oldest position still available in `layer` given n_past (sliding layers forget).
  int64_t oldest_available(int layer) const;

  void advance(int64_t n) { n_past_ += n; }
  void clear() { n_past_ = 0; }
  // Forget positions >= n. Throws g4::Error when a sliding ring no longer holds what position n
  // would need (roll back further than ring_extra allows).
  void truncate(int64_t n);
  // Whether truncate(n) would succeed.
  bool can_truncate(int64_t n) const;
  // Changes the context size, keeping every stored position (n_ctx >= n_past): full layers grow or
  // shrink their slots, sliding layers hold min(n_ctx, ring). Position p keeps its slot, so nothing
  // moves. Lets a server keep a finished sequence's cache at its used size and grow it again when
  // a later request continues it (prefix reuse).
  void resize(int64_t n_ctx);

  // Bytes allocated for K and V over all layers.
  int64_t size_bytes() const;
  // What a cache for these parameters allocates, by layer kind, without allocating it.
  struct Plan {
    int64_t sliding_bytes = 0;
    int64_t full_bytes = 0;
    int64_t total() const { return sliding_bytes + full_bytes; }
  };
  static Plan plan(const Gemma4HParams& hp, const KvCacheConfig& config);
  static int64_t planned_bytes(const Gemma4HParams& hp, int64_t n_ctx);  // default types

 private:
  struct Layer {
    bool sliding;
    int n_head_kv;
    int head_dim;
    int64_t slots;
    int64_t k_head_bytes, v_head_bytes;  // one head's row of one slot
    LargeBuffer k, v;                     // [head][slot][head row]

    int64_t head_bytes(bool keys) const { return keys ? k_head_bytes : v_head_bytes; }
    // Head h's K (keys) or V row of slot s: the one place that spells out the layout.
    const uint8_t* row(bool keys, int h, int64_t s) const {
      return (keys ? k : v).data() + (h * slots + s) * head_bytes(keys);
    }
    uint8_t* row(bool keys, int h, int64_t s) {
      return const_cast<uint8_t*>(std::as_const(*this).row(keys, h, s));
    }
    // Allocates (and commits: LargeBuffer) the K and V buffers for `slots` slots.
    void allocate(int64_t n_slots) {
      slots = n_slots;
      k = LargeBuffer(size_t(n_head_kv * slots * k_head_bytes));
      v = LargeBuffer(size_t(n_head_kv * slots * v_head_bytes));
    }
  };
  int64_t slot(const Layer& l, int64_t pos) const { return l.sliding ? pos % ring_ : pos; }
  void load(int layer, bool keys, int head, int64_t pos, int64_t n, float* out) const;

  KvCacheConfig config_;
  int64_t ring_ = 0;
  int sliding_window_ = 0;
  int64_t n_past_ = 0;
  std::vector<Layer> layers_;
};

}  // namespace g4
