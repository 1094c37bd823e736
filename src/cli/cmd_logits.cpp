// gemma4 logits: evaluate token ids and print the logits at chosen positions as JSON.
// The debugging tool every engine needs, and how correctness is checked against references.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/model.h"

namespace g4::cli {

void register_logits(CLI::App& app) {
  struct Options {
    std::string model, ids, at = "-1";
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("logits", "print the logits of token ids as JSON");
  cmd->add_option("-m,--model", opt->model, "GGUF model file")->required();
  cmd->add_option("--ids", opt->ids, "comma-separated token ids, e.g. 2,105,...")->required();
  cmd->add_option("--at", opt->at, "positions to print, negative = from the end (default -1)");
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt] {
    const auto model = Gemma4Model::load(opt->model);
    const std::vector<int32_t> ids = parse_int_list(opt->ids, "token id");
    const int64_t n = int64_t(ids.size());
    std::vector<int32_t> at;
    for (int32_t p : parse_int_list(opt->at, "position")) {
      const int64_t resolved = p < 0 ? n + p : p;
      if (resolved < 0 || resolved >= n)
        fail("position ", p, " is outside the ", n, " given ids");
      at.push_back(int32_t(resolved));
    }
    ThreadPool pool(opt->threads);
    KvCache cache(model->hp, n);
    ForwardPass forward(*model, pool);
    SequenceInput input;
    input.cache = &cache;
    input.tokens = ids;
    input.output_rows = at;
    std::vector<float> logits;
    forward.run(std::span<SequenceInput>(&input, 1), logits);

    const int64_t v = model->n_vocab();
    nlohmann::json out;
    out["n_vocab"] = v;
    out["at"] = at;
    nlohmann::json rows = nlohmann::json::array();
    for (size_t i = 0; i < at.size(); ++i)
      rows.push_back(std::vector<float>(logits.begin() + int64_t(i) * v, logits.begin() + int64_t(i + 1) * v));
    out["logits"] = std::move(rows);
    std::cout << out.dump() << "\n";
  });
}

}  // namespace g4::cli
