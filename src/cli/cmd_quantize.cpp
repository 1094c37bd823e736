// gemma4 quantize: re-encode the weights of a Gemma 4 GGUF (Q8_0 ... Q6_K and the llama.cpp
// mixes Q4_K_M / Q5_K_M), keeping norms in F32 and every metadata key.
#include <cstdio>
#include <memory>

#include "cli/cli_common.h"
#include "core/thread_pool.h"
#include "model/quantize_model.h"

namespace g4::cli {

void register_quantize(CLI::App& app) {
  struct Options {
    std::string in, out, type;
    bool pure = false, allow_requantize = false;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  std::string types;
  for (const std::string& n : quantize_target_names()) types += (types.empty() ? "" : ", ") + n;
  CLI::App* cmd =
      app.add_subcommand("quantize", "re-encode a Gemma 4 GGUF's weights (e.g. to Q4_K_M)");
  cmd->add_option("input", opt->in, "GGUF to read (F32, F16 or BF16 weights)")->required();
  cmd->add_option("output", opt->out, "GGUF to write")->required();
  cmd->add_option("type", opt->type, "target: " + types)->required();
  cmd->add_flag("--pure", opt->pure,
                "every 2-D weight in the target type (no Q6_K for token_embd / attn_v / ffn_down)");
  cmd->add_flag("--allow-requantize", opt->allow_requantize,
                "accept an already quantized input (its rounding errors add up)");
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt] {
    QuantizeOptions options;
    options.target = quantize_target_from_name(opt->type);
    options.pure = opt->pure;
    options.allow_requantize = opt->allow_requantize;
    ThreadPool pool(opt->threads);
    const QuantizeReport report =
        quantize_gguf(opt->in, opt->out, options, pool, stderr_tensor_progress("quantizing"));
    for (const std::string& note : report.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
    std::fprintf(stderr, "wrote %s: %s, %d tensors, %s -> %s\n", opt->out.c_str(),
                 options.target.name.c_str(), report.n_tensors,
                 human_bytes(double(report.bytes_in)).c_str(),
                 human_bytes(double(report.bytes_out)).c_str());
  });
}

}  // namespace g4::cli
