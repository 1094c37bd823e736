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

// Keys are visited in tiles, tiles grouped into splits, splits into groups, all at absolute
// position boundaries. A row's result therefore depends only on the row and its keys, never on
// which other rows share the pass, how a prompt was chunked or how many threads run: batched
// requests give bit for bit what they give alone.
constexpr int64_t kSplit = 1024;      // keys per partial softmax state
constexpr int64_t kGroup = 8 * kSplit; // keys per unit of parallel work in decode

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

// scores[h * stride + j] = q_h . keys[j] for the `heads` query heads of one KV head (q_h at
// q + h * hd) and `count` keys `key_stride` apart: the matmul's register-blocked float tile, so
// each key row is loaded once for up to kTileTokens heads. Every score is the same sum whatever
// the tile it falls in (batch invariance).
void score_keys(const KernelTable& kt, const float* q, int heads, const float* keys, int64_t key_stride,
                int64_t count, int64_t hd, float* scores, int64_t stride) {
  for (int h0 = 0; h0 < heads; h0 += kTileTokens)
    kt.float_tile(keys, key_stride, int(count), q + h0 * hd, hd, std::min(kTileTokens, heads - h0), hd,
                  scores + h0 * stride, stride, false);
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
// Every element is written before it is read (keys and values loaded, scores computed).
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
  const int64_t first_group = *std::min_element(lo.begin(), lo.end()) / kGroup;
  const int64_t last_group = *std::max_element(hi.begin(), hi.end()) / kGroup;
  const int64_t n_groups = last_group - first_group + 1;

  // Work items: tiles of rows x KV heads (x groups of keys in decode). A tile's state (rows x the
  // heads sharing a KV head x head_dim) is kept around 64 KiB.
  // No taller than the rows there are: a decoding step's single row would otherwise carry (and
  // zero) the state of 32.
  const int64_t row_tile =
      std::max<int64_t>(1, std::min<int64_t>(n, std::clamp<int64_t>(16384 / (int64_t(heads_per_kv) * hd), 1, 32)));
  const int64_t key_tile = std::max<int64_t>(16, 16384 / hd);  // divides kSplit for every head size
  const int64_t n_row_tiles = (n + row_tile - 1) / row_tile;
  const int64_t base_items = n_row_tiles * g.n_head_kv;
  const int64_t states_per_item = row_tile * heads_per_kv;
  auto state_index = [&](int64_t base, int64_t i, int hj) {
    return base * states_per_item + (i - (base / g.n_head_kv) * row_tile) * heads_per_kv + hj;
  };

  // Accumulates keys [group * kGroup, (group + 1) * kGroup) of one work item into `out` (fresh).
  auto run_group = [&](int64_t base, int64_t group, States& out, int64_t out_base, std::vector<float>& k_buf,
                       std::vector<float>& v_buf, std::vector<float>& scores, States& split_state) {
    const int kv_head = int(base % g.n_head_kv);
    const int64_t i0 = (base / g.n_head_kv) * row_tile, i1 = std::min(n, i0 + row_tile);
    for (int64_t i = i0; i < i1; ++i)
      for (int hj = 0; hj < heads_per_kv; ++hj) reset(out.at(out_base + state_index(base, i, hj) - base * states_per_item), hd);
    const int64_t row_lo = *std::min_element(lo.begin() + i0, lo.begin() + i1);
    const int64_t row_hi = *std::max_element(hi.begin() + i0, hi.begin() + i1);
    for (int64_t s0 = group * kGroup; s0 < (group + 1) * kGroup; s0 += kSplit) {
      if (s0 > row_hi || s0 + kSplit <= row_lo) continue;
      for (int64_t i = i0; i < i1; ++i)
        for (int hj = 0; hj < heads_per_kv; ++hj) reset(split_state.at((i - i0) * heads_per_kv + hj), hd);
      for (int64_t t0 = s0; t0 < s0 + kSplit; t0 += key_tile) {
        const int64_t a0 = std::max(t0, row_lo), b0 = std::min(t0 + key_tile - 1, row_hi);
        if (a0 > b0) continue;
        // Keys/values of the tile: from the cache before pos0, from this pass after.
        const int64_t cached_end = std::min(b0 + 1, pos0);
        if (a0 < cached_end) {
          in.cache->load_k(in.layer, kv_head, a0, cached_end - a0, k_buf.data());
          in.cache->load_v(in.layer, kv_head, a0, cached_end - a0, v_buf.data());
        }
        auto key = [&](int64_t p) {
          return p < pos0 ? &k_buf[size_t((p - a0) * hd)] : in.k + (p - pos0) * kv_row + kv_head * hd;
        };
        auto value = [&](int64_t p) {
          return p < pos0 ? &v_buf[size_t((p - a0) * hd)] : in.v + (p - pos0) * kv_row + kv_head * hd;
        };
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t a = std::max(a0, lo[size_t(i)]), b = std::min(b0, hi[size_t(i)]);
          if (a > b) continue;
          // Scores of every head of the group against keys a..b: the cached ones, then this pass's.
          const float* q = in.q + i * q_row + kv_head * heads_per_kv * hd;
          const int64_t cached_b = std::min(b, pos0 - 1);
          if (a <= cached_b)
            score_keys(kt, q, heads_per_kv, key(a), hd, cached_b - a + 1, hd, scores.data(), key_tile);
          if (std::max(a, pos0) <= b)
            score_keys(kt, q, heads_per_kv, key(std::max(a, pos0)), kv_row, b - std::max(a, pos0) + 1, hd,
                       scores.data() + (std::max(a, pos0) - a), key_tile);
          for (int hj = 0; hj < heads_per_kv; ++hj) {
            StateRef st = split_state.at((i - i0) * heads_per_kv + hj);
            const float* head_scores = scores.data() + hj * key_tile;  // attention scale 1.0
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
              axpy_f32(w, value(p), st.acc, hd);
            }
          }
        }
      }
      for (int64_t i = i0; i < i1; ++i)
        for (int hj = 0; hj < heads_per_kv; ++hj)
          merge(out.at(out_base + state_index(base, i, hj) - base * states_per_item),
                split_state.at((i - i0) * heads_per_kv + hj), hd);
    }
  };

  States total;  // [base item][row in tile][head in group]
  total.resize(base_items * states_per_item, hd);
  auto scratch = [&](std::vector<float>& k_buf, std::vector<float>& v_buf, std::vector<float>& scores,
                     States& split_state) {
    k_buf.resize(size_t(key_tile * hd));
    v_buf.resize(size_t(key_tile * hd));
    scores.resize(size_t(key_tile * heads_per_kv));
    split_state.resize(states_per_item, hd);
  };

  if (base_items >= 2 * pool.size() || n_groups == 1) {
    // Prefill: enough row tiles to keep every thread busy; key groups one after the other.
    States group_states;
    group_states.resize(base_items * states_per_item, hd);
    for (int64_t group = first_group; group <= last_group; ++group) {
      pool.parallel_for(base_items, 1, [&](int64_t begin, int64_t end, int) {
        KeyScratch& t = thread_key_scratch();
        States split_state;
        scratch(t.k_buf, t.v_buf, t.scores, split_state);
        for (int64_t base = begin; base < end; ++base) {
          run_group(base, group, group_states, base * states_per_item, t.k_buf, t.v_buf, t.scores,
                    split_state);
          for (int64_t s = base * states_per_item; s < (base + 1) * states_per_item; ++s)
            merge(total.at(s), group_states.at(s), hd);
        }
      });
    }
  } else {
    // Decode: few rows; the key groups run in parallel, then merge in order.
    States group_states;
    group_states.resize(base_items * n_groups * states_per_item, hd);
    pool.parallel_for(base_items * n_groups, 1, [&](int64_t begin, int64_t end, int) {
      KeyScratch& t = thread_key_scratch();
      States split_state;
      scratch(t.k_buf, t.v_buf, t.scores, split_state);
      for (int64_t item = begin; item < end; ++item) {
        const int64_t base = item / n_groups, group = first_group + item % n_groups;
        run_group(base, group, group_states, item * states_per_item, t.k_buf, t.v_buf, t.scores,
                  split_state);
      }
    });
    for (int64_t base = 0; base < base_items; ++base)
      for (int64_t gi = 0; gi < n_groups; ++gi)
        for (int64_t s = 0; s < states_per_item; ++s)
          merge(total.at(base * states_per_item + s), group_states.at((base * n_groups + gi) * states_per_item + s), hd);
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
