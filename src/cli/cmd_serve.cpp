// gemma4 serve: the OpenAI-compatible HTTP server (src/server) with continuous batching.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>

#include <pthread.h>

#include "cli/cli_common.h"
#include "core/error.h"
#include "server/http_server.h"

namespace g4::cli {
namespace {

std::string read_api_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read the API key file ", path);
  std::string key;
  std::getline(in, key);
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ' || key.back() == '\t')) key.pop_back();
  if (key.empty()) fail("the API key file ", path, " is empty");
  return key;
}

}  // namespace

void register_serve(CLI::App& app) {
  struct Options {
    server::ServerOptions server;
    std::string api_key_file;
    bool precise = false, verbose = false, no_prefix_cache = false;
    CacheFlags cache;
  };
  auto opt = std::make_shared<Options>();
  server::ServerOptions& s = opt->server;
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  cmd->add_option("-m,--model", s.model_path, "GGUF model file")->required();
  cmd->add_option("--mmproj", s.mmproj_path, "multimodal projector GGUF (images, audio, video, transcription)");
  cmd->add_option("--alias", s.alias, "model id in the API (default: the file name)");
  cmd->add_option("--host", s.host, "address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", s.port, "port (default 8080; 0 picks a free one)")->check(CLI::Range(0, 65535));
  cmd->add_option("--parallel,--np", s.parallel, "sequences generated at once (default 4)")->check(CLI::Range(1, 256));
  cmd->add_option("-c,--ctx-size", s.ctx_size,
                  "KV positions shared by all sequences (default: parallel x 4096, or the trained context if smaller)")
      ->check(CLI::NonNegativeNumber);
  auto* key = cmd->add_option("--api-key", s.api_key, "require this key (Authorization: Bearer KEY) on every route but /health");
  auto* key_file = cmd->add_option("--api-key-file", opt->api_key_file, "read the API key from the first line of a file");
  key->excludes(key_file);
  cmd->add_option("--max-queue", s.max_queue, "requests waiting beyond --parallel before 503 (default 64)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--timeout", s.timeout_seconds, "HTTP read/write timeout in seconds (default 600)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-body-bytes", s.max_body_bytes, "largest request body (default 64 MiB); more gets 413");
  cmd->add_option("--allowed-media-dir", s.allowed_media_dir,
                  "let requests name local media files under this directory (default: data: URIs only)");
  cmd->add_option("-b,--batch-size", s.batch_tokens, "rows per forward pass: decode tokens + prompt chunks (default 512)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("-n,--default-max-tokens", s.default_max_tokens,
                  "max tokens of chat requests that do not set max_tokens (default 2048)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ring-extra", s.ring_extra,
                  "sliding-window slots kept beyond the window, so a cached conversation can roll back that many "
                  "tokens for prefix reuse (default 256)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-prefix-cache", opt->no_prefix_cache, "do not keep finished sequences for prefix reuse");
  cmd->add_option("--image-tokens", s.image_tokens, "soft tokens per image with detail=auto: 70, 140, 280 (default), 560, 1120");
  cmd->add_option("--video-frames", s.video_frames, "frames sampled per video (default 32)")->check(CLI::PositiveNumber);
  cmd->add_option("--video-fps", s.video_fps, "sample this many frames per second instead")->check(CLI::NonNegativeNumber);
  cmd->add_option("--video-audio", s.video_audio, "video soundtrack: append (default), interleave, none")
      ->check(CLI::IsMember({"append", "interleave", "none"}));
  cmd->add_option("--max-n", s.max_n, "most choices (n) per request (default 8)")->check(CLI::Range(1, 128));
  opt->cache.add_to(*cmd, "f16");
  cmd->add_flag("--precise", opt->precise, "float32 activations in every matmul (slower, reference accuracy)");
  cmd->add_flag("-v,--verbose", opt->verbose, "log every request on stderr");
  add_threads_option(*cmd, s.threads);
  cmd->callback([opt] {
    server::ServerOptions s = opt->server;
    if (!opt->api_key_file.empty()) s.api_key = read_api_key_file(opt->api_key_file);
    s.matmul = opt->precise ? MatmulMode::kPrecise : MatmulMode::kFast;
    s.prefix_cache = !opt->no_prefix_cache;
    const KvCacheConfig cache = opt->cache.config(1);
    s.cache_type_k = cache.type_k;
    s.cache_type_v = cache.type_v;
    if (opt->verbose) s.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };

    // SIGINT/SIGTERM are taken by sigwait below: blocked before any thread starts.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error return, not a signal

    server::OpenAiServer server(s);
    const int port = server.bind();
    std::fprintf(stderr, "gemma4 serve: listening on http://%s:%d (loading %s)\n", s.host.c_str(), port,
                 s.model_path.c_str());
    std::fflush(stderr);
    server.start_http();
    server.load();
    std::fprintf(stderr, "gemma4 serve: ready on http://%s:%d%s\n", s.host.c_str(), port,
                 s.api_key.empty() ? "" : " (API key required)");
    std::fflush(stderr);
    int signal = 0;
    sigwait(&signals, &signal);
    std::fprintf(stderr, "gemma4 serve: stopping\n");
    server.stop();
  });
}

}  // namespace g4::cli
