// Writes Hugging Face-layout Gemma 4 checkpoints for tests: the numbers of a GGUF text model (and
// projector) under the HF names and layouts of spec §5.1 / §5.2, with config.json derived from
// the GGUF metadata, tokenizer.json from its vocabulary, and the files the converter reads.
// This is the inverse of `gemma4 convert`, written independently from the spec tables (the
// converter's permutation helpers are not used here).
#pragma once

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "ops/quant.h"

namespace g4::test {

struct HfExportOptions {
  SafetensorsDtype dtype = SafetensorsDtype::F32;  // of every tensor (F32, F16 or BF16)
  int n_shards = 2;                                // 1: a single model.safetensors
  bool tokenizer = true;                           // tokenizer.json + tokenizer_config.json
  std::string chat_template;                       // chat_template.jinja when non-empty
  nlohmann::json generation_config;                // generation_config.json when not null
  // Extra tensors: HF name -> F32 values and shape (e.g. to test unknown tensors).
  std::vector<std::pair<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>> extra;
};

// The values of a GGUF tensor as float, in ggml order (row after row of ne[0]).
inline std::vector<float> gguf_values(const GgufTensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const int64_t cols = t.ne[0], rows = t.n_elements() / cols;
  const int64_t row_bytes = ggml_row_bytes(t.type, cols);
  for (int64_t r = 0; r < rows; ++r)
    dequantize_row(t.type, t.data + r * row_bytes, out.data() + r * cols, cols);
  return out;
}

class HfShardWriter {
 public:
  HfShardWriter(SafetensorsDtype dtype, int n_shards)
      : dtype_(dtype), shards_(size_t(std::max(1, n_shards))) {}

  // `group` picks the shard (e.g. the layer), so related tensors may land in different shards.
  void add(const std::string& name, const std::vector<int64_t>& shape,
           const std::vector<float>& values, int group) {
    std::vector<uint8_t> bytes;
    if (dtype_ == SafetensorsDtype::F32) {
      bytes.resize(values.size() * 4);
      if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    } else {
      bytes.resize(values.size() * 2);
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t h =
            dtype_ == SafetensorsDtype::BF16 ? f32_to_bf16(values[i]) : f32_to_fp16(values[i]);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
      }
    }
    const size_t shard = size_t(group) % shards_.size();
    shards_[shard].add_tensor(name, dtype_, shape, bytes.data(), bytes.size());
    map_.emplace_back(name, shard);
  }

  void write(const std::filesystem::path& dir) const {
    if (shards_.size() == 1) {
      shards_[0].write((dir / "model.safetensors").string());
      return;
    }
    std::vector<std::pair<std::string, std::string>> weight_map;
    uint64_t total = 0;
    for (size_t s = 0; s < shards_.size(); ++s) {
      shards_[s].write((dir / file_name(s)).string());
      total += shards_[s].data_bytes();
    }
    for (const auto& [name, shard] : map_) weight_map.emplace_back(name, file_name(shard));
    write_safetensors_index((dir / "model.safetensors.index.json").string(), weight_map, total);
  }

 private:
  std::string file_name(size_t s) const {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", s + 1, shards_.size());
    return buf;
  }
  SafetensorsDtype dtype_;
  std::vector<SafetensorsWriter> shards_;
  std::vector<std::pair<std::string, size_t>> map_;
};

// tokenizer.json for a GGUF vocabulary: CONTROL / USER_DEFINED / UNKNOWN tokens become
// added_tokens (special except USER_DEFINED), the rest the BPE model's vocab.
inline nlohmann::ordered_json tokenizer_json_of(const GgufFile& f) {
  const std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  const std::vector<int64_t> types = f.get_int_array("tokenizer.ggml.token_type");
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] == 2 || types[i] == 3 || types[i] == 4) {
      added.push_back({{"id", i},
                       {"content", tokens[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", types[i] != 4}});
    } else {
      vocab[tokens[i]] = i;
    }
  }
  nlohmann::ordered_json j;
  j["version"] = "1.0";
  j["added_tokens"] = added;
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single",
                          {{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                           {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
  j["model"] = {{"type", "BPE"},        {"dropout", nullptr},
                {"unk_token", "<unk>"}, {"byte_fallback", true},
                {"vocab", vocab},       {"merges", f.get_string_array("tokenizer.ggml.merges")}};
  return j;
}

// config.json (spec §1.1 layout) for a GGUF's gemma4.* metadata and, when given, its projector.
inline nlohmann::ordered_json config_json_of(const GgufFile& f, const GgufFile* mmproj) {
  const std::string a = "gemma4.";
  const int n_layer = int(f.get_int(a + "block_count"));
  const std::vector<bool> sliding = f.get_bool_array(a + "attention.sliding_window_pattern");
  const std::vector<int64_t> kv = f.get_int_array(a + "attention.head_count_kv");
  int kv_swa = 0, kv_full = 0;
  nlohmann::ordered_json layer_types = nlohmann::ordered_json::array();
  for (int l = 0; l < n_layer; ++l) {
    layer_types.push_back(sliding[size_t(l)] ? "sliding_attention" : "full_attention");
    (sliding[size_t(l)] ? kv_swa : kv_full) = int(kv[size_t(l)]);
  }
  const int hd_full = int(f.get_int(a + "attention.key_length"));
  // Proportional RoPE: the share of rope_freqs entries equal to 1 (spec §2.5).
  double partial = 1.0;
  if (const GgufTensorInfo* rf = f.find_tensor("rope_freqs.weight")) {
    const std::vector<float> v = gguf_values(*rf);
    partial = 2.0 * double(std::count(v.begin(), v.end(), 1.0f)) / double(hd_full);
  }
  nlohmann::ordered_json text;
  text["model_type"] = "gemma4_unified_text";
  text["hidden_size"] = f.get_int(a + "embedding_length");
  text["num_hidden_layers"] = n_layer;
  text["num_attention_heads"] = f.get_int(a + "attention.head_count");
  text["num_key_value_heads"] = kv_swa;
  text["num_global_key_value_heads"] = kv_full;
  text["head_dim"] = f.get_int(a + "attention.key_length_swa");
  text["global_head_dim"] = hd_full;
  text["intermediate_size"] = f.get_int(a + "feed_forward_length");
  text["hidden_activation"] = "gelu_pytorch_tanh";
  text["vocab_size"] = f.tensor("token_embd.weight").ne[1];
  text["max_position_embeddings"] = f.get_int(a + "context_length");
  text["sliding_window"] = f.get_int(a + "attention.sliding_window");
  text["layer_types"] = layer_types;
  text["rope_parameters"] = {
      {"sliding_attention",
       {{"rope_type", "default"}, {"rope_theta", f.get_float(a + "rope.freq_base_swa")}}},
      {"full_attention",
       {{"rope_type", "proportional"},
        {"partial_rotary_factor", partial},
        {"rope_theta", f.get_float(a + "rope.freq_base")}}}};
  text["rms_norm_eps"] = f.get_float(a + "attention.layer_norm_rms_epsilon");
  text["final_logit_softcapping"] = f.get_float(a + "final_logit_softcapping");
  text["attention_bias"] = false;
  text["attention_k_eq_v"] = true;
  text["num_kv_shared_layers"] = 0;
  text["hidden_size_per_layer_input"] = 0;
  text["enable_moe_block"] = false;
  text["use_double_wide_mlp"] = false;
  text["use_bidirectional_attention"] = "vision";
  text["tie_word_embeddings"] = true;

  nlohmann::ordered_json c;
  c["architectures"] = {"Gemma4UnifiedForConditionalGeneration"};
  c["model_type"] = "gemma4_unified";
  c["dtype"] = "bfloat16";
  c["tie_word_embeddings"] = true;
  c["eos_token_id"] = {f.get_int("tokenizer.ggml.eos_token_id")};
  c["text_config"] = text;
  if (mmproj) {
    const GgufTensorInfo& pos = mmproj->tensor("v.position_embd.weight");
    c["vision_config"] = {
        {"model_type", "gemma4_unified_vision"},
        {"patch_size", mmproj->get_int("clip.vision.patch_size")},
        {"pooling_kernel_size", 3},
        {"model_patch_size", 3 * mmproj->get_int("clip.vision.patch_size")},
        {"mm_embed_dim", mmproj->get_int("clip.vision.embedding_length")},
        {"mm_posemb_size", pos.ne[1]},
        {"num_soft_tokens", 280},
        {"output_proj_dims", mmproj->get_int("clip.vision.projection_dim")},
        {"rms_norm_eps", mmproj->get_float("clip.vision.attention.layer_norm_epsilon")}};
    c["audio_config"] = {
        {"model_type", "gemma4_unified_audio"},
        {"audio_embed_dim", mmproj->get_int("clip.audio.embedding_length")},
        {"audio_samples_per_token", mmproj->get_int("clip.audio.embedding_length")},
        {"hidden_size", mmproj->get_int("clip.audio.embedding_length")},
        {"output_proj_dims", mmproj->get_int("clip.audio.projection_dim")},
        {"rms_norm_eps", mmproj->get_float("clip.audio.attention.layer_norm_epsilon")}};
  }
  return c;
}

// Writes `dir` as a HF checkpoint holding the numbers of `text` (and `mmproj`, whose CHW patch
// weights are turned back into HF's HWC order).
inline void export_hf_checkpoint(const GgufFile& text, const GgufFile* mmproj,
                                 const std::filesystem::path& dir, const HfExportOptions& options) {
  std::filesystem::create_directories(dir);
  HfShardWriter shards(options.dtype, options.n_shards);
  const std::string lm = "model.language_model.";
  const GgufTensorInfo& embd = text.tensor("token_embd.weight");
  shards.add(lm + "embed_tokens.weight", {embd.ne[1], embd.ne[0]}, gguf_values(embd), 0);
  shards.add(lm + "norm.weight", {text.tensor("output_norm.weight").ne[0]},
             gguf_values(text.tensor("output_norm.weight")), 1);
  // spec §5.1 table: GGUF name -> HF name.
  const std::pair<const char*, const char*> kLayer[] = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"post_attention_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
      {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
      {"layer_output_scale.weight", "layer_scalar"},
  };
  const int n_layer = int(text.get_int("gemma4.block_count"));
  for (int l = 0; l < n_layer; ++l) {
    for (const auto& [gguf, hf] : kLayer) {
      const GgufTensorInfo* t = text.find_tensor("blk." + std::to_string(l) + "." + gguf);
      if (!t) continue;
      std::vector<int64_t> shape;  // PyTorch order: reversed ggml ne
      for (int i = t->n_dims - 1; i >= 0; --i) shape.push_back(t->ne[i]);
      shards.add(lm + "layers." + std::to_string(l) + "." + hf, shape, gguf_values(*t), l);
    }
  }
  if (mmproj) {
    const std::string ve = "model.vision_embedder.";
    const int64_t P = 3 * mmproj->get_int("clip.vision.patch_size"), area = P * P, dim = area * 3;
    // GGUF column i is CHW (ch, r, c); HF column (r * P + c) * 3 + ch holds the same pixel.
    const auto to_hwc = [&](const std::vector<float>& chw, int64_t rows) {
      std::vector<float> hwc(chw.size());
      for (int64_t row = 0; row < rows; ++row)
        for (int64_t ch = 0; ch < 3; ++ch)
          for (int64_t r = 0; r < P; ++r)
            for (int64_t c = 0; c < P; ++c)
              hwc[size_t(row * dim + (r * P + c) * 3 + ch)] =
                  chw[size_t(row * dim + ch * area + r * P + c)];
      return hwc;
    };
    const auto vec = [&](const char* name) { return gguf_values(mmproj->tensor(name)); };
    const int64_t dm = mmproj->tensor("v.patch_embd.weight").ne[1];
    shards.add(ve + "patch_ln1.weight", {dim}, to_hwc(vec("v.patch_norm.1.weight"), 1), 0);
    shards.add(ve + "patch_ln1.bias", {dim}, to_hwc(vec("v.patch_norm.1.bias"), 1), 0);
    shards.add(ve + "patch_dense.weight", {dm, dim}, to_hwc(vec("v.patch_embd.weight"), dm), 1);
    shards.add(ve + "patch_dense.bias", {dm}, vec("v.patch_embd.bias"), 1);
    shards.add(ve + "patch_ln2.weight", {dm}, vec("v.patch_norm.2.weight"), 0);
    shards.add(ve + "patch_ln2.bias", {dm}, vec("v.patch_norm.2.bias"), 0);
    shards.add(ve + "pos_norm.weight", {dm}, vec("v.patch_norm.3.weight"), 1);
    shards.add(ve + "pos_norm.bias", {dm}, vec("v.patch_norm.3.bias"), 1);
    // GGUF [2][posemb][d] (numpy order) -> HF [posemb][2][d].
    const std::vector<float> pos = vec("v.position_embd.weight");
    const int64_t posemb = mmproj->tensor("v.position_embd.weight").ne[1];
    std::vector<float> hf_pos(pos.size());
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t p = 0; p < posemb; ++p)
        std::memcpy(&hf_pos[size_t((p * 2 + t) * dm)], &pos[size_t((t * posemb + p) * dm)],
                    size_t(dm) * 4);
    shards.add(ve + "pos_embedding", {posemb, 2, dm}, hf_pos, 0);
    const GgufTensorInfo& proj = mmproj->tensor("mm.input_projection.weight");
    shards.add("model.embed_vision.embedding_projection.weight", {proj.ne[1], proj.ne[0]},
               gguf_values(proj), 1);
    const GgufTensorInfo& aproj = mmproj->tensor("mm.a.input_projection.weight");
    shards.add("model.embed_audio.embedding_projection.weight", {aproj.ne[1], aproj.ne[0]},
               gguf_values(aproj), 0);
  }
  for (const auto& [name, shape_values] : options.extra)
    shards.add(name, shape_values.first, shape_values.second, 0);
  shards.write(dir);

  std::ofstream(dir / "config.json") << config_json_of(text, mmproj).dump(2);
  if (options.tokenizer) {
    std::ofstream(dir / "tokenizer.json") << tokenizer_json_of(text).dump();
    nlohmann::ordered_json tc = {{"bos_token", "<bos>"},   {"eos_token", "<eos>"},
                                 {"unk_token", "<unk>"},   {"pad_token", "<pad>"},
                                 {"mask_token", "<mask>"}, {"add_bos_token", true},
                                 {"add_eos_token", false}};
    std::ofstream(dir / "tokenizer_config.json") << tc.dump(2);
  }
  if (!options.chat_template.empty())
    std::ofstream(dir / "chat_template.jinja") << options.chat_template;
  if (!options.generation_config.is_null())
    std::ofstream(dir / "generation_config.json") << options.generation_config.dump(2);
}

}  // namespace g4::test
