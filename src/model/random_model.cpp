#include "model/random_model.h"

#include <cmath>
#include <functional>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/hparams.h"
#include "ops/quant.h"

namespace g4 {
namespace {

// splitmix64: a tiny, well-mixed generator; one stream per (seed, tensor, row) so rows can be
// generated in any order on any thread and still give the same file.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  float normal() {  // Box-Muller
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
};

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// How each kind of tensor is drawn (chosen so the random model behaves like a trained one in
// scale: unit-ish activations, logits of std ~4 that keep the softcap active, a soft attention).
enum class Init { kProjection, kEmbedding, kNorm, kQkNorm, kLayerScale };

float draw(Init kind, Rng& rng, int n_embd) {
  switch (kind) {
    case Init::kProjection: return 0.02f * rng.normal();
    case Init::kEmbedding: return 4.0f / std::sqrt(float(n_embd)) * rng.normal();
    case Init::kNorm: return 1.0f + 0.1f * rng.normal();
    case Init::kQkNorm: return 0.35f * (1.0f + 0.1f * rng.normal());
    case Init::kLayerScale: return float(0.3 + 0.7 * rng.uniform());
  }
  return 0.0f;
}

bool layer_is_full(const RandomModelSpec& s, int l) {
  return l == s.n_layer - 1 || l % s.full_every == s.full_every - 1;
}

// The vocabulary: Gemma 4's special and control tokens, newline runs, the 256 byte tokens,
// printable ASCII (space written as U+2581), then unused fillers up to n_vocab.
struct Vocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;  // 1 normal, 3 control, 4 user-defined, 5 unused, 6 byte
};

Vocab make_vocab(int n_vocab) {
  Vocab v;
  auto add = [&](const std::string& t, int32_t type) {
    v.tokens.push_back(t);
    v.types.push_back(type);
  };
  for (const char* t : {"<pad>", "<eos>", "<bos>", "<unk>", "<mask>"}) add(t, 3);
  for (const char* t : {"<|tool>", "<tool|>"}) add(t, 3);
  for (const char* t : {"<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|\"|>"}) add(t, 4);
  add("<|think|>", 3);
  for (const char* t : {"<|channel>", "<channel|>"}) add(t, 4);
  for (const char* t : {"<|turn>", "<turn|>", "<|image>", "<image|>", "<|image|>", "<|audio>", "<audio|>",
                        "<|audio|>", "<|video|>"})
    add(t, 3);
  for (const char* t : {"\n", "\n\n", "\n\n\n"}) add(t, 1);
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    add(hex, 6);
  }
  add("\xE2\x96\x81", 1);  // U+2581, the space marker
  for (int c = 33; c < 127; ++c) add(std::string(1, char(c)), 1);
  if (int(v.tokens.size()) > n_vocab)
    fail("a Gemma 4 vocabulary needs at least ", v.tokens.size(), " tokens (asked for ", n_vocab, ")");
  for (int i = int(v.tokens.size()); i < n_vocab; ++i) add(cat("<unused", i, ">"), 5);
  return v;
}

}  // namespace

RandomModelSpec random_model_preset(const std::string& name) {
  RandomModelSpec s;
  if (name == "tiny") return s;
  if (name == "12b" || name == "12b-6layer") {
    s.n_embd = 3840;
    s.n_layer = name == "12b" ? 48 : 6;
    s.n_head = 16;
    s.n_head_kv_swa = 8;
    s.n_head_kv_full = 1;
    s.head_dim_swa = 256;
    s.head_dim_full = 512;
    s.n_ff = 15360;
    s.n_vocab = 262144;
    s.sliding_window = 1024;
    s.n_ctx_train = 262144;
    s.name = "gemma4-random-" + name;
    return s;
  }
  fail("unknown model preset '", name, "' (expected tiny, 12b or 12b-6layer)");
}

void write_random_gemma4(const RandomModelSpec& s, const std::string& path, ThreadPool& pool) {
  if (s.n_embd <= 0 || s.n_layer <= 0 || s.n_head <= 0 || s.n_ff <= 0 || s.sliding_window <= 0 ||
      s.full_every <= 0)
    fail("random model: every size must be positive");
  if (s.n_head % s.n_head_kv_swa != 0 || s.n_head % s.n_head_kv_full != 0)
    fail("random model: head count ", s.n_head, " must be a multiple of the KV head counts");
  const int64_t block = ggml_type_info(s.type).block_size;
  for (int64_t cols : {int64_t(s.n_embd), int64_t(s.n_ff), int64_t(s.n_head) * s.head_dim_swa,
                       int64_t(s.n_head) * s.head_dim_full})
    if (cols % block != 0)
      fail("random model: row length ", cols, " is not a multiple of the ", ggml_type_name(s.type),
           " block size ", block);
  if (!type_is_supported(s.type)) fail("random model: weight type ", ggml_type_name(s.type), " is not supported");
  const int n_rot_full_pairs = s.head_dim_full / 2;
  const int rotated_pairs = int(std::lround(s.full_rope_fraction * float(s.head_dim_full))) / 2;

  const Vocab vocab = make_vocab(s.n_vocab);
  GgufWriter w;
  w.set_string("general.architecture", "gemma4");
  w.set_string("general.name", s.name);
  Gemma4HParams hp;
  hp.n_embd = s.n_embd;
  hp.n_layer = s.n_layer;
  hp.n_head = s.n_head;
  hp.n_ctx_train = s.n_ctx_train;
  hp.sliding_window = s.sliding_window;
  hp.rms_eps = 1e-6f;
  hp.final_logit_softcap = 30.0f;
  for (int l = 0; l < s.n_layer; ++l) {
    const bool full = layer_is_full(s, l);
    // Full layers: proportional RoPE over the whole head, zeroed pairs through rope_freqs.
    hp.layers.push_back({!full, full ? s.n_head_kv_full : s.n_head_kv_swa,
                         full ? s.head_dim_full : s.head_dim_swa,
                         full ? s.head_dim_full : s.head_dim_swa, full ? 1e6f : 1e4f, s.n_ff});
  }
  write_gemma4_hparams(w, hp);
  w.set_string("tokenizer.ggml.model", "gemma4");
  w.set_string_array("tokenizer.ggml.tokens", vocab.tokens);
  w.set_f32_array("tokenizer.ggml.scores", std::vector<float>(vocab.tokens.size(), 0.0f));
  w.set_i32_array("tokenizer.ggml.token_type", vocab.types);
  w.set_string_array("tokenizer.ggml.merges", {});
  w.set_u32("tokenizer.ggml.bos_token_id", 2);
  w.set_u32("tokenizer.ggml.eos_token_id", 1);
  w.set_u32("tokenizer.ggml.unknown_token_id", 3);
  w.set_u32("tokenizer.ggml.padding_token_id", 0);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  w.set_i32_array("tokenizer.ggml.suppress_tokens", {21, 18});  // <audio|>, <image|> in this layout

  // A tensor of `rows` x `cols` drawn row by row; 2-D tensors are stored as s.type.
  auto add = [&](const std::string& name, int64_t rows, int64_t cols, Init kind) {
    const bool matrix = rows > 1 || kind == Init::kEmbedding || kind == Init::kProjection;
    const GgmlType type = matrix ? s.type : GgmlType::F32;
    const std::vector<int64_t> ne = matrix ? std::vector<int64_t>{cols, rows} : std::vector<int64_t>{cols};
    if (matrix && s.zero_matrices) return w.add_tensor_zeros(name, type, ne);
    const uint64_t name_hash = hash_name(name);
    w.add_tensor_streamed(name, type, ne, [=, &s, &pool](uint8_t* dst, size_t) {
      const int64_t row_bytes = ggml_row_bytes(type, cols);
      pool.parallel_for(rows, 16, [&](int64_t r0, int64_t r1, int) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = r0; r < r1; ++r) {
          Rng rng{s.seed * 0x2545F4914F6CDD1Dull ^ name_hash ^ (uint64_t(r) * 0x9E3779B97F4A7C15ull)};
          for (float& x : row) x = draw(kind, rng, s.n_embd);
          quantize_row(type, row.data(), dst + r * row_bytes, cols);
        }
      });
    });
  };

  add("token_embd.weight", s.n_vocab, s.n_embd, Init::kEmbedding);
  add("output_norm.weight", 1, s.n_embd, Init::kNorm);
  {
    // Proportional RoPE (spec §2.5): factor 1 on the rotated pairs, 1e30 (angle ~0) on the rest.
    std::vector<float> factors(size_t(n_rot_full_pairs), 1e30f);
    for (int i = 0; i < rotated_pairs && i < n_rot_full_pairs; ++i) factors[size_t(i)] = 1.0f;
    w.add_tensor("rope_freqs.weight", GgmlType::F32, {n_rot_full_pairs}, factors.data(),
                 factors.size() * sizeof(float));
  }
  for (int l = 0; l < s.n_layer; ++l) {
    const bool full = layer_is_full(s, l);
    const int64_t hd = full ? s.head_dim_full : s.head_dim_swa;
    const int64_t kv = (full ? s.n_head_kv_full : s.n_head_kv_swa) * hd;
    const int64_t q = int64_t(s.n_head) * hd;
    const std::string p = cat("blk.", l, ".");
    add(p + "attn_norm.weight", 1, s.n_embd, Init::kNorm);
    add(p + "attn_q.weight", q, s.n_embd, Init::kProjection);
    add(p + "attn_k.weight", kv, s.n_embd, Init::kProjection);
    if (!full) add(p + "attn_v.weight", kv, s.n_embd, Init::kProjection);  // full layers: k_eq_v
    add(p + "attn_output.weight", s.n_embd, q, Init::kProjection);
    add(p + "attn_q_norm.weight", 1, hd, Init::kQkNorm);
    add(p + "attn_k_norm.weight", 1, hd, Init::kQkNorm);
    add(p + "post_attention_norm.weight", 1, s.n_embd, Init::kNorm);
    add(p + "ffn_norm.weight", 1, s.n_embd, Init::kNorm);
    add(p + "ffn_gate.weight", s.n_ff, s.n_embd, Init::kProjection);
    add(p + "ffn_up.weight", s.n_ff, s.n_embd, Init::kProjection);
    add(p + "ffn_down.weight", s.n_embd, s.n_ff, Init::kProjection);
    add(p + "post_ffw_norm.weight", 1, s.n_embd, Init::kNorm);
    add(p + "layer_output_scale.weight", 1, 1, Init::kLayerScale);
  }
  w.write(path);
}

}  // namespace g4
