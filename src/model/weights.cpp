#include "model/weights.h"

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "ops/kernels.h"
#include "ops/quant.h"
#include "ops/repack.h"

namespace g4 {
namespace {

std::string shape_of(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += cat(i ? ", " : "", ne[i]);
  return s + "]";
}

WeightMatrix matrix(const GgufFile& f, const std::string& name, int64_t rows, int64_t cols) {
  return bind_weight_matrix(f, f.tensor(name), rows, cols);
}

// 1-D vectors (norm weights, factors) are small: decode them to float once at load.
std::vector<float> vector_f32(const GgufFile& f, const std::string& name, int64_t n) {
  const GgufTensorInfo& t = f.tensor(name);
  check_tensor_shape(f, t, {n});
  std::vector<float> out(static_cast<size_t>(n));
  dequantize_row(t.type, t.data, out.data(), n);
  return out;
}

}  // namespace

void check_tensor_shape(const GgufFile& f, const GgufTensorInfo& t, const std::vector<int64_t>& ne) {
  bool ok = t.n_dims == int(ne.size());
  for (size_t i = 0; ok && i < ne.size(); ++i) ok = t.ne[i] == ne[i];
  if (!ok)
    fail(f.path(), ": tensor '", t.name, "' has shape ", t.shape_string(), ", expected ", shape_of(ne),
         " for this model's hyper-parameters");
  if (!type_is_supported(t.type))
    fail(f.path(), ": tensor '", t.name, "' has weight type ", ggml_type_name(t.type),
         ", which this engine cannot compute with (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
         "Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
}

WeightMatrix bind_weight_matrix(const GgufFile& f, const GgufTensorInfo& t, int64_t rows, int64_t cols) {
  check_tensor_shape(f, t, {cols, rows});
  WeightMatrix m;
  m.name = t.name;
  m.type = t.type;
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = ggml_row_bytes(t.type, cols);
  m.data = t.data;
  return m;
}


Gemma4Weights bind_gemma4_weights(const GgufFile& f, const Gemma4HParams& hp) {
  Gemma4Weights w;
  const int64_t d = hp.n_embd;
  {
    const GgufTensorInfo& t = f.tensor("token_embd.weight");
    if (t.n_dims != 2 || t.ne[0] != d)
      fail(f.path(), ": tensor 'token_embd.weight' has shape ", t.shape_string(), ", expected [", d,
           ", n_vocab]");
    w.token_embd = bind_weight_matrix(f, t, t.ne[1], d);
  }
  if (f.find_tensor("output.weight"))
    fail(f.path(), ": has an 'output.weight' tensor; Gemma 4 ties the output to token_embd");
  w.output_norm = vector_f32(f, "output_norm.weight", d);

  // Full layers share one rope_freqs tensor (spec §2.5): 1.0 for rotated pairs, ~1e30 for the
  // pairs proportional RoPE leaves alone.
  int n_rot_full = 0;
  for (const LayerGeometry& g : hp.layers)
    if (!g.sliding) n_rot_full = g.n_rot;
  if (f.find_tensor("rope_freqs.weight")) {
    if (n_rot_full == 0) fail(f.path(), ": has rope_freqs.weight but no full-attention layer");
    w.rope_freq_factors = vector_f32(f, "rope_freqs.weight", n_rot_full / 2);
  }

  for (int l = 0; l < hp.n_layer; ++l) {
    const LayerGeometry& g = hp.layer(l);
    const std::string p = cat("blk.", l, ".");
    const int64_t q_rows = int64_t(hp.n_head) * g.head_dim;
    const int64_t kv_rows = int64_t(g.n_head_kv) * g.head_dim;
    LayerWeights lw;
    lw.attn_norm = vector_f32(f, p + "attn_norm.weight", d);
    lw.wq = matrix(f, p + "attn_q.weight", q_rows, d);
    lw.wk = matrix(f, p + "attn_k.weight", kv_rows, d);
    if (f.find_tensor(p + "attn_v.weight")) lw.wv = matrix(f, p + "attn_v.weight", kv_rows, d);
    lw.wo = matrix(f, p + "attn_output.weight", d, q_rows);
    lw.q_norm = vector_f32(f, p + "attn_q_norm.weight", g.head_dim);
    lw.k_norm = vector_f32(f, p + "attn_k_norm.weight", g.head_dim);
    lw.post_attn_norm = vector_f32(f, p + "post_attention_norm.weight", d);
    lw.ffn_norm = vector_f32(f, p + "ffn_norm.weight", d);
    lw.w_gate = matrix(f, p + "ffn_gate.weight", g.n_ff, d);
    lw.w_up = matrix(f, p + "ffn_up.weight", g.n_ff, d);
    lw.w_down = matrix(f, p + "ffn_down.weight", d, g.n_ff);
    lw.post_ffw_norm = vector_f32(f, p + "post_ffw_norm.weight", d);
    if (f.find_tensor(p + "layer_output_scale.weight"))
      lw.output_scale = vector_f32(f, p + "layer_output_scale.weight", 1)[0];
    w.layers.push_back(std::move(lw));
  }
  return w;
}

WeightsFootprint weights_footprint(const Gemma4Weights& w) {
  WeightsFootprint f;
  auto matrix = [&](const WeightMatrix& m) {
    if (!m.present()) return;
    f.bytes += m.rows * m.row_bytes;
    f.parameters += m.rows * m.cols;
  };
  auto vec = [&](const std::vector<float>& v) {
    f.bytes += int64_t(v.size() * sizeof(float));
    f.parameters += int64_t(v.size());
  };
  matrix(w.token_embd);
  vec(w.output_norm);
  vec(w.rope_freq_factors);
  for (const LayerWeights& l : w.layers) {
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) matrix(*m);
    for (const auto* v : {&l.attn_norm, &l.q_norm, &l.k_norm, &l.post_attn_norm, &l.ffn_norm, &l.post_ffw_norm})
      vec(*v);
    f.bytes += 4;  // layer_scalar
    f.parameters += 1;
  }
  return f;
}

int64_t weights_size_bytes(const Gemma4Weights& w) { return weights_footprint(w).bytes; }

LargeBuffer interleave_for_kernels(Gemma4Weights& w) {
  const KernelTable& kernels = active_kernels();
  std::vector<WeightMatrix*> todo;
  auto consider = [&](WeightMatrix& m) {
    if (m.present() && interleave_rows(kernels, m) > 0) todo.push_back(&m);
  };
  consider(w.token_embd);
  for (LayerWeights& l : w.layers)
    for (WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) consider(*m);
  // One buffer for all of them, each matrix at a 64-byte boundary: one huge-page-aligned mapping
  // leaves only its last partial 2 MiB in small pages, where a buffer per matrix left up to 2 MiB
  // of every matrix (~10% of a 12B model's weights).
  constexpr int64_t kAlign = 64;
  std::vector<int64_t> offsets;
  int64_t total = 0;
  for (const WeightMatrix* m : todo) {
    offsets.push_back(total);
    total += (m->rows * m->row_bytes + kAlign - 1) / kAlign * kAlign;
  }
  LargeBuffer out(size_t(total), LargeBuffer::Fill::kUncommitted);
  if (todo.empty()) return out;
  ThreadPool pool(0);
  for (size_t i = 0; i < todo.size(); ++i) {
    WeightMatrix* m = todo[i];
    uint8_t* dst = out.data() + offsets[i];
    const int group_rows = interleave_rows(kernels, *m);
    pool.parallel_for(m->rows / group_rows, 64, [&](int64_t begin, int64_t end, int) {
      interleave_groups(*m, group_rows, begin, end, dst);
    });
    release_mapped_pages(m->data, size_t(m->rows * m->row_bytes));
    m->data = dst;
    m->interleaved_rows = group_rows;
  }
  return out;
}

}  // namespace g4
