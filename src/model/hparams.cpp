#include "model/hparams.h"

#include <algorithm>

#include "core/error.h"
#include "formats/gguf.h"

namespace g4 {
namespace {

constexpr const char* kArch = "gemma4";

std::string key(const char* suffix) { return cat(kArch, ".", suffix); }

// A positive int that fits comfortably in the engine's index types.
int read_positive(const GgufFile& f, const std::string& k, int64_t max_value = 1 << 24) {
  const int64_t v = f.get_int(k);
  if (v <= 0 || v > max_value)
    fail(f.path(), ": metadata ", k, " = ", v, " is out of range (expected 1..", max_value, ")");
  return int(v);
}

// A per-layer value stored either as one integer or as an array of n_layer integers.
std::vector<int> read_per_layer_int(const GgufFile& f, const std::string& k, int n_layer) {
  const GgufKv* kv = f.find(k);
  if (!kv) fail(f.path(), ": missing metadata key ", k);
  if (kv->type != GgufValueType::ARRAY) return std::vector<int>(size_t(n_layer), read_positive(f, k));
  const std::vector<int64_t> values = f.get_int_array(k);
  if (values.size() != size_t(n_layer))
    fail(f.path(), ": metadata ", k, " has ", values.size(), " entries, expected one per layer (",
         n_layer, ")");
  std::vector<int> out;
  for (size_t l = 0; l < values.size(); ++l) {
    if (values[l] <= 0 || values[l] > (1 << 24))
      fail(f.path(), ": metadata ", k, "[", l, "] = ", values[l], " is out of range");
    out.push_back(int(values[l]));
  }
  return out;
}

void require_zero(const GgufFile& f, const std::string& k, const char* feature) {
  const auto v = f.get_int_opt(k);
  if (v && *v != 0)
    fail(f.path(), ": ", k, " = ", *v, ": ", feature,
         " is not supported by this engine (it runs the Gemma 4 12B layout)");
}

}  // namespace

int Gemma4HParams::n_sliding_layers() const {
  return int(std::count_if(layers.begin(), layers.end(), [](const LayerGeometry& g) { return g.sliding; }));
}
int Gemma4HParams::max_head_dim() const {
  int m = 0;
  for (const LayerGeometry& g : layers) m = std::max(m, g.head_dim);
  return m;
}
int64_t Gemma4HParams::max_kv_row() const {
  int64_t m = 0;
  for (const LayerGeometry& g : layers) m = std::max<int64_t>(m, int64_t(g.n_head_kv) * g.head_dim);
  return m;
}
int Gemma4HParams::max_ff() const {
  int m = 0;
  for (const LayerGeometry& g : layers) m = std::max(m, g.n_ff);
  return m;
}

Gemma4HParams read_gemma4_hparams(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  if (arch != kArch)
    fail(f.path(), ": general.architecture is '", arch, "', expected 'gemma4' (a Gemma 4 text model",
         arch == "clip" ? "; this looks like a multimodal projector: pass it with --mmproj" : "", ")");

  Gemma4HParams hp;
  hp.name = f.get_string_opt("general.name").value_or("");
  hp.n_embd = read_positive(f, key("embedding_length"));
  hp.n_layer = read_positive(f, key("block_count"), 4096);
  hp.n_head = read_positive(f, key("attention.head_count"), 4096);
  hp.n_ctx_train = f.get_int_opt(key("context_length")).value_or(0);
  hp.sliding_window = read_positive(f, key("attention.sliding_window"), 1 << 30);
  hp.rms_eps = float(f.get_float(key("attention.layer_norm_rms_epsilon")));
  if (!(hp.rms_eps > 0.0f && hp.rms_eps < 1.0f))
    fail(f.path(), ": ", key("attention.layer_norm_rms_epsilon"), " = ", hp.rms_eps,
         " is out of range (0, 1)");
  hp.final_logit_softcap = float(f.get_float_opt(key("final_logit_softcapping")).value_or(0.0));
  if (hp.final_logit_softcap < 0.0f)
    fail(f.path(), ": ", key("final_logit_softcapping"), " must not be negative");

  require_zero(f, key("attention.shared_kv_layers"), "cross-layer KV sharing (Gemma 4 E2B/E4B)");
  require_zero(f, key("embedding_length_per_layer_input"), "per-layer embeddings (Gemma 4 E2B/E4B)");
  require_zero(f, key("expert_count"), "mixture of experts (Gemma 4 26B-A4B)");

  const int n = hp.n_layer;
  const std::vector<int> n_head_kv = read_per_layer_int(f, key("attention.head_count_kv"), n);
  const std::vector<int> n_ff = read_per_layer_int(f, key("feed_forward_length"), n);
  const std::vector<bool> sliding = f.get_bool_array(key("attention.sliding_window_pattern"));
  if (sliding.size() != size_t(n))
    fail(f.path(), ": ", key("attention.sliding_window_pattern"), " has ", sliding.size(),
         " entries, expected one per layer (", n, ")");

  const int head_dim_full = read_positive(f, key("attention.key_length"), 1 << 16);
  const int head_dim_swa = read_positive(f, key("attention.key_length_swa"), 1 << 16);
  // V has the K geometry: on full layers V is the raw K projection (k_eq_v, spec §2.3).
  const int v_full = read_positive(f, key("attention.value_length"), 1 << 16);
  const int v_swa = read_positive(f, key("attention.value_length_swa"), 1 << 16);
  if (v_full != head_dim_full || v_swa != head_dim_swa)
    fail(f.path(), ": value_length (", v_full, ", swa ", v_swa, ") must equal key_length (",
         head_dim_full, ", swa ", head_dim_swa, ") for Gemma 4");
  const int n_rot_full = f.get_int_opt(key("rope.dimension_count")).value_or(head_dim_full);
  const int n_rot_swa = f.get_int_opt(key("rope.dimension_count_swa")).value_or(head_dim_swa);
  const float base_full = float(f.get_float(key("rope.freq_base")));
  const float base_swa = float(f.get_float(key("rope.freq_base_swa")));
  if (!(base_full > 1.0f) || !(base_swa > 1.0f))
    fail(f.path(), ": rope.freq_base / freq_base_swa must be > 1 (found ", base_full, ", ", base_swa, ")");

  for (int l = 0; l < n; ++l) {
    LayerGeometry g;
    g.sliding = sliding[size_t(l)];
    g.n_head_kv = n_head_kv[size_t(l)];
    g.head_dim = g.sliding ? head_dim_swa : head_dim_full;
    g.n_rot = g.sliding ? n_rot_swa : n_rot_full;
    g.rope_base = g.sliding ? base_swa : base_full;
    g.n_ff = n_ff[size_t(l)];
    if (hp.n_head % g.n_head_kv != 0)
      fail(f.path(), ": layer ", l, ": attention.head_count (", hp.n_head,
           ") is not a multiple of head_count_kv (", g.n_head_kv, ")");
    if (g.head_dim % 2 != 0 || g.n_rot % 2 != 0 || g.n_rot <= 0 || g.n_rot > g.head_dim)
      fail(f.path(), ": layer ", l, ": rope dimension ", g.n_rot, " must be even and within head_dim ",
           g.head_dim);
    hp.layers.push_back(g);
  }
  return hp;
}

void write_gemma4_hparams(GgufWriter& w, const Gemma4HParams& hp) {
  if (hp.layers.empty()) fail("write_gemma4_hparams: no layers");
  const auto first_of = [&](bool sliding) -> const LayerGeometry& {
    for (const LayerGeometry& g : hp.layers)
      if (g.sliding == sliding) return g;
    return hp.layers.front();
  };
  const LayerGeometry& swa = first_of(true);
  const LayerGeometry& full = first_of(false);
  std::vector<int32_t> kv_heads, n_ff;
  std::vector<bool> sliding;
  for (const LayerGeometry& g : hp.layers) {
    kv_heads.push_back(g.n_head_kv);
    n_ff.push_back(g.n_ff);
    sliding.push_back(g.sliding);
  }
  if (hp.n_ctx_train > 0)
    w.set_u32(key("context_length"), uint32_t(std::min<int64_t>(hp.n_ctx_train, UINT32_MAX)));
  w.set_u32(key("embedding_length"), uint32_t(hp.n_embd));
  w.set_u32(key("block_count"), uint32_t(hp.n_layer));
  // One value unless layers differ (the double-wide MLP of other sizes is an array).
  if (std::all_of(n_ff.begin(), n_ff.end(), [&](int32_t v) { return v == n_ff.front(); }))
    w.set_u32(key("feed_forward_length"), uint32_t(n_ff.front()));
  else
    w.set_i32_array(key("feed_forward_length"), n_ff);
  w.set_u32(key("attention.head_count"), uint32_t(hp.n_head));
  w.set_i32_array(key("attention.head_count_kv"), kv_heads);
  w.set_u32(key("attention.key_length"), uint32_t(full.head_dim));
  w.set_u32(key("attention.value_length"), uint32_t(full.head_dim));
  w.set_u32(key("attention.key_length_swa"), uint32_t(swa.head_dim));
  w.set_u32(key("attention.value_length_swa"), uint32_t(swa.head_dim));
  w.set_u32(key("attention.sliding_window"), uint32_t(hp.sliding_window));
  w.set_bool_array(key("attention.sliding_window_pattern"), sliding);
  w.set_u32(key("attention.shared_kv_layers"), 0);
  w.set_f32(key("attention.layer_norm_rms_epsilon"), hp.rms_eps);
  w.set_u32(key("embedding_length_per_layer_input"), 0);
  w.set_f32(key("rope.freq_base"), full.rope_base);
  w.set_f32(key("rope.freq_base_swa"), swa.rope_base);
  w.set_u32(key("rope.dimension_count"), uint32_t(full.n_rot));
  w.set_u32(key("rope.dimension_count_swa"), uint32_t(swa.n_rot));
  if (hp.final_logit_softcap > 0.0f)
    w.set_f32(key("final_logit_softcapping"), hp.final_logit_softcap);
}

}  // namespace g4
