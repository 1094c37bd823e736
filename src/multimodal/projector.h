// The multimodal projector of Gemma 4 12B "unified": no vision or audio encoder, just two small
// embedders that map raw 48x48 pixel patches and raw 40 ms waveform frames into the decoder's
// token space (spec §3.3, §4). Loaded from the `clip` GGUF (projector types gemma4uv / gemma4ua,
// tensors of spec §5.2) given with --mmproj.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "multimodal/image_preprocess.h"
#include "ops/matmul.h"

namespace g4 {

class GgufFile;
class ThreadPool;

constexpr int kAudioFrameSamples = 640;  // 40 ms at 16 kHz: one soft token (spec §4)

struct VisionEmbedderWeights {
  std::vector<float> ln1_w, ln1_b;    // [6912]  LayerNorm over the patch vector
  WeightMatrix dense;                 // [dim, 6912]
  std::vector<float> dense_b;         // [dim]
  std::vector<float> ln2_w, ln2_b;    // [dim]
  std::vector<float> pos_x, pos_y;    // [n_pos][dim] position tables (x = column, y = row)
  int n_pos = 0;                      // 1120 in the 12B
  std::vector<float> ln3_w, ln3_b;    // [dim]  "pos_norm"
  WeightMatrix projection;            // [n_embd, dim]  after a weightless RMSNorm
  float rms_eps = 1e-6f;
  PatchOrder patch_order = PatchOrder::kCHW;  // GGUF weights: CHW (spec §3.2)
};

struct AudioEmbedderWeights {
  WeightMatrix projection;  // [n_embd, 640]  after a weightless RMSNorm
  float rms_eps = 1e-6f;
};

// Soft tokens for the decoder: [count][dim] float32, not scaled by sqrt(d) (spec §2.1).
struct SoftTokens {
  int count = 0;
  int dim = 0;
  std::vector<float> values;
};

class MultimodalProjector {
 public:
  // Loads and validates the projector; n_embd is the text model's hidden size (must match).
  // Throws g4::Error naming the file and what is wrong.
  static std::unique_ptr<MultimodalProjector> load(const std::string& path, int n_embd);

  bool has_vision() const { return vision_ != nullptr; }
  bool has_audio() const { return audio_ != nullptr; }
  int n_embd() const { return n_embd_; }
  const std::string& path() const { return path_; }

  // spec §3.3: LN -> dense -> LN -> + x/y position tables -> LN -> RMS -> projection, per patch.
  SoftTokens embed_image(const ImagePatches& patches, ThreadPool& pool) const;
  // Resizes for the budget (spec §3.1), cuts into patches in the weights' order, embeds.
  SoftTokens embed_image(const uint8_t* rgb, int width, int height, int max_soft_tokens, ThreadPool& pool) const;
  // spec §4: 640-sample frames (the last zero-padded), weightless RMS, projection.
  SoftTokens embed_audio(const float* samples, size_t n_samples, ThreadPool& pool) const;

  // The vision weights' patch order (CHW for GGUF projectors).
  PatchOrder patch_order() const;

  // For projectors not read from a GGUF (e.g. a Hugging Face checkpoint).
  MultimodalProjector(std::string path, int n_embd, std::unique_ptr<VisionEmbedderWeights> vision,
                      std::unique_ptr<AudioEmbedderWeights> audio, std::shared_ptr<const void> storage);

 private:
  std::string path_;
  int n_embd_ = 0;
  std::unique_ptr<VisionEmbedderWeights> vision_;
  std::unique_ptr<AudioEmbedderWeights> audio_;
  std::shared_ptr<const void> storage_;  // keeps the mapped file alive
};

// The number of audio soft tokens for n samples: ceil(n / 640).
inline int audio_token_count(size_t n_samples) {
  return int((n_samples + kAudioFrameSamples - 1) / kAudioFrameSamples);
}

}  // namespace g4
