// Hugging Face Gemma 4 checkpoints: a folder with config.json (spec §1.1), safetensors shards,
// tokenizer.json, tokenizer_config.json / chat_template.jinja and generation_config.json.
//
//   HfCheckpoint::open(dir)          read the JSON files, map and validate every shard
//   hparams_from_hf_config(config)   -> the Gemma4HParams the GGUF path produces for the same model
//   bind_hf_weights(ckpt, hp)        -> Gemma4Weights pointing into the shards (no copies)
//   load_hf_gemma4(dir)              both, as a model ForwardPass can run
//
// HF stores PyTorch [out, in] row-major matrices, which is exactly a WeightMatrix of rows = out,
// cols = in; F32, F16 and BF16 tensors are used in place. The GGUF converter (model/hf_convert.h)
// writes the same numbers under the names of spec §5.1.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "model/hparams.h"
#include "model/model.h"
#include "model/weights.h"
#include "multimodal/projector.h"

namespace g4 {

struct HfCheckpoint {
  std::string dir;
  nlohmann::json config;                            // config.json
  std::optional<nlohmann::json> generation_config;  // generation_config.json
  std::optional<nlohmann::json> tokenizer_config;   // tokenizer_config.json
  SafetensorsCheckpoint tensors;
  // Prefix of the decoder's tensors: "model.language_model." in the multimodal checkpoints,
  // "model." in text-only (Gemma4ForCausalLM) ones.
  std::string text_prefix;

  // Throws g4::Error naming the file for a missing config.json, invalid JSON or a bad shard.
  static std::unique_ptr<HfCheckpoint> open(const std::string& dir);

  std::string config_path() const;
  std::string tokenizer_json_path() const;  // dir/tokenizer.json (existence not checked)
  // chat_template.jinja when present, else tokenizer_config.json "chat_template" (a string, or
  // the entry named "default" of a list of {name, template}); nullopt when there is none.
  std::optional<std::string> chat_template() const;
};

// The decoder's part of config.json: "text_config" of a multimodal config, else the whole.
const nlohmann::json& hf_text_config(const nlohmann::json& config);

// The hyper-parameters the GGUF metadata of the same model would give (layer kinds, per-layer KV
// heads and head sizes, RoPE bases and rotated dims, window, softcap, eps, vocabulary).
// Proportional RoPE (spec §2.5) gives n_rot = head_dim with rope_freq_factors zeroing the
// unrotated pairs, as in GGUF. Throws g4::Error naming `source` and the key for anything
// missing or out of range, and for Gemma 4 features this engine does not run (KV sharing,
// per-layer embeddings, MoE, double-wide MLP, attention bias, other activations, RoPE scaling).
Gemma4HParams hparams_from_hf_config(const nlohmann::json& config, const std::string& source);

// rope_freqs.weight as the GGUF converter writes it (spec §2.5): per pair of the full layers'
// head, 1.0 for the int(head_dim * partial_rotary_factor / 2) rotated pairs and 1e30 for the
// rest. Empty when full layers use plain (default) RoPE.
std::vector<float> hf_rope_freq_factors(const nlohmann::json& config, const std::string& source);

// The decoder weights of the checkpoint, bound in place. Norms and layer_scalar are decoded to
// float; rope_freq_factors come from the config. Shapes are checked against `hp`; errors name
// the tensor, its shard and expected vs found.
Gemma4Weights bind_hf_weights(const HfCheckpoint& checkpoint, const Gemma4HParams& hp);

// Names of decoder tensors (under text_prefix) that bind_hf_weights does not use: a checkpoint
// with any is a layout this engine does not know.
std::vector<std::string> hf_unknown_text_tensors(const HfCheckpoint& checkpoint,
                                                 const Gemma4HParams& hp);

// --- the multimodal embedders (spec §3.3, §4) ---
//
// Patch order: the HF patch_dense / patch_ln1 weights expect each 48x48 patch as an HWC vector,
// v[(r * P + c) * 3 + ch] (spec §3.1). GGUF mmprojs hold them permuted to CHW,
// v[ch * P * P + r * P + c] (spec §5.2), which is what ggml's im2col produces.
struct HfVisionEmbedder {
  const SafetensorsTensor* patch_ln1_weight = nullptr;    // [P*P*3]
  const SafetensorsTensor* patch_ln1_bias = nullptr;      // [P*P*3]
  const SafetensorsTensor* patch_dense_weight = nullptr;  // [d_mm, P*P*3]
  const SafetensorsTensor* patch_dense_bias = nullptr;    // [d_mm]
  const SafetensorsTensor* patch_ln2_weight = nullptr;    // [d_mm]
  const SafetensorsTensor* patch_ln2_bias = nullptr;      // [d_mm]
  const SafetensorsTensor* pos_embedding =
      nullptr;  // [posemb, 2, d_mm]: [x][0] x-table, [y][1] y-table
  const SafetensorsTensor* pos_norm_weight = nullptr;  // [d_mm]
  const SafetensorsTensor* pos_norm_bias = nullptr;    // [d_mm]
  const SafetensorsTensor* projection =
      nullptr;            // [n_embd, d_mm] embed_vision.embedding_projection
  int patch_size = 0;     // model_patch_size: 48 (16-px patches merged 3x3)
  int teacher_patch = 0;  // vision_config.patch_size: 16
  int d_mm = 0;           // mm_embed_dim
  int posemb_size = 0;    // rows of each position table (1120)
  float rms_eps = 1e-6f;  // the weightless RMSNorm before the projection
};

struct HfAudioEmbedder {
  const SafetensorsTensor* projection = nullptr;  // [n_embd, samples_per_token]
  int samples_per_token = 0;                      // 640
  float rms_eps = 1e-6f;
};

struct HfMultimodalWeights {
  std::optional<HfVisionEmbedder> vision;  // absent when the checkpoint has no vision embedder
  std::optional<HfAudioEmbedder> audio;
  int n_embd = 0;  // the decoder's hidden size the projections map to
};

// Finds and shape-checks the encoder-free embedders of a unified (12B) checkpoint. Throws
// g4::Error for a checkpoint with a vision or audio *encoder* (other Gemma 4 sizes), naming it.
HfMultimodalWeights find_hf_multimodal_weights(const HfCheckpoint& checkpoint);

// For CHW position i of a P x P x 3 patch vector, the HWC position holding the same pixel
// (spec §5.2: perm[i] = row * P * 3 + col * 3 + ch).
inline int64_t hwc_index_of_chw(int64_t i, int64_t patch) {
  const int64_t area = patch * patch;
  const int64_t ch = i / area, row = (i % area) / patch, col = i % patch;
  return row * patch * 3 + col * 3 + ch;
}

// The checkpoint's embedders as a projector (HWC patch order). `checkpoint` must outlive the
// projector's use; pass an owning pointer for a folder given with --mmproj, or a non-owning one
// (no-op deleter) for the checkpoint a loaded model already owns. Throws g4::Error for a
// checkpoint without embedders, or with a patch size or frame size the engine does not run.
std::unique_ptr<MultimodalProjector> load_hf_projector(std::shared_ptr<const HfCheckpoint> checkpoint);

// --- loading a checkpoint as a runnable model ---

// The engine's model for a HF folder (what Gemma4Model::load does for a directory): the weights
// point into the checkpoint, which the model owns. Tokenizer from tokenizer.json, chat template
// from chat_template.jinja / tokenizer_config.json, sampling defaults, suppressed tokens and
// end-of-generation ids from generation_config.json and config.json, plus the <eos>/<turn|>/
// <|tool_response> markers of the vocabulary.
std::unique_ptr<Gemma4Model> load_hf_gemma4(const std::string& dir);

}  // namespace g4
