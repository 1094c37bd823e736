#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "model/kv_cache.h"
#include "ops/kernels.h"
#include "ops/ops.h"

namespace g4 {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Keys are visited in tiles, tiles grouped into splits, all at absolute position boundaries, and
// each split's partial softmax state is merged into the row's total in key order, whoever computed
// it. A row's result therefore depends only on the row and its keys, never on which other rows
// share the pass, how a prompt was chunked or how many threads run: batched requests give bit for
// bit what they give alone.
// A split is also the unit of parallel work of a decoding step: a full layer has one KV head, so
// its keys must be cut to keep both cores busy (with splits of 8192 keys, one core did all of a
// 4096-deep full layer: 4.2 ms of a 12B decode step, per full layer).
constexpr int64_t kSplit = 256;  // keys per partial softmax state

// Running softmax state of one (row, head): max score, sum of exp, weighted value sum.
struct StateRef {
  float* max;
  float* sum;
  float* acc;  // head_dim values
};

void reset(StateRef s, int64_t hd) {
  *s.max = kNegInf;
  *s.sum = 0.0f;
  std::fill_n(s.acc, hd, 0.0f);
}

// into := into (+) from, for partial states over consecutive key ranges. An empty state (max
// -inf) is an exact identity on either side.
void merge(StateRef into, StateRef from, int64_t hd) {
  if (*from.max == kNegInf) return;
  if (*into.max == kNegInf) {
    *into.max = *from.max;
    *into.sum = *from.sum;
    std::copy_n(from.acc, hd, into.acc);
    return;
  }
  const float m = std::max(*into.max, *from.max);
  const float a = std::exp(*into.max - m), b = std::exp(*from.max - m);
  for (int64_t d = 0; d < hd; ++d) into.acc[d] = into.acc[d] * a + from.acc[d] * b;
  *into.sum = *into.sum * a + *from.sum * b;
  *into.max = m;
}

// State buffers for rows x heads.
struct States {
  std::vector<float> max, sum, acc;
  int64_t hd = 0;
  void resize(int64_t count, int64_t head_dim) {
    hd = head_dim;
    max.assign(size_t(count), kNegInf);
    sum.assign(size_t(count), 0.0f);
    acc.assign(size_t(count * head_dim), 0.0f);
  }
  StateRef at(int64_t i) { return {&max[size_t(i)], &sum[size_t(i)], &acc[size_t(i * hd)]}; }
};

// A thread's key, value and score buffers, kept from one call to the next: a decoding step calls
// attention once per layer, and fresh zero-filled buffers each time were ~1% of a 48-layer step.
// Every element is written before it is read (keys and values loaded, scores computed). An F16
// cache (the default) is read in place; other types are decoded into k_buf / v_buf a tile at a
// time.
struct KeyScratch {
  std::vector<float> k_buf, v_buf, scores;
};
KeyScratch& thread_key_scratch() {
  thread_local KeyScratch scratch;
  return scratch;
}

}  // namespace

void attention(const AttentionInput& in, ThreadPool& pool) {
  const KernelTable& kt = active_kernels();
  const LayerGeometry& g = *in.geometry;
  const int64_t hd = g.head_dim, n = in.n, pos0 = in.pos0;
  const int heads_per_kv = in.n_head / g.n_head_kv;  // GQA: consecutive query heads share a KV head
  const int64_t q_row = int64_t(in.n_head) * hd, kv_row = int64_t(g.n_head_kv) * hd;
  const bool k_half = in.cache->type_k() == GgmlType::F16,
             v_half = in.cache->type_v() == GgmlType::F16;

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
  const int64_t first_split = *std::min_element(lo.begin(), lo.end()) / kSplit;
  const int64_t last_split = *std::max_element(hi.begin(), hi.end()) / kSplit;

  // Work items: tiles of rows x KV heads (x splits of keys in decode). A tile's state (rows x the
  // heads sharing a KV head x head_dim) is kept around 64 KiB.
  // No taller than the rows there are: a decoding step's single row would otherwise carry (and
  // zero) the state of 32.
  const int64_t row_tile =
      std::max<int64_t>(1, std::min<int64_t>(n, std::clamp<int64_t>(16384 / (int64_t(heads_per_kv) * hd), 1, 32)));
  const int64_t key_tile = std::clamp<int64_t>(16384 / hd, 16, kSplit);  // divides kSplit
  const int64_t n_row_tiles = (n + row_tile - 1) / row_tile;
  const int64_t base_items = n_row_tiles * g.n_head_kv;
  const int64_t states_per_item = row_tile * heads_per_kv;
  auto state_index = [&](int64_t base, int64_t i, int hj) {
    return base * states_per_item + (i - (base / g.n_head_kv) * row_tile) * heads_per_kv + hj;
  };

  // The rows of work item `base` and the key interval they see.
  struct ItemRows {
    int64_t i0, i1, key_lo, key_hi;
  };
  auto item_rows = [&](int64_t base) {
    const int64_t i0 = (base / g.n_head_kv) * row_tile, i1 = std::min(n, i0 + row_tile);
    return ItemRows{i0, i1, *std::min_element(lo.begin() + i0, lo.begin() + i1),
                    *std::max_element(hi.begin() + i0, hi.begin() + i1)};
  };
  auto overlaps = [&](const ItemRows& r, int64_t split) {
    return split * kSplit <= r.key_hi && (split + 1) * kSplit > r.key_lo;
  };

  // The partial state of work item `base` over keys [split * kSplit, (split + 1) * kSplit), into
  // states [first, first + states_per_item) of `state` (row in tile, then head in group).
  auto run_split = [&](int64_t base, int64_t split, KeyScratch& t, States& state, int64_t first) {
    const int kv_head = int(base % g.n_head_kv);
    const ItemRows rows = item_rows(base);
    for (int64_t s = 0; s < states_per_item; ++s) reset(state.at(first + s), hd);
    const int64_t s0 = split * kSplit;
    for (int64_t t0 = s0; t0 < s0 + kSplit; t0 += key_tile) {
      const int64_t a0 = std::max(t0, rows.key_lo), b0 = std::min(t0 + key_tile - 1, rows.key_hi);
      if (a0 > b0) continue;
      // Keys/values of the tile: from the cache before pos0, from this pass after.
      const int64_t cached_end = std::min(b0 + 1, pos0);
      if (a0 < cached_end && !k_half)
        in.cache->load_k(in.layer, kv_head, a0, cached_end - a0, t.k_buf.data());
      if (a0 < cached_end && !v_half)
        in.cache->load_v(in.layer, kv_head, a0, cached_end - a0, t.v_buf.data());
      // The scores of the group's heads (q) against keys [a, b], into scores (key a first, the
      // heads key_tile apart): the cached ones, then this pass's. The kernels give a score the
      // same bits from an F16 row as from its decoded floats.
      auto score = [&](const float* q, int64_t a, int64_t b, float* scores) {
        const int64_t cached_b = std::min(b, pos0 - 1), fresh = std::max(a, pos0);
        if (a <= cached_b && k_half) {
          in.cache->for_each_run(in.layer, true, kv_head, a, cached_b - a + 1,
                                 [&](int64_t p, const uint8_t* rows, int64_t count) {
                                   kt.attn_scores_f16(q, hd, heads_per_kv,
                                                      reinterpret_cast<const uint16_t*>(rows), hd,
                                                      count, hd, scores + (p - a), key_tile);
                                 });
        } else if (a <= cached_b) {
          kt.attn_scores_f32(q, hd, heads_per_kv, &t.k_buf[size_t((a - a0) * hd)], hd,
                             cached_b - a + 1, hd, scores, key_tile);
        }
        if (fresh <= b)
          kt.attn_scores_f32(q, hd, heads_per_kv, in.k + (fresh - pos0) * kv_row + kv_head * hd,
                             kv_row, b - fresh + 1, hd, scores + (fresh - a), key_tile);
      };
      // acc (the group's heads, hd apart) += weights x values [a, b], in key order.
      auto sum_values = [&](const float* weights, int64_t a, int64_t b, float* acc) {
        const int64_t cached_b = std::min(b, pos0 - 1), fresh = std::max(a, pos0);
        if (a <= cached_b && v_half) {
          in.cache->for_each_run(in.layer, false, kv_head, a, cached_b - a + 1,
                                 [&](int64_t p, const uint8_t* rows, int64_t count) {
                                   kt.axpy_rows_f16(weights + (p - a), key_tile, heads_per_kv,
                                                    reinterpret_cast<const uint16_t*>(rows), hd,
                                                    count, acc, hd, hd);
                                 });
        } else if (a <= cached_b) {
          kt.axpy_rows_f32(weights, key_tile, heads_per_kv, &t.v_buf[size_t((a - a0) * hd)], hd,
                           cached_b - a + 1, acc, hd, hd);
        }
        if (fresh <= b)
          kt.axpy_rows_f32(weights + (fresh - a), key_tile, heads_per_kv,
                           in.v + (fresh - pos0) * kv_row + kv_head * hd, kv_row, b - fresh + 1,
                           acc, hd, hd);
      };
      for (int64_t i = rows.i0; i < rows.i1; ++i) {
        const int64_t a = std::max(a0, lo[size_t(i)]), b = std::min(b0, hi[size_t(i)]);
        if (a > b) continue;
        score(in.q + i * q_row + kv_head * heads_per_kv * hd, a, b, t.scores.data());
        // Each head's softmax weights replace its scores; then the weighted sum of the values for
        // every head of the group at once: the cached rows, then this pass's.
        for (int hj = 0; hj < heads_per_kv; ++hj) {
          StateRef st = state.at(first + (i - rows.i0) * heads_per_kv + hj);
          float* head_scores = t.scores.data() + hj * key_tile;  // attention scale 1.0
          float tile_max = kNegInf;
          for (int64_t p = a; p <= b; ++p) tile_max = std::max(tile_max, head_scores[p - a]);
          const float m = std::max(*st.max, tile_max);
          if (*st.max != kNegInf && *st.max != m) {
            const float rescale = std::exp(*st.max - m);
            *st.sum *= rescale;
            scale_f32(rescale, st.acc, hd);
          }
          *st.max = m;
          for (int64_t p = a; p <= b; ++p) {
            const float w = std::exp(head_scores[p - a] - m);
            *st.sum += w;
            head_scores[p - a] = w;
          }
        }
        sum_values(t.scores.data(), a, b, state.at(first + (i - rows.i0) * heads_per_kv).acc);
      }
    }
  };
  auto thread_scratch = [&]() -> KeyScratch& {
    KeyScratch& t = thread_key_scratch();
    t.k_buf.resize(size_t(key_tile * hd));
    t.v_buf.resize(size_t(key_tile * hd));
    t.scores.resize(size_t(key_tile * heads_per_kv));
    return t;
  };

  States total;  // [base item][row in tile][head in group]
  total.resize(base_items * states_per_item, hd);
  const int64_t n_splits = last_split - first_split + 1;
  if (base_items >= 2 * pool.size() || n_splits == 1) {
    // Prefill: enough row tiles to keep every thread busy; each item's splits one after the other.
    pool.parallel_for(base_items, 1, [&](int64_t begin, int64_t end, int) {
      KeyScratch& t = thread_scratch();
      States split_state;
      split_state.resize(states_per_item, hd);
      for (int64_t base = begin; base < end; ++base) {
        const ItemRows rows = item_rows(base);
        for (int64_t split = first_split; split <= last_split; ++split) {
          if (!overlaps(rows, split)) continue;
          run_split(base, split, t, split_state, 0);
          for (int64_t s = 0; s < states_per_item; ++s) merge(total.at(base * states_per_item + s), split_state.at(s), hd);
        }
      }
    });
  } else {
    // Decode: few rows; the (item, split) pairs run in parallel, a wave of up to
    // kAttentionDecodeWave at a time, and each wave's states merge in key order.
    std::vector<std::pair<int64_t, int64_t>> work;  // (base, split), splits ascending per base
    for (int64_t base = 0; base < base_items; ++base) {
      const ItemRows rows = item_rows(base);
      for (int64_t split = first_split; split <= last_split; ++split)
        if (overlaps(rows, split)) work.emplace_back(base, split);
    }
    States wave_states;
    wave_states.resize(std::min<int64_t>(int64_t(work.size()), kAttentionDecodeWave) * states_per_item, hd);
    for (size_t w0 = 0; w0 < work.size(); w0 += size_t(kAttentionDecodeWave)) {
      const int64_t count = std::min<int64_t>(kAttentionDecodeWave, int64_t(work.size() - w0));
      pool.parallel_for(count, 1, [&](int64_t begin, int64_t end, int) {
        KeyScratch& t = thread_scratch();
        for (int64_t w = begin; w < end; ++w)
          run_split(work[w0 + size_t(w)].first, work[w0 + size_t(w)].second, t, wave_states, w * states_per_item);
      });
      for (int64_t w = 0; w < count; ++w)
        for (int64_t s = 0; s < states_per_item; ++s)
          merge(total.at(work[w0 + size_t(w)].first * states_per_item + s), wave_states.at(w * states_per_item + s), hd);
    }
  }

  // Normalize into the output rows.
  for (int64_t base = 0; base < base_items; ++base) {
    const int kv_head = int(base % g.n_head_kv);
    const int64_t i0 = (base / g.n_head_kv) * row_tile, i1 = std::min(n, i0 + row_tile);
    for (int64_t i = i0; i < i1; ++i)
      for (int hj = 0; hj < heads_per_kv; ++hj) {
        StateRef st = total.at(state_index(base, i, hj));
        float* out = in.out + i * q_row + (kv_head * heads_per_kv + hj) * hd;
        const float inv = 1.0f / *st.sum;
        for (int64_t d = 0; d < hd; ++d) out[d] = st.acc[d] * inv;
      }
  }
}

}  // namespace g4
