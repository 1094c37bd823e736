// The Gemma 4 forward pass, spec §2, top to bottom:
//
//   x   = E[token] * sqrt(d)                          (soft tokens: their embedding, unscaled)
//   per layer:
//     a = RMSNorm(x) ; q,k,v = Wq a, Wk a, (Wv a | raw k) ; q,k normed per head and rotated,
//     v weightless-normed ; o = softmax(q k^T + mask) v ; x += RMSNorm(Wo o)
//     f = RMSNorm(x) ; x += RMSNorm(Wdown (gelu(Wgate f) * Wup f)) ; x *= layer_scale
//   logits = 30 tanh(E RMSNorm(x) / 30)
//
// All activations are float32, laid out [row][features] for every row (token) of the pass.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "ops/matmul.h"
#include "ops/ops.h"
#include "ops/quant.h"
#include "model/attention.h"

namespace g4 {

ForwardPass::ForwardPass(const Gemma4Model& model, ThreadPool& pool, MatmulMode mode)
    : model_(model), pool_(pool), matmul_mode_(mode) {}

int64_t ForwardPass::scratch_bytes_for(const Gemma4HParams& hp, int64_t T) {
  int64_t n_rot_swa = 0, n_rot_full = 0;
  for (const LayerGeometry& g : hp.layers) (g.sliding ? n_rot_swa : n_rot_full) = g.n_rot;
  const int64_t q_row = int64_t(hp.n_head) * hp.max_head_dim();
  const int64_t floats = T * (3 * int64_t(hp.n_embd) + 2 * q_row + 2 * hp.max_kv_row() + 2 * int64_t(hp.max_ff()) +
                              n_rot_swa + n_rot_full);
  return floats * int64_t(sizeof(float)) + T * int64_t(sizeof(int64_t));
}

int64_t ForwardPass::scratch_bytes() const {
  const size_t floats = x_.capacity() + xn_.capacity() + proj_.capacity() + q_.capacity() + attn_.capacity() +
                        k_.capacity() + v_.capacity() + gate_.capacity() + up_.capacity() + rope_swa_.capacity() +
                        rope_full_.capacity();
  return int64_t(floats * sizeof(float) + positions_.capacity() * sizeof(int64_t));
}

MemoryPlan plan_memory(const Gemma4HParams& hp, int64_t weight_bytes, const KvCacheConfig& cache,
                       int64_t batch_size) {
  MemoryPlan p;
  p.weights = weight_bytes;
  p.kv = KvCache::plan(hp, cache);
  const int64_t T = std::max<int64_t>(1, std::min(batch_size, cache.n_ctx));
  // The forward scratch, attention's partial sums (one state per row and query head, and in a
  // decoding step those of a wave of key splits, while a layer runs) and one row of logits.
  const int64_t attention_partials =
      (T + kAttentionDecodeWave) * int64_t(hp.n_head) * (hp.max_head_dim() + 2) * int64_t(sizeof(float));
  p.activations = ForwardPass::scratch_bytes_for(hp, T) + attention_partials + int64_t(hp.n_vocab) * 4;
  return p;
}

void ForwardPass::validate(std::span<SequenceInput> inputs) const {
  const Gemma4HParams& hp = model_.hp;
  for (size_t s = 0; s < inputs.size(); ++s) {
    const SequenceInput& in = inputs[s];
    if (!in.cache) fail("forward: input ", s, " has no KV cache");
    const int64_t n = int64_t(in.tokens.size());
    if (n == 0) fail("forward: input ", s, " has no tokens");
    if (in.cache->n_past() + n > in.cache->n_ctx())
      fail("the prompt does not fit the context: ", in.cache->n_past(), " positions used + ", n,
           " new > context size ", in.cache->n_ctx());
    for (size_t u = 0; u < s; ++u)
      if (inputs[u].cache == in.cache) fail("forward: two inputs share one KV cache");
    int64_t n_soft = 0;
    for (int32_t id : in.tokens) {
      if (id == kSoftToken) {
        ++n_soft;
      } else if (id < 0 || id >= hp.n_vocab) {
        fail("token id ", id, " is outside the vocabulary (0..", hp.n_vocab - 1, ")");
      }
    }
    if (n_soft > 0 && !in.soft_embeddings)
      fail("forward: input ", s, " has ", n_soft, " soft-token positions but no embeddings");
    if (!in.block_ids.empty() && int64_t(in.block_ids.size()) != n)
      fail("forward: input ", s, " has ", in.block_ids.size(), " block ids for ", n, " tokens");
    for (int32_t r : in.output_rows)
      if (r < 0 || r >= n) fail("forward: output row ", r, " is outside the ", n, " new tokens");
  }
}

void ForwardPass::for_each_row(const std::function<void(int64_t row)>& fn) {
  pool_.parallel_for(n_tokens_, 4, [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) fn(r);
  });
}

void ForwardPass::trace(const char* name, int layer, const std::vector<float>& buf, int64_t row_len) {
  if (trace_) trace_(name, layer, buf.data(), n_tokens_, row_len);
}

// spec §2.1: text rows are E[token] * sqrt(d) in float32 (the fixtures' convention, §8.4); soft
// tokens (image/audio) enter unscaled.
void ForwardPass::embed(std::span<SequenceInput> inputs) {
  const int64_t d = model_.hp.n_embd;
  const float scale = std::sqrt(float(d));
  int64_t row = 0;
  for (const SequenceInput& in : inputs) {
    int64_t soft = 0;
    for (size_t i = 0; i < in.tokens.size(); ++i, ++row) {
      float* x = x_.data() + row * d;
      positions_[size_t(row)] = in.cache->n_past() + int64_t(i);
      if (in.tokens[i] == kSoftToken) {
        std::copy_n(in.soft_embeddings + soft++ * d, d, x);
      } else {
        weight_row_f32(model_.weights.token_embd, in.tokens[i], x);
        for (int64_t j = 0; j < d; ++j) x[j] *= scale;
      }
    }
  }
}

void ForwardPass::run(std::span<SequenceInput> inputs, std::vector<float>& logits) {
  validate(inputs);
  const Gemma4HParams& hp = model_.hp;
  const int64_t d = hp.n_embd;
  n_tokens_ = 0;
  for (const SequenceInput& in : inputs) n_tokens_ += int64_t(in.tokens.size());
  const int64_t T = n_tokens_;
  const int64_t q_row = int64_t(hp.n_head) * hp.max_head_dim();
  positions_.resize(size_t(T));
  x_.resize(size_t(T * d));
  xn_.resize(size_t(T * d));
  proj_.resize(size_t(T * d));
  q_.resize(size_t(T * q_row));
  attn_.resize(size_t(T * q_row));
  k_.resize(size_t(T * hp.max_kv_row()));
  v_.resize(size_t(T * hp.max_kv_row()));
  gate_.resize(size_t(T * hp.max_ff()));
  up_.resize(size_t(T * hp.max_ff()));

  embed(inputs);
  trace("inp_scaled", -1, x_, d);

  // RoPE tables for this pass's positions, one per layer kind (all sliding layers share one
  // geometry, all full layers another; the full layers' factors implement proportional RoPE).
  auto build_rope = [&](bool sliding, std::vector<float>& table) {
    const auto it = std::find_if(hp.layers.begin(), hp.layers.end(),
                                 [&](const LayerGeometry& g) { return g.sliding == sliding; });
    if (it == hp.layers.end()) return;
    const float* factors = sliding || model_.weights.rope_freq_factors.empty()
                               ? nullptr
                               : model_.weights.rope_freq_factors.data();
    table.resize(size_t(T * it->n_rot));
    for_each_row([&](int64_t r) {
      rope_angles(positions_[size_t(r)], it->n_rot, it->rope_base, factors,
                  table.data() + r * it->n_rot);
    });
  };
  build_rope(true, rope_swa_);
  build_rope(false, rope_full_);

  for (int l = 0; l < hp.n_layer; ++l) {
    attention_layer(l, inputs);
    ffn_layer(l);
  }
  for (SequenceInput& in : inputs) in.cache->advance(int64_t(in.tokens.size()));
  compute_logits(inputs, logits);
}

void ForwardPass::attention_layer(int l, std::span<SequenceInput> inputs) {
  const Gemma4HParams& hp = model_.hp;
  const LayerGeometry& g = hp.layer(l);
  const LayerWeights& w = model_.weights.layers[size_t(l)];
  const int64_t d = hp.n_embd, T = n_tokens_, hd = g.head_dim;
  const int64_t q_row = int64_t(hp.n_head) * hd, kv_row = int64_t(g.n_head_kv) * hd;

  for_each_row([&](int64_t r) { rms_norm(&x_[size_t(r * d)], w.attn_norm.data(), &xn_[size_t(r * d)], d, hp.rms_eps); });
  trace("attn_norm", l, xn_, d);

  const MatmulOutput qkv[] = {{&w.wq, q_.data(), q_row}, {&w.wk, k_.data(), kv_row},
                              {&w.wv, v_.data(), kv_row}};
  matmul_shared_input(std::span(qkv, w.wv.present() ? 3 : 2), xn_.data(), d, T, pool_, matmul_mode_);
  if (!w.wv.present())
    std::copy_n(k_.data(), size_t(T * kv_row), v_.data());  // k_eq_v: V is the raw K projection

  // Per head: q and k get their learned RMSNorm then RoPE; v a weightless RMSNorm (spec §2.3).
  const float* rope = (g.sliding ? rope_swa_ : rope_full_).data();
  for_each_row([&](int64_t r) {
    const float* cos_sin = rope + r * g.n_rot;
    for (int h = 0; h < hp.n_head; ++h) {
      float* q = &q_[size_t(r * q_row + h * hd)];
      rms_norm(q, w.q_norm.data(), q, hd, hp.rms_eps);
      rope_neox_inplace(q, cos_sin, g.n_rot);
    }
    for (int h = 0; h < g.n_head_kv; ++h) {
      float* k = &k_[size_t(r * kv_row + h * hd)];
      rms_norm(k, w.k_norm.data(), k, hd, hp.rms_eps);
      rope_neox_inplace(k, cos_sin, g.n_rot);
      float* v = &v_[size_t(r * kv_row + h * hd)];
      rms_norm(v, nullptr, v, hd, hp.rms_eps);
    }
  });
  if (trace_) {
    trace_("Qcur_pos", l, q_.data(), T, q_row);
    trace_("Kcur_pos", l, k_.data(), T, kv_row);
    trace_("Vcur_normed", l, v_.data(), T, kv_row);
  }

  int64_t first_row = 0;
  for (const SequenceInput& in : inputs) {
    attend(l, in, first_row);
    first_row += int64_t(in.tokens.size());
  }
  if (trace_) trace_("kqv_out", l, attn_.data(), T, q_row);

  matmul(w.wo, attn_.data(), q_row, T, proj_.data(), d, pool_, matmul_mode_);
  for_each_row([&](int64_t r) {
    float* o = &proj_[size_t(r * d)];
    rms_norm(o, w.post_attn_norm.data(), o, d, hp.rms_eps);
    float* x = &x_[size_t(r * d)];
    for (int64_t j = 0; j < d; ++j) x[j] += o[j];
  });
  trace("attn_out", l, x_, d);
}

// softmax(q k^T) v for one sequence's rows of layer l, then the new K/V go into its cache.
// Keys before this pass come from the cache, keys of this pass from k_/v_ (so a sliding ring is
// never overwritten before every query of the pass has read it). The new rows are first rounded to
// the cache's precision, so a prompt gives the same result in one pass or token by token.
void ForwardPass::attend(int l, const SequenceInput& in, int64_t first_row) {
  const Gemma4HParams& hp = model_.hp;
  const LayerGeometry& g = hp.layer(l);
  const int64_t n = int64_t(in.tokens.size());
  const int64_t q_row = int64_t(hp.n_head) * g.head_dim, kv_row = int64_t(g.n_head_kv) * g.head_dim;
  KvCache& cache = *in.cache;
  float* k = &k_[size_t(first_row * kv_row)];
  float* v = &v_[size_t(first_row * kv_row)];
  if (cache.type_k() != GgmlType::F32 || cache.type_v() != GgmlType::F32) {
    pool_.parallel_for(n, 4, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) {
        round_trip_row(cache.type_k(), k + i * kv_row, kv_row);
        round_trip_row(cache.type_v(), v + i * kv_row, kv_row);
      }
    });
  }
  AttentionInput a;
  a.layer = l;
  a.geometry = &g;
  a.n_head = hp.n_head;
  a.sliding_window = hp.sliding_window;
  a.cache = &cache;
  a.pos0 = cache.n_past();
  a.n = n;
  a.q = &q_[size_t(first_row * q_row)];
  a.k = k;
  a.v = v;
  a.block_ids = in.block_ids.empty() ? nullptr : in.block_ids.data();
  a.out = &attn_[size_t(first_row * q_row)];
  attention(a, pool_);
  // A sliding layer keeps only the last ring_size positions: rows that would be overwritten within
  // this pass are skipped, so the parallel stores never write the same ring slot twice.
  const int64_t first_kept = g.sliding ? std::max<int64_t>(0, n - cache.ring_size()) : 0;
  pool_.parallel_for(n - first_kept, 4, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = first_kept + begin; i < first_kept + end; ++i)
      cache.store(l, a.pos0 + i, k + i * kv_row, v + i * kv_row);
  });
}

void ForwardPass::ffn_layer(int l) {
  const Gemma4HParams& hp = model_.hp;
  const LayerWeights& w = model_.weights.layers[size_t(l)];
  const int64_t d = hp.n_embd, T = n_tokens_, ff = hp.layer(l).n_ff;

  for_each_row([&](int64_t r) { rms_norm(&x_[size_t(r * d)], w.ffn_norm.data(), &xn_[size_t(r * d)], d, hp.rms_eps); });
  const MatmulOutput gate_up[] = {{&w.w_gate, gate_.data(), ff}, {&w.w_up, up_.data(), ff}};
  matmul_shared_input(gate_up, xn_.data(), d, T, pool_, matmul_mode_);
  for_each_row([&](int64_t r) { geglu_inplace(&gate_[size_t(r * ff)], &up_[size_t(r * ff)], ff); });
  matmul(w.w_down, gate_.data(), ff, T, proj_.data(), d, pool_, matmul_mode_);
  trace("ffn_out", l, proj_, d);
  for_each_row([&](int64_t r) {
    float* f = &proj_[size_t(r * d)];
    rms_norm(f, w.post_ffw_norm.data(), f, d, hp.rms_eps);
    float* x = &x_[size_t(r * d)];
    for (int64_t j = 0; j < d; ++j) x[j] = (x[j] + f[j]) * w.output_scale;
  });
  trace("l_out", l, x_, d);
}

void ForwardPass::compute_logits(std::span<SequenceInput> inputs, std::vector<float>& logits) {
  const Gemma4HParams& hp = model_.hp;
  const int64_t d = hp.n_embd;
  std::vector<int64_t> rows;
  int64_t first_row = 0;
  for (const SequenceInput& in : inputs) {
    for (int32_t r : in.output_rows) rows.push_back(first_row + r);
    first_row += int64_t(in.tokens.size());
  }
  const int64_t n_out = int64_t(rows.size());
  logits.resize(size_t(n_out * hp.n_vocab));
  if (n_out == 0) return;
  std::vector<float> normed(size_t(n_out * d));
  for (int64_t o = 0; o < n_out; ++o)
    rms_norm(&x_[size_t(rows[size_t(o)] * d)], model_.weights.output_norm.data(), &normed[size_t(o * d)], d,
             hp.rms_eps);
  if (trace_) trace_("result_norm", -1, normed.data(), n_out, d);
  matmul(model_.weights.token_embd, normed.data(), d, n_out, logits.data(), hp.n_vocab, pool_, matmul_mode_);
  if (hp.final_logit_softcap > 0.0f)
    softcap_inplace(logits.data(), n_out * hp.n_vocab, hp.final_logit_softcap);
}

}  // namespace g4
