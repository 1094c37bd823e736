// Image preprocessing (spec §3.1): budget-filling sizes, resize, patch layout.
#include <gtest/gtest.h>

#include "core/error.h"
#include "multimodal/image_preprocess.h"

namespace g4 {
namespace {

TEST(ImagePreprocessTest, HfTargetSizeFillsTheBudget) {
  // The spec's worked examples (budget 280).
  ImageSize s = hf_target_size(224, 224, 280);
  EXPECT_EQ(s.width, 768);
  EXPECT_EQ(s.height, 768);
  EXPECT_EQ(s.width / 48 * (s.height / 48), 256);
  s = hf_target_size(640, 480, 280);
  EXPECT_EQ(s.width, 912);
  EXPECT_EQ(s.height, 672);
  EXPECT_EQ(s.width / 48 * (s.height / 48), 266);
  // The fixture image is sized so that no resize happens at budget 70.
  s = hf_target_size(480, 336, 70);
  EXPECT_EQ(s.width, 480);
  EXPECT_EQ(s.height, 336);
  for (int budget : {70, 140, 280, 560, 1120})
    for (auto [w, h] : {std::pair{1, 1}, {1, 5000}, {20000, 20000}, {37, 91}, {4000, 3000}}) {
      s = hf_target_size(w, h, budget);
      EXPECT_GT(s.width, 0);
      EXPECT_GT(s.height, 0);
      EXPECT_EQ(s.width % 48, 0);
      EXPECT_EQ(s.height % 48, 0);
      EXPECT_LE(s.width / 48 * (s.height / 48), budget) << w << "x" << h << " @" << budget;
    }
  // Extreme aspect ratios keep one row of patches.
  s = hf_target_size(20000, 1, 280);
  EXPECT_EQ(s.height, 48);
  EXPECT_EQ(s.width, 280 * 48);
  EXPECT_THROW(hf_target_size(0, 10, 280), Error);
}

TEST(ImagePreprocessTest, BudgetsAreTheTrainedOnes) {
  for (int b : {70, 140, 280, 560, 1120}) EXPECT_TRUE(is_valid_image_token_budget(b));
  for (int b : {0, 1, 100, 281, 2240}) EXPECT_FALSE(is_valid_image_token_budget(b));
}

TEST(ImagePreprocessTest, PatchOrderChwAndHwc) {
  const int w = 96, h = 48;  // two patches side by side
  std::vector<uint8_t> rgb(size_t(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) rgb[size_t((y * w + x) * 3 + c)] = uint8_t((x + 2 * y + 50 * c) % 256);
  const ImagePatches chw = image_to_patches(rgb.data(), w, h, PatchOrder::kCHW);
  const ImagePatches hwc = image_to_patches(rgb.data(), w, h, PatchOrder::kHWC);
  ASSERT_EQ(chw.grid_cols, 2);
  ASSERT_EQ(chw.grid_rows, 1);
  // Patch 1, row 5, column 7, channel 2 == pixel (x = 48 + 7, y = 5).
  const float expected = float((55 + 10 + 100) % 256) / 255.0f;
  EXPECT_EQ(chw.values[6912 + 2 * 2304 + 5 * 48 + 7], expected);
  EXPECT_EQ(hwc.values[6912 + (5 * 48 + 7) * 3 + 2], expected);
  EXPECT_THROW(image_to_patches(rgb.data(), 95, 48, PatchOrder::kCHW), Error);
}

TEST(ImagePreprocessTest, BicubicResizeKeepsConstantsAndAveragesWhenShrinking) {
  std::vector<uint8_t> flat(size_t(37 * 23 * 3), 77);
  for (uint8_t v : resize_rgb_bicubic(flat.data(), 37, 23, 96, 48)) EXPECT_EQ(v, 77);
  for (uint8_t v : resize_rgb_bicubic(flat.data(), 37, 23, 5, 3)) EXPECT_EQ(v, 77);
  // A 1-px checkerboard shrunk 4x is antialiased to mid grey (a plain bicubic would alias).
  std::vector<uint8_t> checker(size_t(64 * 64 * 3));
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) checker[size_t((y * 64 + x) * 3 + c)] = ((x + y) % 2) ? 255 : 0;
  const auto small = resize_rgb_bicubic(checker.data(), 64, 64, 16, 16);
  for (int y = 2; y < 14; ++y)
    for (int x = 2; x < 14; ++x) EXPECT_NEAR(small[size_t((y * 16 + x) * 3)], 127.5, 2.0);
  // Identity size is (almost) the identity: the a = -0.5 kernel interpolates exactly at integers.
  const auto same = resize_rgb_bicubic(checker.data(), 64, 64, 64, 64);
  EXPECT_EQ(same, checker);
}

TEST(ImagePreprocessTest, PreprocessResizesToTheBudget) {
  std::vector<uint8_t> rgb(size_t(224 * 224 * 3), 200);
  const ImagePatches p = preprocess_image(rgb.data(), 224, 224, 280, PatchOrder::kCHW);
  EXPECT_EQ(p.count(), 256);
  EXPECT_EQ(p.values.size(), size_t(256) * 6912);
  EXPECT_FLOAT_EQ(p.values[123], 200.0f / 255.0f);
}

}  // namespace
}  // namespace g4
