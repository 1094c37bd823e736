// gemma4 logits: evaluate a prompt and print the logits at chosen positions as JSON.
// The debugging tool every engine needs, and how correctness is checked against references:
// float32 activations throughout unless --fast.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/generate.h"

namespace g4::cli {

void register_logits(CLI::App& app) {
  struct Options {
    std::string model, ids, raw_prompt, raw_prompt_file, at = "-1";
    bool fast = false, no_bos = false;
    int threads = 0;
    MediaFlags media;
    CacheFlags cache;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("logits", "print the logits of a prompt as JSON");
  cmd->add_option("-m,--model", opt->model, "GGUF model file")->required();
  auto* ids = cmd->add_option("--ids", opt->ids, "comma-separated token ids, e.g. 2,105,...");
  auto* raw = cmd->add_option("--raw-prompt", opt->raw_prompt,
                              "prompt text, tokenized as is; <|image|> <|audio|> <|video|> take the media inputs");
  auto* raw_file = cmd->add_option("--raw-prompt-file", opt->raw_prompt_file, "read the --raw-prompt text from a file");
  ids->excludes(raw);
  ids->excludes(raw_file);
  raw->excludes(raw_file);
  cmd->add_flag("--no-bos", opt->no_bos, "do not prepend <bos> to --raw-prompt");
  cmd->add_option("--at", opt->at, "positions to print, negative = from the end (default -1)");
  cmd->add_flag("--fast", opt->fast, "let the matmuls quantize activations (default: float32)");
  opt->media.add_to(*cmd);
  opt->cache.add_to(*cmd, "f32");
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt, cmd] {
    if (!opt->raw_prompt_file.empty()) {
      std::ifstream in(opt->raw_prompt_file, std::ios::binary);
      if (!in) fail(opt->raw_prompt_file, ": cannot open");
      opt->raw_prompt.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      if (opt->raw_prompt.empty()) fail(opt->raw_prompt_file, ": empty prompt");
    }
    if (opt->ids.empty() && opt->raw_prompt.empty()) fail("give the prompt with --ids or --raw-prompt");
    const auto model = Gemma4Model::load(opt->model);
    const auto projector = load_projector(opt->media, *model);
    const std::vector<MediaItem> media = opt->media.items(*cmd);
    ThreadPool pool(opt->threads);
    Prompt prompt;
    if (!opt->ids.empty()) {
      if (!media.empty()) fail("media inputs need --raw-prompt with placeholders, not --ids");
      prompt = Prompt::from_tokens(parse_int_list(opt->ids, "token id"));
    } else {
      prompt = PromptBuilder(*model, projector.get(), pool).build(opt->raw_prompt, media, !opt->no_bos);
    }
    const int64_t n = int64_t(prompt.size());
    std::vector<int64_t> at;
    for (int32_t p : parse_int_list(opt->at, "position")) {
      const int64_t resolved = p < 0 ? n + p : p;
      if (resolved < 0 || resolved >= n) fail("position ", p, " is outside the ", n, " prompt positions");
      at.push_back(resolved);
    }
    // Evaluated once, in ascending order; printed in the order asked.
    std::vector<int64_t> sorted = at;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());

    KvCache cache(model->hp, opt->cache.config(n));
    ForwardPass forward(*model, pool, opt->fast ? MatmulMode::kFast : MatmulMode::kPrecise);
    const std::vector<float> logits = evaluate_prompt(forward, cache, prompt, sorted);

    const int64_t v = model->n_vocab();
    nlohmann::json out;
    out["n_vocab"] = v;
    out["n_positions"] = n;
    out["at"] = at;
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t p : at) {
      const int64_t i = std::lower_bound(sorted.begin(), sorted.end(), p) - sorted.begin();
      rows.push_back(std::vector<float>(logits.begin() + i * v, logits.begin() + (i + 1) * v));
    }
    out["logits"] = std::move(rows);
    std::cout << out.dump() << "\n";
  });
}

}  // namespace g4::cli
