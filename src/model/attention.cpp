#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "model/kv_cache.h"
#include "ops/ops.h"

namespace g4 {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Running softmax state of one (query row, head): max score, sum of exp, weighted value sum.
struct SoftmaxState {
  float max = kNegInf;
  float sum = 0.0f;
  float* acc = nullptr;  // head_dim values
};

// Merges partial states over disjoint key ranges (the same formula as each online update).
void merge(SoftmaxState& into, const SoftmaxState& from, int64_t head_dim) {
  if (from.max == kNegInf) return;
  const float m = std::max(into.max, from.max);
  const float a = into.max == kNegInf ? 0.0f : std::exp(into.max - m), b = std::exp(from.max - m);
  for (int64_t d = 0; d < head_dim; ++d) into.acc[d] = into.acc[d] * a + from.acc[d] * b;
  into.sum = into.sum * a + from.sum * b;
  into.max = m;
}

}  // namespace

void attention(const AttentionInput& in, ThreadPool& pool) {
  const LayerGeometry& g = *in.geometry;
  const int64_t hd = g.head_dim, n = in.n, pos0 = in.pos0;
  const int heads_per_kv = in.n_head / g.n_head_kv;  // GQA: consecutive query heads share a KV head
  const int64_t q_row = int64_t(in.n_head) * hd, kv_row = int64_t(g.n_head_kv) * hd;

  // The visible key interval of each new row.
  std::vector<int64_t> lo(static_cast<size_t>(n)), hi(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = pos0 + i;
    lo[size_t(i)] = g.sliding ? std::max<int64_t>(0, p - in.sliding_window + 1) : 0;
    hi[size_t(i)] = p;
    if (g.sliding && in.block_ids && in.block_ids[i] >= 0) {
      int64_t j = i;
      while (j + 1 < n && in.block_ids[j + 1] == in.block_ids[i]) ++j;
      hi[size_t(i)] = pos0 + j;
    }
  }
  const int64_t span_lo = *std::min_element(lo.begin(), lo.end());
  const int64_t span_hi = *std::max_element(hi.begin(), hi.end());

  // Work items: tiles of query rows x KV heads x splits of the key range. The state of a tile
  // (rows x heads sharing the KV head x head_dim) is kept around 64 KiB; decode, which has a single
  // row, splits the keys so every thread has work even on the full layers' single KV head.
  const int64_t row_tile = std::clamp<int64_t>(16384 / (int64_t(heads_per_kv) * hd), 1, 32);
  const int64_t key_tile = std::max<int64_t>(16, 16384 / hd);
  const int64_t n_row_tiles = (n + row_tile - 1) / row_tile;
  const int64_t base_items = n_row_tiles * g.n_head_kv;
  int64_t n_splits = 1;
  if (base_items < 2 * pool.size())
    n_splits = std::clamp<int64_t>((2 * pool.size() + base_items - 1) / base_items, 1,
                                   std::max<int64_t>(1, (span_hi - span_lo + 1) / 256));
  const int64_t split_len = (span_hi - span_lo + 1 + n_splits - 1) / n_splits;

  // Partial states: [item][row in tile][head in group] -> max, sum, acc[hd].
  const int64_t state_per_item = row_tile * heads_per_kv;
  std::vector<float> part_max(size_t(base_items * n_splits * state_per_item), kNegInf);
  std::vector<float> part_sum(part_max.size(), 0.0f);
  std::vector<float> part_acc(part_max.size() * size_t(hd), 0.0f);

  pool.parallel_for(base_items * n_splits, 1, [&](int64_t begin, int64_t end, int) {
    std::vector<float> k_buf(static_cast<size_t>(key_tile * hd)), v_buf(static_cast<size_t>(key_tile * hd)), scores(static_cast<size_t>(key_tile));
    std::vector<const float*> k_ptr(static_cast<size_t>(key_tile)), v_ptr(static_cast<size_t>(key_tile));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t split = item % n_splits, base = item / n_splits;
      const int kv_head = int(base % g.n_head_kv);
      const int64_t i0 = (base / g.n_head_kv) * row_tile, i1 = std::min(n, i0 + row_tile);
      int64_t k_lo = span_lo + split * split_len, k_hi = std::min(span_hi, k_lo + split_len - 1);
      k_lo = std::max(k_lo, *std::min_element(lo.begin() + i0, lo.begin() + i1));
      k_hi = std::min(k_hi, *std::max_element(hi.begin() + i0, hi.begin() + i1));
      const size_t state0 = size_t(item * state_per_item);

      for (int64_t t0 = k_lo; t0 <= k_hi; t0 += key_tile) {
        const int64_t t1 = std::min(k_hi + 1, t0 + key_tile);
        // Keys/values of the tile: from the cache before pos0, from this pass after.
        const int64_t cached_end = std::min(t1, pos0);
        if (t0 < cached_end) {
          in.cache->load_k(in.layer, kv_head, t0, cached_end - t0, k_buf.data());
          in.cache->load_v(in.layer, kv_head, t0, cached_end - t0, v_buf.data());
        }
        for (int64_t p = t0; p < t1; ++p) {
          const size_t j = size_t(p - t0);
          k_ptr[j] = p < pos0 ? &k_buf[j * size_t(hd)] : in.k + (p - pos0) * kv_row + kv_head * hd;
          v_ptr[j] = p < pos0 ? &v_buf[j * size_t(hd)] : in.v + (p - pos0) * kv_row + kv_head * hd;
        }
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t a = std::max(t0, lo[size_t(i)]), b = std::min(t1 - 1, hi[size_t(i)]);
          if (a > b) continue;
          for (int hj = 0; hj < heads_per_kv; ++hj) {
            const int h = kv_head * heads_per_kv + hj;
            const float* q = in.q + i * q_row + h * hd;
            const size_t s = state0 + size_t((i - i0) * heads_per_kv + hj);
            float tile_max = kNegInf;
            for (int64_t p = a; p <= b; ++p) {
              const float score = dot_f32(q, k_ptr[size_t(p - t0)], hd);  // attention scale 1.0
              scores[size_t(p - a)] = score;
              tile_max = std::max(tile_max, score);
            }
            float* acc = &part_acc[s * size_t(hd)];
            const float m = std::max(part_max[s], tile_max);
            if (part_max[s] != kNegInf && part_max[s] != m) {
              const float rescale = std::exp(part_max[s] - m);
              part_sum[s] *= rescale;
              for (int64_t d = 0; d < hd; ++d) acc[d] *= rescale;
            }
            part_max[s] = m;
            for (int64_t p = a; p <= b; ++p) {
              const float w = std::exp(scores[size_t(p - a)] - m);
              part_sum[s] += w;
              const float* v = v_ptr[size_t(p - t0)];
              for (int64_t d = 0; d < hd; ++d) acc[d] += w * v[d];
            }
          }
        }
      }
    }
  });

  // Merge the key splits and normalize.
  pool.parallel_for(base_items, 1, [&](int64_t begin, int64_t end, int) {
    for (int64_t base = begin; base < end; ++base) {
      const int kv_head = int(base % g.n_head_kv);
      const int64_t i0 = (base / g.n_head_kv) * row_tile, i1 = std::min(n, i0 + row_tile);
      for (int64_t i = i0; i < i1; ++i)
        for (int hj = 0; hj < heads_per_kv; ++hj) {
          const size_t offset = size_t((i - i0) * heads_per_kv + hj);
          const size_t first = size_t(base * n_splits * state_per_item) + offset;
          SoftmaxState total{part_max[first], part_sum[first], &part_acc[first * size_t(hd)]};
          for (int64_t split = 1; split < n_splits; ++split) {
            const size_t s = size_t((base * n_splits + split) * state_per_item) + offset;
            merge(total, SoftmaxState{part_max[s], part_sum[s], &part_acc[s * size_t(hd)]}, hd);
          }
          float* out = in.out + i * q_row + (kv_head * heads_per_kv + hj) * hd;
          const float inv = 1.0f / total.sum;
          for (int64_t d = 0; d < hd; ++d) out[d] = total.acc[d] * inv;
        }
    }
  });
}

}  // namespace g4
