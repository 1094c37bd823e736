// Loading a Gemma 4 model: every missing key, wrong shape or unsupported type is refused with a
// message naming the file, the key or tensor and what was expected.
#include <gtest/gtest.h>

#include <functional>

#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "model/random_model.h"
#include "ops/quant.h"
#include "test_util.h"

namespace g4 {
namespace {

class ModelLoadTest : public testing::Test {
 protected:
  void SetUp() override {
    ThreadPool pool(2);
    base_ = (dir_ / "base.gguf").string();
    write_random_gemma4(RandomModelSpec{}, base_, pool);
  }

  // Copies the base model, letting `edit` change the writer before tensors are added, and
  // replacing tensors through `tensor_edit` (return false to drop a tensor).
  std::string variant(const std::function<void(GgufWriter&)>& edit_kv,
                      const std::function<bool(const GgufTensorInfo&, GgufWriter&)>& edit_tensor = {}) {
    const GgufFile f = GgufFile::open(base_);
    GgufWriter w;
    for (const GgufKv& kv : f.metadata()) w.copy_kv(f, kv);
    if (edit_kv) edit_kv(w);
    for (const GgufTensorInfo& t : f.tensors()) {
      if (edit_tensor && edit_tensor(t, w)) continue;
      std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
      w.add_tensor(t.name, t.type, ne, t.data, t.n_bytes);
    }
    const std::string path = (dir_ / ("variant" + std::to_string(n_++) + ".gguf")).string();
    w.write(path);
    return path;
  }

  void expect_load_error(const std::string& path, const std::vector<std::string>& fragments) {
    try {
      Gemma4Model::load(path);
      FAIL() << "expected a load error";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(path), std::string::npos) << what;
      for (const std::string& f : fragments) EXPECT_NE(what.find(f), std::string::npos) << what;
    }
  }

  test::TempDir dir_;
  std::string base_;
  int n_ = 0;
};

TEST_F(ModelLoadTest, BaseLoads) {
  const auto m = Gemma4Model::load(base_);
  EXPECT_EQ(m->hp.n_layer, 6);
  EXPECT_EQ(m->n_vocab(), 512);
  EXPECT_EQ(m->end_of_generation, (std::vector<int32_t>{1, 16, 9}));  // <eos>, <turn|>, <|tool_response>
  EXPECT_EQ(m->suppressed_tokens, (std::vector<int32_t>{21, 18}));
}

TEST_F(ModelLoadTest, MissingKeysAreNamed) {
  for (const char* key : {"gemma4.embedding_length", "gemma4.attention.head_count_kv",
                          "gemma4.attention.sliding_window_pattern", "gemma4.rope.freq_base_swa",
                          "gemma4.attention.key_length"}) {
    expect_load_error(variant([&](GgufWriter& w) { w.remove_key(key); }), {key});
  }
}

TEST_F(ModelLoadTest, InconsistentHyperParametersAreRefused) {
  expect_load_error(variant([](GgufWriter& w) { w.set_string("general.architecture", "llama"); }),
                    {"general.architecture", "llama"});
  expect_load_error(variant([](GgufWriter& w) { w.set_i32_array("gemma4.attention.head_count_kv", {2, 2, 2}); }),
                    {"head_count_kv", "one per layer"});
  expect_load_error(variant([](GgufWriter& w) { w.set_u32("gemma4.attention.head_count", 3); }),
                    {"head_count", "multiple"});
  expect_load_error(variant([](GgufWriter& w) { w.set_u32("gemma4.attention.shared_kv_layers", 4); }),
                    {"shared_kv_layers", "not supported"});
  expect_load_error(variant([](GgufWriter& w) { w.set_u32("gemma4.embedding_length", 0); }),
                    {"embedding_length", "out of range"});
  expect_load_error(variant([](GgufWriter& w) { w.set_string("gemma4.block_count", "six"); }),
                    {"gemma4.block_count"});
}

TEST_F(ModelLoadTest, WrongShapesAndMissingTensorsAreNamed) {
  // A transposed attention output projection.
  expect_load_error(variant({}, [](const GgufTensorInfo& t, GgufWriter& w) {
                      if (t.name != "blk.2.attn_output.weight") return false;
                      w.add_tensor(t.name, t.type, {t.ne[1], t.ne[0] * 2}, std::vector<float>(size_t(t.n_elements() * 2)).data(),
                                   size_t(t.n_bytes * 2));
                      return true;
                    }),
                    {"blk.2.attn_output.weight", "expected [256, 256]"});
  expect_load_error(variant({}, [](const GgufTensorInfo& t, GgufWriter&) { return t.name == "blk.4.ffn_up.weight"; }),
                    {"blk.4.ffn_up.weight", "missing"});
  expect_load_error(variant({}, [](const GgufTensorInfo& t, GgufWriter&) { return t.name == "output_norm.weight"; }),
                    {"output_norm.weight"});
}

TEST_F(ModelLoadTest, UnsupportedWeightTypesAreNamed) {
  // Q2_K is a valid GGUF type (so the reader accepts it) that this engine does not compute with.
  const std::string path = variant({}, [](const GgufTensorInfo& t, GgufWriter& w) {
    if (t.name != "blk.1.ffn_gate.weight") return false;
    const int64_t bytes = ggml_row_bytes(GgmlType::Q2_K, t.ne[0]) * t.ne[1];
    w.add_tensor(t.name, GgmlType::Q2_K, {t.ne[0], t.ne[1]}, std::vector<uint8_t>(size_t(bytes)).data(), size_t(bytes));
    return true;
  });
  expect_load_error(path, {"blk.1.ffn_gate.weight", "Q2_K", "cannot compute"});
}

TEST_F(ModelLoadTest, VocabularyAndSuppressTokensMustMatchTheEmbedding) {
  expect_load_error(variant([](GgufWriter& w) { w.set_i32_array("tokenizer.ggml.suppress_tokens", {5, 100000}); }),
                    {"suppress_tokens", "100000"});
  expect_load_error(variant([](GgufWriter& w) { w.set_string_array("tokenizer.ggml.tokens", {"a", "b"}); }),
                    {"tokenizer.ggml.token_type", "512 entries for 2 tokens"});
  // A consistent vocabulary one token larger than the embedding matrix.
  const std::string path = variant([this](GgufWriter& w) {
    const GgufFile f = GgufFile::open(base_);
    std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
    tokens.push_back("<extra>");
    std::vector<int32_t> types;
    for (int64_t t : f.get_int_array("tokenizer.ggml.token_type")) types.push_back(int32_t(t));
    types.push_back(5);
    w.set_string_array("tokenizer.ggml.tokens", tokens);
    w.set_i32_array("tokenizer.ggml.token_type", types);
    w.set_f32_array("tokenizer.ggml.scores", std::vector<float>(tokens.size(), 0.0f));
  });
  expect_load_error(path, {"tokenizer.ggml.tokens has 513 entries", "512 rows"});
}

}  // namespace
}  // namespace g4
