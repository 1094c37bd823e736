// The encoder-free embedders against the fixture projector (TOLERANCES.md row 6: max abs <= 1e-4
// vs the float64 reference from the raw PNG / WAV, and vs llama.cpp).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/thread_pool.h"
#include "multimodal/media.h"
#include "multimodal/projector.h"
#include "test_util.h"

namespace g4 {
namespace {

using nlohmann::json;

json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

double max_abs_diff(const SoftTokens& got, const json& expected) {
  EXPECT_EQ(size_t(got.count), expected.size());
  double worst = 0;
  for (size_t i = 0; i < expected.size() && i < size_t(got.count); ++i) {
    const auto row = expected[i].get<std::vector<double>>();
    EXPECT_EQ(row.size(), size_t(got.dim));
    for (size_t j = 0; j < row.size(); ++j)
      worst = std::max(worst, std::abs(double(got.values[i * size_t(got.dim) + j]) - row[j]));
  }
  return worst;
}

class ProjectorFixtureTest : public testing::Test {
 protected:
  void SetUp() override {
    G4_REQUIRE_FIXTURE("gemma4-tiny/mmproj-f32.gguf");
    dir_ = test::fixtures_dir() / "gemma4-tiny";
    projector_ = MultimodalProjector::load((dir_ / "mmproj-f32.gguf").string(), 256);
  }
  std::filesystem::path dir_;
  std::unique_ptr<MultimodalProjector> projector_;
  ThreadPool pool_{2};
};

TEST_F(ProjectorFixtureTest, ImageEmbeddingsMatchTheReferences) {
  const RgbImage image = decode_image((dir_ / "image.png").string());
  ASSERT_EQ(image.width, 480);
  ASSERT_EQ(image.height, 336);
  const SoftTokens tokens = projector_->embed_image(image.rgb.data(), image.width, image.height, 70, pool_);
  EXPECT_EQ(tokens.count, 70);
  EXPECT_LE(max_abs_diff(tokens, read_json(dir_ / "ref_numpy" / "mm.image.json")["embeddings"]), 1e-4);
  EXPECT_LE(max_abs_diff(tokens, read_json(dir_ / "mm" / "image.json")["embeddings"]), 1e-4);
}

TEST_F(ProjectorFixtureTest, AudioEmbeddingsMatchTheReferences) {
  const std::vector<float> samples = decode_audio((dir_ / "audio.wav").string());
  const SoftTokens tokens = projector_->embed_audio(samples.data(), samples.size(), pool_);
  EXPECT_EQ(tokens.count, audio_token_count(samples.size()));
  EXPECT_NE(samples.size() % 640, 0u);  // the fixture exercises the zero-padded last frame
  EXPECT_LE(max_abs_diff(tokens, read_json(dir_ / "ref_numpy" / "mm.audio.json")["embeddings"]), 1e-4);
  EXPECT_LE(max_abs_diff(tokens, read_json(dir_ / "mm" / "audio.json")["embeddings"]), 1e-4);
}

TEST_F(ProjectorFixtureTest, PixelScalingIsZeroToOne) {
  // TOLERANCES.md row 6: pixels in [-1, 1] instead of [0, 1] move the embeddings by only ~2e-4,
  // so the scaling is checked on its own: a patch of value 255 must be 1.0 exactly.
  std::vector<uint8_t> white(size_t(48 * 48 * 3), 255);
  const ImagePatches p = image_to_patches(white.data(), 48, 48, projector_->patch_order());
  EXPECT_EQ(p.values.front(), 1.0f);
  std::vector<uint8_t> black(size_t(48 * 48 * 3), 0);
  EXPECT_EQ(image_to_patches(black.data(), 48, 48, PatchOrder::kCHW).values.back(), 0.0f);
}

TEST_F(ProjectorFixtureTest, WrongSizesAndFilesAreRefused) {
  EXPECT_THROW(MultimodalProjector::load((dir_ / "mmproj-f32.gguf").string(), 512), Error);
  try {
    MultimodalProjector::load((dir_ / "text-f32.gguf").string(), 256);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text model"), std::string::npos) << e.what();
  }
  EXPECT_THROW(projector_->embed_audio(nullptr, 0, pool_), Error);
}

}  // namespace
}  // namespace g4
