#include "cli/cli_common.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>

#include "core/error.h"

namespace g4::cli {

std::vector<int32_t> parse_int_list(const std::string& text, const char* what) {
  std::vector<int32_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    int32_t value = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size())
      fail("bad ", what, " '", item, "' in '", text, "' (expected comma-separated integers)");
    out.push_back(value);
    start = end + 1;
  }
  return out;
}

void add_threads_option(CLI::App& cmd, int& threads) {
  threads = int(std::max(1u, std::thread::hardware_concurrency()));
  cmd.add_option("-t,--threads", threads, "worker threads (default: all hardware threads)")
      ->check(CLI::Range(1, 1024));
}

void SamplingFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--temp", temperature, "temperature; 0 = greedy (default: the model's, else 1.0)");
  cmd.add_option("--top-k", top_k, "top-k; 0 = off (default: the model's, else 64)");
  cmd.add_option("--top-p", top_p, "top-p; 1 = off (default: the model's, else 0.95)");
  cmd.add_option("--min-p", min_p, "min-p; 0 = off (default 0)");
  cmd.add_option("--repeat-penalty", repeat_penalty, "repetition penalty; 1 = off");
  cmd.add_option("--presence-penalty", presence_penalty, "presence penalty; 0 = off");
  cmd.add_option("--frequency-penalty", frequency_penalty, "frequency penalty; 0 = off");
  cmd.add_option("--seed", seed, "random seed (default: random)");
}

SamplingParams SamplingFlags::resolve(const SamplingParams& model_defaults) const {
  SamplingParams p = model_defaults;
  if (temperature) p.temperature = *temperature;
  if (top_k) p.top_k = *top_k;
  if (top_p) p.top_p = *top_p;
  if (min_p) p.min_p = *min_p;
  p.repeat_penalty = repeat_penalty;
  p.presence_penalty = presence_penalty;
  p.frequency_penalty = frequency_penalty;
  p.seed = seed ? *seed : std::random_device{}();
  return p;
}

void MediaFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--mmproj", mmproj, "multimodal projector GGUF (needed for --image/--audio/--video)");
  cmd.add_option("--image", images, "image file (repeatable): PNG, JPEG, WebP, BMP, GIF...");
  cmd.add_option("--audio", audios, "audio file (repeatable): WAV, MP3, FLAC, OGG/Opus, M4A...");
  cmd.add_option("--video", videos, "video file (repeatable): MP4, WebM, MKV...; its soundtrack too");
  cmd.add_option("--image-tokens", image_tokens, "soft tokens per image: 70, 140, 280 (default), 560, 1120");
  cmd.add_option("--video-frames", video_frames, "frames sampled per video (default 32)")->check(CLI::PositiveNumber);
  cmd.add_option("--video-fps", video_fps, "sample this many frames per second instead of --video-frames")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--video-audio", video_audio,
                 "soundtrack: append (default: after the frames), interleave (each frame then its audio), none")
      ->check(CLI::IsMember({"append", "interleave", "none"}));
}

std::vector<MediaItem> MediaFlags::items(const CLI::App& cmd) const {
  std::vector<MediaItem> out;
  size_t next[3] = {0, 0, 0};
  const std::vector<std::string>* lists[3] = {&images, &audios, &videos};
  const char* names[3] = {"--image", "--audio", "--video"};
  for (const CLI::Option* o : cmd.parse_order()) {
    for (int k = 0; k < 3; ++k) {
      if (!o->check_lname(names[k] + 2)) continue;
      MediaItem item;
      item.kind = MediaKind(k);
      item.path = (*lists[k])[next[k]++];
      item.image_tokens = image_tokens;
      item.video_frames = video_frames;
      item.video_fps = video_fps;
      item.video_audio = video_audio_mode_from_name(video_audio);
      out.push_back(std::move(item));
    }
  }
  return out;
}

std::unique_ptr<MultimodalProjector> load_projector(const MediaFlags& media, const Gemma4Model& model) {
  auto projector = g4::load_projector(media.mmproj, model);
  if (!projector && !media.empty())
    fail("--image, --audio and --video need the multimodal projector: pass it with --mmproj");
  return projector;
}

void print_prefill_progress(int64_t done, int64_t total) {
  constexpr int kWidth = 30;
  const int filled = int(kWidth * done / std::max<int64_t>(1, total));
  std::fprintf(stderr, "\rprompt [%s%s] %lld/%lld", std::string(size_t(filled), '#').c_str(),
               std::string(size_t(kWidth - filled), '.').c_str(), (long long)done, (long long)total);
  if (done >= total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

void CacheFlags::add_to(CLI::App& cmd, const std::string& default_type) {
  type_k = type_v = default_type;
  cmd.add_option("--cache-type-k", type_k, "KV cache type of keys: f32, f16, bf16, q8_0, q4_0 (default " + default_type + ")");
  cmd.add_option("--cache-type-v", type_v, "KV cache type of values (default " + default_type + ")");
}

KvCacheConfig CacheFlags::config(int64_t n_ctx) const {
  KvCacheConfig c;
  c.n_ctx = n_ctx;
  c.type_k = kv_cache_type_from_name(type_k);
  c.type_v = kv_cache_type_from_name(type_v);
  return c;
}

int64_t default_context(const Gemma4HParams& hp, int64_t requested) {
  if (requested > 0) return requested;
  return hp.n_ctx_train > 0 ? std::min<int64_t>(hp.n_ctx_train, 4096) : 4096;
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

TensorProgressFn stderr_tensor_progress(const std::string& verb) {
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  return [verb, terminal](const TensorProgress& p) {
    const double fraction = p.bytes_total ? double(p.bytes_done) / double(p.bytes_total) : 1.0;
    const int width = 30, filled = int(fraction * width + 0.5);
    const std::string bar =
        std::string(size_t(filled), '#') + std::string(size_t(width - filled), '.');
    const std::string line =
        cat(verb, " ", p.output, " [", bar, "] ", int(fraction * 100.0 + 0.5), "% (", p.index, "/",
            p.count, ") ", human_bytes(double(p.bytes_done)), " ", p.tensor);
    if (terminal) {
      std::fprintf(stderr, "\r%-120.120s", line.c_str());
      if (p.index == p.count) std::fputc('\n', stderr);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  };
}

}  // namespace g4::cli
