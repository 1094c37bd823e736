// Helpers shared by the gemma4 subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/hparams.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "multimodal/projector.h"
#include "runtime/prompt.h"
#include "runtime/sampler.h"
#include "model/hf_convert.h"

namespace g4::cli {

// "2,105,3" -> {2, 105, 3}; throws g4::Error naming the bad item.
std::vector<int32_t> parse_int_list(const std::string& text, const char* what);

// Adds -t/--threads (default: every hardware thread).
void add_threads_option(CLI::App& cmd, int& threads);

// The sampling flags shared by every generating command (--temp, --top-k, ... --seed). Unset
// flags keep the model's defaults (general.sampling.*, else Gemma 4's published ones).
struct SamplingFlags {
  std::optional<float> temperature, top_p, min_p;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  float repeat_penalty = 1.0f, presence_penalty = 0.0f, frequency_penalty = 0.0f;

  void add_to(CLI::App& cmd);
  SamplingParams resolve(const SamplingParams& model_defaults) const;  // seed: random when unset
};

// --mmproj and the media flags shared by run and logits. Items keep the order they were given on
// the command line (across --image, --audio and --video).
struct MediaFlags {
  std::string mmproj;
  std::vector<std::string> images, audios, videos;
  int image_tokens = 280;
  int video_frames = 32;
  double video_fps = 0;
  std::string video_audio = "append";

  void add_to(CLI::App& cmd);
  std::vector<MediaItem> items(const CLI::App& cmd) const;
  bool empty() const { return images.empty() && audios.empty() && videos.empty(); }
};

// The projector named by --mmproj, or the model folder's own embedders (null when neither);
// media without a projector is an error.
std::unique_ptr<MultimodalProjector> load_projector(const MediaFlags& media, const Gemma4Model& model);

// Prints a progress bar for long prompts on stderr (for PrefillOptions::on_progress).
void print_prefill_progress(int64_t done, int64_t total);

// --cache-type-k / --cache-type-v (F32, F16, BF16, Q8_0, Q4_0).
struct CacheFlags {
  std::string type_k, type_v;
  void add_to(CLI::App& cmd, const std::string& default_type);
  KvCacheConfig config(int64_t n_ctx) const;
};

// -c/--ctx-size default: the model's trained context, at most 4096.
int64_t default_context(const Gemma4HParams& hp, int64_t requested);

// Whether stdout is a terminal (for colours and dimmed thinking).
bool stdout_is_terminal();
// "1.50 GiB": binary units, two decimals (bytes below 1 KiB as an integer).
std::string human_bytes(double bytes);

// Progress of writing a GGUF tensor by tensor, on stderr: a bar redrawn in place on a terminal,
// a line per tensor otherwise (logs). `verb` starts each line ("converting").
TensorProgressFn stderr_tensor_progress(const std::string& verb);

// Each subcommand registers itself here (one file per subcommand).
void register_info(CLI::App& app);
void register_run(CLI::App& app);
void register_logits(CLI::App& app);
void register_init_random(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_chat_template(CLI::App& app);
void register_chat(CLI::App& app);
void register_embed_media(CLI::App& app);
void register_convert(CLI::App& app);
void register_quantize(CLI::App& app);
void register_bench(CLI::App& app);
void register_serve(CLI::App& app);

}  // namespace g4::cli
