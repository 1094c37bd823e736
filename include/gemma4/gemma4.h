// gemma4.cpp — the C++ library API.
//
//   #include <gemma4/gemma4.h>
//
//   gemma4::EngineOptions options;
//   options.model = "gemma-4-12b-it-Q4_0.gguf";
//   options.mmproj = "mmproj-gemma-4-12b-it.gguf";          // optional: images, audio, video
//   auto engine = gemma4::Engine::load(options);
//
//   gemma4::Request request;
//   request.prompt = "What is in this picture?";
//   request.media.push_back({gemma4::MediaKind::Image, "photo.jpg"});
//   gemma4::Reply reply = engine->generate(request, [](const gemma4::Delta& d) {
//     if (!d.reasoning) std::cout << d.text << std::flush;       // streamed as it is generated
//     return true;                                                 // false stops generation
//   });
//
//   auto chat = engine->start_chat();                  // multi-turn, keeps the KV cache between turns
//   chat->send("Hello!");
//
// Errors (missing or damaged files, prompts longer than the context, bad media...) are thrown as
// gemma4::Error with a message that says what and where. Link with the gemma4core library.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gemma4 {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EngineOptions {
  std::string model;             // Gemma 4 GGUF
  std::string mmproj;            // multimodal projector GGUF (empty: text only)
  int threads = 0;               // 0: every hardware thread
  int64_t context = 4096;        // tokens of KV cache per generation / chat
  std::string cache_type_k = "f16", cache_type_v = "f16";  // f32, f16, bf16, q8_0, q4_0
  bool precise = false;          // float32 activations in every matmul (slower)
};

enum class MediaKind { Image, Audio, Video };

struct Media {
  Media() = default;
  Media(MediaKind kind, std::string path, int image_tokens = 280)
      : kind(kind), path(std::move(path)), image_tokens(image_tokens) {}

  MediaKind kind = MediaKind::Image;
  std::string path;                 // a file, or the name of `bytes` in messages
  std::vector<uint8_t> bytes;       // in-memory data instead of the file (images and audio)
  int image_tokens = 280;           // image soft-token budget: 70, 140, 280, 560, 1120
};

struct Sampling {
  std::optional<float> temperature, top_p, min_p;  // unset: the model's defaults
  std::optional<int> top_k;
  std::optional<uint64_t> seed;                    // unset: random
};

struct Request {
  std::string prompt;               // the user's message
  std::string system;               // optional system prompt
  std::vector<Media> media;         // placed before the text, unless the prompt has placeholders
  bool thinking = false;            // let the model think first (returned as Reply::reasoning)
  bool raw = false;                 // send `prompt` as is, without the chat template
  int64_t max_tokens = 512;
  Sampling sampling;
};

struct ToolCall {
  std::string name;
  std::string arguments_json;
};

struct Reply {
  std::string content;              // the answer
  std::string reasoning;            // the thought, when thinking was on
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;        // "stop", "length", "context" or "cancelled"
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

struct Delta {
  std::string_view text;
  bool reasoning = false;           // part of the thought rather than the answer
};
using DeltaCallback = std::function<bool(const Delta&)>;  // return false to stop

class Chat {
 public:
  virtual ~Chat() = default;
  // Adds a user message (with optional media) and returns the reply; earlier turns are not
  // evaluated again.
  virtual Reply send(const std::string& message, const std::vector<Media>& media = {},
                     const DeltaCallback& on_delta = {}) = 0;
  virtual void reset() = 0;
};

class Engine {
 public:
  static std::unique_ptr<Engine> load(const EngineOptions& options);
  virtual ~Engine() = default;

  virtual Reply generate(const Request& request, const DeltaCallback& on_delta = {}) = 0;
  // A conversation; the system prompt and thinking switch apply to every turn.
  virtual std::unique_ptr<Chat> start_chat(const std::string& system = "", bool thinking = false,
                                           const Sampling& sampling = {}, int64_t max_tokens = 1024) = 0;

  virtual std::vector<int32_t> tokenize(std::string_view text, bool add_bos = false) const = 0;
  virtual std::string detokenize(const std::vector<int32_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
};

}  // namespace gemma4
