#include "multimodal/image_preprocess.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace g4 {
namespace {

// Keys cubic convolution kernel with a = -0.5 (the antialiased bicubic of PIL and torchvision).
double cubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// For each output index: the first input index and the normalized weights of its taps.
struct Taps {
  std::vector<int> first;
  std::vector<int> count;
  std::vector<double> weights;  // [out][max_taps]
  int max_taps = 0;
};

Taps compute_taps(int in_size, int out_size) {
  const double scale = double(in_size) / double(out_size);
  const double filter_scale = std::max(scale, 1.0);  // widen the kernel when shrinking (antialias)
  const double support = 2.0 * filter_scale;
  Taps t;
  t.max_taps = int(std::ceil(support)) * 2 + 1;
  t.first.resize(size_t(out_size));
  t.count.resize(size_t(out_size));
  t.weights.assign(size_t(out_size) * size_t(t.max_taps), 0.0);
  for (int i = 0; i < out_size; ++i) {
    const double center = scale * (i + 0.5);
    const int lo = std::max(int(center - support + 0.5), 0);
    const int hi = std::min(int(center + support + 0.5), in_size);
    const int n = std::min(hi - lo, t.max_taps);
    double sum = 0.0;
    double* w = &t.weights[size_t(i) * size_t(t.max_taps)];
    for (int j = 0; j < n; ++j) sum += (w[j] = cubic((j + lo - center + 0.5) / filter_scale));
    if (sum != 0.0)
      for (int j = 0; j < n; ++j) w[j] /= sum;
    t.first[size_t(i)] = lo;
    t.count[size_t(i)] = n;
  }
  return t;
}

uint8_t to_u8(double v) { return uint8_t(std::clamp(std::lround(v), 0L, 255L)); }

}  // namespace

bool is_valid_image_token_budget(int n) {
  return n == 70 || n == 140 || n == 280 || n == 560 || n == 1120;
}

ImageSize hf_target_size(int width, int height, int max_soft_tokens) {
  if (width <= 0 || height <= 0) fail("image has no pixels (", width, "x", height, ")");
  if (max_soft_tokens <= 0) fail("image token budget must be positive");
  const double max_patches = double(max_soft_tokens) * 9.0;  // 16-px patches, 3x3 per soft token
  const double target_px = max_patches * 16.0 * 16.0;
  const double f = std::sqrt(target_px / (double(height) * double(width)));
  int th = int(std::floor(f * height / kVisionPatch)) * kVisionPatch;
  int tw = int(std::floor(f * width / kVisionPatch)) * kVisionPatch;
  if (th == 0 && tw == 0) fail("image ", width, "x", height, " is too small to resize");
  const int max_side = max_soft_tokens * kVisionPatch;
  if (th == 0) {
    th = kVisionPatch;
    tw = std::min(int(std::floor(double(width) / height)) * kVisionPatch, max_side);
  } else if (tw == 0) {
    tw = kVisionPatch;
    th = std::min(int(std::floor(double(height) / width)) * kVisionPatch, max_side);
  }
  return {tw, th};
}

std::vector<uint8_t> resize_rgb_bicubic(const uint8_t* rgb, int width, int height, int new_width,
                                        int new_height) {
  if (width <= 0 || height <= 0 || new_width <= 0 || new_height <= 0)
    fail("cannot resize ", width, "x", height, " to ", new_width, "x", new_height);
  // Horizontal pass: [height][new_width][3], rounded to 8 bits.
  const Taps tx = compute_taps(width, new_width);
  std::vector<uint8_t> mid(size_t(height) * size_t(new_width) * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < new_width; ++x)
      for (int c = 0; c < 3; ++c) {
        double acc = 0.0;
        const double* w = &tx.weights[size_t(x) * size_t(tx.max_taps)];
        for (int j = 0; j < tx.count[size_t(x)]; ++j)
          acc += w[j] * rgb[(size_t(y) * size_t(width) + size_t(tx.first[size_t(x)] + j)) * 3 + size_t(c)];
        mid[(size_t(y) * size_t(new_width) + size_t(x)) * 3 + size_t(c)] = to_u8(acc);
      }
  // Vertical pass.
  const Taps ty = compute_taps(height, new_height);
  std::vector<uint8_t> out(size_t(new_height) * size_t(new_width) * 3);
  for (int y = 0; y < new_height; ++y) {
    const double* w = &ty.weights[size_t(y) * size_t(ty.max_taps)];
    for (int x = 0; x < new_width; ++x)
      for (int c = 0; c < 3; ++c) {
        double acc = 0.0;
        for (int j = 0; j < ty.count[size_t(y)]; ++j)
          acc += w[j] * mid[(size_t(ty.first[size_t(y)] + j) * size_t(new_width) + size_t(x)) * 3 + size_t(c)];
        out[(size_t(y) * size_t(new_width) + size_t(x)) * 3 + size_t(c)] = to_u8(acc);
      }
  }
  return out;
}

ImagePatches image_to_patches(const uint8_t* rgb, int width, int height, PatchOrder order) {
  if (width <= 0 || height <= 0 || width % kVisionPatch != 0 || height % kVisionPatch != 0)
    fail("image ", width, "x", height, " is not a whole number of ", kVisionPatch, "-pixel patches");
  ImagePatches p;
  p.grid_cols = width / kVisionPatch;
  p.grid_rows = height / kVisionPatch;
  p.values.resize(size_t(p.count()) * kVisionPatchDim);
  constexpr int kPlane = kVisionPatch * kVisionPatch;  // 2304
  for (int gy = 0; gy < p.grid_rows; ++gy)
    for (int gx = 0; gx < p.grid_cols; ++gx) {
      float* v = &p.values[size_t(gy * p.grid_cols + gx) * kVisionPatchDim];
      for (int r = 0; r < kVisionPatch; ++r)
        for (int c = 0; c < kVisionPatch; ++c) {
          const uint8_t* px = rgb + (size_t(gy * kVisionPatch + r) * size_t(width) + size_t(gx * kVisionPatch + c)) * 3;
          for (int ch = 0; ch < 3; ++ch) {
            const float value = float(px[ch]) / 255.0f;
            if (order == PatchOrder::kCHW) v[ch * kPlane + r * kVisionPatch + c] = value;
            else v[(r * kVisionPatch + c) * 3 + ch] = value;
          }
        }
    }
  return p;
}

ImagePatches preprocess_image(const uint8_t* rgb, int width, int height, int max_soft_tokens,
                              PatchOrder order) {
  const ImageSize target = hf_target_size(width, height, max_soft_tokens);
  if (target.width == width && target.height == height) return image_to_patches(rgb, width, height, order);
  const std::vector<uint8_t> resized = resize_rgb_bicubic(rgb, width, height, target.width, target.height);
  return image_to_patches(resized.data(), target.width, target.height, order);
}

}  // namespace g4
