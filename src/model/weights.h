// Binding of the GGUF tensors of a Gemma 4 text model (spec §5.1 table) to the layers that use them,
// with every shape and type checked against the hyper-parameters.
#pragma once

#include <vector>

#include "core/large_buffer.h"
#include "core/tensor.h"
#include "model/hparams.h"

namespace g4 {

class GgufFile;
struct GgufTensorInfo;

struct LayerWeights {
  std::vector<float> attn_norm;        // [d]        HF input_layernorm
  WeightMatrix wq;                     // [H*hd, d]
  WeightMatrix wk;                     // [Hkv*hd, d]
  WeightMatrix wv;                     // [Hkv*hd, d]; absent on k_eq_v layers (V = raw K projection)
  WeightMatrix wo;                     // [d, H*hd]
  std::vector<float> q_norm;           // [hd]
  std::vector<float> k_norm;           // [hd]
  std::vector<float> post_attn_norm;   // [d]
  std::vector<float> ffn_norm;         // [d]        HF pre_feedforward_layernorm
  WeightMatrix w_gate;                 // [ff, d]
  WeightMatrix w_up;                   // [ff, d]
  WeightMatrix w_down;                 // [d, ff]
  std::vector<float> post_ffw_norm;    // [d]
  float output_scale = 1.0f;           // layer_output_scale (HF layer_scalar), spec §2.3
};

struct Gemma4Weights {
  WeightMatrix token_embd;             // [n_vocab, d], also the tied output projection
  std::vector<float> output_norm;      // [d]
  std::vector<float> rope_freq_factors;  // [n_rot_full/2] divisors of the full-layer frequencies; empty = all 1
  std::vector<LayerWeights> layers;
};

// Throws g4::Error naming the file and tensor when `t` does not have dimensions `ne` (ggml order) or
// has a weight type the engine cannot compute with.
void check_tensor_shape(const GgufFile& f, const GgufTensorInfo& t, const std::vector<int64_t>& ne);
// `t` as a rows x cols matrix used in place, after check_tensor_shape.
WeightMatrix bind_weight_matrix(const GgufFile& f, const GgufTensorInfo& t, int64_t rows, int64_t cols);

// Throws g4::Error naming the file and tensor for a missing tensor, a wrong shape (expected vs
// found) or a weight type the engine cannot compute with.
Gemma4Weights bind_gemma4_weights(const GgufFile& file, const Gemma4HParams& hp);

// Bytes the bound tensors occupy (as stored) and how many parameters they hold.
struct WeightsFootprint {
  int64_t bytes = 0;
  int64_t parameters = 0;
};
WeightsFootprint weights_footprint(const Gemma4Weights& w);

// Copies every matrix the active kernels have an interleaved tile for (ops/repack.h) into the
// interleaved layout, points it there and drops its file pages from memory (they are read back
// only if the file is mapped again), so the resident size stays that of the weights. Returns the
// buffer holding them all, which must outlive `w`.
LargeBuffer interleave_for_kernels(Gemma4Weights& w);
int64_t weights_size_bytes(const Gemma4Weights& w);

}  // namespace g4
