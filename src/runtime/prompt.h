// Prompts with media (spec §3.4, §3.5, §4): text whose <|image|>, <|audio|> and <|video|>
// placeholders are replaced, in order, by the soft tokens of the media items of that kind.
//
//   image: <|image> + N soft tokens + <image|>           the N tokens form one bidirectional block
//   audio: <|audio> + N soft tokens + <audio|>           causal
//   video: "mm:ss <|image>[n soft]<image|>" per sampled frame, joined by " " (each frame a block),
//          plus the soundtrack: appended after the frames as one audio item (default), interleaved
//          (each frame followed by the audio of its time slice), or left out.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "multimodal/image_preprocess.h"
#include "text/tokenizer.h"

namespace g4 {

struct Gemma4Model;
class MultimodalProjector;
struct SoftTokens;
class ThreadPool;

// What the model takes: one entry per position.
struct Prompt {
  std::vector<int32_t> tokens;          // token id, or kSoftToken
  std::vector<float> soft_embeddings;   // [n_soft][n_embd], in the order of the kSoftToken positions
  std::vector<int32_t> block_ids;       // one per position: -1, or the bidirectional block it is in

  size_t size() const { return tokens.size(); }
  void append_tokens(std::span<const TokenId> ids);
  void append_soft(const SoftTokens& soft, bool bidirectional_block);
  static Prompt from_tokens(std::span<const int32_t> ids);

 private:
  int32_t next_block_ = 0;
};

// Where prompts may be cut into chunks (prefill) or shared prefixes: never inside a
// bidirectional block (an image's soft tokens attend to each other, spec §2.6), since a block's
// positions must be evaluated in one forward pass.
//
// The largest cut <= pos that does not split a block: pos itself, or the start of the block that
// pos would cut. 0 <= pos <= prompt.size().
int64_t prompt_cut_at_or_before(const Prompt& prompt, int64_t pos);
// End of the chunk that starts at `start` (a valid cut) and holds at most `max_positions`
// positions: cut back before a block that would be split, or, when the block starts at `start`,
// the end of that whole block (the chunk is then longer than max_positions).
int64_t prompt_chunk_end(const Prompt& prompt, int64_t start, int64_t max_positions);

enum class MediaKind { kImage, kAudio, kVideo };
const char* media_kind_name(MediaKind kind);

// How a video's soundtrack enters the prompt. kAppend is the default: the model was trained on
// audio as one continuous stream (ASR/AST prompts), so appending keeps speech exactly as the audio
// path presents it; kInterleave keeps sight and sound aligned in time, for questions about when.
enum class VideoAudioMode { kAppend, kInterleave, kNone };
VideoAudioMode video_audio_mode_from_name(const std::string& name);  // "append", "interleave", "none"

struct MediaItem {
  MediaKind kind = MediaKind::kImage;
  std::string path;                    // file, or the name of `bytes` in messages
  std::vector<uint8_t> bytes;          // in-memory data (e.g. a data: URI); empty = read `path`
  int image_tokens = kDefaultImageTokens;   // soft-token budget of an image (70..1120)
  int video_frames = 32;               // frames sampled from a video (spec §3.5)
  double video_fps = 0;                // > 0: sample this many frames per second instead
  int video_frame_tokens = 70;         // budget per frame (spec §3.5)
  VideoAudioMode video_audio = VideoAudioMode::kAppend;
};

class PromptBuilder {
 public:
  // `projector` may be null for text-only prompts.
  PromptBuilder(const Gemma4Model& model, const MultimodalProjector* projector, ThreadPool& pool);

  // Tokenizes `text` (special tokens parsed) and replaces each placeholder by the next media item
  // of its kind. Throws g4::Error when the placeholders and items do not pair up (naming what is
  // missing), when media is given without a projector, or when a file cannot be decoded.
  Prompt build(std::string_view text, std::span<const MediaItem> media, bool add_bos) const;

 private:
  void append_image(Prompt& prompt, const MediaItem& item) const;
  void append_audio(Prompt& prompt, const MediaItem& item) const;
  void append_video(Prompt& prompt, const MediaItem& item) const;
  void append_audio_tokens(Prompt& prompt, const SoftTokens& audio, int begin, int end) const;
  const MultimodalProjector& projector(MediaKind kind) const;

  const Gemma4Model& model_;
  const MultimodalProjector* projector_;
  ThreadPool& pool_;
};

// The projector for `model`: the projector GGUF or Hugging Face checkpoint folder at `path`, or,
// when `path` is empty, the embedders of the checkpoint folder the model itself was loaded from
// (null when it has none). Throws g4::Error when its output size is not the model's hidden size.
// A projector taken from the model's own folder must not outlive the model.
std::unique_ptr<MultimodalProjector> load_projector(const std::string& path, const Gemma4Model& model);

// "mm:ss" of a time in seconds (HF video timestamps).
std::string format_timestamp(double seconds);

}  // namespace g4
