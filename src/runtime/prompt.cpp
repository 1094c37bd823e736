#include "runtime/prompt.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "model/hf_checkpoint.h"
#include "model/model.h"
#include "multimodal/media.h"
#include "multimodal/projector.h"
#include "runtime/chat.h"

namespace g4 {

void Prompt::append_tokens(std::span<const TokenId> ids) {
  tokens.insert(tokens.end(), ids.begin(), ids.end());
  block_ids.insert(block_ids.end(), ids.size(), -1);
}

void Prompt::append_soft(const SoftTokens& soft, bool bidirectional_block) {
  tokens.insert(tokens.end(), size_t(soft.count), kSoftToken);
  block_ids.insert(block_ids.end(), size_t(soft.count), bidirectional_block ? next_block_ : -1);
  if (bidirectional_block) ++next_block_;
  soft_embeddings.insert(soft_embeddings.end(), soft.values.begin(), soft.values.end());
}

Prompt Prompt::from_tokens(std::span<const int32_t> ids) {
  Prompt p;
  p.append_tokens(ids);
  return p;
}

namespace {

bool in_same_block(const Prompt& prompt, int64_t a, int64_t b) {
  if (prompt.block_ids.empty()) return false;
  const int32_t id = prompt.block_ids[size_t(a)];
  return id >= 0 && id == prompt.block_ids[size_t(b)];
}

}  // namespace

int64_t prompt_cut_at_or_before(const Prompt& prompt, int64_t pos) {
  const int64_t n = int64_t(prompt.size());
  pos = std::clamp<int64_t>(pos, 0, n);
  while (pos > 0 && pos < n && in_same_block(prompt, pos - 1, pos)) --pos;
  return pos;
}

int64_t prompt_chunk_end(const Prompt& prompt, int64_t start, int64_t max_positions) {
  const int64_t n = int64_t(prompt.size());
  const int64_t end = std::min(n, start + std::max<int64_t>(1, max_positions));
  const int64_t cut = prompt_cut_at_or_before(prompt, end);
  if (cut > start) return cut;
  // The block starts at `start` and does not fit: take all of it.
  int64_t block_end = end;
  while (block_end < n && in_same_block(prompt, block_end - 1, block_end)) ++block_end;
  return block_end;
}

const char* media_kind_name(MediaKind kind) {
  switch (kind) {
    case MediaKind::kImage: return "image";
    case MediaKind::kAudio: return "audio";
    case MediaKind::kVideo: return "video";
  }
  return "?";
}

VideoAudioMode video_audio_mode_from_name(const std::string& name) {
  if (name == "append") return VideoAudioMode::kAppend;
  if (name == "interleave") return VideoAudioMode::kInterleave;
  if (name == "none") return VideoAudioMode::kNone;
  fail("unknown video audio mode '", name, "' (expected append, interleave or none)");
}

std::unique_ptr<MultimodalProjector> load_projector(const std::string& path, const Gemma4Model& model) {
  std::unique_ptr<MultimodalProjector> projector;
  if (path.empty()) {
    if (!model.checkpoint) return nullptr;
    const HfMultimodalWeights mm = find_hf_multimodal_weights(*model.checkpoint);
    if (!mm.vision && !mm.audio) return nullptr;
    projector = load_hf_projector(std::shared_ptr<const HfCheckpoint>(model.checkpoint.get(), [](const HfCheckpoint*) {}));
  } else if (std::filesystem::is_directory(path)) {
    projector = load_hf_projector(HfCheckpoint::open(path));
  } else {
    projector = MultimodalProjector::load(path, model.hp.n_embd);
  }
  if (projector->n_embd() != model.hp.n_embd)
    fail(projector->path(), ": the projector makes ", projector->n_embd(), "-wide embeddings but the model's hidden "
         "size is ", model.hp.n_embd, " (a projector of another model?)");
  return projector;
}

std::string format_timestamp(double seconds) {
  const int64_t s = int64_t(std::floor(std::max(0.0, seconds)));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

PromptBuilder::PromptBuilder(const Gemma4Model& model, const MultimodalProjector* projector, ThreadPool& pool)
    : model_(model), projector_(projector), pool_(pool) {}

const MultimodalProjector& PromptBuilder::projector(MediaKind kind) const {
  if (!projector_)
    fail("a prompt with ", media_kind_name(kind), " needs the multimodal projector: pass it with --mmproj");
  return *projector_;
}

namespace {

TokenId require_special(TokenId id, const char* text) {
  if (id == kNoToken) fail("the model's vocabulary has no ", text, " token");
  return id;
}

RgbImage load_image(const MediaItem& item) {
  return item.bytes.empty() ? decode_image(item.path)
                            : decode_image_bytes(item.bytes.data(), item.bytes.size(), item.path);
}

std::vector<float> load_audio(const MediaItem& item) {
  return item.bytes.empty() ? decode_audio(item.path)
                            : decode_audio_bytes(item.bytes.data(), item.bytes.size(), item.path);
}

}  // namespace

void PromptBuilder::append_image(Prompt& prompt, const MediaItem& item) const {
  const MultimodalProjector& proj = projector(MediaKind::kImage);
  if (!is_valid_image_token_budget(item.image_tokens))
    fail(item.path, ": image token budget ", item.image_tokens, " is not one the model was trained with (70, 140, "
         "280, 560, 1120)");
  const Gemma4SpecialTokens& sp = model_.require_tokenizer().gemma4_specials();
  const RgbImage image = load_image(item);
  const SoftTokens soft = proj.embed_image(image.rgb.data(), image.width, image.height, item.image_tokens, pool_);
  const TokenId open = require_special(sp.image_start, "<|image>"), close = require_special(sp.image_end, "<image|>");
  prompt.append_tokens(std::span<const TokenId>(&open, 1));
  prompt.append_soft(soft, /*bidirectional_block=*/true);
  prompt.append_tokens(std::span<const TokenId>(&close, 1));
}

void PromptBuilder::append_audio_tokens(Prompt& prompt, const SoftTokens& audio, int begin, int end) const {
  const Gemma4SpecialTokens& sp = model_.require_tokenizer().gemma4_specials();
  const TokenId open = require_special(sp.audio_start, "<|audio>"), close = require_special(sp.audio_end, "<audio|>");
  SoftTokens slice{end - begin, audio.dim, {}};
  slice.values.assign(audio.values.begin() + int64_t(begin) * audio.dim, audio.values.begin() + int64_t(end) * audio.dim);
  prompt.append_tokens(std::span<const TokenId>(&open, 1));
  prompt.append_soft(slice, /*bidirectional_block=*/false);  // audio is causal (spec §4)
  prompt.append_tokens(std::span<const TokenId>(&close, 1));
}

void PromptBuilder::append_audio(Prompt& prompt, const MediaItem& item) const {
  const MultimodalProjector& proj = projector(MediaKind::kAudio);
  const std::vector<float> samples = load_audio(item);
  const SoftTokens soft = proj.embed_audio(samples.data(), samples.size(), pool_);
  append_audio_tokens(prompt, soft, 0, soft.count);
}

void PromptBuilder::append_video(Prompt& prompt, const MediaItem& item) const {
  const MultimodalProjector& proj = projector(MediaKind::kVideo);
  if (!item.bytes.empty()) fail(item.path, ": videos are read from files");
  if (!is_valid_image_token_budget(item.video_frame_tokens))
    fail(item.path, ": video frame token budget ", item.video_frame_tokens, " is not one of 70, 140, 280, 560, 1120");
  const Tokenizer& tok = model_.require_tokenizer();
  const Gemma4SpecialTokens& sp = tok.gemma4_specials();
  const TokenId open = require_special(sp.image_start, "<|image>"), close = require_special(sp.image_end, "<image|>");

  const VideoInfo info = probe_video(item.path);
  const std::vector<int64_t> indices =
      sample_frame_indices(info.frame_count, info.fps, item.video_frames, item.video_fps);
  std::vector<double> times;
  std::vector<SoftTokens> frames;
  for_each_video_frame(item.path, indices, [&](VideoFrame&& frame) {
    times.push_back(double(frame.index) / info.fps);  // HF: frame_index / fps (spec §3.5)
    frames.push_back(proj.embed_image(frame.image.rgb.data(), frame.image.width, frame.image.height,
                                      item.video_frame_tokens, pool_));
  });

  // The soundtrack, when wanted and present: 640-sample frames, assigned to the video frame whose
  // time slice [t_i, t_i+1) holds their start (interleave) or all appended (append).
  SoftTokens audio;
  const bool with_audio = item.video_audio != VideoAudioMode::kNone && info.has_audio && projector_->has_audio();
  if (with_audio) {
    const std::vector<float> samples = decode_audio(item.path);
    if (!samples.empty()) audio = proj.embed_audio(samples.data(), samples.size(), pool_);
  }
  auto audio_token_at = [&](double seconds) {
    return std::clamp(int(std::ceil(seconds * kAudioSampleRate / kAudioFrameSamples)), 0, audio.count);
  };

  for (size_t i = 0; i < frames.size(); ++i) {
    std::string stamp = i ? " " : "";  // frames are joined by a space (spec §3.5)
    stamp += format_timestamp(times[i]);
    stamp += ' ';
    prompt.append_tokens(tok.encode(stamp, false, false));
    prompt.append_tokens(std::span<const TokenId>(&open, 1));
    prompt.append_soft(frames[i], /*bidirectional_block=*/true);  // each frame is its own block
    prompt.append_tokens(std::span<const TokenId>(&close, 1));
    if (audio.count > 0 && item.video_audio == VideoAudioMode::kInterleave) {
      const int begin = i == 0 ? 0 : audio_token_at(times[i]);
      const int end = i + 1 == frames.size() ? audio.count : audio_token_at(times[i + 1]);
      if (end > begin) append_audio_tokens(prompt, audio, begin, end);
    }
  }
  if (audio.count > 0 && item.video_audio == VideoAudioMode::kAppend) append_audio_tokens(prompt, audio, 0, audio.count);
}

Prompt PromptBuilder::build(std::string_view text, std::span<const MediaItem> media, bool add_bos) const {
  const Tokenizer& tok = model_.require_tokenizer();
  const Gemma4SpecialTokens& sp = tok.gemma4_specials();
  const std::vector<TokenId> ids = tokenize_prompt(tok, text, add_bos);

  // Items of each kind, consumed in order by that kind's placeholders.
  std::vector<const MediaItem*> queue[3];
  for (const MediaItem& m : media) queue[int(m.kind)].push_back(&m);
  size_t used[3] = {0, 0, 0};

  Prompt prompt;
  std::vector<TokenId> run;  // text tokens not yet appended
  for (TokenId id : ids) {
    MediaKind kind;
    if (id != kNoToken && id == sp.image_placeholder) kind = MediaKind::kImage;
    else if (id != kNoToken && id == sp.audio_placeholder) kind = MediaKind::kAudio;
    else if (id != kNoToken && id == sp.video_placeholder) kind = MediaKind::kVideo;
    else {
      run.push_back(id);
      continue;
    }
    prompt.append_tokens(run);
    run.clear();
    const int k = int(kind);
    if (used[k] >= queue[k].size())
      fail("the prompt has more <|", media_kind_name(kind), "|> placeholders than ", media_kind_name(kind),
           " inputs (", queue[k].size(), ")");
    const MediaItem& item = *queue[k][used[k]++];
    switch (kind) {
      case MediaKind::kImage: append_image(prompt, item); break;
      case MediaKind::kAudio: append_audio(prompt, item); break;
      case MediaKind::kVideo: append_video(prompt, item); break;
    }
  }
  prompt.append_tokens(run);
  for (int k = 0; k < 3; ++k)
    if (used[k] < queue[k].size())
      fail(queue[k].size() - used[k], " ", media_kind_name(MediaKind(k)), " input(s) have no <|",
           media_kind_name(MediaKind(k)), "|> placeholder in the prompt");
  return prompt;
}

}  // namespace g4
