// Hugging Face checkpoints: config.json -> hyper-parameters, in-place weight binding, and
// `convert` to GGUF. The tests write small HF-layout checkpoints holding the numbers of a GGUF
// (tests/hf_test_checkpoint.h) so both layouts can be compared: same hyper-parameters, same
// logits, the GGUF metadata and tensor layout of spec §5.1/§5.2, and the HWC->CHW patch
// permutation of the vision weights.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "cli_runner.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "hf_test_checkpoint.h"
#include "model/hf_checkpoint.h"
#include "model/hf_convert.h"
#include "model/model.h"
#include "model/random_model.h"
#include "model_test_helpers.h"
#include "multimodal/media.h"
#include "runtime/prompt.h"
#include "test_util.h"

namespace g4 {
namespace {

using nlohmann::json;

// A random F32 projector GGUF with the layout of spec §5.2 (and of the fixture's).
void write_random_mmproj(const std::string& path, int n_embd, int posemb, uint64_t seed) {
  std::mt19937 rng{uint32_t(seed)};
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto values = [&](int64_t n, float scale, float offset) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = offset + scale * normal(rng);
    return v;
  };
  GgufWriter w;
  w.set_string("general.architecture", "clip");
  w.set_u32("clip.vision.patch_size", 16);
  w.set_u32("clip.vision.embedding_length", uint32_t(n_embd));
  w.set_u32("clip.vision.projection_dim", uint32_t(n_embd));
  w.set_f32("clip.vision.attention.layer_norm_epsilon", 1e-6f);
  w.set_u32("clip.audio.embedding_length", 640);
  w.set_u32("clip.audio.projection_dim", uint32_t(n_embd));
  w.set_f32("clip.audio.attention.layer_norm_epsilon", 1e-6f);
  const int64_t dim = 48 * 48 * 3, d = n_embd;
  const auto add = [&](const std::string& name, std::vector<int64_t> ne, float scale,
                       float offset) {
    int64_t n = 1;
    for (int64_t x : ne) n *= x;
    const std::vector<float> v = values(n, scale, offset);
    w.add_tensor(name, GgmlType::F32, ne, v.data(), v.size() * 4);
  };
  add("v.patch_norm.1.weight", {dim}, 0.1f, 1.0f);
  add("v.patch_norm.1.bias", {dim}, 0.02f, 0.0f);
  add("v.patch_embd.weight", {dim, d}, 0.02f, 0.0f);
  add("v.patch_embd.bias", {d}, 0.02f, 0.0f);
  add("v.patch_norm.2.weight", {d}, 0.1f, 1.0f);
  add("v.patch_norm.2.bias", {d}, 0.02f, 0.0f);
  add("v.position_embd.weight", {d, posemb, 2}, 0.3f, 0.0f);
  add("v.patch_norm.3.weight", {d}, 0.1f, 1.0f);
  add("v.patch_norm.3.bias", {d}, 0.02f, 0.0f);
  add("mm.input_projection.weight", {d, d}, 0.25f, 0.0f);
  add("mm.a.input_projection.weight", {640, d}, 0.16f, 0.0f);
  w.write(path);
}

std::vector<int32_t> test_ids(int n_vocab, int n) {
  std::vector<int32_t> ids = {2};
  std::mt19937 rng(11);
  while (int(ids.size()) < n) ids.push_back(int32_t(30 + rng() % uint32_t(n_vocab - 30)));
  return ids;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0.0f;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Rewrites the shard holding tensor `name` of the checkpoint in `hf`, letting `replace` write
// that tensor (every other tensor is copied as is).
void rewrite_tensor(
    const std::string& hf, const std::string& name,
    const std::function<void(const SafetensorsTensor&, SafetensorsWriter&)>& replace) {
  auto ckpt = HfCheckpoint::open(hf);
  const std::string file = ckpt->tensors.tensor(name).file;
  SafetensorsWriter w;
  for (const auto& shard : ckpt->tensors.files()) {
    if (shard->path() != file) continue;
    for (const SafetensorsTensor& t : shard->tensors()) {
      if (t.name == name)
        replace(t, w);
      else
        w.add_tensor(t.name, t.dtype, t.shape, t.data, t.n_bytes());
    }
  }
  ckpt.reset();  // unmap before overwriting
  w.write(file);
}

// A random tiny model (the fixture's shapes) as GGUF, and a projector to go with it.
class HfCheckpointTest : public testing::Test {
 protected:
  void SetUp() override {
    ThreadPool pool(2);
    gguf_ = (dir_ / "random.gguf").string();
    mmproj_ = (dir_ / "random-mmproj.gguf").string();
    write_random_gemma4(RandomModelSpec{}, gguf_, pool);
    write_random_mmproj(mmproj_, RandomModelSpec{}.n_embd, 40, 5);
  }

  // Exports the random model as a HF checkpoint folder and returns its path.
  std::string export_hf(const std::string& name, test::HfExportOptions options = {}) {
    const GgufFile text = GgufFile::open(gguf_);
    const GgufFile mmproj = GgufFile::open(mmproj_);
    if (options.generation_config.is_null())
      options.generation_config = {{"eos_token_id", {1, 16}},
                                   {"suppress_tokens", {21, 18}},
                                   {"temperature", 1.0},
                                   {"top_k", 64},
                                   {"top_p", 0.95}};
    const std::filesystem::path out = dir_ / name;
    test::export_hf_checkpoint(text, &mmproj, out, options);
    return out.string();
  }

  // config.json of the export with `edit` applied to its text_config.
  json edited_config(const std::function<void(json&)>& edit) {
    json config = test::config_json_of(GgufFile::open(gguf_), nullptr);
    edit(config["text_config"]);
    return config;
  }

  test::TempDir dir_;
  std::string gguf_, mmproj_;
};

TEST_F(HfCheckpointTest, HyperParametersMatchTheGgufPath) {
  const auto gguf_model = Gemma4Model::load(gguf_);
  const auto hf = Gemma4Model::load(export_hf("hf"));
  const Gemma4HParams& a = gguf_model->hp;
  const Gemma4HParams& b = hf->hp;
  EXPECT_EQ(a.n_embd, b.n_embd);
  EXPECT_EQ(a.n_layer, b.n_layer);
  EXPECT_EQ(a.n_head, b.n_head);
  EXPECT_EQ(a.n_vocab, b.n_vocab);
  EXPECT_EQ(a.n_ctx_train, b.n_ctx_train);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.rms_eps, b.rms_eps);
  EXPECT_EQ(a.final_logit_softcap, b.final_logit_softcap);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t l = 0; l < a.layers.size(); ++l) {
    EXPECT_EQ(a.layers[l].sliding, b.layers[l].sliding) << l;
    EXPECT_EQ(a.layers[l].n_head_kv, b.layers[l].n_head_kv) << l;
    EXPECT_EQ(a.layers[l].head_dim, b.layers[l].head_dim) << l;
    EXPECT_EQ(a.layers[l].n_rot, b.layers[l].n_rot) << l;
    EXPECT_EQ(a.layers[l].rope_base, b.layers[l].rope_base) << l;
    EXPECT_EQ(a.layers[l].n_ff, b.layers[l].n_ff) << l;
  }
  // rope_freqs computed from the config = the tensor the GGUF holds.
  EXPECT_EQ(gguf_model->weights.rope_freq_factors, hf->weights.rope_freq_factors);
  EXPECT_EQ(hf->suppressed_tokens, (std::vector<int32_t>{21, 18}));
  EXPECT_EQ(hf->end_of_generation, (std::vector<int32_t>{1, 16, 9}));
}

TEST_F(HfCheckpointTest, WeightsAreBoundInPlace) {
  const auto gguf_model = Gemma4Model::load(gguf_);
  for (const auto dtype : {SafetensorsDtype::F32, SafetensorsDtype::BF16}) {
    test::HfExportOptions options;
    options.dtype = dtype;
    options.n_shards = 3;
    const auto hf = Gemma4Model::load(export_hf(cat("hf", int(dtype)), options));
    const Gemma4Weights& w = hf->weights;
    const SafetensorsTensor& q =
        hf->checkpoint->tensors.tensor("model.language_model.layers.1.self_attn.q_proj.weight");
    EXPECT_EQ(w.layers[1].wq.data, q.data) << "no copy";
    EXPECT_EQ(w.layers[1].wq.type, dtype == SafetensorsDtype::F32 ? GgmlType::F32 : GgmlType::BF16);
    EXPECT_EQ(w.layers[1].wq.rows, 4 * 64);
    EXPECT_EQ(w.layers[1].wq.cols, 256);
    EXPECT_FALSE(w.layers[5].wv.present()) << "full layer: V from K";
    EXPECT_TRUE(w.layers[4].wv.present());
    const Gemma4Weights& g = gguf_model->weights;
    if (dtype == SafetensorsDtype::F32) {
      EXPECT_EQ(std::memcmp(w.token_embd.data, g.token_embd.data,
                            size_t(g.token_embd.rows * g.token_embd.row_bytes)),
                0);
      EXPECT_EQ(w.layers[3].post_ffw_norm, g.layers[3].post_ffw_norm);
      EXPECT_EQ(w.layers[3].output_scale, g.layers[3].output_scale);
    } else {
      EXPECT_EQ(w.layers[3].output_scale, bf16_to_f32(f32_to_bf16(g.layers[3].output_scale)));
    }
  }
}

TEST_F(HfCheckpointTest, LogitsEqualThoseOfTheSameNumbersInGguf) {
  // F32 safetensors hold exactly the GGUF's values: the two loaders must give bit-identical
  // logits (same kernels, same order).
  const auto gguf_model = Gemma4Model::load(gguf_);
  const auto hf = Gemma4Model::load(export_hf("hf"));
  const std::vector<int32_t> ids = test_ids(512, 20);  // longer than the window of 8
  const std::vector<float> a = test::logits_at_every_position(*gguf_model, ids),
                           b = test::logits_at_every_position(*hf, ids);
  EXPECT_EQ(max_abs_diff(a, b), 0.0f);
}

TEST_F(HfCheckpointTest, RealConfigOf12B) {
  // spec §1.1, with the keys as the published config.json spells them.
  const json config = json::parse(R"({
    "architectures": ["Gemma4UnifiedForConditionalGeneration"], "model_type": "gemma4_unified",
    "tie_word_embeddings": true, "eos_token_id": [1, 106],
    "text_config": {
      "model_type": "gemma4_unified_text", "hidden_size": 3840, "num_hidden_layers": 48,
      "num_attention_heads": 16, "num_key_value_heads": 8, "num_global_key_value_heads": 1,
      "head_dim": 256, "global_head_dim": 512, "intermediate_size": 15360,
      "hidden_activation": "gelu_pytorch_tanh", "vocab_size": 262144,
      "max_position_embeddings": 262144, "sliding_window": 1024,
      "rope_parameters": {
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0}},
      "rms_norm_eps": 1e-06, "final_logit_softcapping": 30.0, "attention_bias": false,
      "attention_k_eq_v": true, "num_kv_shared_layers": 0, "hidden_size_per_layer_input": 0,
      "enable_moe_block": false, "use_double_wide_mlp": false, "use_bidirectional_attention": "vision",
      "tie_word_embeddings": true, "attn_logit_softcapping": null, "layer_types": []}})");
  json c = config;
  for (int l = 0; l < 48; ++l)
    c["text_config"]["layer_types"].push_back(l % 6 == 5 ? "full_attention" : "sliding_attention");
  const Gemma4HParams hp = hparams_from_hf_config(c, "config.json");
  EXPECT_EQ(hp.n_embd, 3840);
  EXPECT_EQ(hp.n_vocab, 262144);
  EXPECT_EQ(hp.n_sliding_layers(), 40);
  EXPECT_EQ(hp.sliding_window, 1024);
  EXPECT_EQ(hp.final_logit_softcap, 30.0f);
  EXPECT_EQ(hp.rms_eps, 1e-6f);
  const LayerGeometry& s = hp.layer(0);
  const LayerGeometry& f = hp.layer(47);
  EXPECT_TRUE(s.sliding);
  EXPECT_FALSE(f.sliding);
  EXPECT_FALSE(hp.layer(5).sliding);
  EXPECT_EQ(s.n_head_kv, 8);
  EXPECT_EQ(f.n_head_kv, 1);
  EXPECT_EQ(s.head_dim, 256);
  EXPECT_EQ(f.head_dim, 512);
  EXPECT_EQ(s.n_rot, 256);
  EXPECT_EQ(f.n_rot, 512);  // proportional: the whole head, unrotated pairs zeroed by factors
  EXPECT_EQ(s.rope_base, 1e4f);
  EXPECT_EQ(f.rope_base, 1e6f);
  EXPECT_EQ(f.n_ff, 15360);
  // spec §2.5: 64 x 1.0 then 192 x 1e30.
  const std::vector<float> factors = hf_rope_freq_factors(c, "config.json");
  ASSERT_EQ(factors.size(), 256u);
  EXPECT_EQ(std::count(factors.begin(), factors.end(), 1.0f), 64);
  EXPECT_EQ(factors[63], 1.0f);
  EXPECT_EQ(factors[64], 1e30f);
}

TEST_F(HfCheckpointTest, UnsupportedConfigsAreNamed) {
  const auto check = [&](const std::function<void(json&)>& edit,
                         const std::vector<std::string>& fragments) {
    const json config = edited_config(edit);
    test::expect_error_containing([&] { hparams_from_hf_config(config, "cfg.json"); }, fragments);
  };
  check([](json& t) { t["num_kv_shared_layers"] = 20; },
        {"cfg.json", "num_kv_shared_layers", "KV sharing"});
  check([](json& t) { t["hidden_size_per_layer_input"] = 256; }, {"per-layer embeddings"});
  check([](json& t) { t["enable_moe_block"] = true; }, {"mixture of experts"});
  check([](json& t) { t["use_double_wide_mlp"] = true; }, {"double-wide"});
  check([](json& t) { t["attention_bias"] = true; }, {"attention_bias"});
  check([](json& t) { t["hidden_activation"] = "gelu"; },
        {"hidden_activation", "gelu_pytorch_tanh"});
  check([](json& t) { t["attn_logit_softcapping"] = 50.0; }, {"attn_logit_softcapping"});
  check([](json& t) { t["tie_word_embeddings"] = false; }, {"tie_word_embeddings"});
  check([](json& t) { t["rope_parameters"]["full_attention"]["rope_type"] = "yarn"; },
        {"full_attention.rope_type", "yarn"});
  check([](json& t) { t["rope_parameters"]["sliding_attention"]["factor"] = 8.0; },
        {"factor", "scaling"});
  check([](json& t) { t["layer_types"].push_back("full_attention"); },
        {"layer_types", "one entry per layer"});
  check([](json& t) { t["layer_types"][0] = "chunked_attention"; },
        {"layer_types", "chunked_attention"});
  check([](json& t) { t.erase("head_dim"); }, {"text_config.head_dim", "missing"});
  check([](json& t) { t["num_key_value_heads"] = 3; }, {"not a multiple"});
  check([](json& t) { t["hidden_size"] = -5; }, {"hidden_size", "out of range"});
  check([](json& t) { t["sliding_window"] = "big"; }, {"sliding_window", "integer"});
  json llama = edited_config([](json&) {});
  llama["model_type"] = "llama";
  test::expect_error_containing([&] { hparams_from_hf_config(llama, "cfg.json"); },
                                {"model_type", "llama"});
  test::expect_error_containing([&] { hparams_from_hf_config(json::array(), "cfg.json"); },
                                {"not a JSON object"});
}

TEST_F(HfCheckpointTest, ConfigValuesOfAnyJsonTypeGiveErrorsNotCrashes) {
  // Every key of config.json replaced by each kind of JSON value: the result is hyper-parameters
  // or a g4::Error (never a JSON library exception escaping to the user).
  const json base = edited_config([](json&) {});
  const json replacements[] = {nullptr, "text", json::object(), json::array({1, "x"}),  -1,
                               1e300,   3.5,    true,           json(uint64_t(1) << 63)};
  int errors = 0, accepted = 0;
  const auto attempt = [&](const json& config) {
    try {
      hparams_from_hf_config(config, "cfg.json");
      hf_rope_freq_factors(config, "cfg.json");
      ++accepted;
    } catch (const Error&) {
      ++errors;
    }
  };
  for (const auto& [key, value] : base["text_config"].items()) {
    for (const json& r : replacements) {
      json config = base;
      config["text_config"][key] = r;
      attempt(config);
    }
  }
  for (const char* key : {"tie_word_embeddings", "_name_or_path", "model_type", "text_config"}) {
    for (const json& r : replacements) {
      json config = base;
      config[key] = r;
      attempt(config);
    }
  }
  EXPECT_GT(errors, 100);
  EXPECT_GT(accepted, 10);  // e.g. attention_bias: null, or an unused key of another type
}

TEST_F(HfCheckpointTest, BadCheckpointsAreNamed) {
  test::expect_error_containing([&] { HfCheckpoint::open((dir_ / "nowhere").string()); },
                                {"nowhere", "not a folder"});
  // A tensor of the wrong shape.
  test::HfExportOptions options;
  options.n_shards = 1;
  const std::string path = export_hf("hf", options);
  {
    const auto ckpt = HfCheckpoint::open(path);
    const Gemma4HParams hp = hparams_from_hf_config(ckpt->config, ckpt->config_path());
    Gemma4HParams wrong = hp;
    wrong.layers[2].n_ff = 1024;
    test::expect_error_containing(
        [&] { bind_hf_weights(*ckpt, wrong); },
        {"model.safetensors", "layers.2.mlp.gate_proj.weight", "[512, 256]", "[1024, 256]"});
  }
  // Missing config.json, and a config that is not JSON.
  std::filesystem::rename(std::filesystem::path(path) / "config.json", dir_ / "config.json");
  test::expect_error_containing([&] { HfCheckpoint::open(path); }, {"no config.json"});
  std::ofstream(std::filesystem::path(path) / "config.json") << "{not json";
  test::expect_error_containing([&] { HfCheckpoint::open(path); },
                                {"config.json", "not valid JSON"});
}

TEST_F(HfCheckpointTest, DtypesTheEngineCannotReadAreNamed) {
  const std::string hf = export_hf("hf");
  const std::string name = "model.language_model.layers.1.self_attn.k_proj.weight";
  rewrite_tensor(hf, name, [](const SafetensorsTensor& t, SafetensorsWriter& w) {
    w.add_tensor(t.name, SafetensorsDtype::I32, t.shape, t.data, t.n_bytes());  // same size as F32
  });
  test::expect_error_containing([&] { load_hf_gemma4(hf); },
                                {"model-0000", name, "dtype I32", "F32, F16 and BF16"});
  // F16 checkpoints are read in place like BF16 ones.
  test::HfExportOptions f16;
  f16.dtype = SafetensorsDtype::F16;
  EXPECT_EQ(Gemma4Model::load(export_hf("f16", f16))->weights.layers[0].wk.type, GgmlType::F16);
}

TEST_F(HfCheckpointTest, UnknownTensorsAreNamed) {
  test::HfExportOptions options;
  options.extra = {
      {"model.language_model.layers.0.self_attn.rotary_emb.inv_freq", {{4}, {1, 2, 3, 4}}}};
  const auto ckpt = HfCheckpoint::open(export_hf("hf", options));
  const Gemma4HParams hp = hparams_from_hf_config(ckpt->config, ckpt->config_path());
  EXPECT_EQ(
      hf_unknown_text_tensors(*ckpt, hp),
      (std::vector<std::string>{"model.language_model.layers.0.self_attn.rotary_emb.inv_freq"}));
  ThreadPool pool(2);
  test::expect_error_containing(
      [&] { convert_hf_text_model(*ckpt, (dir_ / "x.gguf").string(), {}, pool); },
      {"rotary_emb.inv_freq", "does not know"});
}

TEST_F(HfCheckpointTest, MultimodalWeightsAreFound) {
  const auto ckpt = HfCheckpoint::open(export_hf("hf"));
  const HfMultimodalWeights mm = find_hf_multimodal_weights(*ckpt);
  ASSERT_TRUE(mm.vision.has_value());
  ASSERT_TRUE(mm.audio.has_value());
  EXPECT_EQ(mm.n_embd, 256);
  EXPECT_EQ(mm.vision->patch_size, 48);
  EXPECT_EQ(mm.vision->teacher_patch, 16);
  EXPECT_EQ(mm.vision->d_mm, 256);
  EXPECT_EQ(mm.vision->posemb_size, 40);
  EXPECT_EQ(mm.vision->patch_dense_weight->shape, (std::vector<int64_t>{256, 6912}));
  EXPECT_EQ(mm.vision->pos_embedding->shape, (std::vector<int64_t>{40, 2, 256}));
  EXPECT_EQ(mm.audio->samples_per_token, 640);
  EXPECT_EQ(mm.audio->projection->shape, (std::vector<int64_t>{256, 640}));
}

// --- convert ---

class ConvertTest : public HfCheckpointTest {
 protected:
  // Converts `hf` to GGUF (and projector) with `options`.
  void convert(const std::string& hf, const std::string& out, const std::string& mmproj_out,
               const ConvertOptions& options = {}) {
    const auto ckpt = HfCheckpoint::open(hf);
    ThreadPool pool(2);
    if (!out.empty()) convert_hf_text_model(*ckpt, out, options, pool);
    if (!mmproj_out.empty()) convert_hf_mmproj(*ckpt, mmproj_out, options, pool);
  }
};

TEST_F(ConvertTest, LogitsOfTheConvertedGgufEqualTheCheckpoints) {
  // The real checkpoint's layout: BF16, sharded. --type bf16 copies the bits, so the engine must
  // give bit-identical logits from the GGUF and from the folder.
  test::HfExportOptions options;
  options.dtype = SafetensorsDtype::BF16;
  options.n_shards = 3;
  const std::string hf = export_hf("hf", options);
  const std::string out = (dir_ / "bf16.gguf").string();
  convert(hf, out, "");
  const auto direct = Gemma4Model::load(hf);
  const auto converted = Gemma4Model::load(out);
  const std::vector<int32_t> ids = test_ids(512, 24);
  const std::vector<float> want = test::logits_at_every_position(*direct, ids);
  EXPECT_EQ(max_abs_diff(test::logits_at_every_position(*converted, ids), want), 0.0f);
  EXPECT_EQ(converted->suppressed_tokens, direct->suppressed_tokens);
  EXPECT_EQ(converted->weights.token_embd.type, GgmlType::BF16);
  // The folder is a model for every front end: same tokenizer, template and sampling defaults.
  ASSERT_TRUE(direct->tokenizer && converted->tokenizer);
  EXPECT_EQ(direct->tokenizer->encode("Hello there", true, true), converted->tokenizer->encode("Hello there", true, true));
  EXPECT_EQ(direct->chat_template, converted->chat_template);
  EXPECT_EQ(direct->end_of_generation, converted->end_of_generation);
  const auto from_folder = test::run_cli("run -m " + hf + " -p Hello -n 5 --temp 0 --json");
  const auto from_gguf = test::run_cli("run -m " + out + " -p Hello -n 5 --temp 0 --json");
  ASSERT_EQ(from_folder.exit_code, 0) << from_folder.err;
  EXPECT_EQ(json::parse(from_folder.out)["ids"], json::parse(from_gguf.out)["ids"]);

  // F32 holds the same values: only the kernels' type differs. Both are exact-activation
  // float32 dot products in the same order (quant.h dot_row_ref), so allow float32 noise only.
  ConvertOptions f32;
  f32.type = GgmlType::F32;
  convert(hf, (dir_ / "f32.gguf").string(), "", f32);
  EXPECT_LE(max_abs_diff(test::logits_at_every_position(
                             *Gemma4Model::load((dir_ / "f32.gguf").string()), ids),
                         want),
            1e-4f);

  // Q8_0 quantizes the weights: the logits move (TOLERANCES.md row 3: 0.4..1.2 on this shape),
  // but the file loads, runs and keeps the argmax where the margin is large.
  ConvertOptions q8;
  q8.type = GgmlType::Q8_0;
  convert(hf, (dir_ / "q8.gguf").string(), "", q8);
  const auto q8_model = Gemma4Model::load((dir_ / "q8.gguf").string());
  EXPECT_EQ(q8_model->weights.layers[0].wq.type, GgmlType::Q8_0);
  const std::vector<float> q = test::logits_at_every_position(*q8_model, ids);
  EXPECT_GT(max_abs_diff(q, want), 0.0f);
  EXPECT_LT(max_abs_diff(q, want), 3.0f);
  const GgufFile q8_file = GgufFile::open((dir_ / "q8.gguf").string());
  EXPECT_EQ(q8_file.get_int("general.file_type"), 7);
  EXPECT_EQ(q8_file.get_int("general.quantization_version"), 2);
}

TEST_F(ConvertTest, MetadataAndTensorsFollowTheSpec) {
  test::HfExportOptions options;
  options.dtype = SafetensorsDtype::BF16;
  options.chat_template = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}";
  const std::string hf = export_hf("hf", options);
  const std::string out = (dir_ / "model.gguf").string();
  convert(hf, out, "");
  const GgufFile f = GgufFile::open(out);
  const GgufFile ref = GgufFile::open(gguf_);  // written with the real files' key set

  EXPECT_EQ(f.get_string("general.architecture"), "gemma4");
  EXPECT_EQ(f.get_string("general.name"), "hf");
  EXPECT_EQ(f.get_int("general.file_type"), 32);  // MOSTLY_BF16
  // Every gemma4.* key of spec §5.1, with the values and types of the reference file.
  int n_arch_keys = 0;
  for (const GgufKv& kv : ref.metadata()) {
    if (kv.key.rfind("gemma4.", 0) != 0) continue;
    ++n_arch_keys;
    const GgufKv* got = f.find(kv.key);
    ASSERT_NE(got, nullptr) << kv.key;
    EXPECT_EQ(got->type, kv.type) << kv.key;
    EXPECT_EQ(f.value_to_string(*got, 100), ref.value_to_string(kv, 100)) << kv.key;
  }
  EXPECT_EQ(n_arch_keys, 20);
  EXPECT_EQ(f.find("gemma4.attention.head_count_kv")->array_type, GgufValueType::I32);
  EXPECT_EQ(f.get_int_array("gemma4.attention.head_count_kv"),
            (std::vector<int64_t>{2, 2, 2, 2, 2, 1}));
  EXPECT_EQ(f.get_bool_array("gemma4.attention.sliding_window_pattern"),
            (std::vector<bool>{true, true, true, true, true, false}));
  // Tokenizer and generation settings.
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gemma4");
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"),
            ref.get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id"), 2);
  EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), 1);
  EXPECT_EQ(f.get_int("tokenizer.ggml.padding_token_id"), 0);
  EXPECT_EQ(f.get_int("tokenizer.ggml.unknown_token_id"), 3);
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_space_prefix"));
  EXPECT_EQ(f.get_int_array("tokenizer.ggml.suppress_tokens"), (std::vector<int64_t>{21, 18}));
  EXPECT_EQ(f.get_string("tokenizer.chat_template"), options.chat_template);
  EXPECT_EQ(f.get_float("general.sampling.temp"), 1.0);
  EXPECT_NEAR(f.get_float("general.sampling.top_p"), 0.95, 1e-7);
  EXPECT_EQ(f.get_int("general.sampling.top_k"), 64);
  EXPECT_EQ(f.find("general.sampling.top_k")->type, GgufValueType::I32);
  const std::vector<int64_t> types = f.get_int_array("tokenizer.ggml.token_type");
  EXPECT_EQ(types[3], 3) << "<unk> is CONTROL, as llama.cpp's converter writes it";
  EXPECT_EQ(types[9], 4) << "<|tool_response> stays USER_DEFINED";
  EXPECT_EQ(types[30], 6) << "byte token";

  // Tensors: the names, shapes and order of the reference; 2-D in BF16, the rest in F32.
  ASSERT_EQ(f.tensors().size(), ref.tensors().size());
  EXPECT_EQ(f.tensors().size(), 3u + 5 * 14 + 13);
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const GgufTensorInfo& a = f.tensors()[i];
    const GgufTensorInfo& b = ref.tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.shape_string(), b.shape_string()) << a.name;
    EXPECT_EQ(a.type, a.n_dims >= 2 ? GgmlType::BF16 : GgmlType::F32) << a.name;
  }
  const GgufTensorInfo& rope = f.tensor("rope_freqs.weight");
  EXPECT_EQ(std::memcmp(rope.data, ref.tensor("rope_freqs.weight").data, rope.n_bytes), 0);
}

TEST_F(ConvertTest, VisionPatchWeightsArePermutedToChw) {
  const std::string hf = export_hf("hf");  // F32: the exact values
  const std::string mm = (dir_ / "mmproj.gguf").string();
  ConvertOptions options;
  options.type = GgmlType::F32;
  convert(hf, "", mm, options);
  const auto ckpt = HfCheckpoint::open(hf);
  const GgufFile g = GgufFile::open(mm);
  EXPECT_EQ(g.get_string("general.architecture"), "clip");
  EXPECT_EQ(g.get_string("clip.vision.projector_type"), "gemma4uv");
  EXPECT_EQ(g.get_string("clip.audio.projector_type"), "gemma4ua");

  const int64_t P = 48, dim = P * P * 3, d = 256;
  const auto floats = [](const uint8_t* p, int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    std::memcpy(v.data(), p, size_t(n) * 4);
    return v;
  };
  const std::vector<float> w_hf =
      floats(ckpt->tensors.tensor("model.vision_embedder.patch_dense.weight").data, d * dim);
  const std::vector<float> w_gg = floats(g.tensor("v.patch_embd.weight").data, d * dim);
  const std::vector<float> ln_hf =
      floats(ckpt->tensors.tensor("model.vision_embedder.patch_ln1.weight").data, dim);
  const std::vector<float> ln_gg = floats(g.tensor("v.patch_norm.1.weight").data, dim);

  // One 48x48 RGB patch of a synthetic image, gathered twice straight from pixel coordinates:
  // HWC as the HF processor does (spec §3.1) and CHW as ggml's im2col does (spec §3.2).
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::vector<float> image(size_t(P * P * 3));
  for (float& x : image) x = pixel(rng);
  const auto at = [&](int64_t r, int64_t c, int64_t ch) {
    return image[size_t((r * P + c) * 3 + ch)];
  };
  std::vector<float> x_hwc(static_cast<size_t>(dim)), x_chw(static_cast<size_t>(dim));
  for (int64_t r = 0; r < P; ++r)
    for (int64_t c = 0; c < P; ++c)
      for (int64_t ch = 0; ch < 3; ++ch) {
        x_hwc[size_t((r * P + c) * 3 + ch)] = at(r, c, ch);
        x_chw[size_t(ch * P * P + r * P + c)] = at(r, c, ch);
      }
  // W_hf x_hwc == W_gguf x_chw (double accumulation: only the summation order differs).
  for (int64_t row = 0; row < d; ++row) {
    double y_hf = 0.0, y_gg = 0.0;
    for (int64_t i = 0; i < dim; ++i) {
      y_hf += double(w_hf[size_t(row * dim + i)]) * x_hwc[size_t(i)];
      y_gg += double(w_gg[size_t(row * dim + i)]) * x_chw[size_t(i)];
    }
    ASSERT_NEAR(y_hf, y_gg, 1e-9 * (1.0 + std::fabs(y_hf))) << row;
  }
  // LayerNorm 1's weight follows its input: the same pixel meets the same weight.
  double dot_hf = 0.0, dot_gg = 0.0;
  for (int64_t i = 0; i < dim; ++i) {
    dot_hf += double(ln_hf[size_t(i)]) * x_hwc[size_t(i)];
    dot_gg += double(ln_gg[size_t(i)]) * x_chw[size_t(i)];
  }
  EXPECT_NEAR(dot_hf, dot_gg, 1e-9 * std::fabs(dot_hf));
  // The permutation is not the identity (a test that cannot fail proves nothing).
  EXPECT_NE(std::memcmp(w_hf.data(), w_gg.data(), size_t(dim) * 4), 0);

  // Position tables: GGUF [2][posemb][d] (x table first) from HF [posemb][2][d].
  const SafetensorsTensor& pos_hf = ckpt->tensors.tensor("model.vision_embedder.pos_embedding");
  const GgufTensorInfo& pos_gg = g.tensor("v.position_embd.weight");
  EXPECT_EQ(pos_gg.shape_string(), "[256, 40, 2]");
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t p : {0, 7, 39})
      EXPECT_EQ(std::memcmp(pos_gg.data + ((t * 40 + p) * d) * 4,
                            pos_hf.data + ((p * 2 + t) * d) * 4, size_t(d) * 4),
                0)
          << t << " " << p;
  EXPECT_EQ(g.tensor("mm.input_projection.weight").shape_string(), "[256, 256]");
  EXPECT_EQ(g.tensor("mm.a.input_projection.weight").shape_string(), "[640, 256]");
}

TEST_F(ConvertTest, ReproducesTheFixtureFilesFromTheirHfLayout) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  // The fixture GGUFs (llama.cpp-compatible, spec §5) exported to HF layout in F32 and converted
  // back must give the same files: the whole text GGUF byte for byte, and the projector's
  // metadata and tensors.
  const auto dir = test::fixtures_dir() / "gemma4-tiny";
  const GgufFile text = GgufFile::open((dir / "text-f32.gguf").string());
  const GgufFile mmproj = GgufFile::open((dir / "mmproj-f32.gguf").string());
  test::HfExportOptions options;
  options.chat_template = text.get_string("tokenizer.chat_template");
  json suppress = json::array();
  for (int64_t id : text.get_int_array("tokenizer.ggml.suppress_tokens")) suppress.push_back(id);
  options.generation_config = {{"suppress_tokens", suppress}};
  const auto hf = dir_ / "hf";
  test::export_hf_checkpoint(text, &mmproj, hf, options);

  ConvertOptions convert_options;
  convert_options.type = GgmlType::F32;
  convert_options.name = text.get_string("general.name");
  const std::string out = (dir_ / "text.gguf").string(), mm = (dir_ / "mmproj.gguf").string();
  convert(hf.string(), out, mm, convert_options);
  EXPECT_TRUE(test::read_file_bytes(out) == test::read_file_bytes(dir / "text-f32.gguf"))
      << "the converted text GGUF differs from the fixture";

  const GgufFile got = GgufFile::open(mm);
  ASSERT_EQ(got.metadata().size(), mmproj.metadata().size());
  for (size_t i = 0; i < got.metadata().size(); ++i) {
    const GgufKv& a = got.metadata()[i];
    const GgufKv& b = mmproj.metadata()[i];
    EXPECT_EQ(a.key, b.key);
    if (a.key == "general.name") continue;
    EXPECT_EQ(a.type, b.type) << a.key;
    EXPECT_EQ(got.value_to_string(a, 10), mmproj.value_to_string(b, 10)) << a.key;
  }
  ASSERT_EQ(got.tensors().size(), mmproj.tensors().size());
  for (size_t i = 0; i < got.tensors().size(); ++i) {
    const GgufTensorInfo& a = got.tensors()[i];
    const GgufTensorInfo& b = mmproj.tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.shape_string(), b.shape_string()) << a.name;
    EXPECT_EQ(a.type, b.type) << a.name;
    EXPECT_TRUE(a.n_bytes == b.n_bytes && std::memcmp(a.data, b.data, a.n_bytes) == 0) << a.name;
  }
}

// The folder itself is a multimodal model: its embedders (HWC patch order) give the fixture's
// reference embeddings (TOLERANCES.md row 6: <= 1e-4), like the converted CHW projector does.
TEST_F(ConvertTest, CheckpointFolderEmbedsMediaLikeTheReference) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/mmproj-f32.gguf");
  const auto dir = test::fixtures_dir() / "gemma4-tiny";
  const GgufFile text = GgufFile::open((dir / "text-f32.gguf").string());
  const GgufFile mmproj = GgufFile::open((dir / "mmproj-f32.gguf").string());
  const auto hf = dir_ / "hf";
  test::export_hf_checkpoint(text, &mmproj, hf, test::HfExportOptions{});
  const auto model = Gemma4Model::load(hf.string());
  const auto projector = load_projector("", *model);  // the folder's own embedders
  ASSERT_TRUE(projector);
  EXPECT_EQ(projector->patch_order(), PatchOrder::kHWC);
  ThreadPool pool(2);
  const RgbImage image = decode_image((dir / "image.png").string());
  const SoftTokens soft = projector->embed_image(image.rgb.data(), image.width, image.height, 70, pool);
  std::ifstream in(dir / "ref_numpy" / "mm.image.json");
  const json ref = json::parse(in)["embeddings"];
  ASSERT_EQ(size_t(soft.count), ref.size());
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    for (size_t j = 0; j < size_t(soft.dim); ++j)
      worst = std::max(worst, std::abs(double(soft.values[i * size_t(soft.dim) + j]) - ref[i][j].get<double>()));
  EXPECT_LE(worst, 1e-4);
  const std::vector<float> samples = decode_audio((dir / "audio.wav").string());
  std::ifstream ain(dir / "ref_numpy" / "mm.audio.json");
  const json aref = json::parse(ain)["embeddings"];
  const SoftTokens audio = projector->embed_audio(samples.data(), samples.size(), pool);
  EXPECT_NEAR(audio.values[7], aref[0][7].get<double>(), 1e-4);
  // A projector of another width is refused.
  RandomModelSpec narrow;
  narrow.n_embd = 128;
  write_random_gemma4(narrow, (dir_ / "narrow.gguf").string(), pool);
  EXPECT_THROW(load_projector((dir / "mmproj-f32.gguf").string(), *Gemma4Model::load((dir_ / "narrow.gguf").string())),
               Error);
  EXPECT_THROW(load_projector(hf.string(), *Gemma4Model::load((dir_ / "narrow.gguf").string())), Error);
}

TEST_F(ConvertTest, ExtraEmbeddingRowsAreDroppedAndSaid) {
  // A checkpoint whose embedding has padding rows beyond the tokenizer (llama.cpp's converter
  // trims them for Gemma): keep only the tokenizer's rows, and report it.
  const std::string hf = export_hf("hf");
  rewrite_tensor(
      hf, "model.language_model.embed_tokens.weight",
      [](const SafetensorsTensor& t, SafetensorsWriter& w) {
        std::vector<uint8_t> bytes(t.data, t.data + t.n_bytes());
        bytes.resize(bytes.size() + 8 * 256 * 4, 0);  // 8 zero rows
        w.add_tensor(t.name, t.dtype, {t.shape[0] + 8, t.shape[1]}, bytes.data(), bytes.size());
      });
  json config = json::parse(std::ifstream(std::filesystem::path(hf) / "config.json"));
  config["text_config"]["vocab_size"] = 520;
  std::ofstream(std::filesystem::path(hf) / "config.json") << config.dump();
  const auto ckpt = HfCheckpoint::open(hf);
  ThreadPool pool(2);
  const ConvertReport report = convert_hf_text_model(*ckpt, (dir_ / "t.gguf").string(), {}, pool);
  ASSERT_EQ(report.notes.size(), 2u);  // no chat template, and the trimmed rows
  EXPECT_NE(report.notes[1].find("8 rows"), std::string::npos) << report.notes[1];
  EXPECT_EQ(Gemma4Model::load((dir_ / "t.gguf").string())->n_vocab(), 512);
}

TEST_F(ConvertTest, RefusesWhatItCannotWrite) {
  const auto ckpt = HfCheckpoint::open(export_hf("hf"));
  ThreadPool pool(2);
  ConvertOptions q4;
  q4.type = GgmlType::Q4_0;
  test::expect_error_containing(
      [&] { convert_hf_text_model(*ckpt, (dir_ / "x.gguf").string(), q4, pool); },
      {"Q4_0", "gemma4 quantize"});
  ConvertOptions mm_q8;
  mm_q8.mmproj_type = GgmlType::Q8_0;
  test::expect_error_containing(
      [&] { convert_hf_mmproj(*ckpt, (dir_ / "x.gguf").string(), mm_q8, pool); },
      {"projector", "Q8_0"});
  // Without tokenizer.json the GGUF would have no vocabulary.
  test::HfExportOptions options;
  options.tokenizer = false;
  const auto bare = HfCheckpoint::open(export_hf("bare", options));
  test::expect_error_containing(
      [&] { convert_hf_text_model(*bare, (dir_ / "x.gguf").string(), {}, pool); },
      {"tokenizer.json"});
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.gguf"));
}

TEST_F(ConvertTest, CommandLine) {
  const std::string hf = export_hf("hf");
  const std::string out = (dir_ / "cli.gguf").string(), mm = (dir_ / "cli-mmproj.gguf").string();
  const auto r =
      test::run_cli("convert " + hf + " -o " + out + " --mmproj-out " + mm + " --type f16 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("100%"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("wrote " + out), std::string::npos) << r.err;
  EXPECT_EQ(Gemma4Model::load(out)->weights.layers[0].w_up.type, GgmlType::F16);
  EXPECT_EQ(GgufFile::open(mm).tensor("v.patch_embd.weight").type, GgmlType::F16);
  const auto missing = test::run_cli("convert " + (dir_ / "nope").string() + " -o " + out);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("nope"), std::string::npos) << missing.err;
  const auto nothing = test::run_cli("convert " + hf);
  EXPECT_EQ(nothing.exit_code, 1);
  EXPECT_NE(nothing.err.find("nothing to write"), std::string::npos) << nothing.err;
}

}  // namespace
}  // namespace g4
