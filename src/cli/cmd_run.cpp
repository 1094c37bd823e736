// gemma4 run: generate from a prompt.
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>

#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/generate.h"

namespace g4::cli {

void register_run(CLI::App& app) {
  struct Options {
    std::string model, ids;
    int64_t n_predict = 128;
    int64_t n_ctx = 0;
    bool json = false;
    int threads = 0;
    std::optional<float> temperature, top_p, min_p;
    std::optional<int> top_k;
    std::optional<uint64_t> seed;
    float repeat_penalty = 1.0f, presence_penalty = 0.0f, frequency_penalty = 0.0f;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("run", "generate from a prompt");
  cmd->add_option("-m,--model", opt->model, "GGUF model file")->required();
  cmd->add_option("--ids", opt->ids, "prompt as comma-separated token ids, e.g. 2,105,...")->required();
  cmd->add_option("-n,--n-predict", opt->n_predict, "most tokens to generate (default 128)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-c,--ctx-size", opt->n_ctx, "context size (default: the model's, at most 4096)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temp", opt->temperature, "temperature; 0 = greedy (default: the file's, else 1.0)");
  cmd->add_option("--top-k", opt->top_k, "top-k; 0 = off (default: the file's, else 64)");
  cmd->add_option("--top-p", opt->top_p, "top-p; 1 = off (default: the file's, else 0.95)");
  cmd->add_option("--min-p", opt->min_p, "min-p; 0 = off (default 0)");
  cmd->add_option("--repeat-penalty", opt->repeat_penalty, "repetition penalty; 1 = off");
  cmd->add_option("--presence-penalty", opt->presence_penalty, "presence penalty; 0 = off");
  cmd->add_option("--frequency-penalty", opt->frequency_penalty, "frequency penalty; 0 = off");
  cmd->add_option("--seed", opt->seed, "random seed (default: random)");
  cmd->add_flag("--json", opt->json, "print {\"ids\":[...],\"text\":\"...\"} instead of streaming");
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt] {
    const auto model = Gemma4Model::load(opt->model);
    const std::vector<int32_t> prompt = parse_int_list(opt->ids, "token id");

    SamplingParams params = model->sampling_defaults;
    if (opt->temperature) params.temperature = *opt->temperature;
    if (opt->top_k) params.top_k = *opt->top_k;
    if (opt->top_p) params.top_p = *opt->top_p;
    if (opt->min_p) params.min_p = *opt->min_p;
    params.repeat_penalty = opt->repeat_penalty;
    params.presence_penalty = opt->presence_penalty;
    params.frequency_penalty = opt->frequency_penalty;
    params.seed = opt->seed ? *opt->seed : std::random_device{}();
    Sampler sampler(params, model->suppressed_tokens);

    int64_t n_ctx = opt->n_ctx;
    if (n_ctx == 0) n_ctx = model->hp.n_ctx_train > 0 ? std::min<int64_t>(model->hp.n_ctx_train, 4096) : 4096;
    ThreadPool pool(opt->threads);
    KvCache cache(model->hp, n_ctx);
    ForwardPass forward(*model, pool);

    auto stream = [&](int32_t token) {
      if (!opt->json) {
        std::printf("%d ", token);
        std::fflush(stdout);
      }
      return true;
    };
    const GenerationResult result = generate(*model, forward, cache, prompt, sampler, opt->n_predict, stream);
    if (opt->json) {
      nlohmann::json out;
      out["ids"] = result.tokens;
      out["text"] = "";
      out["finish_reason"] = finish_reason_name(result.finish);
      out["seed"] = params.seed;
      std::cout << out.dump() << "\n";
    } else {
      std::printf("\n");
    }
    const GenerationStats& s = result.stats;
    std::fprintf(stderr, "prompt %lld tokens in %.2f s (%.1f t/s), generated %lld in %.2f s (%.1f t/s), %s\n",
                 (long long)s.prompt_tokens, s.prefill_seconds, s.prompt_tokens / std::max(1e-9, s.prefill_seconds),
                 (long long)s.generated_tokens, s.decode_seconds,
                 s.generated_tokens / std::max(1e-9, s.decode_seconds), finish_reason_name(result.finish));
  });
}

}  // namespace g4::cli
