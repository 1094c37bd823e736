// The public C++ API (include/gemma4/gemma4.h) over the engine: a front end like the CLI and the
// server. Internal errors (g4::Error) come out as gemma4::Error.
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/thread_pool.h"
#include "gemma4/gemma4.h"
#include "model/model.h"
#include "multimodal/projector.h"
#include "runtime/chat.h"
#include "runtime/chat_session.h"
#include "runtime/generate.h"
#include "runtime/prompt.h"

namespace gemma4 {
namespace {

// Runs `fn`, turning engine errors into the public error type.
template <class Fn>
auto translate_errors(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const g4::Error& e) {
    throw Error(e.what());
  }
}

g4::MediaItem to_item(const Media& m) {
  g4::MediaItem item;
  item.kind = m.kind == MediaKind::Image ? g4::MediaKind::kImage
              : m.kind == MediaKind::Audio ? g4::MediaKind::kAudio : g4::MediaKind::kVideo;
  item.path = m.path;
  item.bytes = m.bytes;
  item.image_tokens = m.image_tokens;
  return item;
}

// User content: media parts in order, then the text, unless the text places them itself.
nlohmann::ordered_json user_content(const std::string& text, const std::vector<Media>& media) {
  const bool placed = text.find("<|image|>") != std::string::npos || text.find("<|audio|>") != std::string::npos ||
                      text.find("<|video|>") != std::string::npos;
  if (media.empty() || placed) return text;
  nlohmann::ordered_json parts = nlohmann::ordered_json::array();
  for (const Media& m : media)
    parts.push_back({{"type", m.kind == MediaKind::Image ? "image" : m.kind == MediaKind::Audio ? "audio" : "video"}});
  parts.push_back({{"type", "text"}, {"text", text}});
  return parts;
}

g4::SamplingParams sampling_params(const g4::Gemma4Model& model, const Sampling& s) {
  g4::SamplingParams p = model.sampling_defaults;
  if (s.temperature) p.temperature = *s.temperature;
  if (s.top_p) p.top_p = *s.top_p;
  if (s.min_p) p.min_p = *s.min_p;
  if (s.top_k) p.top_k = *s.top_k;
  p.seed = s.seed ? *s.seed : std::random_device{}();
  return p;
}

// Collects a streamed reply and forwards text deltas to the caller.
struct ReplyCollector {
  const DeltaCallback& on_delta;
  bool keep_going = true;
  bool operator()(const g4::OutputEvent& e) {
    if (!on_delta || !keep_going) return keep_going;
    if (e.kind == g4::OutputEventKind::Reasoning || e.kind == g4::OutputEventKind::Content ||
        e.kind == g4::OutputEventKind::InvalidToolCall)
      keep_going = on_delta(Delta{e.text, e.kind == g4::OutputEventKind::Reasoning});
    return keep_going;
  }
};

Reply make_reply(const g4::ParsedOutput& out, const g4::GenerationResult& gen) {
  Reply r;
  r.content = out.content;
  r.reasoning = out.reasoning;
  for (const g4::ToolCall& c : out.tool_calls) r.tool_calls.push_back({c.name, c.arguments.dump()});
  r.finish_reason = g4::finish_reason_name(gen.finish);
  r.prompt_tokens = gen.stats.prompt_tokens;
  r.completion_tokens = gen.stats.generated_tokens;
  return r;
}

class ChatImpl : public Chat {
 public:
  ChatImpl(const g4::Gemma4Model& model, g4::ThreadPool& pool, const g4::KvCacheConfig& cache, g4::MatmulMode mode,
           const g4::MultimodalProjector* projector, const std::string& system, bool thinking,
           const Sampling& sampling, int64_t max_tokens)
      : session_(model, pool, cache, mode, projector),
        sampler_(sampling_params(model, sampling), model.suppressed_tokens),
        max_tokens_(max_tokens) {
    if (!system.empty()) session_.set_system(system);
    session_.set_thinking(thinking);
  }

  Reply send(const std::string& message, const std::vector<Media>& media, const DeltaCallback& on_delta) override {
    return translate_errors([&] {
      std::vector<g4::MediaItem> items;
      for (const Media& m : media) items.push_back(to_item(m));
      ReplyCollector collect{on_delta};
      const g4::ChatTurn turn = session_.send(user_content(message, media), items, sampler_, max_tokens_,
                                              [&](const g4::OutputEvent& e) { return collect(e); });
      Reply r = make_reply(turn.output, turn.generation);
      r.prompt_tokens = turn.prompt_tokens;
      return r;
    });
  }
  void reset() override { session_.reset(); }

 private:
  g4::ChatSession session_;
  g4::Sampler sampler_;
  int64_t max_tokens_;
};

class EngineImpl : public Engine {
 public:
  explicit EngineImpl(const EngineOptions& options)
      : options_(options),
        model_(g4::Gemma4Model::load(options.model)),
        projector_(g4::load_projector(options.mmproj, *model_)),
        pool_(options.threads) {
    cache_.n_ctx = options.context;
    cache_.type_k = g4::kv_cache_type_from_name(options.cache_type_k);
    cache_.type_v = g4::kv_cache_type_from_name(options.cache_type_v);
  }

  Reply generate(const Request& request, const DeltaCallback& on_delta) override {
    return translate_errors([&] {
      std::vector<g4::MediaItem> items;
      for (const Media& m : request.media) items.push_back(to_item(m));
      std::string text = request.prompt;
      if (!request.raw) {
        nlohmann::ordered_json messages = nlohmann::ordered_json::array();
        if (!request.system.empty()) messages.push_back({{"role", "system"}, {"content", request.system}});
        messages.push_back({{"role", "user"}, {"content", user_content(request.prompt, request.media)}});
        text = g4::render_chat_prompt(*model_, {{"messages", messages}, {"enable_thinking", request.thinking}});
      }
      const g4::Prompt prompt = g4::PromptBuilder(*model_, projector_.get(), pool_).build(text, items, true);
      g4::Sampler sampler(sampling_params(*model_, request.sampling), model_->suppressed_tokens);
      g4::KvCache cache(model_->hp, cache_);
      g4::ForwardPass forward(*model_, pool_, mode());
      g4::OutputStream stream(model_->require_tokenizer());
      ReplyCollector collect{on_delta};
      const g4::GenerationResult gen =
          g4::generate(*model_, forward, cache, prompt, sampler, request.max_tokens, [&](int32_t token) {
            for (const g4::OutputEvent& e : stream.push(token))
              if (!collect(e)) return false;
            return true;
          });
      for (const g4::OutputEvent& e : stream.finish()) collect(e);
      return make_reply(stream.parsed(), gen);
    });
  }

  std::unique_ptr<Chat> start_chat(const std::string& system, bool thinking, const Sampling& sampling,
                                   int64_t max_tokens) override {
    return translate_errors([&]() -> std::unique_ptr<Chat> {
      return std::make_unique<ChatImpl>(*model_, pool_, cache_, mode(), projector_.get(), system, thinking, sampling,
                                        max_tokens);
    });
  }

  std::vector<int32_t> tokenize(std::string_view text, bool add_bos) const override {
    return translate_errors([&] { return model_->require_tokenizer().encode(text, add_bos, true); });
  }
  std::string detokenize(const std::vector<int32_t>& ids) const override {
    return translate_errors([&] { return model_->require_tokenizer().decode(ids); });
  }
  int64_t vocab_size() const override { return model_->n_vocab(); }

 private:
  g4::MatmulMode mode() const { return options_.precise ? g4::MatmulMode::kPrecise : g4::MatmulMode::kFast; }

  EngineOptions options_;
  std::unique_ptr<g4::Gemma4Model> model_;
  std::unique_ptr<g4::MultimodalProjector> projector_;
  mutable g4::ThreadPool pool_;
  g4::KvCacheConfig cache_;
};

}  // namespace

std::unique_ptr<Engine> Engine::load(const EngineOptions& options) {
  return translate_errors([&]() -> std::unique_ptr<Engine> { return std::make_unique<EngineImpl>(options); });
}

}  // namespace gemma4
