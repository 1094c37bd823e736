#include "model/hf_convert.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>

#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/hf_checkpoint.h"
#include "model/quantize_model.h"
#include "ops/quant.h"
#include "text/tokenizer.h"

namespace g4 {
namespace {

using nlohmann::json;

// One output tensor: where its rows come from and how they are rearranged.
struct TensorPlan {
  std::string name;  // GGUF name
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;                    // ggml order: ne[0] is a row
  const SafetensorsTensor* source = nullptr;  // nullptr: `generated` holds the values
  std::vector<float> generated;
  // Output row -> source row; empty = the same row. Source rows have ne[0] elements.
  std::function<int64_t(int64_t)> row_map;
  // Output column -> source column within a row; empty = the same column.
  std::vector<int64_t> column_perm;

  int64_t cols() const { return ne[0]; }
  int64_t rows() const {
    int64_t r = 1;
    for (size_t i = 1; i < ne.size(); ++i) r *= ne[i];
    return r;
  }
  uint64_t n_bytes() const { return uint64_t(rows()) * uint64_t(ggml_row_bytes(type, cols())); }
};

GgmlType source_type(const SafetensorsTensor& t) {
  const auto type = safetensors_dtype_to_ggml(t.dtype);
  if (!type)
    fail(t.file, ": tensor '", t.name, "' has dtype ", safetensors_dtype_name(t.dtype),
         "; the converter reads F32, F16 and BF16 tensors");
  return *type;
}

// Source bytes converted between two releases of the source pages: resident memory stays at
// the output tensor plus this much of the input.
constexpr size_t kConvertChunkBytes = size_t(64) << 20;

// Fills `dst` (plan.n_bytes()) with the plan's rows in plan.type, releasing the source pages
// as it goes.
void produce(const TensorPlan& plan, uint8_t* dst, const SafetensorsCheckpoint& checkpoint,
             ThreadPool& pool) {
  const int64_t cols = plan.cols(), rows = plan.rows();
  const int64_t out_row_bytes = ggml_row_bytes(plan.type, cols);
  if (!plan.source) {
    quantize_row(plan.type, plan.generated.data(), dst, cols * rows);
    return;
  }
  const SafetensorsTensor& src = *plan.source;
  const GgmlType in_type = source_type(src);
  const size_t in_row_bytes = size_t(cols) * safetensors_dtype_size(src.dtype);
  const int64_t src_rows = int64_t(src.n_bytes() / std::max<size_t>(in_row_bytes, 1));
  // Same encoding: the bytes are copied as they are (BF16 -> BF16 is lossless).
  const bool copy = !plan.row_map && plan.column_perm.empty() && in_type == plan.type;
  const auto convert_rows = [&](int64_t r0, int64_t r1, int) {
    std::vector<uint64_t> raw((in_row_bytes + 7) / 8);  // aligned copy of one source row
    std::vector<float> row(static_cast<size_t>(cols)), permuted;
    if (!plan.column_perm.empty()) permuted.resize(static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t s = plan.row_map ? plan.row_map(r) : r;
      if (s < 0 || s >= src_rows)
        fail("converter: row ", s, " of '", src.name, "' is out of range");
      std::memcpy(raw.data(), src.data + size_t(s) * in_row_bytes, in_row_bytes);
      dequantize_row(in_type, raw.data(), row.data(), cols);
      const float* out = row.data();
      if (!plan.column_perm.empty()) {
        for (int64_t c = 0; c < cols; ++c)
          permuted[size_t(c)] = row[size_t(plan.column_perm[size_t(c)])];
        out = permuted.data();
      }
      quantize_row(plan.type, out, dst + r * out_row_bytes, cols);
    }
  };
  // Rows in source order chunk by chunk (a row map reads anywhere: one chunk, released at the end).
  const int64_t chunk_rows =
      plan.row_map
          ? rows
          : std::max<int64_t>(1, int64_t(kConvertChunkBytes / std::max<size_t>(in_row_bytes, 1)));
  for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
    const int64_t r1 = std::min(rows, r0 + chunk_rows);
    if (copy)
      std::memcpy(dst + size_t(r0) * in_row_bytes, src.data + size_t(r0) * in_row_bytes,
                  size_t(r1 - r0) * in_row_bytes);
    else
      pool.parallel_for(r1 - r0, 16,
                        [&](int64_t a, int64_t b, int t) { convert_rows(r0 + a, r0 + b, t); });
    if (!plan.row_map)
      checkpoint.release_pages(src, uint64_t(r0) * in_row_bytes, uint64_t(r1 - r0) * in_row_bytes);
  }
  checkpoint.release_pages(src);
}

// Streams every planned tensor into `w` and writes the file.
void write_planned(GgufWriter& w, const std::vector<TensorPlan>& plans, const HfCheckpoint& ckpt,
                   const std::string& path, ThreadPool& pool, const TensorProgressFn& progress) {
  uint64_t total = 0;
  for (const TensorPlan& p : plans) total += p.n_bytes();
  auto done = std::make_shared<uint64_t>(0);
  for (size_t i = 0; i < plans.size(); ++i) {
    w.add_tensor_streamed(
        plans[i].name, plans[i].type, plans[i].ne,
        [&plans, &ckpt, &path, &pool, &progress, total, i, done](uint8_t* dst, size_t n_bytes) {
          const TensorPlan& plan = plans[i];
          if (n_bytes != plan.n_bytes()) fail("converter: size mismatch for ", plan.name);
          produce(plan, dst, ckpt.tensors, pool);
          *done += n_bytes;
          if (progress) progress({path, plan.name, int(i + 1), int(plans.size()), *done, total});
        });
  }
  w.write(path);
}

// A 2-D weight in the requested type; block types need rows of whole blocks, otherwise the
// tensor falls back to F16 (as llama.cpp's converter does) and the report says so.
GgmlType matrix_type(GgmlType wanted, int64_t cols, const std::string& name,
                     ConvertReport& report) {
  const int64_t block = ggml_type_info(wanted).block_size;
  if (cols % block == 0) return wanted;
  report.notes.push_back(cat(name, ": rows of ", cols, " are not a multiple of the ",
                             ggml_type_name(wanted), " block size ", block, "; written as F16"));
  return GgmlType::F16;
}

std::optional<std::string> special_token_text(const std::optional<json>& tokenizer_config,
                                              const char* key) {
  if (!tokenizer_config) return std::nullopt;
  const auto it = tokenizer_config->find(key);
  if (it == tokenizer_config->end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

// tokenizer.ggml.* as llama.cpp's Gemma 4 converter writes them (spec §5.1, §6). Returns the
// vocabulary size.
int64_t add_tokenizer_metadata(GgufWriter& w, const HfCheckpoint& ckpt, ConvertReport& report) {
  const std::string path = ckpt.tokenizer_json_path();
  if (!std::filesystem::exists(path))
    fail(ckpt.dir, ": no tokenizer.json (needed for the GGUF's tokenizer.ggml.* metadata)");
  const TokenizerVocab vocab = Tokenizer::vocab_from_hf_json(path);
  // These always render as text so chat parsers can read them (llama.cpp's converter marks
  // them USER_DEFINED); every other special token is CONTROL, <unk> included.
  static const char* const kVisible[] = {"<|channel>",   "<channel|>",       "<|tool_call>",
                                         "<tool_call|>", "<|tool_response>", "<tool_response|>",
                                         "<|\"|>"};
  std::vector<int32_t> types;
  types.reserve(vocab.types.size());
  for (size_t i = 0; i < vocab.types.size(); ++i) {
    TokenType t = vocab.types[i];
    if (t == TokenType::Unknown) t = TokenType::Control;
    if (std::find(std::begin(kVisible), std::end(kVisible), vocab.tokens[i]) != std::end(kVisible))
      t = TokenType::UserDefined;
    types.push_back(int32_t(t));
  }
  w.set_string("tokenizer.ggml.model", "gemma4");
  w.set_string_array("tokenizer.ggml.tokens", vocab.tokens);
  // tokenizer.json has no scores for BPE; the converter writes this placeholder.
  w.set_f32_array("tokenizer.ggml.scores", std::vector<float>(vocab.tokens.size(), -1000.0f));
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_string_array("tokenizer.ggml.merges", vocab.merges);

  const auto id_of = [&](const std::string& text) -> std::optional<uint32_t> {
    const auto it = std::find(vocab.tokens.begin(), vocab.tokens.end(), text);
    if (it == vocab.tokens.end()) return std::nullopt;
    return uint32_t(it - vocab.tokens.begin());
  };
  const struct {
    const char* config_key;
    const char* gguf_key;
    const char* fallback;
  } kSpecials[] = {
      {"bos_token", "tokenizer.ggml.bos_token_id", "<bos>"},
      {"eos_token", "tokenizer.ggml.eos_token_id", "<eos>"},
      {"unk_token", "tokenizer.ggml.unknown_token_id", "<unk>"},
      {"pad_token", "tokenizer.ggml.padding_token_id", "<pad>"},
      {"mask_token", "tokenizer.ggml.mask_token_id", "<mask>"},
  };
  for (const auto& s : kSpecials) {
    const std::string text =
        special_token_text(ckpt.tokenizer_config, s.config_key).value_or(s.fallback);
    if (const auto id = id_of(text)) {
      w.set_u32(s.gguf_key, *id);
    } else if (special_token_text(ckpt.tokenizer_config, s.config_key)) {
      fail(ckpt.dir, "/tokenizer_config.json: ", s.config_key, " '", text,
           "' is not in tokenizer.json");
    }
  }
  // llama.cpp forces a BOS for Gemma 4 prompts (spec §6), and the converter writes true.
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  bool add_eos = false;
  if (ckpt.tokenizer_config && ckpt.tokenizer_config->contains("add_eos_token") &&
      (*ckpt.tokenizer_config)["add_eos_token"].is_boolean())
    add_eos = (*ckpt.tokenizer_config)["add_eos_token"].get<bool>();
  w.set_bool("tokenizer.ggml.add_eos_token", add_eos);
  w.set_bool("tokenizer.ggml.add_space_prefix", false);

  if (ckpt.generation_config && ckpt.generation_config->contains("suppress_tokens")) {
    const json& ids = (*ckpt.generation_config)["suppress_tokens"];
    std::vector<int32_t> suppress;
    if (!ids.is_null()) {
      if (!ids.is_array()) fail(ckpt.dir, "/generation_config.json: suppress_tokens is not a list");
      for (const json& id : ids) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
            id.get<int64_t>() >= int64_t(vocab.tokens.size()))
          fail(ckpt.dir, "/generation_config.json: suppress_tokens holds ", id.dump(),
               ", not a token id of the ", vocab.tokens.size(), "-token vocabulary");
        suppress.push_back(int32_t(id.get<int64_t>()));
      }
      w.set_i32_array("tokenizer.ggml.suppress_tokens", suppress);
    }
  }
  if (const auto tmpl = ckpt.chat_template()) {
    w.set_string("tokenizer.chat_template", *tmpl);
  } else {
    report.notes.push_back(
        "no chat template in the checkpoint; the engine will use its built-in Gemma 4 template");
  }
  return int64_t(vocab.tokens.size());
}

// general.sampling.* from generation_config.json (the keys real Gemma 4 GGUFs carry).
void add_sampling_metadata(GgufWriter& w, const HfCheckpoint& ckpt) {
  if (!ckpt.generation_config) return;
  const json& g = *ckpt.generation_config;
  const std::string where = ckpt.dir + "/generation_config.json: ";
  if (g.contains("temperature") && g["temperature"].is_number())
    w.set_f32("general.sampling.temp", g["temperature"].get<float>());
  if (g.contains("top_p") && g["top_p"].is_number())
    w.set_f32("general.sampling.top_p", g["top_p"].get<float>());
  if (g.contains("top_k") && g["top_k"].is_number_integer()) {
    const int64_t k = g["top_k"].get<int64_t>();
    if (k < 0 || k > INT32_MAX) fail(where, "top_k = ", k, " is out of range");
    w.set_i32("general.sampling.top_k", int32_t(k));
  }
}

void check_convert_type(GgmlType type, std::initializer_list<GgmlType> allowed, const char* what) {
  if (std::find(allowed.begin(), allowed.end(), type) == allowed.end()) {
    std::string names;
    for (GgmlType t : allowed) names += cat(names.empty() ? "" : ", ", ggml_type_name(t));
    fail("convert: ", what, " type ", ggml_type_name(type), " is not supported (choose one of ",
         names, "; use `gemma4 quantize` for the other types)");
  }
}

// general.file_type of a file whose weights are `type` (the table lives with quantize's targets).
uint32_t file_type_of(GgmlType type) {
  return quantize_target_from_name(ggml_type_name(type)).file_type;
}

std::string model_name(const HfCheckpoint& ckpt, const ConvertOptions& options) {
  if (!options.name.empty()) return options.name;
  std::filesystem::path dir(ckpt.dir);
  if (dir.filename().empty()) dir = dir.parent_path();
  return dir.filename().string();
}

}  // namespace

ConvertReport convert_hf_text_model(const HfCheckpoint& ckpt, const std::string& out_path,
                                    const ConvertOptions& options, ThreadPool& pool,
                                    const TensorProgressFn& progress) {
  check_convert_type(options.type, {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0},
                     "weight");
  ConvertReport report;
  const Gemma4HParams hp = hparams_from_hf_config(ckpt.config, ckpt.config_path());
  // Binding checks every name, shape and dtype before anything is written.
  const Gemma4Weights weights = bind_hf_weights(ckpt, hp);
  const std::vector<std::string> unknown = hf_unknown_text_tensors(ckpt, hp);
  if (!unknown.empty())
    fail(ckpt.dir, ": ", unknown.size(), " decoder tensor(s) this converter does not know, e.g. '",
         unknown.front(), "' (not the Gemma 4 12B layout?)");

  GgufWriter w;
  w.set_string("general.architecture", "gemma4");
  w.set_string("general.name", model_name(ckpt, options));
  w.set_u32("general.file_type", file_type_of(options.type));
  if (options.type == GgmlType::Q8_0) w.set_u32("general.quantization_version", 2);

  write_gemma4_hparams(w, hp);

  const int64_t n_tokens = add_tokenizer_metadata(w, ckpt, report);
  add_sampling_metadata(w, ckpt);

  const int64_t embd_rows = weights.token_embd.rows;
  if (n_tokens > embd_rows)
    fail(ckpt.dir, ": tokenizer.json has ", n_tokens, " tokens but embed_tokens only ", embd_rows,
         " rows");
  if (n_tokens < embd_rows)
    report.notes.push_back(cat("token_embd: ", embd_rows - n_tokens,
                               " rows past the tokenizer's vocabulary of ", n_tokens, " dropped"));

  // Tensors in the order of spec §5.1 (and of the GGUFs llama.cpp writes).
  const SafetensorsCheckpoint& T = ckpt.tensors;
  const std::string& p = ckpt.text_prefix;
  std::vector<TensorPlan> plans;
  const auto matrix = [&](const std::string& name, const std::string& source, int64_t rows,
                          int64_t cols) {
    TensorPlan plan;
    plan.name = name;
    plan.type = matrix_type(options.type, cols, name, report);
    plan.ne = {cols, rows};
    plan.source = &T.tensor(source);
    plans.push_back(std::move(plan));
  };
  const auto vector = [&](const std::string& name, const std::string& source, int64_t n) {
    TensorPlan plan;
    plan.name = name;
    plan.ne = {n};
    plan.source = &T.tensor(source);
    plans.push_back(std::move(plan));
  };
  const int64_t d = hp.n_embd;
  matrix("token_embd.weight", p + "embed_tokens.weight", n_tokens, d);
  vector("output_norm.weight", p + "norm.weight", d);
  if (!weights.rope_freq_factors.empty()) {
    TensorPlan plan;
    plan.name = "rope_freqs.weight";
    plan.ne = {int64_t(weights.rope_freq_factors.size())};
    plan.generated = weights.rope_freq_factors;
    plans.push_back(std::move(plan));
  }
  for (int l = 0; l < hp.n_layer; ++l) {
    const LayerGeometry& g = hp.layer(l);
    const std::string in = cat(p, "layers.", l, "."), out = cat("blk.", l, ".");
    const int64_t q = int64_t(hp.n_head) * g.head_dim, kv = int64_t(g.n_head_kv) * g.head_dim;
    vector(out + "attn_norm.weight", in + "input_layernorm.weight", d);
    matrix(out + "attn_q.weight", in + "self_attn.q_proj.weight", q, d);
    matrix(out + "attn_k.weight", in + "self_attn.k_proj.weight", kv, d);
    if (weights.layers[size_t(l)].wv.present())
      matrix(out + "attn_v.weight", in + "self_attn.v_proj.weight", kv, d);
    matrix(out + "attn_output.weight", in + "self_attn.o_proj.weight", d, q);
    vector(out + "attn_q_norm.weight", in + "self_attn.q_norm.weight", g.head_dim);
    vector(out + "attn_k_norm.weight", in + "self_attn.k_norm.weight", g.head_dim);
    vector(out + "post_attention_norm.weight", in + "post_attention_layernorm.weight", d);
    vector(out + "ffn_norm.weight", in + "pre_feedforward_layernorm.weight", d);
    matrix(out + "ffn_gate.weight", in + "mlp.gate_proj.weight", g.n_ff, d);
    matrix(out + "ffn_up.weight", in + "mlp.up_proj.weight", g.n_ff, d);
    matrix(out + "ffn_down.weight", in + "mlp.down_proj.weight", d, g.n_ff);
    vector(out + "post_ffw_norm.weight", in + "post_feedforward_layernorm.weight", d);
    if (T.find(in + "layer_scalar"))
      vector(out + "layer_output_scale.weight", in + "layer_scalar", 1);
  }
  write_planned(w, plans, ckpt, out_path, pool, progress);
  report.n_tensors = int(plans.size());
  return report;
}

ConvertReport convert_hf_mmproj(const HfCheckpoint& ckpt, const std::string& out_path,
                                const ConvertOptions& options, ThreadPool& pool,
                                const TensorProgressFn& progress) {
  const bool plain = options.type == GgmlType::F32 || options.type == GgmlType::F16 ||
                     options.type == GgmlType::BF16;
  const GgmlType type = options.mmproj_type.value_or(plain ? options.type : GgmlType::BF16);
  check_convert_type(type, {GgmlType::F32, GgmlType::F16, GgmlType::BF16}, "projector");
  const HfMultimodalWeights mm = find_hf_multimodal_weights(ckpt);
  if (!mm.vision && !mm.audio)
    fail(ckpt.dir,
         ": no vision or audio embedder tensors (model.vision_embedder.*, "
         "model.embed_audio.*): nothing to write to a projector file");
  ConvertReport report;

  GgufWriter w;
  w.set_string("general.architecture", "clip");
  w.set_string("general.name", model_name(ckpt, options) + "-mmproj");
  w.set_u32("general.file_type", file_type_of(type));
  std::vector<TensorPlan> plans;
  const auto add = [&](const std::string& name, const SafetensorsTensor* source,
                       std::vector<int64_t> ne, bool is_matrix) {
    TensorPlan plan;
    plan.name = name;
    plan.type = is_matrix ? type : GgmlType::F32;
    plan.ne = std::move(ne);
    plan.source = source;
    plans.push_back(std::move(plan));
    return &plans.back();
  };

  if (mm.vision) {
    const HfVisionEmbedder& v = *mm.vision;
    if (v.patch_size != v.teacher_patch * 3)
      fail(ckpt.config_path(), ": model_patch_size ", v.patch_size, " is not 3 x patch_size ",
           v.teacher_patch, " (llama.cpp's gemma4uv merges 3x3 patches)");
    w.set_bool("clip.has_vision_encoder", true);
    w.set_u32("clip.vision.projection_dim", uint32_t(mm.n_embd));
    w.set_u32("clip.vision.image_size", 224);  // unused by gemma4uv; llama.cpp requires the key
    w.set_u32("clip.vision.patch_size", uint32_t(v.teacher_patch));
    w.set_u32("clip.vision.embedding_length", uint32_t(v.d_mm));
    w.set_u32("clip.vision.feed_forward_length", 0);
    w.set_u32("clip.vision.block_count", 0);
    w.set_u32("clip.vision.attention.head_count", 0);
    w.set_f32_array("clip.vision.image_mean", {0.0f, 0.0f, 0.0f});
    w.set_f32_array("clip.vision.image_std", {1.0f, 1.0f, 1.0f});
    w.set_string("clip.vision.projector_type", "gemma4uv");
    w.set_f32("clip.vision.attention.layer_norm_epsilon", v.rms_eps);

    // spec §5.2: CHW position i takes the HWC column perm[i].
    const int64_t patch_dim = int64_t(v.patch_size) * v.patch_size * 3;
    std::vector<int64_t> perm(static_cast<size_t>(patch_dim));
    for (int64_t i = 0; i < patch_dim; ++i) perm[size_t(i)] = hwc_index_of_chw(i, v.patch_size);
    const int64_t dm = v.d_mm, posemb = v.posemb_size;
    add("v.patch_norm.1.weight", v.patch_ln1_weight, {patch_dim}, false)->column_perm = perm;
    add("v.patch_norm.1.bias", v.patch_ln1_bias, {patch_dim}, false)->column_perm = perm;
    add("v.patch_embd.weight", v.patch_dense_weight, {patch_dim, dm}, true)->column_perm = perm;
    add("v.patch_embd.bias", v.patch_dense_bias, {dm}, false);
    add("v.patch_norm.2.weight", v.patch_ln2_weight, {dm}, false);
    add("v.patch_norm.2.bias", v.patch_ln2_bias, {dm}, false);
    // HF [posemb][2][d] -> GGUF [2][posemb][d] (numpy order): output row t * posemb + p is
    // source row p * 2 + t.
    add("v.position_embd.weight", v.pos_embedding, {dm, posemb, 2}, true)->row_map =
        [posemb](int64_t r) { return (r % posemb) * 2 + r / posemb; };
    add("v.patch_norm.3.weight", v.pos_norm_weight, {dm}, false);
    add("v.patch_norm.3.bias", v.pos_norm_bias, {dm}, false);
    add("mm.input_projection.weight", v.projection, {dm, mm.n_embd}, true);
  }
  if (mm.audio) {
    const HfAudioEmbedder& au = *mm.audio;
    w.set_bool("clip.has_audio_encoder", true);
    w.set_u32("clip.audio.projection_dim", uint32_t(mm.n_embd));
    w.set_u32("clip.audio.embedding_length", uint32_t(au.samples_per_token));
    w.set_u32("clip.audio.feed_forward_length", 0);
    w.set_u32("clip.audio.block_count", 0);
    w.set_u32("clip.audio.attention.head_count", 0);
    w.set_string("clip.audio.projector_type", "gemma4ua");
    // A placeholder llama.cpp requires; gemma4ua frames are audio_samples_per_token samples.
    w.set_u32("clip.audio.num_mel_bins", 128);
    w.set_f32("clip.audio.attention.layer_norm_epsilon", au.rms_eps);
    add("mm.a.input_projection.weight", au.projection, {au.samples_per_token, mm.n_embd}, true);
  }
  write_planned(w, plans, ckpt, out_path, pool, progress);
  report.n_tensors = int(plans.size());
  return report;
}

}  // namespace g4
