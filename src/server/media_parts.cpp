#include "server/media_parts.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "multimodal/media.h"
#include "server/api_error.h"

namespace g4::server {

TempFiles::~TempFiles() {
  for (const auto& p : paths_) {
    std::error_code ec;
    std::filesystem::remove(p, ec);
  }
}

std::filesystem::path TempFiles::create(const std::filesystem::path& dir, const std::vector<uint8_t>& bytes,
                                        const std::string& suffix) {
  std::string pattern = (dir / "media-XXXXXX").string() + suffix;
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  const int fd = ::mkstemps(name.data(), int(suffix.size()));
  if (fd < 0) throw ApiError(500, cat("cannot create a temporary file in ", dir.string(), ": ", std::strerror(errno)),
                             "server_error");
  const std::filesystem::path path(name.data());
  paths_.push_back(path);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      throw ApiError(500, cat("cannot write the temporary file ", path.string()), "server_error");
    }
    done += size_t(n);
  }
  ::close(fd);
  return path;
}

std::vector<uint8_t> decode_base64(std::string_view text, const std::string& what) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;  // '-' and '_': the URL-safe alphabet
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int v = value(c);
    if (v < 0 || padding > 0) throw bad_request(cat(what, ": the base64 data is malformed"), "", "invalid_base64");
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(uint8_t((acc >> bits) & 0xFF));
    }
  }
  if (bits >= 6 || padding > 2) throw bad_request(cat(what, ": the base64 data is malformed"), "", "invalid_base64");
  return out;
}

std::optional<DataUri> parse_data_uri(std::string_view url, const std::string& what) {
  if (url.size() < 5 || url.substr(0, 5) != "data:") return std::nullopt;
  const size_t comma = url.find(',');
  if (comma == std::string_view::npos) throw bad_request(cat(what, ": the data: URI has no ',' before its data"));
  std::string_view header = url.substr(5, comma - 5);
  const std::string_view payload = url.substr(comma + 1);
  DataUri out;
  const bool base64 = header.size() >= 7 && header.substr(header.size() - 7) == ";base64";
  if (base64) header.remove_suffix(7);
  out.mime = std::string(header.substr(0, header.find(';')));
  if (base64) {
    out.bytes = decode_base64(payload, what);
  } else {
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    for (size_t i = 0; i < payload.size(); ++i) {
      if (payload[i] != '%') {
        out.bytes.push_back(uint8_t(payload[i]));
        continue;
      }
      const int hi = i + 2 < payload.size() ? hex(payload[i + 1]) : -1, lo = hi >= 0 ? hex(payload[i + 2]) : -1;
      if (lo < 0) throw bad_request(cat(what, ": the data: URI has a malformed %-escape"));
      out.bytes.push_back(uint8_t(hi * 16 + lo));
      i += 2;
    }
  }
  if (out.bytes.empty()) throw bad_request(cat(what, ": the data: URI holds no data"));
  return out;
}

std::string extension_for(std::string_view mime_or_format) {
  std::string s(mime_or_format.substr(mime_or_format.find('/') == std::string_view::npos
                                          ? 0
                                          : mime_or_format.find('/') + 1));
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (s.rfind("x-", 0) == 0) s.erase(0, 2);
  if (s == "jpeg") s = "jpg";
  if (s == "mpeg") s = "mp3";
  if (s == "quicktime") s = "mov";
  if (s == "matroska") s = "mkv";
  std::string safe;
  for (char c : s)
    if (std::isalnum(static_cast<unsigned char>(c))) safe += c;
  return safe.empty() ? std::string() : "." + safe.substr(0, 8);
}

std::filesystem::path resolve_local_media(const std::string& url, const MediaOptions& options, const std::string& what) {
  std::string path = url;
  if (path.rfind("file://", 0) == 0) {
    path.erase(0, 7);
  } else if (const size_t scheme = path.find("://"); scheme != std::string::npos) {
    throw bad_request(cat(what, ": remote URLs (", path.substr(0, scheme),
                          "://) are not fetched: this server has no network access; send the media inline as a "
                          "data: URI (or input_audio data)"),
                      "", "remote_url_not_supported");
  }
  if (!options.allowed_dir)
    throw bad_request(cat(what, ": local file paths are disabled; send a data: URI, or start the server with "
                                "--allowed-media-dir DIR"),
                      "", "local_path_not_allowed");
  std::filesystem::path p(path);
  if (p.is_relative()) p = *options.allowed_dir / p;
  std::error_code ec;
  const std::filesystem::path real = std::filesystem::canonical(p, ec);
  if (ec || !std::filesystem::is_regular_file(real))
    throw bad_request(cat(what, ": no such file under the allowed media directory: ", path));
  // Inside the allowed directory, component by component (no "../" or symlink escapes).
  auto dir_it = options.allowed_dir->begin();
  auto it = real.begin();
  for (; dir_it != options.allowed_dir->end(); ++dir_it, ++it)
    if (it == real.end() || *it != *dir_it)
      throw bad_request(cat(what, ": ", path, " is outside the allowed media directory"), "", "local_path_not_allowed");
  return real;
}

namespace {

struct PartData {
  std::vector<uint8_t> bytes;  // inline data, or
  std::filesystem::path file;  // a checked local file
  std::string ext;             // extension hint for inline data
};

PartData read_url(const std::string& url, const MediaOptions& options, const std::string& what) {
  PartData d;
  if (auto uri = parse_data_uri(url, what)) {
    d.bytes = std::move(uri->bytes);
    d.ext = extension_for(uri->mime);
  } else {
    d.file = resolve_local_media(url, options, what);
  }
  return d;
}

// The "url" of {"image_url": {"url": ...}} or {"image_url": "..."}.
std::string url_of(const Json& part, const std::string& field, const std::string& what) {
  auto it = part.find(field);
  if (it == part.end()) throw bad_request(cat(what, " has no \"", field, "\""));
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("url") && (*it)["url"].is_string()) return (*it)["url"].get<std::string>();
  throw bad_request(cat(what, ".", field, " must be an object with a string \"url\""));
}

MediaItem item_from(MediaKind kind, PartData data, const MediaOptions& options, TempFiles& temps,
                    const std::string& what) {
  MediaItem item;
  item.kind = kind;
  item.image_tokens = options.image_tokens;
  item.video_frames = options.video_frames;
  item.video_fps = options.video_fps;
  item.video_frame_tokens = options.video_frame_tokens;
  item.video_audio = options.video_audio;
  if (!data.file.empty()) {
    item.path = data.file.string();
  } else if (kind == MediaKind::kVideo) {
    // The video decoder reads files: a private temporary one, checked here so that a broken
    // video is reported against its part.
    item.path = temps.create(options.temp_dir, data.bytes, data.ext.empty() ? ".mp4" : data.ext).string();
    try {
      probe_video(item.path);
    } catch (const Error& e) {
      throw bad_request(cat(what, ": cannot decode the video: ", e.what()), "", "invalid_media");
    }
  } else {
    item.path = what + (data.ext.empty() ? "" : " (" + data.ext.substr(1) + ")");
    item.bytes = std::move(data.bytes);
  }
  return item;
}

int image_tokens_for_detail(const Json& part, const MediaOptions& options, const std::string& what) {
  auto it = part.find("image_url");
  if (it == part.end() || !it->is_object() || !it->contains("detail")) return options.image_tokens;
  const Json& detail = (*it)["detail"];
  if (detail == "low") return 70;
  if (detail == "high") return 1120;
  if (detail == "auto") return options.image_tokens;
  throw bad_request(cat(what, ".image_url.detail must be \"low\", \"auto\" or \"high\""));
}

}  // namespace

std::vector<MediaItem> extract_media(Json& messages, const MediaOptions& options, TempFiles& temps) {
  std::vector<MediaItem> items;
  if (!messages.is_array()) return items;
  for (size_t i = 0; i < messages.size(); ++i) {
    Json& message = messages[i];
    if (!message.is_object() || !message.contains("content") || !message["content"].is_array()) continue;
    Json& parts = message["content"];
    for (size_t j = 0; j < parts.size(); ++j) {
      Json& part = parts[j];
      const std::string what = cat("messages[", i, "].content[", j, "]");
      if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
        throw bad_request(cat(what, " must be an object with a string \"type\""));
      const std::string type = part["type"].get<std::string>();
      if (type == "text" || type == "input_text") continue;
      MediaItem item;
      if (type == "image_url" || type == "input_image") {
        item = item_from(MediaKind::kImage, read_url(url_of(part, "image_url", what), options, what), options, temps,
                         what);
        item.image_tokens = image_tokens_for_detail(part, options, what);
        part = {{"type", "image"}};
      } else if (type == "input_audio") {
        auto it = part.find("input_audio");
        if (it == part.end() || !it->is_object() || !it->contains("data") || !(*it)["data"].is_string())
          throw bad_request(cat(what, ".input_audio must be an object with string \"data\" (base64) and \"format\""));
        const std::string data = (*it)["data"].get<std::string>();
        PartData d;
        if (auto uri = parse_data_uri(data, what)) {
          d.bytes = std::move(uri->bytes);
          d.ext = extension_for(uri->mime);
        } else {
          d.bytes = decode_base64(data, what);
        }
        if (it->contains("format")) {
          if (!(*it)["format"].is_string()) throw bad_request(cat(what, ".input_audio.format must be a string"));
          d.ext = extension_for((*it)["format"].get<std::string>());
        }
        if (d.bytes.empty()) throw bad_request(cat(what, ": the audio data is empty"));
        item = item_from(MediaKind::kAudio, std::move(d), options, temps, what);
        part = {{"type", "audio"}};
      } else if (type == "audio_url") {
        item = item_from(MediaKind::kAudio, read_url(url_of(part, "audio_url", what), options, what), options, temps,
                         what);
        part = {{"type", "audio"}};
      } else if (type == "video_url") {
        item = item_from(MediaKind::kVideo, read_url(url_of(part, "video_url", what), options, what), options, temps,
                         what);
        part = {{"type", "video"}};
      } else {
        throw bad_request(cat(what, ": unknown content part type '", type,
                              "' (expected text, image_url, input_audio, audio_url or video_url)"));
      }
      items.push_back(std::move(item));
    }
  }
  return items;
}

}  // namespace g4::server
