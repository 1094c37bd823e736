#include "multimodal/projector.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/weights.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace g4 {
namespace {

constexpr float kLayerNormEps = 1e-5f;  // spec §3.3: torch's default, hard-coded in llama.cpp too

std::vector<float> read_f32(const GgufFile& f, const std::string& name, std::vector<int64_t> ne) {
  const GgufTensorInfo& t = f.tensor(name);
  check_tensor_shape(f, t, ne);
  std::vector<float> out(size_t(t.n_elements()));
  const int64_t row = t.ne[0];
  for (int64_t r = 0; r < t.n_elements() / row; ++r)
    dequantize_row(t.type, t.data + r * ggml_row_bytes(t.type, row), out.data() + r * row, row);
  return out;
}

WeightMatrix read_matrix(const GgufFile& f, const std::string& name, int64_t rows, int64_t cols) {
  return bind_weight_matrix(f, f.tensor(name), rows, cols);
}

float epsilon(const GgufFile& f, const char* key) {
  const float eps = float(f.get_float_opt(key).value_or(1e-6));
  if (!(eps > 0.0f && eps < 1.0f)) fail(f.path(), ": ", key, " = ", eps, " is out of range (0, 1)");
  return eps;
}

}  // namespace

MultimodalProjector::MultimodalProjector(std::string path, int n_embd,
                                         std::unique_ptr<VisionEmbedderWeights> vision,
                                         std::unique_ptr<AudioEmbedderWeights> audio,
                                         std::shared_ptr<const void> storage)
    : path_(std::move(path)), n_embd_(n_embd), vision_(std::move(vision)), audio_(std::move(audio)),
      storage_(std::move(storage)) {}

std::unique_ptr<MultimodalProjector> MultimodalProjector::load(const std::string& path, int n_embd) {
  auto file = std::make_shared<GgufFile>(GgufFile::open(path));
  const GgufFile& f = *file;
  const std::string arch = f.get_string("general.architecture");
  if (arch != "clip")
    fail(path, ": general.architecture is '", arch, "', expected 'clip' (a multimodal projector",
         arch == "gemma4" ? "; this is a text model: pass it with -m" : "", ")");

  std::unique_ptr<VisionEmbedderWeights> vision;
  if (f.get_bool_opt("clip.has_vision_encoder").value_or(false)) {
    const std::string type = f.get_string("clip.vision.projector_type");
    if (type != "gemma4uv")
      fail(path, ": clip.vision.projector_type is '", type, "'; this engine runs Gemma 4 12B's encoder-free "
           "'gemma4uv' projector");
    vision = std::make_unique<VisionEmbedderWeights>();
    VisionEmbedderWeights& v = *vision;
    const GgufTensorInfo& dense = f.tensor("v.patch_embd.weight");
    if (dense.n_dims != 2 || dense.ne[0] != kVisionPatchDim)
      fail(path, ": tensor 'v.patch_embd.weight' has shape ", dense.shape_string(), ", expected [",
           kVisionPatchDim, ", dim]");
    const int64_t dim = dense.ne[1];
    v.ln1_w = read_f32(f, "v.patch_norm.1.weight", {kVisionPatchDim});
    v.ln1_b = read_f32(f, "v.patch_norm.1.bias", {kVisionPatchDim});
    v.dense = read_matrix(f, "v.patch_embd.weight", dim, kVisionPatchDim);
    v.dense_b = read_f32(f, "v.patch_embd.bias", {dim});
    v.ln2_w = read_f32(f, "v.patch_norm.2.weight", {dim});
    v.ln2_b = read_f32(f, "v.patch_norm.2.bias", {dim});
    const GgufTensorInfo& pos = f.tensor("v.position_embd.weight");
    if (pos.n_dims != 3 || pos.ne[0] != dim || pos.ne[2] != 2 || pos.ne[1] < 1)
      fail(path, ": tensor 'v.position_embd.weight' has shape ", pos.shape_string(), ", expected [", dim,
           ", n_positions, 2]");
    v.n_pos = int(pos.ne[1]);
    const std::vector<float> table = read_f32(f, "v.position_embd.weight", {dim, pos.ne[1], 2});
    v.pos_x.assign(table.begin(), table.begin() + int64_t(table.size() / 2));  // [0][pos][dim]
    v.pos_y.assign(table.begin() + int64_t(table.size() / 2), table.end());    // [1][pos][dim]
    v.ln3_w = read_f32(f, "v.patch_norm.3.weight", {dim});
    v.ln3_b = read_f32(f, "v.patch_norm.3.bias", {dim});
    v.projection = read_matrix(f, "mm.input_projection.weight", n_embd, dim);
    v.rms_eps = epsilon(f, "clip.vision.attention.layer_norm_epsilon");
    v.patch_order = PatchOrder::kCHW;
  }

  std::unique_ptr<AudioEmbedderWeights> audio;
  if (f.get_bool_opt("clip.has_audio_encoder").value_or(false)) {
    const std::string type = f.get_string("clip.audio.projector_type");
    if (type != "gemma4ua")
      fail(path, ": clip.audio.projector_type is '", type, "'; this engine runs Gemma 4 12B's encoder-free "
           "'gemma4ua' projector");
    audio = std::make_unique<AudioEmbedderWeights>();
    audio->projection = read_matrix(f, "mm.a.input_projection.weight", n_embd, kAudioFrameSamples);
    audio->rms_eps = epsilon(f, "clip.audio.attention.layer_norm_epsilon");
  }
  if (!vision && !audio) fail(path, ": the projector has neither a vision nor an audio part");
  return std::make_unique<MultimodalProjector>(path, n_embd, std::move(vision), std::move(audio), file);
}

PatchOrder MultimodalProjector::patch_order() const {
  if (!vision_) fail(path_, ": this projector has no vision part");
  return vision_->patch_order;
}

SoftTokens MultimodalProjector::embed_image(const ImagePatches& patches, ThreadPool& pool) const {
  if (!vision_) fail(path_, ": this projector has no vision part: it cannot take images");
  const VisionEmbedderWeights& v = *vision_;
  const int n = patches.count();
  const int64_t dim = v.dense.rows;
  if (patches.grid_cols > v.n_pos || patches.grid_rows > v.n_pos)
    fail("image grid ", patches.grid_cols, "x", patches.grid_rows, " exceeds the projector's ", v.n_pos,
         " positions");

  std::vector<float> normed(size_t(n) * kVisionPatchDim);
  pool.parallel_for(n, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i)
      layer_norm(&patches.values[size_t(i) * kVisionPatchDim], v.ln1_w.data(), v.ln1_b.data(),
                 &normed[size_t(i) * kVisionPatchDim], kVisionPatchDim, kLayerNormEps);
  });
  std::vector<float> z(size_t(n * dim));
  // float32 activations: a 6912-long dot overflows half-precision accumulation (spec §3.3).
  matmul(v.dense, normed.data(), kVisionPatchDim, n, z.data(), dim, pool, MatmulMode::kPrecise);
  pool.parallel_for(n, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      float* zi = &z[size_t(i * dim)];
      const int64_t x = i % patches.grid_cols, y = i / patches.grid_cols;  // raster order
      for (int64_t j = 0; j < dim; ++j) zi[j] += v.dense_b[size_t(j)];
      layer_norm(zi, v.ln2_w.data(), v.ln2_b.data(), zi, dim, kLayerNormEps);
      for (int64_t j = 0; j < dim; ++j) zi[j] += v.pos_x[size_t(x * dim + j)] + v.pos_y[size_t(y * dim + j)];
      layer_norm(zi, v.ln3_w.data(), v.ln3_b.data(), zi, dim, kLayerNormEps);
      rms_norm(zi, nullptr, zi, dim, v.rms_eps);
    }
  });
  SoftTokens out{n, n_embd_, std::vector<float>(size_t(n) * size_t(n_embd_))};
  matmul(v.projection, z.data(), dim, n, out.values.data(), n_embd_, pool, MatmulMode::kPrecise);
  return out;
}

SoftTokens MultimodalProjector::embed_image(const uint8_t* rgb, int width, int height, int max_soft_tokens,
                                            ThreadPool& pool) const {
  if (!vision_) fail(path_, ": this projector has no vision part: it cannot take images");
  return embed_image(preprocess_image(rgb, width, height, max_soft_tokens, vision_->patch_order), pool);
}

SoftTokens MultimodalProjector::embed_audio(const float* samples, size_t n_samples, ThreadPool& pool) const {
  if (!audio_) fail(path_, ": this projector has no audio part: it cannot take audio");
  if (n_samples == 0) fail("the audio has no samples");
  const int n = audio_token_count(n_samples);
  std::vector<float> frames(size_t(n) * kAudioFrameSamples, 0.0f);  // last frame zero-padded
  std::copy_n(samples, n_samples, frames.begin());
  for (int i = 0; i < n; ++i)
    rms_norm(&frames[size_t(i) * kAudioFrameSamples], nullptr, &frames[size_t(i) * kAudioFrameSamples],
             kAudioFrameSamples, audio_->rms_eps);
  SoftTokens out{n, n_embd_, std::vector<float>(size_t(n) * size_t(n_embd_))};
  matmul(audio_->projection, frames.data(), kAudioFrameSamples, n, out.values.data(), n_embd_, pool,
         MatmulMode::kPrecise);
  return out;
}

}  // namespace g4
