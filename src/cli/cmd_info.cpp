// gemma4 info: what a user needs to know about a GGUF before loading it: architecture,
// hyper-parameters, tensor types, parameter count and the memory for weights and KV cache.
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "model/hparams.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/weights.h"
#include "runtime/sampler.h"

namespace g4::cli {
namespace {

std::string human_count(double n) {
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

nlohmann::ordered_json describe_file(const GgufFile& f) {
  nlohmann::ordered_json j;
  j["file"] = f.path();
  j["gguf_version"] = f.version();
  j["file_bytes"] = f.file_size();
  j["alignment"] = f.alignment();
  j["architecture"] = f.get_string_opt("general.architecture").value_or("");
  j["name"] = f.get_string_opt("general.name").value_or("");
  j["metadata_keys"] = f.metadata().size();
  std::map<std::string, int> by_type;
  double params = 0, bytes = 0;
  std::vector<std::string> unsupported;
  for (const GgufTensorInfo& t : f.tensors()) {
    ++by_type[ggml_type_name(t.type)];
    params += double(t.n_elements());
    bytes += double(t.n_bytes);
    if (!type_is_supported(t.type)) unsupported.push_back(t.name + " (" + ggml_type_name(t.type) + ")");
  }
  j["tensor_count"] = f.tensors().size();
  j["tensor_types"] = by_type;
  j["parameters"] = params;
  j["tensor_bytes"] = bytes;
  if (!unsupported.empty()) j["unsupported_tensors"] = unsupported;
  return j;
}

nlohmann::ordered_json describe_gemma4(const GgufFile& f, int64_t n_ctx, const CacheFlags& cache, int64_t batch) {
  nlohmann::ordered_json j;
  Gemma4HParams hp = read_gemma4_hparams(f);
  const Gemma4Weights w = bind_gemma4_weights(f, hp);
  const int64_t n_vocab = w.token_embd.rows;
  hp.n_vocab = int(n_vocab);
  if (n_ctx <= 0) n_ctx = hp.n_ctx_train > 0 ? hp.n_ctx_train : 4096;
  j["n_embd"] = hp.n_embd;
  j["n_layer"] = hp.n_layer;
  j["n_head"] = hp.n_head;
  j["n_vocab"] = n_vocab;
  j["context_length"] = hp.n_ctx_train;
  j["sliding_window"] = hp.sliding_window;
  j["final_logit_softcap"] = hp.final_logit_softcap;
  j["rms_eps"] = hp.rms_eps;
  for (bool sliding : {true, false}) {
    nlohmann::ordered_json kind;
    int count = 0;
    for (int l = 0; l < hp.n_layer; ++l) {
      const LayerGeometry& g = hp.layer(l);
      if (g.sliding != sliding) continue;
      if (count++ == 0) {
        kind["n_head_kv"] = g.n_head_kv;
        kind["head_dim"] = g.head_dim;
        kind["rope_dims"] = g.n_rot;
        kind["rope_base"] = g.rope_base;
        kind["n_ff"] = g.n_ff;
        kind["v_from_k"] = !w.layers[size_t(l)].wv.present();
      }
      kind["layers"].push_back(l);
    }
    if (!sliding && !w.rope_freq_factors.empty()) {
      int rotated = 0;
      for (float factor : w.rope_freq_factors) rotated += factor == 1.0f ? 2 : 0;
      kind["rope_rotated_dims"] = rotated;  // proportional RoPE (spec §2.5)
    }
    kind["count"] = count;
    j[sliding ? "sliding_layers" : "full_layers"] = kind;
  }
  const KvCacheConfig config = cache.config(n_ctx);
  const MemoryPlan plan = plan_memory(hp, weights_size_bytes(w), config, batch);
  nlohmann::ordered_json mem;
  mem["n_ctx"] = n_ctx;
  mem["cache_type_k"] = ggml_type_name(config.type_k);
  mem["cache_type_v"] = ggml_type_name(config.type_v);
  mem["batch"] = batch;
  mem["weights_bytes"] = plan.weights;
  mem["kv_sliding_bytes"] = plan.kv.sliding_bytes;
  mem["kv_full_bytes"] = plan.kv.full_bytes;
  mem["kv_cache_bytes"] = plan.kv.total();
  mem["activations_bytes"] = plan.activations;
  mem["total_bytes"] = plan.total();
  j["memory"] = mem;
  j["has_chat_template"] = f.has("tokenizer.chat_template");
  const SamplingParams sp = default_sampling_params(f);
  j["sampling_defaults"] = {{"temperature", sp.temperature}, {"top_k", sp.top_k}, {"top_p", sp.top_p}};
  return j;
}

void print_text(const nlohmann::ordered_json& j) {
  std::printf("file:          %s (GGUF v%d, %s)\n", j["file"].get<std::string>().c_str(),
              j["gguf_version"].get<int>(), human_bytes(j["file_bytes"].get<double>()).c_str());
  std::printf("architecture:  %s%s%s\n", j["architecture"].get<std::string>().c_str(),
              j["name"].get<std::string>().empty() ? "" : "  name: ", j["name"].get<std::string>().c_str());
  std::string types;
  for (const auto& [type, count] : j["tensor_types"].items()) types += cat(type, " ", count.get<int>(), ", ");
  if (!types.empty()) types.resize(types.size() - 2);
  std::printf("tensors:       %d (%s)\n", j["tensor_count"].get<int>(), types.c_str());
  std::printf("parameters:    %s\n", human_count(j["parameters"].get<double>()).c_str());
  if (j.contains("unsupported_tensors"))
    std::printf("warning:       %zu tensors have types this engine cannot compute with\n",
                j["unsupported_tensors"].size());
  if (!j.contains("model")) return;
  const auto& m = j["model"];
  std::printf("model:         %d layers, hidden %d, %d query heads, vocab %d, trained context %lld\n",
              m["n_layer"].get<int>(), m["n_embd"].get<int>(), m["n_head"].get<int>(),
              m["n_vocab"].get<int>(), m["context_length"].get<long long>());
  for (const char* kind : {"sliding_layers", "full_layers"}) {
    const auto& k = m[kind];
    if (k["count"].get<int>() == 0) continue;
    std::printf("%-14s %d x (%d KV heads x %d, ff %d, RoPE base %g over %d dims%s%s)\n",
                kind[0] == 's' ? "  sliding:" : "  full:", k["count"].get<int>(), k["n_head_kv"].get<int>(),
                k["head_dim"].get<int>(), k["n_ff"].get<int>(), k["rope_base"].get<double>(),
                k.contains("rope_rotated_dims") ? k["rope_rotated_dims"].get<int>() : k["rope_dims"].get<int>(),
                k.contains("rope_rotated_dims") ? " (proportional)" : "",
                k["v_from_k"].get<bool>() ? ", V = K projection" : "");
  }
  std::printf("  window %d, final logit softcap %g\n", m["sliding_window"].get<int>(),
              m["final_logit_softcap"].get<double>());
  const auto& mem = m["memory"];
  std::printf("memory plan:   at %lld tokens of context, K %s / V %s, %lld-token batches\n",
              mem["n_ctx"].get<long long>(), mem["cache_type_k"].get<std::string>().c_str(),
              mem["cache_type_v"].get<std::string>().c_str(), mem["batch"].get<long long>());
  std::printf("  weights      %s (mapped from the file)\n", human_bytes(mem["weights_bytes"].get<double>()).c_str());
  std::printf("  KV cache     %s (sliding layers %s, full layers %s)\n",
              human_bytes(mem["kv_cache_bytes"].get<double>()).c_str(),
              human_bytes(mem["kv_sliding_bytes"].get<double>()).c_str(),
              human_bytes(mem["kv_full_bytes"].get<double>()).c_str());
  std::printf("  activations  %s\n", human_bytes(mem["activations_bytes"].get<double>()).c_str());
  std::printf("  total        %s\n", human_bytes(mem["total_bytes"].get<double>()).c_str());
  const auto& sp = m["sampling_defaults"];
  std::printf("sampling:      temperature %g, top_k %d, top_p %g%s\n", sp["temperature"].get<double>(),
              sp["top_k"].get<int>(), sp["top_p"].get<double>(),
              m["has_chat_template"].get<bool>() ? "; chat template present" : "; no chat template");
}

}  // namespace

void register_info(CLI::App& app) {
  struct Options {
    std::string model;
    int64_t n_ctx = 0, batch = 512;
    bool json = false;
    CacheFlags cache;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("info", "describe a GGUF file and the memory it needs");
  cmd->add_option("-m,--model", opt->model, "GGUF file")->required();
  cmd->add_option("-c,--ctx-size", opt->n_ctx, "context size for the KV cache estimate (default: the model's)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-b,--batch", opt->batch, "prompt tokens per forward pass, for the activations estimate")
      ->check(CLI::PositiveNumber);
  opt->cache.add_to(*cmd, "f16");
  cmd->add_flag("--json", opt->json, "print JSON");
  cmd->callback([opt] {
    const GgufFile f = GgufFile::open(opt->model);
    nlohmann::ordered_json j = describe_file(f);
    if (j["architecture"] == "gemma4") j["model"] = describe_gemma4(f, opt->n_ctx, opt->cache, opt->batch);
    if (opt->json) {
      std::cout << j.dump(2) << "\n";
    } else {
      print_text(j);
    }
  });
}

}  // namespace g4::cli
