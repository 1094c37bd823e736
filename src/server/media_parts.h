// Media in chat requests: OpenAI content parts -> MediaItems for the PromptBuilder.
//
//   {"type": "image_url",   "image_url":   {"url": "data:image/png;base64,...", "detail": "low|auto|high"}}
//   {"type": "input_audio", "input_audio": {"data": "<base64>", "format": "wav"}}
//   {"type": "video_url",   "video_url":   {"url": "data:video/mp4;base64,..."}}
//   ("input_image" with "image_url": "<url>", and "audio_url" with {"url"}, are read as well.)
// URLs are data: URIs, or local files when the server was started with an allowed directory
// (the resolved path, symlinks followed, must lie inside it). Remote URLs are refused: the
// server fetches nothing from the network. Videos given inline are written to a private
// temporary file for the decoder and removed with the request.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/prompt.h"
#include "server/json_fields.h"

namespace g4::server {

struct MediaOptions {
  std::optional<std::filesystem::path> allowed_dir;  // canonical; local paths only under it
  std::filesystem::path temp_dir;                    // private (0700) directory for inline videos
  int image_tokens = kDefaultImageTokens;            // "detail": "auto"
  int video_frames = 32;
  double video_fps = 0;
  int video_frame_tokens = 70;
  VideoAudioMode video_audio = VideoAudioMode::kAppend;
};

// Files created for one request, removed when it goes away.
class TempFiles {
 public:
  TempFiles() = default;
  TempFiles(const TempFiles&) = delete;
  TempFiles& operator=(const TempFiles&) = delete;
  ~TempFiles();
  // Writes `bytes` to a new file (mode 0600) in `dir`, named with `suffix`.
  std::filesystem::path create(const std::filesystem::path& dir, const std::vector<uint8_t>& bytes,
                               const std::string& suffix);

 private:
  std::vector<std::filesystem::path> paths_;
};

// Standard base64 (RFC 4648), padding optional, whitespace ignored; 400 naming `what` otherwise.
std::vector<uint8_t> decode_base64(std::string_view text, const std::string& what);

struct DataUri {
  std::string mime;  // e.g. "image/png" (may be empty)
  std::vector<uint8_t> bytes;
};
// A data: URI (base64 or percent-encoded); nullopt when `url` is not one.
std::optional<DataUri> parse_data_uri(std::string_view url, const std::string& what);

// A file extension for a MIME type or format name, to help the decoder ("image/png" -> ".png").
std::string extension_for(std::string_view mime_or_format);

// Replaces every media part of `messages` by a bare {"type": "image"|"audio"|"video"} part (what
// the chat template needs; it emits the placeholders in part order) and returns the media in
// the same order. Throws 400 ApiErrors naming the part (messages[i].content[j]).
std::vector<MediaItem> extract_media(Json& messages, const MediaOptions& options, TempFiles& temps);

// A local path named in a request, checked against options.allowed_dir (400 when not allowed).
std::filesystem::path resolve_local_media(const std::string& url, const MediaOptions& options,
                                          const std::string& what);

}  // namespace g4::server
