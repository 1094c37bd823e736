// gemma4 tokenize: text to token ids, with the model's vocabulary or a Hugging Face tokenizer.json.
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "text/tokenizer.h"

namespace g4::cli {

void register_tokenize(CLI::App& app) {
  struct Options {
    std::string model, tokenizer_json, text;
    bool jsonl = false, bos = false, no_special = false, pieces = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("tokenize", "text to token ids (reads stdin unless -p is given)");
  auto* m = cmd->add_option("-m,--model", opt->model, "GGUF model file (its tokenizer.ggml.* vocabulary)");
  auto* t = cmd->add_option("--tokenizer", opt->tokenizer_json, "a Hugging Face tokenizer.json instead");
  m->excludes(t);
  cmd->add_option("-p,--prompt", opt->text, "text to tokenize (default: all of stdin)");
  cmd->add_flag("--jsonl", opt->jsonl, "each stdin line is a JSON string; print one JSON array of ids per line");
  cmd->add_flag("--bos", opt->bos, "prepend <bos>");
  cmd->add_flag("--no-special", opt->no_special, "treat control-token text (<|turn> ...) as plain text");
  cmd->add_flag("--pieces", opt->pieces, "print [id, piece] pairs instead of ids");
  cmd->callback([opt] {
    if (opt->model.empty() && opt->tokenizer_json.empty()) fail("give a vocabulary with -m MODEL or --tokenizer FILE");
    const Tokenizer tok = opt->model.empty() ? Tokenizer::from_hf_json(opt->tokenizer_json)
                                             : Tokenizer::from_gguf(GgufFile::open(opt->model));
    auto encode = [&](const std::string& text) {
      const std::vector<TokenId> ids = tok.encode(text, opt->bos, !opt->no_special);
      if (!opt->pieces) return nlohmann::json(ids);
      nlohmann::json out = nlohmann::json::array();
      for (TokenId id : ids) out.push_back({id, tok.token_to_piece(id, true)});
      return out;
    };
    // Invalid UTF-8 (byte pieces) is printed with replacement characters rather than failing.
    const auto dump = [](const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
    if (opt->jsonl) {
      std::string line;
      for (size_t n = 1; std::getline(std::cin, line); ++n) {
        if (line.empty()) continue;
        nlohmann::json text;
        try {
          text = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
          fail("stdin line ", n, ": not JSON: ", e.what());
        }
        if (!text.is_string()) fail("stdin line ", n, ": expected a JSON string");
        std::cout << dump(encode(text.get<std::string>())) << "\n";
      }
      return;
    }
    std::string text = opt->text;
    if (text.empty()) text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    std::cout << dump(encode(text)) << "\n";
  });
}

}  // namespace g4::cli
