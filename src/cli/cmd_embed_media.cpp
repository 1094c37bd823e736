// gemma4 embed-media: what the projector makes of one image or audio file (soft-token count and
// embeddings), for inspection and for checking against references.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "multimodal/media.h"
#include "multimodal/projector.h"

namespace g4::cli {

void register_embed_media(CLI::App& app) {
  struct Options {
    std::string mmproj, image, audio;
    int image_tokens = kDefaultImageTokens;
    bool json = false;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("embed-media", "print the soft tokens of an image or audio file");
  cmd->add_option("--mmproj", opt->mmproj, "multimodal projector GGUF")->required();
  auto* image = cmd->add_option("--image", opt->image, "image file");
  auto* audio = cmd->add_option("--audio", opt->audio, "audio file");
  image->excludes(audio);
  cmd->add_option("--image-tokens", opt->image_tokens, "soft-token budget: 70, 140, 280 (default), 560, 1120");
  cmd->add_flag("--json", opt->json, "print {\"tokens\":N,\"dim\":D,\"embeddings\":[[...],...]}");
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt] {
    if (opt->image.empty() && opt->audio.empty()) fail("give --image FILE or --audio FILE");
    // The projector's output size is its projection's row count (the text model's hidden size).
    const GgufFile f = GgufFile::open(opt->mmproj);
    const char* proj_name = opt->image.empty() ? "mm.a.input_projection.weight" : "mm.input_projection.weight";
    const GgufTensorInfo* proj = f.find_tensor(proj_name);
    if (!proj || proj->n_dims != 2) fail(opt->mmproj, ": no 2-D tensor '", proj_name, "'");
    const auto projector = MultimodalProjector::load(opt->mmproj, int(proj->ne[1]));
    ThreadPool pool(opt->threads);
    SoftTokens soft;
    if (!opt->image.empty()) {
      if (!is_valid_image_token_budget(opt->image_tokens))
        fail("--image-tokens ", opt->image_tokens, " is not one of 70, 140, 280, 560, 1120");
      const RgbImage img = decode_image(opt->image);
      soft = projector->embed_image(img.rgb.data(), img.width, img.height, opt->image_tokens, pool);
    } else {
      const std::vector<float> samples = decode_audio(opt->audio);
      soft = projector->embed_audio(samples.data(), samples.size(), pool);
    }
    if (!opt->json) {
      std::printf("%d soft tokens of dimension %d\n", soft.count, soft.dim);
      return;
    }
    nlohmann::json out;
    out["tokens"] = soft.count;
    out["dim"] = soft.dim;
    nlohmann::json rows = nlohmann::json::array();
    for (int i = 0; i < soft.count; ++i)
      rows.push_back(std::vector<float>(soft.values.begin() + int64_t(i) * soft.dim,
                                        soft.values.begin() + int64_t(i + 1) * soft.dim));
    out["embeddings"] = std::move(rows);
    std::cout << out.dump() << "\n";
  });
}

}  // namespace g4::cli
