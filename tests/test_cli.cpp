// The gemma4 command end to end: init-random, info, run, logits, and their errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "runtime/sampler.h"
#include "test_util.h"

namespace g4 {
namespace {

using nlohmann::json;
using test::run_cli;

class CliTest : public testing::Test {
 protected:
  void SetUp() override {
    model_ = (dir_ / "tiny.gguf").string();
    const auto r = run_cli("init-random -o " + model_ + " --seed 3");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  test::TempDir dir_;
  std::string model_;
};

TEST_F(CliTest, InfoJsonDescribesTheModelAndItsMemory) {
  const auto r = run_cli("info -m " + model_ + " -c 1000 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["architecture"], "gemma4");
  EXPECT_EQ(j["tensor_count"], 86);
  const json& m = j["model"];
  EXPECT_EQ(m["n_layer"], 6);
  EXPECT_EQ(m["sliding_layers"]["count"], 5);
  EXPECT_EQ(m["full_layers"]["count"], 1);
  EXPECT_EQ(m["full_layers"]["rope_rotated_dims"], 32);
  EXPECT_TRUE(m["full_layers"]["v_from_k"].get<bool>());
  // KV: 5 sliding layers x ring 8 x 2*64 + 1 full layer x 1000 x 128, K and V, f16 by default.
  EXPECT_EQ(m["memory"]["kv_sliding_bytes"], 2 * 5 * 8 * 128 * 2);
  EXPECT_EQ(m["memory"]["kv_full_bytes"], 2 * 1000 * 128 * 2);
  EXPECT_EQ(m["memory"]["total_bytes"].get<int64_t>(), m["memory"]["weights_bytes"].get<int64_t>() +
                                                           m["memory"]["kv_cache_bytes"].get<int64_t>() +
                                                           m["memory"]["activations_bytes"].get<int64_t>());
  const auto q8 = json::parse(run_cli("info -m " + model_ + " -c 1000 --cache-type-k q8_0 --cache-type-v f32 --json").out);
  EXPECT_EQ(q8["model"]["memory"]["kv_full_bytes"], 1000 * 128 * 34 / 32 + 1000 * 128 * 4);
  const auto text = run_cli("info -m " + model_);
  EXPECT_NE(text.out.find("6 layers"), std::string::npos) << text.out;
}

TEST_F(CliTest, InfoOnTheFull12BShape) {
  const std::string big = (dir_ / "12b.gguf").string();
  ASSERT_EQ(run_cli("init-random --preset 12b --type q4_0 --zeros -o " + big).exit_code, 0);
  const auto r = run_cli("info -m " + big + " -c 262144 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["tensor_count"], 667);  // as in real 12B GGUFs (spec §5.1)
  EXPECT_NEAR(j["parameters"].get<double>(), 11.91e9, 0.01e9);
  const json& m = j["model"];
  EXPECT_EQ(m["n_embd"], 3840);
  EXPECT_EQ(m["sliding_layers"]["count"], 40);
  EXPECT_EQ(m["sliding_layers"]["n_head_kv"], 8);
  EXPECT_EQ(m["full_layers"]["head_dim"], 512);
  EXPECT_EQ(m["full_layers"]["rope_rotated_dims"], 128);
  // Sliding layers stay at the 1024 window; full layers grow with the context (f16: 2 bytes).
  const int64_t sliding = 40LL * 1024 * 8 * 256 * 2 * 2, full = 8LL * 262144 * 512 * 2 * 2;
  EXPECT_EQ(m["memory"]["kv_sliding_bytes"], sliding);
  EXPECT_EQ(m["memory"]["kv_full_bytes"], full);
  // The budget: the 12B at Q4_0 with a 256K context in under 12 GB with default settings.
  EXPECT_LT(m["memory"]["total_bytes"].get<double>(), 12e9);
}

TEST_F(CliTest, RunGreedyJsonMatchesTheLibrary) {
  const auto r = run_cli("run -m " + model_ + " --ids 2,300,301,302 -n 6 --temp 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  const auto ids = j["ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(j["finish_reason"], ids.size() == 6 ? "length" : "stop");

  const auto model = Gemma4Model::load(model_);
  ThreadPool pool(1);
  KvCache cache(model->hp, 64);
  ForwardPass forward(*model, pool);
  SamplingParams greedy;
  greedy.temperature = 0;
  Sampler sampler(greedy, model->suppressed_tokens);
  const std::vector<int32_t> prompt = {2, 300, 301, 302};
  const auto expected = generate(*model, forward, cache, prompt, sampler, 6);
  EXPECT_EQ(ids, expected.tokens);
  EXPECT_EQ(j["text"], model->tokenizer->decode(expected.tokens));  // the random vocab has printable tokens
}

TEST_F(CliTest, SeededSamplingIsReproducible) {
  const std::string args = "run -m " + model_ + " --ids 2,300 -n 8 --temp 1.5 --top-k 0 --top-p 1 --seed 9 --json";
  const auto a = run_cli(args), b = run_cli(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(json::parse(a.out)["ids"], json::parse(b.out)["ids"]);
}

TEST_F(CliTest, LogitsPrintsRequestedPositions) {
  const auto r = run_cli("logits -m " + model_ + " --ids 2,300,301 --at -1,0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["n_vocab"], 512);
  EXPECT_EQ(j["at"], json::array({2, 0}));
  ASSERT_EQ(j["logits"].size(), 2u);
  EXPECT_EQ(j["logits"][0].size(), 512u);
  // Same numbers as the library.
  const auto model = Gemma4Model::load(model_);
  ThreadPool pool(1);
  KvCache cache(model->hp, KvCacheConfig{3, GgmlType::F32, GgmlType::F32});  // logits' defaults:
  ForwardPass forward(*model, pool, MatmulMode::kPrecise);                    // float32 throughout
  SequenceInput in;
  in.cache = &cache;
  in.tokens = {2, 300, 301};
  in.output_rows = {2};
  std::vector<float> logits;
  forward.run(std::span<SequenceInput>(&in, 1), logits);
  for (int v = 0; v < 512; v += 37) EXPECT_FLOAT_EQ(j["logits"][0][size_t(v)].get<float>(), logits[size_t(v)]);
}

TEST_F(CliTest, ErrorsAreClearAndExitNonZero) {
  struct Case {
    std::string args, message;
  };
  const std::string missing = (dir_ / "nope.gguf").string();
  const std::string truncated = (dir_ / "truncated.gguf").string();
  {
    std::vector<uint8_t> bytes = test::read_file_bytes(model_);
    bytes.resize(bytes.size() / 3);
    test::write_file_bytes(truncated, bytes);
  }
  const Case cases[] = {
      {"info -m " + missing, "cannot open"},
      {"run -m " + truncated + " --ids 2", "truncated"},
      {"run -m " + model_ + " --ids 2,abc", "bad token id 'abc'"},
      {"run -m " + model_ + " --ids 2,99999", "outside the vocabulary"},
      {"run -m " + model_ + " --ids 2,3,4,5 -c 3", "context"},
      {"logits -m " + model_ + " --ids 2,3 --at 7", "position 7"},
      {"init-random -o " + (dir_ / "x.gguf").string() + " --preset huge", "unknown model preset"},
      {"init-random -o " + (dir_ / "x.gguf").string() + " --type q9_9", "unknown weight type"},
  };
  for (const Case& c : cases) {
    const auto r = run_cli(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  }
}

}  // namespace
}  // namespace g4
