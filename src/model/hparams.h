// Gemma 4 hyper-parameters, read from GGUF metadata (`gemma4.*`, spec §5.1) and validated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace g4 {

class GgufFile;
class GgufWriter;

// Attention geometry of one layer. Sliding and full layers differ (spec §2.3): the 12B's sliding
// layers have 8 KV heads of 256, its full layers one KV head of 512 with partial RoPE.
struct LayerGeometry {
  bool sliding = true;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_rot = 0;          // rotated dims (NeoX pairs (i, i + n_rot/2)); rope_freqs may zero some
  float rope_base = 0.0f;
  int n_ff = 0;
};

struct Gemma4HParams {
  std::string name;          // general.name, for messages
  int n_embd = 0;            // hidden size d
  int n_layer = 0;
  int n_head = 0;            // query heads, every layer
  int n_vocab = 0;           // rows of token_embd
  int64_t n_ctx_train = 0;   // context_length (metadata only: no RoPE scaling)
  int sliding_window = 0;    // a query sees this many keys, itself included
  float rms_eps = 1e-6f;
  float final_logit_softcap = 0.0f;  // 0 = off
  std::vector<LayerGeometry> layers;

  const LayerGeometry& layer(int l) const { return layers[size_t(l)]; }
  int n_sliding_layers() const;
  int max_head_dim() const;
  int64_t max_kv_row() const;  // max over layers of n_head_kv * head_dim
  int max_ff() const;
};

// Reads and validates. Throws g4::Error naming the file and the key for anything missing, out of
// range or inconsistent, and for Gemma 4 features this engine does not run (KV sharing, per-layer
// embeddings, MoE) so a user knows why a file from another Gemma 4 size is refused.
Gemma4HParams read_gemma4_hparams(const GgufFile& file);

// Writes the gemma4.* keys read_gemma4_hparams reads, with the types and in the order real Gemma 4
// GGUFs hold them (spec §5.1). key_length / rope values of a layer kind the model lacks repeat
// the other kind's (the keys are required either way).
void write_gemma4_hparams(GgufWriter& w, const Gemma4HParams& hp);

}  // namespace g4
