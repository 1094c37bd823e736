// Re-encoding the weights of a Gemma 4 GGUF (`gemma4 quantize`): every 2-D weight goes to the
// target type, or for the usual mixes to the type llama.cpp's llama-quantize picks for it, so the
// files match what users know (checked tensor by tensor against llama-quantize's output on the
// tiny fixture model). 1-D tensors (norms, rope_freqs, layer_output_scale) are copied unchanged.
//
// The mix rules (llama.cpp's, for a model with a tied output like Gemma 4):
// - token_embd (the output projection too): Q6_K for every quantized target except Q8_0, which
//   keeps Q8_0 (Q8_0 when rows are not whole 256-blocks);
// - Q4_K_M / Q5_K_M: attn_v and ffn_down of the "more bits" layers get Q6_K: layer index i of n
//   (counting only the layers that have the tensor) with i < n/8, or i >= 7n/8, or
//   (i - n/8) % 3 == 2;
// - a row length that is not a multiple of the chosen block falls back as llama.cpp does
//   (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16), and the report says so.
// Requantizing an already quantized tensor loses quality twice: refused unless allowed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/ggml_type.h"
#include "model/hf_convert.h"

namespace g4 {

class GgufFile;
class ThreadPool;

struct QuantizeTarget {
  std::string name;    // "Q4_K_M"
  GgmlType base;       // the type of most 2-D tensors
  uint32_t file_type;  // general.file_type (llama_ftype)
  bool more_bits_mix;  // the _M rule for attn_v / ffn_down
};

// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K (= Q4_K_M, as in llama-quantize), Q4_K_M, Q5_K (= Q5_K_M),
// Q5_K_M, Q6_K, F16, BF16, F32; case-insensitive. Throws g4::Error listing them.
QuantizeTarget quantize_target_from_name(const std::string& name);
std::vector<std::string> quantize_target_names();

struct QuantizeOptions {
  QuantizeTarget target = quantize_target_from_name("Q8_0");
  bool pure = false;              // every 2-D tensor in target.base (no mix rules)
  bool allow_requantize = false;  // re-encode tensors that are already quantized
};

struct QuantizeTensorPlan {
  std::string name;
  GgmlType from;
  GgmlType to;
};

// The type each tensor of `in` gets. Throws g4::Error for a non-Gemma 4 file and for quantized
// inputs without allow_requantize.
std::vector<QuantizeTensorPlan> plan_quantization(const GgufFile& in,
                                                  const QuantizeOptions& options,
                                                  std::vector<std::string>* notes = nullptr);

struct QuantizeReport {
  std::vector<std::string> notes;
  int n_tensors = 0;
  uint64_t bytes_in = 0;   // tensor data of the input
  uint64_t bytes_out = 0;  // tensor data of the output
};

// Writes `out_path` with every metadata key of the input (general.file_type and
// general.quantization_version updated) and the tensors in input order, streamed one at a time
// and encoded row-parallel on the pool.
QuantizeReport quantize_gguf(const std::string& in_path, const std::string& out_path,
                             const QuantizeOptions& options, ThreadPool& pool,
                             const TensorProgressFn& progress = {});

}  // namespace g4
