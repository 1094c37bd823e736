// gemma4 chat: an interactive conversation that keeps the KV cache between turns.
//   /reset            forget the conversation
//   /system [TEXT]    set (or clear) the system prompt; the next turn re-reads the conversation
//   /think on|off     thinking before answering; the next turn re-reads the conversation
//   /quit             leave (also Ctrl-D)
// On a terminal, lines are edited with libedit (arrows, history); otherwise stdin is read line
// by line, so the command can be scripted.
#include <editline/readline.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/cli_common.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "runtime/chat_session.h"

namespace g4::cli {
namespace {

bool read_line(bool interactive, std::string& line) {
  if (!interactive) return bool(std::getline(std::cin, line));
  char* input = readline("> ");
  if (!input) return false;
  line = input;
  std::free(input);
  if (!line.empty()) add_history(line.c_str());
  return true;
}

}  // namespace

void register_chat(CLI::App& app) {
  struct Options {
    std::string model, system;
    int64_t n_predict = 1024, n_ctx = 0;
    bool think = false, hide_thinking = false, verbose = false;
    int threads = 0;
    SamplingFlags sampling;
    CacheFlags cache;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("chat", "talk with the model (keeps the conversation in context)");
  cmd->add_option("-m,--model", opt->model, "GGUF model file")->required();
  cmd->add_option("--system", opt->system, "system prompt");
  cmd->add_flag("--think", opt->think, "let the model think before answering");
  cmd->add_flag("--hide-thinking", opt->hide_thinking, "do not show the model's thinking");
  cmd->add_option("-n,--n-predict", opt->n_predict, "most tokens per reply (default 1024)")->check(CLI::PositiveNumber);
  cmd->add_option("-c,--ctx-size", opt->n_ctx, "context size (default: the model's, at most 4096)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("-v,--verbose", opt->verbose, "after each reply, print token counts and speed on stderr");
  opt->sampling.add_to(*cmd);
  opt->cache.add_to(*cmd, "f16");
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt] {
    const auto model = Gemma4Model::load(opt->model);
    ThreadPool pool(opt->threads);
    ChatSession session(*model, pool, opt->cache.config(default_context(model->hp, opt->n_ctx)));
    if (!opt->system.empty()) session.set_system(opt->system);
    session.set_thinking(opt->think);
    Sampler sampler(opt->sampling.resolve(model->sampling_defaults), model->suppressed_tokens);
    const bool interactive = ::isatty(STDIN_FILENO) == 1 && stdout_is_terminal();
    const bool dim = stdout_is_terminal();
    if (interactive) std::printf("gemma4 chat: /reset, /system TEXT, /think on|off, /quit\n");

    std::string line;
    int turn_index = 0;
    while (read_line(interactive, line)) {
      if (line.empty()) continue;
      if (line == "/quit" || line == "/exit") break;
      if (line == "/reset") {
        session.reset();
        std::printf("(conversation cleared)\n");
        continue;
      }
      if (line.rfind("/system", 0) == 0) {
        const std::string text = line.size() > 8 ? line.substr(8) : "";
        session.set_system(text.empty() ? std::nullopt : std::optional<std::string>(text));
        std::printf("(system prompt %s)\n", text.empty() ? "cleared" : "set");
        continue;
      }
      if (line == "/think on" || line == "/think off") {
        session.set_thinking(line == "/think on");
        std::printf("(thinking %s)\n", session.thinking() ? "on" : "off");
        continue;
      }
      if (line[0] == '/') {
        std::printf("(unknown command %s: /reset, /system TEXT, /think on|off, /quit)\n", line.c_str());
        continue;
      }
      bool in_thought = false;
      auto show = [&](const OutputEvent& e) {
        if (e.kind == OutputEventKind::Reasoning) {
          if (opt->hide_thinking) return true;
          if (dim && !in_thought) std::fputs("\x1b[2m", stdout);
          in_thought = true;
          std::fputs(e.text.c_str(), stdout);
        } else {
          if (in_thought && dim) std::fputs("\x1b[0m", stdout);
          in_thought = false;
          if (e.kind == OutputEventKind::ToolCall)
            std::printf("[tool call] %s(%s)", e.tool_call.name.c_str(), e.tool_call.arguments.dump().c_str());
          else
            std::fputs(e.text.c_str(), stdout);
        }
        std::fflush(stdout);
        return true;
      };
      try {
        const ChatTurn turn = session.send(line, sampler, opt->n_predict, show);
        if (in_thought && dim) std::fputs("\x1b[0m", stdout);
        std::printf("\n");
        std::fflush(stdout);
        ++turn_index;
        if (opt->verbose) {
          const GenerationStats& s = turn.generation.stats;
          std::fprintf(stderr, "[turn %d: %lld prompt tokens%s, %lld generated, %.1f t/s, context %lld/%lld]\n",
                       turn_index, (long long)turn.prompt_tokens, turn.reprocessed ? " (re-read)" : "",
                       (long long)s.generated_tokens, s.generated_tokens / std::max(1e-9, s.decode_seconds),
                       (long long)session.cache().n_past(), (long long)session.cache().n_ctx());
        }
      } catch (const Error& e) {
        // A turn that cannot run (e.g. the context is full) leaves the conversation as it was.
        std::fprintf(stderr, "error: %s\n", e.what());
      }
    }
  });
}

}  // namespace g4::cli
