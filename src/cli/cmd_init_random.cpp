// gemma4 init-random: write a Gemma 4 GGUF with random weights (demo model, test models, and
// 12B-shaped files for benchmarks and memory plans).
#include <cstdio>
#include <memory>

#include "cli/cli_common.h"
#include "core/thread_pool.h"
#include "model/random_model.h"

namespace g4::cli {

void register_init_random(CLI::App& app) {
  struct Options {
    std::string out, preset = "tiny", type = "f32";
    RandomModelSpec spec;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("init-random",
                                     "write a Gemma 4 GGUF with random weights (its output is noise)");
  cmd->add_option("-o,--output", opt->out, "GGUF file to write")->required();
  cmd->add_option("--preset", opt->preset, "shape: tiny, 12b, 12b-6layer (flags below override)");
  cmd->add_option("--type", opt->type, "weight type of the 2-D tensors (f32, f16, bf16, q8_0, q4_0, ...)");
  cmd->add_option("--seed", opt->spec.seed, "random seed");
  // Size overrides; -1 keeps the preset's value.
  struct Override { const char* flag; int RandomModelSpec::*field; const char* help; };
  static const Override kOverrides[] = {
      {"--embd", &RandomModelSpec::n_embd, "hidden size"},
      {"--layers", &RandomModelSpec::n_layer, "layer count"},
      {"--heads", &RandomModelSpec::n_head, "query heads"},
      {"--kv-heads-swa", &RandomModelSpec::n_head_kv_swa, "KV heads of sliding layers"},
      {"--kv-heads-full", &RandomModelSpec::n_head_kv_full, "KV heads of full layers"},
      {"--head-dim-swa", &RandomModelSpec::head_dim_swa, "head size of sliding layers"},
      {"--head-dim-full", &RandomModelSpec::head_dim_full, "head size of full layers"},
      {"--ff", &RandomModelSpec::n_ff, "feed-forward size"},
      {"--vocab", &RandomModelSpec::n_vocab, "vocabulary size"},
      {"--window", &RandomModelSpec::sliding_window, "sliding window"},
      {"--full-every", &RandomModelSpec::full_every, "every n-th layer is a full-attention layer"},
  };
  auto values = std::make_shared<std::vector<int>>(std::size(kOverrides), -1);
  for (size_t i = 0; i < std::size(kOverrides); ++i)
    cmd->add_option(kOverrides[i].flag, (*values)[i], kOverrides[i].help)->check(CLI::PositiveNumber);
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt, values] {
    const uint64_t seed = opt->spec.seed;
    RandomModelSpec spec = random_model_preset(opt->preset);
    spec.seed = seed;
    spec.type = ggml_type_from_name(opt->type);
    for (size_t i = 0; i < std::size(kOverrides); ++i)
      if ((*values)[i] > 0) spec.*(kOverrides[i].field) = (*values)[i];
    ThreadPool pool(opt->threads);
    write_random_gemma4(spec, opt->out, pool);
    std::fprintf(stderr, "wrote %s (random weights: generations from it are noise)\n", opt->out.c_str());
  });
}

}  // namespace g4::cli
