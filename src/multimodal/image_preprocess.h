// Image preprocessing for the encoder-free vision embedder (spec §3.1): the Hugging Face resize
// rule that fills the soft-token budget, an antialiased bicubic resize, and the cut into 48x48
// patch vectors in the order the weights expect.
#pragma once

#include <cstdint>
#include <vector>

namespace g4 {

constexpr int kVisionPatch = 48;                                   // 16-px patches merged 3x3
constexpr int kVisionPatchDim = kVisionPatch * kVisionPatch * 3;   // 6912
constexpr int kDefaultImageTokens = 280;

// Soft-token budgets the model was trained with (spec §3.1).
bool is_valid_image_token_budget(int max_soft_tokens);

struct ImageSize {
  int width = 0;
  int height = 0;
};

// spec §3.1 get_aspect_ratio_preserving_size: scale (up or down) so the image fills the budget,
// aspect preserved, both sides multiples of 48. Throws g4::Error for empty images.
ImageSize hf_target_size(int width, int height, int max_soft_tokens);

// Antialiased bicubic resize of 8-bit RGB (Keys cubic, a = -0.5, support widened by the downscale
// factor; separable, horizontal then vertical, each pass rounded to 8 bits as PIL / torchvision's
// uint8 path does). Returns width*height*3 bytes.
std::vector<uint8_t> resize_rgb_bicubic(const uint8_t* rgb, int width, int height, int new_width,
                                        int new_height);

// The order of the 6912 values in a patch vector. GGUF weights were permuted by the converter and
// expect CHW; Hugging Face weights expect HWC (spec §3.2, §8.3).
enum class PatchOrder { kCHW, kHWC };

struct ImagePatches {
  int grid_cols = 0;            // patches per row (x positions 0..grid_cols-1)
  int grid_rows = 0;            // patch rows (y positions)
  std::vector<float> values;    // [grid_rows * grid_cols][6912], raster order, pixels / 255
  int count() const { return grid_cols * grid_rows; }
};

// Cuts an image whose sides are multiples of 48 into patch vectors (pixels scaled to [0, 1]).
ImagePatches image_to_patches(const uint8_t* rgb, int width, int height, PatchOrder order);

// Everything above in order: size for the budget, resize if needed, cut into patches.
ImagePatches preprocess_image(const uint8_t* rgb, int width, int height, int max_soft_tokens,
                              PatchOrder order);

}  // namespace g4
