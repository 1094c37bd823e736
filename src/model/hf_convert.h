// Hugging Face Gemma 4 checkpoint -> GGUF files that this engine and llama.cpp load: the decoder
// (general.architecture "gemma4", spec §5.1) and the multimodal projector ("clip" with the
// gemma4uv / gemma4ua projector types, spec §5.2).
//
// Tensors are streamed one at a time from the mapped shards into the output (memory: the
// largest output tensor plus the pages of the one being read, which are released afterwards),
// converted row by row on the thread pool.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/ggml_type.h"

namespace g4 {

struct HfCheckpoint;
class ThreadPool;

struct ConvertOptions {
  // Type of the decoder's 2-D weights: F32, F16, BF16 (lossless for BF16 checkpoints) or Q8_0.
  // Norms, layer scales and rope_freqs are always F32.
  GgmlType type = GgmlType::BF16;
  // Type of the projector's matrices (F32, F16 or BF16). Default: `type` when it is one of
  // those, else BF16 (the projector is small; it is not quantized).
  std::optional<GgmlType> mmproj_type;
  std::string name;  // general.name; default: the checkpoint folder's name
};

// Progress of writing a GGUF tensor by tensor (convert and quantize).
struct TensorProgress {
  const std::string& output;  // the file being written
  const std::string& tensor;  // GGUF name of the tensor just written
  int index = 0;              // 1-based
  int count = 0;
  uint64_t bytes_done = 0;  // output tensor bytes written so far, this tensor included
  uint64_t bytes_total = 0;
};
using TensorProgressFn = std::function<void(const TensorProgress&)>;

// What a conversion decided that a user should hear about (type fallbacks, a trimmed
// vocabulary), one line each.
struct ConvertReport {
  std::vector<std::string> notes;
  int n_tensors = 0;
};

// The decoder GGUF: metadata keys and tensor names of spec §5.1 (gemma4.* hyper-parameters,
// rope_freqs.weight, tokenizer.ggml.* from tokenizer.json, tokenizer.chat_template,
// general.sampling.* and suppress_tokens from generation_config.json). Needs tokenizer.json.
// Throws g4::Error naming the file / tensor for anything it cannot convert.
ConvertReport convert_hf_text_model(const HfCheckpoint& checkpoint, const std::string& out_path,
                                    const ConvertOptions& options, ThreadPool& pool,
                                    const TensorProgressFn& progress = {});

// The projector GGUF (spec §5.2): v.patch_norm.1 and the v.patch_embd columns permuted from HWC
// to CHW patch order, the position tables as [2][posemb][d], clip.* keys as llama.cpp writes
// them. Throws g4::Error when the checkpoint has neither embedder.
ConvertReport convert_hf_mmproj(const HfCheckpoint& checkpoint, const std::string& out_path,
                                const ConvertOptions& options, ThreadPool& pool,
                                const TensorProgressFn& progress = {});

}  // namespace g4
