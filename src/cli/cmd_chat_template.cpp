// gemma4 chat-template: print exactly the prompt a chat request renders to.
#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "runtime/chat.h"
#include "text/chat_template.h"

namespace g4::cli {

void register_chat_template(CLI::App& app) {
  struct Options {
    std::string model, template_file, input;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("chat-template", "render a chat request with a model's template");
  auto* m = cmd->add_option("-m,--model", opt->model, "GGUF model file (its tokenizer.chat_template)");
  auto* t = cmd->add_option("--template", opt->template_file, "a Jinja template file instead");
  m->excludes(t);
  cmd->add_option("--input", opt->input,
                  "JSON request {\"messages\": [...], \"tools\": [...], \"enable_thinking\": bool, "
                  "\"add_generation_prompt\": bool} (- for stdin)")
      ->required();
  cmd->callback([opt] {
    if (opt->model.empty() && opt->template_file.empty()) fail("give a template with -m MODEL or --template FILE");
    auto read_all = [](std::istream& in) {
      return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    };
    std::string input_text;
    if (opt->input == "-") {
      input_text = read_all(std::cin);
    } else {
      std::ifstream in(opt->input, std::ios::binary);
      if (!in) fail(opt->input, ": cannot open");
      input_text = read_all(in);
    }
    nlohmann::ordered_json request;
    try {
      request = nlohmann::ordered_json::parse(input_text);
    } catch (const nlohmann::json::exception& e) {
      fail(opt->input, ": not valid JSON: ", e.what());
    }
    std::string rendered;
    if (!opt->template_file.empty()) {
      std::ifstream in(opt->template_file, std::ios::binary);
      if (!in) fail(opt->template_file, ": cannot open");
      rendered = ChatTemplate::parse(read_all(in), opt->template_file).render(request);
    } else {
      const GgufFile f = GgufFile::open(opt->model);
      const Tokenizer tok = Tokenizer::from_gguf(f);
      rendered = ChatTemplate::from_model(f.get_string_opt("tokenizer.chat_template"))
                     .render(request, chat_template_options(tok));
    }
    std::cout << rendered;
  });
}

}  // namespace g4::cli
