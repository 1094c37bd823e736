// `gemma4 quantize`: tensor bytes and per-tensor types against what llama-quantize wrote for the
// fixture model, the mix rules on the 12B shape, metadata, fallbacks and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "model/quantize_model.h"
#include "model/random_model.h"
#include "model_test_helpers.h"
#include "test_util.h"

namespace g4 {
namespace {

std::filesystem::path tiny(const std::string& file) {
  return test::fixtures_dir() / "gemma4-tiny" / file;
}

std::string quantize(const std::string& in, const std::string& out, const std::string& type,
                     int threads = 2, bool pure = false, bool allow_requantize = false) {
  QuantizeOptions options;
  options.target = quantize_target_from_name(type);
  options.pure = pure;
  options.allow_requantize = allow_requantize;
  ThreadPool pool(threads);
  quantize_gguf(in, out, options, pool);
  return out;
}

std::vector<float> logits_of(const std::string& path, const std::vector<int32_t>& ids) {
  return test::logits_at_every_position(*Gemma4Model::load(path), ids);
}

class QuantizeTest : public testing::Test {
 protected:
  test::TempDir dir_;
};

TEST_F(QuantizeTest, LegacyTypesReproduceLlamaQuantizeByteForByte) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  // Q8_0 .. Q5_1 use ggml's reference quantizers (ops/quant.h): every tensor of those types must
  // hold the bytes llama-quantize wrote. Its Q6_K token_embd comes from a different (least-squares)
  // K-quant encoder, so only its type is compared.
  for (const char* variant : {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1"}) {
    SCOPED_TRACE(variant);
    const std::string out = quantize(tiny("text-f32.gguf").string(),
                                     (dir_ / (std::string(variant) + ".gguf")).string(), variant);
    const GgufFile got = GgufFile::open(out);
    const GgufFile ref = GgufFile::open(tiny(std::string("text-") + variant + ".gguf").string());
    ASSERT_EQ(got.tensors().size(), ref.tensors().size());
    int identical = 0;
    for (const GgufTensorInfo& t : got.tensors()) {
      const GgufTensorInfo& r = ref.tensor(t.name);
      EXPECT_EQ(t.type, r.type) << t.name;
      EXPECT_EQ(t.shape_string(), r.shape_string()) << t.name;
      if (t.type == GgmlType::Q6_K) continue;
      ASSERT_EQ(t.n_bytes, r.n_bytes) << t.name;
      EXPECT_EQ(std::memcmp(t.data, r.data, t.n_bytes), 0) << t.name;
      ++identical;
    }
    EXPECT_GE(identical, 85);
  }
}

TEST_F(QuantizeTest, TypesPerTensorMatchTheFixtureManifest) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(std::ifstream(tiny("manifest.json")));
  const nlohmann::json& types = manifest.at("quant_tensor_types");
  ASSERT_GE(types.size(), 8u);
  for (const auto& [variant, per_tensor] : types.items()) {
    SCOPED_TRACE(variant);
    const std::string out =
        quantize(tiny("text-f32.gguf").string(), (dir_ / (variant + ".gguf")).string(), variant);
    const GgufFile got = GgufFile::open(out);
    ASSERT_EQ(got.tensors().size(), per_tensor.size());
    for (const GgufTensorInfo& t : got.tensors())
      EXPECT_EQ(ggml_type_name(t.type), per_tensor.at(t.name).get<std::string>()) << t.name;
  }
}

TEST_F(QuantizeTest, MetadataIsThatOfLlamaQuantize) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-q4_k_m.gguf");
  // Every key in the same order with the same value, general.file_type (15 = Q4_K_M) and
  // general.quantization_version included.
  const GgufFile got = GgufFile::open(
      quantize(tiny("text-f32.gguf").string(), (dir_ / "q.gguf").string(), "Q4_K_M"));
  const GgufFile ref = GgufFile::open(tiny("text-q4_k_m.gguf").string());
  ASSERT_EQ(got.metadata().size(), ref.metadata().size());
  for (size_t i = 0; i < ref.metadata().size(); ++i) {
    EXPECT_EQ(got.metadata()[i].key, ref.metadata()[i].key);
    EXPECT_EQ(got.value_to_string(got.metadata()[i], 1u << 20),
              ref.value_to_string(ref.metadata()[i], 1u << 20))
        << ref.metadata()[i].key;
  }
  EXPECT_EQ(got.get_int("general.file_type"), 15);
}

TEST_F(QuantizeTest, QuantizedModelsLoadAndRun) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-q8_0.gguf");
  const std::vector<int32_t> ids = {2, 300, 301, 302, 400, 500, 600, 700, 800, 900, 1000, 1100};
  // Same bytes as llama-quantize's Q8_0 file -> the same logits.
  const std::string q8 =
      quantize(tiny("text-f32.gguf").string(), (dir_ / "q8.gguf").string(), "q8_0");
  EXPECT_EQ(logits_of(q8, ids), logits_of(tiny("text-q8_0.gguf").string(), ids));
  // The K-quant mix runs and stays near the F32 model (TOLERANCES.md row 3: weight quantization
  // alone moves Q4_K_M logits by 4.9..12 on this model; a broken block layout by far more).
  const std::vector<float> f32 = logits_of(tiny("text-f32.gguf").string(), ids);
  for (const char* type : {"q4_k_m", "q6_k"}) {
    const std::vector<float> q =
        logits_of(quantize(tiny("text-f32.gguf").string(),
                           (dir_ / (std::string(type) + ".gguf")).string(), type),
                  ids);
    ASSERT_EQ(q.size(), f32.size());
    double sum_sq = 0.0;
    for (size_t i = 0; i < q.size(); ++i) {
      ASSERT_TRUE(std::isfinite(q[i]));
      sum_sq += double(q[i] - f32[i]) * double(q[i] - f32[i]);
    }
    EXPECT_LT(std::sqrt(sum_sq / double(q.size())), 2.0) << type << ": rms logit difference to F32";
  }
}

TEST_F(QuantizeTest, MixRulesOnTheTinyShape) {
  // Without fixtures: the random model has the fixture's layer structure, so llama-quantize's
  // choices (fixture README) apply: token_embd Q6_K; attn_v of layers 2 and 4 (of the 5 that
  // have one) and ffn_down of layers 2 and 5 in Q6_K; norms F32.
  ThreadPool pool(2);
  const std::string in = (dir_ / "f32.gguf").string();
  write_random_gemma4(RandomModelSpec{}, in, pool);
  const GgufFile f = GgufFile::open(quantize(in, (dir_ / "q.gguf").string(), "Q5_K_M"));
  for (const GgufTensorInfo& t : f.tensors()) {
    GgmlType want = GgmlType::Q5_K;
    if (t.n_dims == 1) want = GgmlType::F32;
    for (const char* name : {"token_embd.weight", "blk.2.attn_v.weight", "blk.4.attn_v.weight",
                             "blk.2.ffn_down.weight", "blk.5.ffn_down.weight"})
      if (t.name == name) want = GgmlType::Q6_K;
    EXPECT_EQ(t.type, want) << t.name;
  }
  EXPECT_EQ(f.get_int("general.file_type"), 17);
  // --pure: everything 2-D in the base type.
  const GgufFile pure = GgufFile::open(quantize(in, (dir_ / "p.gguf").string(), "Q4_K", 2, true));
  EXPECT_EQ(pure.tensor("token_embd.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(pure.tensor("blk.2.attn_v.weight").type, GgmlType::Q4_K);
  // Q8_0 keeps the output in Q8_0; Q4_0 moves it to Q6_K.
  EXPECT_EQ(GgufFile::open(quantize(in, (dir_ / "a.gguf").string(), "q8_0"))
                .tensor("token_embd.weight")
                .type,
            GgmlType::Q8_0);
  EXPECT_EQ(GgufFile::open(quantize(in, (dir_ / "b.gguf").string(), "q4_0"))
                .tensor("token_embd.weight")
                .type,
            GgmlType::Q6_K);
}

TEST_F(QuantizeTest, MixRulesOnThe12BShape) {
  // The 48-layer 12B layout (zero weights, file holes: only the plan is computed). attn_v exists
  // on the 40 sliding layers; "more bits" are the attn_v ranks 0-4, 35-39 and every third from 7
  // (7, 10, ..., 34), and the ffn_down layers 0-5, 42-47 and 8, 11, ..., 41.
  ThreadPool pool(2);
  RandomModelSpec spec = random_model_preset("12b");
  spec.zero_matrices = true;
  const std::string in = (dir_ / "12b.gguf").string();
  write_random_gemma4(spec, in, pool);
  QuantizeOptions options;
  options.target = quantize_target_from_name("Q4_K_M");
  const std::vector<QuantizeTensorPlan> plans = plan_quantization(GgufFile::open(in), options);
  std::vector<int> attn_v_q6, ffn_down_q6;
  for (const QuantizeTensorPlan& p : plans) {
    const int layer = p.name.rfind("blk.", 0) == 0 ? std::atoi(p.name.c_str() + 4) : -1;
    if (p.name.find("attn_v") != std::string::npos && p.to == GgmlType::Q6_K)
      attn_v_q6.push_back(layer);
    if (p.name.find("ffn_down") != std::string::npos && p.to == GgmlType::Q6_K)
      ffn_down_q6.push_back(layer);
    if (p.name == "token_embd.weight") {
      EXPECT_EQ(p.to, GgmlType::Q6_K);
    } else if (p.name.find("norm") != std::string::npos) {
      EXPECT_EQ(p.to, GgmlType::F32) << p.name;
    } else if (p.name.find("attn_q.") != std::string::npos) {
      EXPECT_EQ(p.to, GgmlType::Q4_K) << p.name;
    }
  }
  // Sliding layers l = 0..46 without 5, 11, ...: attn_v rank i is layer i + i / 5.
  std::vector<int> want_v;
  for (int i = 0; i < 40; ++i)
    if (i < 5 || i >= 35 || (i >= 5 && (i - 5) % 3 == 2)) want_v.push_back(i + i / 5);
  EXPECT_EQ(attn_v_q6, want_v);
  EXPECT_EQ(attn_v_q6.size(), 20u);
  EXPECT_EQ(ffn_down_q6, (std::vector<int>{0,  1,  2,  3,  4,  5,  8,  11, 14, 17, 20, 23,
                                           26, 29, 32, 35, 38, 41, 42, 43, 44, 45, 46, 47}));
}

TEST_F(QuantizeTest, RowsThatAreNotWholeBlocksFallBack) {
  ThreadPool pool(2);
  RandomModelSpec spec;
  spec.n_embd = 288;  // 9 x 32: whole Q4_0/Q5_0 blocks, not whole 256-blocks
  const std::string in = (dir_ / "odd.gguf").string();
  write_random_gemma4(spec, in, pool);
  QuantizeOptions options;
  options.target = quantize_target_from_name("Q4_K_M");
  ThreadPool p2(2);
  const QuantizeReport report = quantize_gguf(in, (dir_ / "q.gguf").string(), options, p2);
  const GgufFile f = GgufFile::open((dir_ / "q.gguf").string());
  EXPECT_EQ(f.tensor("blk.0.attn_q.weight").type, GgmlType::Q5_0);    // rows of 288
  EXPECT_EQ(f.tensor("blk.2.ffn_down.weight").type, GgmlType::Q6_K);  // rows of 512, more bits
  EXPECT_EQ(f.tensor("blk.1.ffn_down.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(f.tensor("token_embd.weight").type, GgmlType::Q8_0);  // output rule
  ASSERT_FALSE(report.notes.empty());
  EXPECT_NE(report.notes[0].find("not a multiple"), std::string::npos) << report.notes[0];
  EXPECT_NO_THROW(Gemma4Model::load((dir_ / "q.gguf").string()));

  spec.n_embd = 80;  // not even whole 32-blocks: F16
  write_random_gemma4(spec, in, pool);
  options.target = quantize_target_from_name("Q4_0");
  quantize_gguf(in, (dir_ / "r.gguf").string(), options, p2);
  EXPECT_EQ(GgufFile::open((dir_ / "r.gguf").string()).tensor("blk.0.attn_k.weight").type,
            GgmlType::F16);
}

TEST_F(QuantizeTest, PlainTargetsAndThreadCountsAgree) {
  ThreadPool pool(2);
  const std::string in = (dir_ / "f32.gguf").string();
  write_random_gemma4(RandomModelSpec{}, in, pool);
  const GgufFile f16 = GgufFile::open(quantize(in, (dir_ / "f16.gguf").string(), "F16"));
  EXPECT_EQ(f16.tensor("token_embd.weight").type, GgmlType::F16);
  EXPECT_EQ(f16.tensor("output_norm.weight").type, GgmlType::F32);
  EXPECT_EQ(f16.get_int("general.file_type"), 1);
  EXPECT_EQ(GgufFile::open(quantize(in, (dir_ / "bf16.gguf").string(), "bf16"))
                .tensor("blk.0.ffn_up.weight")
                .type,
            GgmlType::BF16);
  // Row-parallel encoding: the same file whatever the thread count.
  EXPECT_TRUE(test::read_file_bytes(quantize(in, (dir_ / "t1.gguf").string(), "Q4_K_M", 1)) ==
              test::read_file_bytes(quantize(in, (dir_ / "t2.gguf").string(), "Q4_K_M", 2)));
}

TEST_F(QuantizeTest, ErrorsAreClear) {
  ThreadPool pool(2);
  const std::string in = (dir_ / "f32.gguf").string();
  write_random_gemma4(RandomModelSpec{}, in, pool);
  test::expect_error_containing([] { quantize_target_from_name("q3_k_s"); },
                                {"q3_k_s", "Q4_K_M", "Q6_K"});
  const std::string q8 = quantize(in, (dir_ / "q8.gguf").string(), "q8_0");
  test::expect_error_containing([&] { quantize(q8, (dir_ / "x.gguf").string(), "q4_0"); },
                                {"q8.gguf", "already Q8_0", "--allow-requantize"});
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.gguf"));
  const GgufFile re =
      GgufFile::open(quantize(q8, (dir_ / "x.gguf").string(), "q4_0", 2, false, true));
  EXPECT_EQ(re.tensor("blk.0.attn_q.weight").type, GgmlType::Q4_0);
  // Same type in and out: copied, not requantized (no permission needed).
  EXPECT_NO_THROW(quantize(q8, (dir_ / "y.gguf").string(), "q8_0"));
  test::expect_error_containing([&] { quantize(in, in, "q8_0"); }, {"must not be the input"});
  GgufWriter clip;
  clip.set_string("general.architecture", "clip");
  clip.write((dir_ / "mmproj.gguf").string());
  test::expect_error_containing(
      [&] { quantize((dir_ / "mmproj.gguf").string(), (dir_ / "z.gguf").string(), "q8_0"); },
      {"clip", "projector"});
}

TEST_F(QuantizeTest, CommandLine) {
  ThreadPool pool(2);
  const std::string in = (dir_ / "f32.gguf").string(), out = (dir_ / "q.gguf").string();
  write_random_gemma4(RandomModelSpec{}, in, pool);
  const auto r = test::run_cli("quantize " + in + " " + out + " q4_k_m -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("100%"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Q4_K_M"), std::string::npos) << r.err;
  EXPECT_EQ(GgufFile::open(out).get_int("general.file_type"), 15);
  const auto bad = test::run_cli("quantize " + in + " " + out + " q2_k");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("unknown quantization type 'q2_k'"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace g4
