#include "model/hf_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "formats/gguf.h"
#include "ops/quant.h"
#include "text/tokenizer.h"

namespace g4 {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kMaxJsonFileBytes = size_t(256) << 20;

json read_json_file(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) fail(path.string(), ": cannot read: ", ec.message());
  if (size > kMaxJsonFileBytes)
    fail(path.string(), ": ", size, " bytes is too large for a JSON file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    fail(path.string(), ": not valid JSON: ", e.what());
  }
}

std::optional<json> read_optional_json(const fs::path& path) {
  if (!fs::exists(path)) return std::nullopt;
  json j = read_json_file(path);
  if (!j.is_object()) fail(path.string(), ": the top level is not a JSON object");
  return j;
}

// Typed access to one JSON object of config.json with messages naming the file and key path.
class ConfigView {
 public:
  ConfigView(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  std::string name(const std::string& key) const { return where_ + key; }

  // nullptr when absent or null.
  const json* find(const std::string& key) const {
    const auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  const json& require(const std::string& key) const {
    const json* v = find(key);
    if (!v) fail(name(key), " is missing");
    return *v;
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    return checked_integer(require(key), key, lo, hi);
  }
  std::optional<int64_t> integer_opt(const std::string& key, int64_t lo, int64_t hi) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    return checked_integer(*v, key, lo, hi);
  }
  double number(const std::string& key) const {
    const json& v = require(key);
    if (!v.is_number()) fail(name(key), " is ", v.dump(), ", expected a number");
    return v.get<double>();
  }
  std::optional<double> number_opt(const std::string& key) const {
    if (!find(key)) return std::nullopt;
    return number(key);
  }
  bool boolean(const std::string& key, bool missing) const {
    const json* v = find(key);
    if (!v) return missing;
    if (!v->is_boolean()) fail(name(key), " is ", v->dump(), ", expected true or false");
    return v->get<bool>();
  }
  std::string string(const std::string& key) const {
    const json& v = require(key);
    if (!v.is_string()) fail(name(key), " is ", v.dump(), ", expected a string");
    return v.get<std::string>();
  }
  ConfigView object(const std::string& key) const {
    const json& v = require(key);
    if (!v.is_object()) fail(name(key), " is not a JSON object");
    return ConfigView(v, name(key) + ".");
  }

 private:
  int64_t checked_integer(const json& v, const std::string& key, int64_t lo, int64_t hi) const {
    if (!v.is_number_integer()) fail(name(key), " is ", v.dump(), ", expected an integer");
    const int64_t x = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)
                          ? INT64_MAX
                          : v.get<int64_t>();
    if (x < lo || x > hi)
      fail(name(key), " = ", x, " is out of range (expected ", lo, "..", hi, ")");
    return x;
  }
  const json& object_;
  std::string where_;
};

ConfigView text_view(const json& config, const std::string& source) {
  if (!config.is_object()) fail(source, ": the top level is not a JSON object");
  const bool nested = config.contains("text_config") && config["text_config"].is_object();
  return ConfigView(hf_text_config(config), source + ": " + (nested ? "text_config." : ""));
}

// One attention kind's rope_parameters entry: rotated dims and base (spec §2.5).
struct RopeKind {
  bool proportional = false;
  double partial_rotary_factor = 1.0;
  float base = 0.0f;
};

RopeKind read_rope(const ConfigView& rope_parameters, const std::string& kind) {
  const ConfigView r = rope_parameters.object(kind);
  RopeKind out;
  const std::string type = r.find("rope_type") ? r.string("rope_type") : "default";
  if (type == "proportional") {
    out.proportional = true;
  } else if (type != "default") {
    fail(r.name("rope_type"), " is '", type,
         "': only 'default' and 'proportional' RoPE are supported (Gemma 4 uses no RoPE scaling)");
  }
  if (const auto factor = r.number_opt("factor"); factor && *factor != 1.0)
    fail(r.name("factor"), " = ", *factor, ": RoPE scaling is not supported");
  out.partial_rotary_factor = r.number_opt("partial_rotary_factor").value_or(1.0);
  if (!(out.partial_rotary_factor > 0.0 && out.partial_rotary_factor <= 1.0))
    fail(r.name("partial_rotary_factor"), " = ", out.partial_rotary_factor,
         " is out of range (0, 1]");
  out.base = float(r.number("rope_theta"));
  if (!(out.base > 1.0f)) fail(r.name("rope_theta"), " = ", out.base, " must be > 1");
  return out;
}

// Rotated dims: proportional RoPE rotates pairs over the full head (the unrotated ones get
// factor 1e30); default RoPE with a partial factor rotates the first head_dim * factor dims.
int rotated_dims(const RopeKind& rope, int head_dim) {
  return rope.proportional ? head_dim : int(double(head_dim) * rope.partial_rotary_factor);
}

void require_off(const ConfigView& c, const std::string& key, const char* feature) {
  const json* v = c.find(key);
  if (!v) return;
  const bool on =
      v->is_boolean() ? v->get<bool>() : (v->is_number() ? v->get<double>() != 0.0 : true);
  if (on)
    fail(c.name(key), " = ", v->dump(), ": ", feature,
         " is not supported by this engine (it runs the Gemma 4 12B layout)");
}

std::string where_is(const SafetensorsTensor& t) {
  return cat(t.file, ": tensor '", t.name, "'");
}

void check_shape(const SafetensorsTensor& t, const std::vector<int64_t>& shape) {
  if (t.shape != shape) {
    SafetensorsTensor expected;
    expected.shape = shape;
    fail(where_is(t), " has shape ", t.shape_string(), ", expected ", expected.shape_string(),
         " for this model's config");
  }
}

GgmlType engine_type(const SafetensorsTensor& t) {
  const auto type = safetensors_dtype_to_ggml(t.dtype);
  if (!type)
    fail(where_is(t), " has dtype ", safetensors_dtype_name(t.dtype),
         "; the engine reads F32, F16 and BF16 weights");
  return *type;
}

WeightMatrix bind_matrix(const SafetensorsTensor& t, int64_t rows, int64_t cols) {
  check_shape(t, {rows, cols});
  const GgmlType type = engine_type(t);
  if (uintptr_t(t.data) % safetensors_dtype_size(t.dtype) != 0)
    fail(where_is(t), " is not aligned to its ", safetensors_dtype_size(t.dtype),
         "-byte elements in the file (a header not padded to 8 bytes); save the checkpoint again");
  WeightMatrix m;
  m.name = t.name;
  m.type = type;
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = ggml_row_bytes(type, cols);
  m.data = t.data;
  return m;
}

// Small vectors are decoded to float (through an aligned copy: the file gives no alignment
// guarantee we rely on for these).
std::vector<float> decode_vector(const SafetensorsTensor& t, int64_t n) {
  // layer_scalar may be stored as [1] or as a 0-dim scalar.
  if (!(n == 1 && t.shape.empty())) check_shape(t, {n});
  const GgmlType type = engine_type(t);
  std::vector<uint8_t> bytes(t.data, t.data + t.n_bytes());
  std::vector<float> out(static_cast<size_t>(n));
  std::vector<uint64_t> aligned((bytes.size() + 7) / 8);
  std::memcpy(aligned.data(), bytes.data(), bytes.size());
  dequantize_row(type, aligned.data(), out.data(), n);
  return out;
}

// Decoder tensor names relative to the text prefix, per layer (spec §5.1 table, HF column).
struct LayerNames {
  std::string input_layernorm, q, k, v, o, q_norm, k_norm, post_attention_layernorm,
      pre_feedforward_layernorm, gate, up, down, post_feedforward_layernorm, layer_scalar;
};

LayerNames layer_names(const std::string& prefix, int l) {
  const std::string p = cat(prefix, "layers.", l, ".");
  return {p + "input_layernorm.weight",
          p + "self_attn.q_proj.weight",
          p + "self_attn.k_proj.weight",
          p + "self_attn.v_proj.weight",
          p + "self_attn.o_proj.weight",
          p + "self_attn.q_norm.weight",
          p + "self_attn.k_norm.weight",
          p + "post_attention_layernorm.weight",
          p + "pre_feedforward_layernorm.weight",
          p + "mlp.gate_proj.weight",
          p + "mlp.up_proj.weight",
          p + "mlp.down_proj.weight",
          p + "post_feedforward_layernorm.weight",
          p + "layer_scalar"};
}

bool attention_k_eq_v(const json& config) {
  const json& tc = hf_text_config(config);
  const auto it = tc.find("attention_k_eq_v");
  return it != tc.end() && it->is_boolean() && it->get<bool>();
}

const SafetensorsTensor* find_first(const SafetensorsCheckpoint& c,
                                    std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (const SafetensorsTensor* t = c.find(n)) return t;
  return nullptr;
}

}  // namespace

// --- HfCheckpoint ---

std::unique_ptr<HfCheckpoint> HfCheckpoint::open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail(dir, ": not a folder (expected a Hugging Face checkpoint folder with config.json)");
  const fs::path config_path = fs::path(dir) / "config.json";
  if (!fs::exists(config_path)) fail(dir, ": no config.json in this folder");
  json config = read_json_file(config_path);
  auto c = std::make_unique<HfCheckpoint>(
      HfCheckpoint{dir, std::move(config), {}, {}, SafetensorsCheckpoint::open(dir), ""});
  if (!c->config.is_object()) fail(config_path.string(), ": the top level is not a JSON object");
  c->generation_config = read_optional_json(fs::path(dir) / "generation_config.json");
  c->tokenizer_config = read_optional_json(fs::path(dir) / "tokenizer_config.json");
  if (c->tensors.find("model.language_model.embed_tokens.weight"))
    c->text_prefix = "model.language_model.";
  else if (c->tensors.find("model.embed_tokens.weight"))
    c->text_prefix = "model.";
  else
    fail(dir,
         ": no model.language_model.embed_tokens.weight or model.embed_tokens.weight tensor "
         "(not a Gemma 4 checkpoint?)");
  return c;
}

std::string HfCheckpoint::config_path() const {
  return (fs::path(dir) / "config.json").string();
}

std::string HfCheckpoint::tokenizer_json_path() const {
  return (fs::path(dir) / "tokenizer.json").string();
}

std::optional<std::string> HfCheckpoint::chat_template() const {
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja)) {
    std::ifstream in(jinja, std::ios::binary);
    if (!in) fail(jinja.string(), ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  if (!tokenizer_config) return std::nullopt;
  const auto it = tokenizer_config->find("chat_template");
  if (it == tokenizer_config->end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (const json& entry : *it)
      if (entry.is_object() && entry.contains("name") && entry["name"] == "default" &&
          entry.contains("template") && entry["template"].is_string())
        return entry["template"].get<std::string>();
  }
  fail(dir,
       "/tokenizer_config.json: chat_template is neither a string nor a list holding a "
       "\"default\" template");
}

const json& hf_text_config(const json& config) {
  const auto it = config.find("text_config");
  return it != config.end() && it->is_object() ? *it : config;
}

// --- hyper-parameters ---

Gemma4HParams hparams_from_hf_config(const json& config, const std::string& source) {
  const ConfigView c = text_view(config, source);
  if (const auto it = config.find("model_type"); it != config.end() && it->is_string()) {
    const std::string type = it->get<std::string>();
    if (type.rfind("gemma4", 0) != 0)
      fail(source, ": model_type is '", type, "', expected a Gemma 4 model (gemma4*)");
  }

  Gemma4HParams hp;
  if (const auto it = config.find("_name_or_path"); it != config.end() && it->is_string())
    hp.name = it->get<std::string>();
  hp.n_embd = int(c.integer("hidden_size", 1, 1 << 24));
  hp.n_layer = int(c.integer("num_hidden_layers", 1, 4096));
  hp.n_head = int(c.integer("num_attention_heads", 1, 4096));
  hp.n_vocab = int(c.integer("vocab_size", 1, 1 << 26));
  hp.n_ctx_train = c.integer_opt("max_position_embeddings", 0, int64_t(1) << 40).value_or(0);
  hp.sliding_window = int(c.integer("sliding_window", 1, 1 << 30));
  hp.rms_eps = float(c.number_opt("rms_norm_eps").value_or(1e-6));
  if (!(hp.rms_eps > 0.0f && hp.rms_eps < 1.0f))
    fail(c.name("rms_norm_eps"), " = ", hp.rms_eps, " is out of range (0, 1)");
  hp.final_logit_softcap = float(c.number_opt("final_logit_softcapping").value_or(0.0));
  if (hp.final_logit_softcap < 0.0f)
    fail(c.name("final_logit_softcapping"), " must not be negative");

  require_off(c, "num_kv_shared_layers", "cross-layer KV sharing (Gemma 4 E2B/E4B)");
  require_off(c, "hidden_size_per_layer_input", "per-layer embeddings (Gemma 4 E2B/E4B)");
  require_off(c, "enable_moe_block", "mixture of experts (Gemma 4 26B-A4B)");
  require_off(c, "use_double_wide_mlp", "the double-wide MLP (Gemma 4 E2B)");
  require_off(c, "attention_bias", "attention with bias");
  if (c.find("attn_logit_softcapping"))
    fail(c.name("attn_logit_softcapping"),
         " is set: attention softcapping is not supported (Gemma 4 has none)");
  const ConfigView top(config, source + ": ");
  if (!c.boolean("tie_word_embeddings", top.boolean("tie_word_embeddings", true)))
    fail(c.name("tie_word_embeddings"),
         " is false: a separate output matrix is not supported "
         "(Gemma 4 ties the output to the embedding)");
  for (const char* key : {"hidden_activation", "hidden_act"}) {
    if (!c.find(key)) continue;
    const std::string act = c.string(key);
    if (act != "gelu_pytorch_tanh")
      fail(c.name(key), " is '", act,
           "': only gelu_pytorch_tanh (tanh-approximated GELU) is supported");
    break;
  }

  const json& types = c.require("layer_types");
  if (!types.is_array() || types.size() != size_t(hp.n_layer))
    fail(c.name("layer_types"), " must be a list with one entry per layer (", hp.n_layer, ")");
  const int kv_swa = int(c.integer("num_key_value_heads", 1, 4096));
  const int kv_full = int(c.integer_opt("num_global_key_value_heads", 1, 4096).value_or(kv_swa));
  const int hd_swa = int(c.integer("head_dim", 2, 1 << 16));
  const int hd_full = int(c.integer_opt("global_head_dim", 2, 1 << 16).value_or(hd_swa));
  const int n_ff = int(c.integer("intermediate_size", 1, 1 << 24));
  const ConfigView rope = c.object("rope_parameters");
  const RopeKind rope_swa = read_rope(rope, "sliding_attention");
  const RopeKind rope_full = read_rope(rope, "full_attention");

  for (int l = 0; l < hp.n_layer; ++l) {
    const json& kind = types[size_t(l)];
    const std::string kind_name = kind.is_string() ? kind.get<std::string>() : kind.dump();
    if (kind_name != "sliding_attention" && kind_name != "full_attention")
      fail(c.name("layer_types"), "[", l, "] is '", kind_name,
           "', expected sliding_attention or full_attention");
    LayerGeometry g;
    g.sliding = kind_name == "sliding_attention";
    g.n_head_kv = g.sliding ? kv_swa : kv_full;
    g.head_dim = g.sliding ? hd_swa : hd_full;
    const RopeKind& r = g.sliding ? rope_swa : rope_full;
    g.n_rot = rotated_dims(r, g.head_dim);
    g.rope_base = r.base;
    g.n_ff = n_ff;
    if (hp.n_head % g.n_head_kv != 0)
      fail(source, ": layer ", l, ": num_attention_heads (", hp.n_head,
           ") is not a multiple of its key/value head count (", g.n_head_kv, ")");
    if (g.head_dim % 2 != 0 || g.n_rot % 2 != 0 || g.n_rot <= 0 || g.n_rot > g.head_dim)
      fail(source, ": layer ", l, ": rotated dims ", g.n_rot,
           " must be even, positive and within head_dim ", g.head_dim);
    hp.layers.push_back(g);
  }
  return hp;
}

std::vector<float> hf_rope_freq_factors(const json& config, const std::string& source) {
  const ConfigView c = text_view(config, source);
  const json& types = c.require("layer_types");
  const bool has_full =
      types.is_array() && std::any_of(types.begin(), types.end(), [](const json& t) {
        return t.is_string() && t.get<std::string>() == "full_attention";
      });
  if (!has_full) return {};
  const RopeKind rope = read_rope(c.object("rope_parameters"), "full_attention");
  if (!rope.proportional) return {};
  const int hd_swa = int(c.integer("head_dim", 2, 1 << 16));
  const int hd_full = int(c.integer_opt("global_head_dim", 2, 1 << 16).value_or(hd_swa));
  // spec §2.5: int(head_dim * p / 2) pairs rotate with factor 1; the rest get 1e30 (angle ~0).
  const int pairs = hd_full / 2;
  const int rotated = std::min(pairs, int(double(hd_full) * rope.partial_rotary_factor / 2.0));
  std::vector<float> factors(size_t(pairs), 1e30f);
  std::fill(factors.begin(), factors.begin() + rotated, 1.0f);
  return factors;
}

// --- weights ---

Gemma4Weights bind_hf_weights(const HfCheckpoint& ckpt, const Gemma4HParams& hp) {
  const SafetensorsCheckpoint& T = ckpt.tensors;
  const std::string& p = ckpt.text_prefix;
  const int64_t d = hp.n_embd;
  Gemma4Weights w;
  if (const SafetensorsTensor* head = find_first(T, {"lm_head.weight", "model.lm_head.weight"}))
    fail(where_is(*head),
         ": a separate output matrix is not supported (Gemma 4 ties it to the embedding)");
  w.token_embd = bind_matrix(T.tensor(p + "embed_tokens.weight"), hp.n_vocab, d);
  w.output_norm = decode_vector(T.tensor(p + "norm.weight"), d);
  w.rope_freq_factors = hf_rope_freq_factors(ckpt.config, ckpt.config_path());
  const bool k_eq_v = attention_k_eq_v(ckpt.config);

  for (int l = 0; l < hp.n_layer; ++l) {
    const LayerGeometry& g = hp.layer(l);
    const LayerNames n = layer_names(p, l);
    const int64_t q_rows = int64_t(hp.n_head) * g.head_dim;
    const int64_t kv_rows = int64_t(g.n_head_kv) * g.head_dim;
    LayerWeights lw;
    lw.attn_norm = decode_vector(T.tensor(n.input_layernorm), d);
    lw.wq = bind_matrix(T.tensor(n.q), q_rows, d);
    lw.wk = bind_matrix(T.tensor(n.k), kv_rows, d);
    // k_eq_v (spec §2.3): full layers have no v_proj; V is the raw K projection.
    const bool has_v = g.sliding || !k_eq_v;
    const SafetensorsTensor* v = T.find(n.v);
    if (has_v && !v)
      fail(T.source(), ": no tensor '", n.v, "' (layer ", l, " needs a value projection)");
    if (!has_v && v)
      fail(where_is(*v), " exists but attention_k_eq_v says full-attention layers take V from K");
    if (v) lw.wv = bind_matrix(*v, kv_rows, d);
    lw.wo = bind_matrix(T.tensor(n.o), d, q_rows);
    lw.q_norm = decode_vector(T.tensor(n.q_norm), g.head_dim);
    lw.k_norm = decode_vector(T.tensor(n.k_norm), g.head_dim);
    lw.post_attn_norm = decode_vector(T.tensor(n.post_attention_layernorm), d);
    lw.ffn_norm = decode_vector(T.tensor(n.pre_feedforward_layernorm), d);
    lw.w_gate = bind_matrix(T.tensor(n.gate), g.n_ff, d);
    lw.w_up = bind_matrix(T.tensor(n.up), g.n_ff, d);
    lw.w_down = bind_matrix(T.tensor(n.down), d, g.n_ff);
    lw.post_ffw_norm = decode_vector(T.tensor(n.post_feedforward_layernorm), d);
    if (const SafetensorsTensor* s = T.find(n.layer_scalar))
      lw.output_scale = decode_vector(*s, 1)[0];
    w.layers.push_back(std::move(lw));
  }
  return w;
}

std::vector<std::string> hf_unknown_text_tensors(const HfCheckpoint& ckpt,
                                                 const Gemma4HParams& hp) {
  const std::string& p = ckpt.text_prefix;
  std::set<std::string> known = {p + "embed_tokens.weight", p + "norm.weight"};
  for (int l = 0; l < hp.n_layer; ++l) {
    const LayerNames n = layer_names(p, l);
    for (const std::string* s : {&n.input_layernorm, &n.q, &n.k, &n.v, &n.o, &n.q_norm, &n.k_norm,
                                 &n.post_attention_layernorm, &n.pre_feedforward_layernorm, &n.gate,
                                 &n.up, &n.down, &n.post_feedforward_layernorm, &n.layer_scalar})
      known.insert(*s);
  }
  // The multimodal parts live next to the decoder in text-only-prefixed layouts too.
  static const char* const kMultimodal[] = {"model.vision_embedder.", "model.embed_vision.",
                                            "model.embed_audio.", "model.vision_tower.",
                                            "model.audio_tower."};
  std::vector<std::string> unknown;
  for (const SafetensorsTensor* t : ckpt.tensors.tensors()) {
    if (t->name.rfind(p, 0) != 0 || known.count(t->name)) continue;
    if (std::any_of(std::begin(kMultimodal), std::end(kMultimodal),
                    [&](const char* m) { return t->name.rfind(m, 0) == 0; }))
      continue;
    unknown.push_back(t->name);
  }
  return unknown;
}

// --- multimodal ---

HfMultimodalWeights find_hf_multimodal_weights(const HfCheckpoint& ckpt) {
  const SafetensorsCheckpoint& T = ckpt.tensors;
  const std::string source = ckpt.config_path();
  HfMultimodalWeights mm;
  mm.n_embd = int(text_view(ckpt.config, source).integer("hidden_size", 1, 1 << 24));
  for (const SafetensorsTensor* t : T.tensors()) {
    if (t->name.rfind("model.vision_tower.", 0) == 0 || t->name.rfind("model.audio_tower.", 0) == 0)
      fail(where_is(*t),
           ": this checkpoint has a vision or audio encoder (Gemma 4 E2B/E4B/26B/31B); "
           "only the encoder-free embedders of the 12B unified model are supported");
  }
  const json empty = json::object();
  const auto sub_config = [&](const char* key) -> const json& {
    const auto it = ckpt.config.find(key);
    return it != ckpt.config.end() && it->is_object() ? *it : empty;
  };

  const SafetensorsTensor* dense = find_first(
      T, {"model.vision_embedder.patch_dense.weight", "model.embed_vision.patch_dense.weight"});
  if (dense) {
    const std::string base =
        dense->name.substr(0, dense->name.size() - std::strlen("patch_dense.weight"));
    const ConfigView vc(sub_config("vision_config"), source + ": vision_config.");
    HfVisionEmbedder v;
    const int teacher = int(vc.integer_opt("patch_size", 1, 4096).value_or(16));
    const int pooling = int(vc.integer_opt("pooling_kernel_size", 1, 64).value_or(3));
    v.teacher_patch = teacher;
    v.patch_size = int(vc.integer_opt("model_patch_size", 1, 4096).value_or(teacher * pooling));
    v.rms_eps = float(vc.number_opt("rms_norm_eps").value_or(1e-6));
    const int64_t patch_dim = int64_t(v.patch_size) * v.patch_size * 3;
    if (dense->shape.size() != 2 || dense->shape[1] != patch_dim)
      fail(where_is(*dense), " has shape ", dense->shape_string(), ", expected [mm_embed_dim, ",
           patch_dim, "] for ", v.patch_size, "x", v.patch_size, " RGB patches");
    v.d_mm = int(dense->shape[0]);
    if (const auto d_mm = vc.integer_opt("mm_embed_dim", 1, 1 << 24); d_mm && *d_mm != v.d_mm)
      fail(where_is(*dense), " has ", v.d_mm, " rows but vision_config.mm_embed_dim is ", *d_mm);
    const auto get = [&](const std::string& name, std::vector<int64_t> shape) {
      const SafetensorsTensor& t = T.tensor(base + name);
      check_shape(t, shape);
      engine_type(t);
      return &t;
    };
    const int64_t dm = v.d_mm;
    v.patch_dense_weight = get("patch_dense.weight", {dm, patch_dim});
    v.patch_ln1_weight = get("patch_ln1.weight", {patch_dim});
    v.patch_ln1_bias = get("patch_ln1.bias", {patch_dim});
    v.patch_dense_bias = get("patch_dense.bias", {dm});
    v.patch_ln2_weight = get("patch_ln2.weight", {dm});
    v.patch_ln2_bias = get("patch_ln2.bias", {dm});
    v.pos_norm_weight = get("pos_norm.weight", {dm});
    v.pos_norm_bias = get("pos_norm.bias", {dm});
    const SafetensorsTensor& pos = T.tensor(base + "pos_embedding");
    if (pos.shape.size() != 3 || pos.shape[1] != 2 || pos.shape[2] != dm)
      fail(where_is(pos), " has shape ", pos.shape_string(), ", expected [posemb_size, 2, ", dm,
           "]");
    engine_type(pos);
    v.pos_embedding = &pos;
    v.posemb_size = int(pos.shape[0]);
    const SafetensorsTensor* proj =
        find_first(T, {"model.embed_vision.embedding_projection.weight",
                       "model.embed_vision.multimodal_embedder.embedding_projection.weight"});
    if (!proj) fail(T.source(), ": no tensor 'model.embed_vision.embedding_projection.weight'");
    check_shape(*proj, {mm.n_embd, dm});
    engine_type(*proj);
    v.projection = proj;
    mm.vision = v;
  }

  if (const SafetensorsTensor* proj = T.find("model.embed_audio.embedding_projection.weight")) {
    const ConfigView ac(sub_config("audio_config"), source + ": audio_config.");
    HfAudioEmbedder a;
    a.samples_per_token =
        int(ac.integer_opt("audio_samples_per_token", 1, 1 << 20)
                .value_or(ac.integer_opt("audio_embed_dim", 1, 1 << 20).value_or(640)));
    a.rms_eps = float(ac.number_opt("rms_norm_eps").value_or(1e-6));
    check_shape(*proj, {mm.n_embd, a.samples_per_token});
    engine_type(*proj);
    a.projection = proj;
    mm.audio = a;
  }
  return mm;
}

std::unique_ptr<MultimodalProjector> load_hf_projector(std::shared_ptr<const HfCheckpoint> checkpoint) {
  const HfMultimodalWeights mm = find_hf_multimodal_weights(*checkpoint);
  if (!mm.vision && !mm.audio) fail(checkpoint->dir, ": the checkpoint has no vision or audio embedder");
  std::unique_ptr<VisionEmbedderWeights> vision;
  if (mm.vision) {
    const HfVisionEmbedder& h = *mm.vision;
    if (h.patch_size != kVisionPatch)
      fail(where_is(*h.patch_dense_weight), ": ", h.patch_size, "-pixel patches; the engine runs ", kVisionPatch);
    const int64_t dm = h.d_mm;
    vision = std::make_unique<VisionEmbedderWeights>();
    vision->ln1_w = decode_vector(*h.patch_ln1_weight, kVisionPatchDim);
    vision->ln1_b = decode_vector(*h.patch_ln1_bias, kVisionPatchDim);
    vision->dense = bind_matrix(*h.patch_dense_weight, dm, kVisionPatchDim);
    vision->dense_b = decode_vector(*h.patch_dense_bias, dm);
    vision->ln2_w = decode_vector(*h.patch_ln2_weight, dm);
    vision->ln2_b = decode_vector(*h.patch_ln2_bias, dm);
    // pos_embedding [posemb, 2, dm]: [pos][0] is the x table, [pos][1] the y table.
    const SafetensorsTensor& pos = *h.pos_embedding;
    const GgmlType type = engine_type(pos);
    const int64_t row_bytes = ggml_row_bytes(type, dm);
    vision->n_pos = h.posemb_size;
    vision->pos_x.resize(size_t(h.posemb_size * dm));
    vision->pos_y.resize(size_t(h.posemb_size * dm));
    std::vector<uint64_t> aligned(size_t((row_bytes + 7) / 8));
    for (int64_t p = 0; p < h.posemb_size; ++p)
      for (int table = 0; table < 2; ++table) {
        std::memcpy(aligned.data(), pos.data + (p * 2 + table) * row_bytes, size_t(row_bytes));
        dequantize_row(type, aligned.data(), (table ? vision->pos_y : vision->pos_x).data() + p * dm, dm);
      }
    vision->ln3_w = decode_vector(*h.pos_norm_weight, dm);
    vision->ln3_b = decode_vector(*h.pos_norm_bias, dm);
    vision->projection = bind_matrix(*h.projection, mm.n_embd, dm);
    vision->rms_eps = h.rms_eps;
    vision->patch_order = PatchOrder::kHWC;  // HF weights see patches as the processor cuts them
  }
  std::unique_ptr<AudioEmbedderWeights> audio;
  if (mm.audio) {
    if (mm.audio->samples_per_token != kAudioFrameSamples)
      fail(where_is(*mm.audio->projection), ": ", mm.audio->samples_per_token,
           " samples per token; the engine runs ", kAudioFrameSamples);
    audio = std::make_unique<AudioEmbedderWeights>();
    audio->projection = bind_matrix(*mm.audio->projection, mm.n_embd, kAudioFrameSamples);
    audio->rms_eps = mm.audio->rms_eps;
  }
  const std::string dir = checkpoint->dir;
  return std::make_unique<MultimodalProjector>(dir, mm.n_embd, std::move(vision), std::move(audio),
                                               std::move(checkpoint));
}

// --- loading ---

std::unique_ptr<Gemma4Model> load_hf_gemma4(const std::string& dir) {
  auto model = std::make_unique<Gemma4Model>();
  model->path = dir;
  model->checkpoint = HfCheckpoint::open(dir);
  const HfCheckpoint& ckpt = *model->checkpoint;
  Gemma4HParams hp = hparams_from_hf_config(ckpt.config, ckpt.config_path());
  if (hp.name.empty()) hp.name = fs::path(dir).filename().string();
  model->weights = bind_hf_weights(ckpt, hp);
  hp.n_vocab = int(model->weights.token_embd.rows);

  const auto add_unique = [&](std::vector<int32_t>& list, int64_t id, const char* what) {
    if (id < 0 || id >= hp.n_vocab)
      fail(dir, ": ", what, " names token ", id, ", outside the vocabulary of ", hp.n_vocab);
    if (std::find(list.begin(), list.end(), id) == list.end()) list.push_back(int32_t(id));
  };
  const auto add_ids = [&](const json* value, std::vector<int32_t>& list, const char* what) {
    if (!value || value->is_null()) return;
    if (value->is_number_integer()) return add_unique(list, value->get<int64_t>(), what);
    if (!value->is_array()) fail(dir, ": ", what, " is ", value->dump(), ", expected token ids");
    for (const json& id : *value) {
      if (!id.is_number_integer())
        fail(dir, ": ", what, " holds ", id.dump(), ", expected token ids");
      add_unique(list, id.get<int64_t>(), what);
    }
  };
  const auto field = [](const std::optional<json>& j, const char* key) -> const json* {
    if (!j) return nullptr;
    const auto it = j->find(key);
    return it == j->end() ? nullptr : &*it;
  };
  add_ids(field(ckpt.generation_config, "suppress_tokens"), model->suppressed_tokens,
          "generation_config.json suppress_tokens");
  add_ids(field(ckpt.generation_config, "eos_token_id"), model->end_of_generation,
          "generation_config.json eos_token_id");
  add_ids(field(std::optional<json>(ckpt.config), "eos_token_id"), model->end_of_generation,
          "config.json eos_token_id");
  if (fs::exists(ckpt.tokenizer_json_path())) {
    model->tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_hf_json(ckpt.tokenizer_json_path()));
    if (model->tokenizer->n_vocab() > size_t(hp.n_vocab))
      fail(ckpt.tokenizer_json_path(), ": has ", model->tokenizer->n_vocab(), " tokens but the embedding has ",
           hp.n_vocab, " rows");
    for (TokenId id : model->tokenizer->end_of_generation_ids())
      add_unique(model->end_of_generation, id, "tokenizer.json");
  }
  model->chat_template = ckpt.chat_template();
  // generation_config.json's sampling values, like general.sampling.* in a GGUF.
  if (const json* t = field(ckpt.generation_config, "temperature"); t && t->is_number())
    model->sampling_defaults.temperature = t->get<float>();
  if (const json* k = field(ckpt.generation_config, "top_k"); k && k->is_number_integer())
    model->sampling_defaults.top_k = k->get<int>();
  if (const json* p = field(ckpt.generation_config, "top_p"); p && p->is_number())
    model->sampling_defaults.top_p = p->get<float>();
  model->hp = std::move(hp);
  return model;
}

}  // namespace g4
