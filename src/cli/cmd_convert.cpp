// gemma4 convert: a Hugging Face Gemma 4 checkpoint folder -> the decoder GGUF and the
// multimodal projector GGUF, loadable by this engine and by llama.cpp (spec §5).
#include <cstdio>
#include <memory>

#include "cli/cli_common.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/hf_checkpoint.h"
#include "model/hf_convert.h"

namespace g4::cli {

void register_convert(CLI::App& app) {
  struct Options {
    std::string dir, out, mmproj_out, type = "bf16", mmproj_type, name;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "convert", "convert a Hugging Face Gemma 4 checkpoint (config.json + safetensors) to GGUF");
  cmd->add_option("hf_dir", opt->dir,
                  "checkpoint folder (config.json, *.safetensors, tokenizer.json)")
      ->required();
  cmd->add_option("-o,--output", opt->out, "decoder GGUF to write");
  cmd->add_option("--mmproj-out", opt->mmproj_out,
                  "multimodal projector GGUF to write (vision + audio)");
  cmd->add_option("--type", opt->type,
                  "decoder weight type: bf16 (default, lossless), f16, f32 or q8_0");
  cmd->add_option("--mmproj-type", opt->mmproj_type,
                  "projector matrix type: f32, f16 or bf16 (default: --type, or bf16 for q8_0)");
  cmd->add_option("--name", opt->name, "general.name (default: the folder name)");
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt] {
    if (opt->out.empty() && opt->mmproj_out.empty())
      fail("convert: nothing to write: give -o MODEL.gguf and/or --mmproj-out MMPROJ.gguf");
    ConvertOptions options;
    options.type = ggml_type_from_name(opt->type);
    if (!opt->mmproj_type.empty()) options.mmproj_type = ggml_type_from_name(opt->mmproj_type);
    options.name = opt->name;
    const auto checkpoint = HfCheckpoint::open(opt->dir);
    ThreadPool pool(opt->threads);
    const auto print = [](const std::string& out, const ConvertReport& report) {
      for (const std::string& note : report.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
      std::fprintf(stderr, "wrote %s (%d tensors)\n", out.c_str(), report.n_tensors);
    };
    if (!opt->out.empty())
      print(opt->out, convert_hf_text_model(*checkpoint, opt->out, options, pool,
                                            stderr_tensor_progress("converting")));
    if (!opt->mmproj_out.empty())
      print(opt->mmproj_out, convert_hf_mmproj(*checkpoint, opt->mmproj_out, options, pool,
                                               stderr_tensor_progress("converting")));
  });
}

}  // namespace g4::cli
