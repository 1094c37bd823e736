// `gemma4 serve`: an OpenAI-compatible HTTP server over the continuous-batching scheduler.
//
//   POST /v1/chat/completions      messages with text / image_url / input_audio / video_url parts,
//                                  streaming (SSE), sampling, logprobs, n, thinking, tools
//   POST /v1/completions           raw prompts (text or token ids), echo, legacy logprobs
//   POST /v1/audio/transcriptions  multipart file -> text (json, text, srt, vtt, verbose_json; stream)
//   POST /v1/audio/translations    the same, into English
//   GET  /v1/models[/ID]           the served model
//   POST /tokenize, /detokenize    text <-> token ids
//   GET  /health                   200 when ready, 503 while loading (never needs the API key)
//   GET  /metrics                  Prometheus text
// Errors are OpenAI-shaped JSON objects. Binds to 127.0.0.1 unless told otherwise.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/ggml_type.h"
#include "ops/matmul.h"

namespace g4 {
class Scheduler;
}

namespace g4::server {

struct ServerOptions {
  std::string model_path;
  std::string mmproj_path;          // empty: text only
  std::string alias;                // model id in the API (default: the file name without .gguf)
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (bind() says which)
  int parallel = 4;                 // sequences generated at once
  int64_t ctx_size = 0;             // KV positions shared by all sequences; 0: parallel x 4096 (or the trained context)
  int max_queue = 64;               // requests waiting beyond `parallel`; more get 503
  int timeout_seconds = 600;        // HTTP read/write timeout
  size_t max_body_bytes = size_t(64) << 20;
  std::string api_key;              // empty: no authentication
  std::string allowed_media_dir;    // empty: media only as data: URIs
  int threads = 0;                  // compute threads (0: all)
  int64_t batch_tokens = 512;       // rows per forward pass (decode tokens + prompt chunks)
  int64_t default_max_tokens = 2048;  // chat requests without max_tokens
  int64_t ring_extra = 256;         // sliding-window slots kept beyond the window (prefix reuse roll-back)
  bool prefix_cache = true;
  GgmlType cache_type_k = GgmlType::F16, cache_type_v = GgmlType::F16;
  MatmulMode matmul = MatmulMode::kFast;
  int image_tokens = 280;           // "detail": "auto"
  int video_frames = 32;
  double video_fps = 0;
  std::string video_audio = "append";
  int max_n = 8;                    // most choices per request
  std::function<void(const std::string&)> log;  // one line per request; null: quiet
};

class OpenAiServer {
 public:
  explicit OpenAiServer(ServerOptions options);
  ~OpenAiServer();
  OpenAiServer(const OpenAiServer&) = delete;
  OpenAiServer& operator=(const OpenAiServer&) = delete;

  // Binds the listening socket; returns the port. Throws g4::Error when it cannot.
  int bind();
  // Serves on a background thread; until load() finishes /health answers 503 and the API 503.
  void start_http();
  // Loads the model (and projector) and starts the scheduler. Throws g4::Error on failure (the
  // server then answers /health with 500 and the error).
  void load();
  // Stops serving: connections close, running requests end.
  void stop();

  bool ready() const;
  const ServerOptions& options() const;
  Scheduler* scheduler();  // null until loaded

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace g4::server
