// Writes Gemma 4 GGUF files with random weights: the demo model until a trained one ships, and
// models of any shape for tests. The layout (metadata keys, tensor names, shapes) is exactly that of
// real Gemma 4 GGUFs (spec §5.1), so every loader path is exercised.
#pragma once

#include <cstdint>
#include <string>

#include "core/ggml_type.h"

namespace g4 {

class ThreadPool;

struct RandomModelSpec {
  int n_embd = 256;
  int n_layer = 6;
  int n_head = 4;
  int n_head_kv_swa = 2;
  int n_head_kv_full = 1;
  int head_dim_swa = 64;
  int head_dim_full = 128;
  int n_ff = 512;
  int n_vocab = 512;
  int sliding_window = 8;
  int full_every = 6;               // layer l is full when l % full_every == full_every - 1, and the last layer
  float full_rope_fraction = 0.25f; // proportional RoPE: rotated share of the full layers' head dim
  int64_t n_ctx_train = 8192;
  GgmlType type = GgmlType::F32;    // of the 2-D weights; norms stay F32
  uint64_t seed = 1;
  std::string name = "gemma4-random";
};

// Named shapes: "tiny" (the default above), "12b" (google/gemma-4-12B-it's exact shape), "12b-6layer"
// (the 12B's layer shapes with 6 layers). Throws g4::Error for an unknown name.
RandomModelSpec random_model_preset(const std::string& name);

// Writes the model; tensors are generated and quantized row by row in parallel, streamed to disk.
void write_random_gemma4(const RandomModelSpec& spec, const std::string& path, ThreadPool& pool);

}  // namespace g4
