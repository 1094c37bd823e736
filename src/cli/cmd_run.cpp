// gemma4 run: generate from a prompt (through the chat template by default) or from token ids.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/chat.h"
#include "runtime/generate.h"

namespace g4::cli {
namespace {

constexpr const char* kDim = "\x1b[2m";
constexpr const char* kReset = "\x1b[0m";

// Shows output events as they stream: the answer on stdout; the thought dimmed on a terminal,
// on stderr otherwise (so piped stdout holds only the answer), or not at all.
class EventPrinter {
 public:
  EventPrinter(bool hide_thinking, bool terminal) : hide_thinking_(hide_thinking), terminal_(terminal) {}
  ~EventPrinter() { end_reasoning(); }

  void print(const OutputEvent& e) {
    switch (e.kind) {
      case OutputEventKind::Reasoning:
        if (hide_thinking_) return;
        if (terminal_) {
          if (!in_reasoning_) std::fputs(kDim, stdout);
          in_reasoning_ = true;
          std::fputs(e.text.c_str(), stdout);
        } else {
          std::fputs(e.text.c_str(), stderr);
        }
        break;
      case OutputEventKind::Content:
      case OutputEventKind::InvalidToolCall:
        end_reasoning();
        std::fputs(e.text.c_str(), stdout);
        break;
      case OutputEventKind::ToolCall:
        end_reasoning();
        std::printf("[tool call] %s(%s)\n", e.tool_call.name.c_str(), e.tool_call.arguments.dump().c_str());
        break;
    }
    std::fflush(stdout);
  }

 private:
  void end_reasoning() {
    if (in_reasoning_) std::fputs(kReset, stdout);
    in_reasoning_ = false;
  }
  bool hide_thinking_, terminal_, in_reasoning_ = false;
};

nlohmann::ordered_json tool_calls_json(const std::vector<ToolCall>& calls) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const ToolCall& c : calls) out.push_back({{"name", c.name}, {"arguments", c.arguments}});
  return out;
}

// The messages of a one-shot chat: an optional system turn and the user's turn. Media items become
// content parts in the order given, before the text, unless the text places them itself with
// <|image|> / <|audio|> / <|video|> placeholders.
nlohmann::ordered_json user_turn(const std::string& system, const std::string& text,
                                 const std::vector<MediaItem>& media) {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  const bool placed = text.find("<|image|>") != std::string::npos || text.find("<|audio|>") != std::string::npos ||
                      text.find("<|video|>") != std::string::npos;
  if (media.empty() || placed) {
    messages.push_back({{"role", "user"}, {"content", text}});
  } else {
    nlohmann::ordered_json parts = nlohmann::ordered_json::array();
    for (const MediaItem& m : media) parts.push_back({{"type", media_kind_name(m.kind)}});
    parts.push_back({{"type", "text"}, {"text", text}});
    messages.push_back({{"role", "user"}, {"content", parts}});
  }
  return messages;
}

}  // namespace

void register_run(CLI::App& app) {
  struct Options {
    std::string model, ids, prompt, system;
    int64_t n_predict = 512;
    int64_t n_ctx = 0;
    bool json = false, raw = false, think = false, hide_thinking = false, precise = false;
    int threads = 0;
    SamplingFlags sampling;
    MediaFlags media;
    CacheFlags cache;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("run", "generate from a prompt");
  cmd->add_option("-m,--model", opt->model, "GGUF model file")->required();
  auto* prompt = cmd->add_option("-p,--prompt", opt->prompt, "the user's message (rendered with the model's chat template)");
  auto* ids = cmd->add_option("--ids", opt->ids, "prompt as comma-separated token ids, e.g. 2,105,...");
  prompt->excludes(ids);
  cmd->add_flag("--raw", opt->raw, "send the -p text as is, without the chat template");
  cmd->add_option("--system", opt->system, "system prompt");
  cmd->add_flag("--think", opt->think, "let the model think before answering");
  cmd->add_flag("--hide-thinking", opt->hide_thinking, "do not show the model's thinking");
  cmd->add_option("-n,--n-predict", opt->n_predict, "most tokens to generate (default 512)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-c,--ctx-size", opt->n_ctx, "context size (default: the model's, at most 4096)")
      ->check(CLI::NonNegativeNumber);
  opt->sampling.add_to(*cmd);
  opt->media.add_to(*cmd);
  opt->cache.add_to(*cmd, "f16");
  cmd->add_flag("--json", opt->json, "print one JSON object instead of streaming");
  cmd->add_flag("--precise", opt->precise, "float32 activations in every matmul (slower, reference accuracy)");
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt, cmd] {
    if (opt->ids.empty() && opt->prompt.empty()) fail("give a prompt with -p TEXT or token ids with --ids");
    const auto model = Gemma4Model::load(opt->model);
    const auto projector = load_projector(opt->media, *model);
    const std::vector<MediaItem> media = opt->media.items(*cmd);
    ThreadPool pool(opt->threads);

    Prompt prompt;
    bool chat = false;
    if (!opt->ids.empty()) {
      if (!media.empty()) fail("media inputs need a text prompt (-p) with or without placeholders, not --ids");
      prompt = Prompt::from_tokens(parse_int_list(opt->ids, "token id"));
    } else {
      std::string text = opt->prompt;
      if (!opt->raw) {
        text = render_chat_prompt(*model, {{"messages", user_turn(opt->system, opt->prompt, media)},
                                           {"enable_thinking", opt->think}});
        chat = true;
      }
      prompt = PromptBuilder(*model, projector.get(), pool).build(text, media, /*add_bos=*/true);
    }

    const SamplingParams params = opt->sampling.resolve(model->sampling_defaults);
    Sampler sampler(params, model->suppressed_tokens);
    KvCache cache(model->hp, opt->cache.config(default_context(model->hp, opt->n_ctx)));
    ForwardPass forward(*model, pool, opt->precise ? MatmulMode::kPrecise : MatmulMode::kFast);

    // Raw ids are decoded as they are; chat replies are split into thought / answer / tool calls.
    std::unique_ptr<OutputStream> stream;
    if (model->tokenizer) stream = std::make_unique<OutputStream>(*model->tokenizer);
    EventPrinter printer(opt->hide_thinking, stdout_is_terminal());
    size_t shown = 0;  // raw mode: bytes of decoded text already printed
    auto on_token = [&](int32_t token) {
      if (opt->json) {
        if (stream) stream->push(token);
      } else if (!stream) {
        std::printf("%d ", token);
        std::fflush(stdout);
      } else if (chat) {
        for (const OutputEvent& e : stream->push(token)) printer.print(e);
      } else {
        stream->push(token);
        // Raw mode: everything as decoded, markers included.
        std::fputs(stream->text().c_str() + shown, stdout);
        shown = stream->text().size();
        std::fflush(stdout);
      }
      return true;
    };
    PrefillOptions prefill;
    if (prompt.size() > 2048 && !opt->json) prefill.on_progress = print_prefill_progress;
    const GenerationResult result = generate(*model, forward, cache, prompt, sampler, opt->n_predict, on_token, prefill);
    if (stream) {
      const auto tail = stream->finish();
      if (!opt->json) {
        if (chat) {
          for (const OutputEvent& e : tail) printer.print(e);
        } else {
          std::fputs(stream->text().c_str() + shown, stdout);
        }
      }
    }

    if (opt->json) {
      nlohmann::ordered_json out;
      out["ids"] = result.tokens;
      out["text"] = stream ? stream->text() : "";
      if (stream && chat) {
        out["content"] = stream->parsed().content;
        out["reasoning"] = stream->parsed().reasoning;
        out["tool_calls"] = tool_calls_json(stream->parsed().tool_calls);
      }
      out["finish_reason"] = finish_reason_name(result.finish);
      out["prompt_tokens"] = prompt.size();
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
