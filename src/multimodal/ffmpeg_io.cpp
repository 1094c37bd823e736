#include "multimodal/ffmpeg_io.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
}

#include <algorithm>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <vector>

#include "core/error.h"

namespace g4::media_detail {
namespace {

// ---- log capture --------------------------------------------------------------------------------

// The last few error-level lines FFmpeg logged on this thread (oldest first). Decoders run on the
// caller's thread for images and audio (thread_count 1), so their messages land here and end up
// in the g4::Error text. A failure often logs a cause and then a summary ("Picture size 20000x20000
// is invalid", then "png: Invalid image size"), so a few lines are kept.
constexpr size_t kKeptMessages = 3;
thread_local std::vector<std::string> t_ffmpeg_messages;

std::string joined_ffmpeg_messages() {
  std::string out;
  for (const std::string& m : t_ffmpeg_messages) out += out.empty() ? m : "; " + m;
  return out;
}

void capture_ffmpeg_log(void* object, int level, const char* format, va_list args) {
  if (level > AV_LOG_ERROR) return;  // warnings and chatter are dropped
  char line[1024];
  int print_prefix = 0;  // the default prefix holds a pointer ("[png @ 0x55..]"); use the name only
  va_list copy;
  va_copy(copy, args);
  av_log_format_line2(object, level, format, copy, line, sizeof line, &print_prefix);
  va_end(copy);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty()) return;
  const AVClass* cls = object ? *static_cast<AVClass* const*>(object) : nullptr;
  if (cls && cls->item_name) text = cat(cls->item_name(object), ": ", text);
  for (const std::string& kept : t_ffmpeg_messages)
    if (kept == text) return;
  if (t_ffmpeg_messages.size() == kKeptMessages) t_ffmpeg_messages.erase(t_ffmpeg_messages.begin());
  t_ffmpeg_messages.push_back(std::move(text));
}

// Installed once per process: FFmpeg's default callback prints to stderr, which an engine embedded
// in a server or CLI must not do.
void silence_ffmpeg_log() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(capture_ffmpeg_log); });
  t_ffmpeg_messages.clear();
}

// ---- custom I/O over memory ---------------------------------------------------------------------

int read_memory(void* opaque, uint8_t* buffer, int buffer_size) {
  auto* reader = static_cast<MediaInput::Reader*>(opaque);
  if (reader->pos >= reader->size || buffer_size <= 0) return AVERROR_EOF;
  const size_t n = std::min(static_cast<size_t>(buffer_size), reader->size - reader->pos);
  std::memcpy(buffer, reader->data + reader->pos, n);
  reader->pos += n;
  return static_cast<int>(n);
}

int64_t seek_memory(void* opaque, int64_t offset, int whence) {
  auto* reader = static_cast<MediaInput::Reader*>(opaque);
  const int64_t size = static_cast<int64_t>(reader->size);
  whence &= ~AVSEEK_FORCE;
  if (whence == AVSEEK_SIZE) return size;
  int64_t base = 0;
  if (whence == SEEK_CUR)
    base = static_cast<int64_t>(reader->pos);
  else if (whence == SEEK_END)
    base = size;
  else if (whence != SEEK_SET)
    return AVERROR(EINVAL);
  if (offset > size || offset < -size) return AVERROR(EINVAL);
  const int64_t target = base + offset;
  if (target < 0 || target > size) return AVERROR(EINVAL);
  reader->pos = static_cast<size_t>(target);
  return target;
}

// Containers can point at other files or URLs (HLS/DASH playlists, concat lists, image
// sequences, MOV references). Reading user media must never open anything else.
int refuse_nested_open(AVFormatContext*, AVIOContext**, const char*, int, AVDictionary**) {
  return AVERROR(EPERM);
}

constexpr int kIoBufferSize = 64 * 1024;

}  // namespace

FramePtr alloc_frame() {
  FramePtr frame(av_frame_alloc());
  if (!frame) fail("out of memory allocating an FFmpeg frame");
  return frame;
}

std::string av_error_text(int err) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, text, sizeof text);
  std::string out = text;
  const std::string messages = joined_ffmpeg_messages();
  if (!messages.empty()) out = cat(out, " (FFmpeg: ", messages, ")");
  // FFmpeg's image-size check ("Picture size WxH is invalid / exceeds ...") enforces our cap.
  if (messages.find("Picture size") != std::string::npos) {
    out = cat(out, "; pictures are limited to ", kMaxImagePixels / 1'000'000,
              " megapixels (and to FFmpeg's own limit)");
  }
  return out;
}

std::string last_ffmpeg_message_suffix() {
  const std::string messages = joined_ffmpeg_messages();
  return messages.empty() ? std::string() : cat("; FFmpeg: ", messages);
}

void fail_av(const std::string& name, const std::string& what, int err) {
  fail(name, ": ", what, ": ", av_error_text(err));
}

// ---- MediaInput ---------------------------------------------------------------------------------

MediaInput::MediaInput(const std::string& path) : name_(path) {
  file_.emplace(path);  // throws naming the path when missing/unreadable
  reader_ = {file_->data(), file_->size(), 0};
  open();
}

MediaInput::MediaInput(const uint8_t* data, size_t size, const std::string& name) : name_(name) {
  if (!data && size > 0) fail(name, ": null data pointer");
  reader_ = {data, size, 0};
  open();
}

MediaInput::~MediaInput() {
  avformat_close_input(&format_);  // does not touch io_: custom I/O stays ours
  if (io_) {
    av_freep(&io_->buffer);
    avio_context_free(&io_);
  }
}

void MediaInput::open() {
  silence_ffmpeg_log();
  if (reader_.size == 0) fail(name_, ": empty file");
  try {
    auto* buffer = static_cast<uint8_t*>(av_malloc(kIoBufferSize));
    if (!buffer) fail("out of memory");
    io_ = avio_alloc_context(buffer, kIoBufferSize, 0, &reader_, read_memory, nullptr, seek_memory);
    if (!io_) {
      av_free(buffer);
      fail("out of memory");
    }
    format_ = avformat_alloc_context();
    if (!format_) fail("out of memory");
    format_->pb = io_;
    format_->flags |= AVFMT_FLAG_CUSTOM_IO;
    format_->io_open = refuse_nested_open;
    // The name is only a probing hint here (its extension); with custom I/O nothing is opened.
    int err = avformat_open_input(&format_, name_.c_str(), nullptr, nullptr);
    if (err < 0) fail_av(name_, "not a recognised media file, or damaged", err);  // frees format_

    // Some demuxers decode a first picture here to learn its size: cap it like our decoders do.
    std::vector<AVDictionary*> options(format_->nb_streams, nullptr);
    for (AVDictionary*& o : options) av_dict_set_int(&o, "max_pixels", kMaxImagePixels, 0);
    err = avformat_find_stream_info(format_, options.data());
    for (AVDictionary*& o : options) av_dict_free(&o);
    if (err < 0) fail_av(name_, "cannot read the stream headers", err);
  } catch (...) {
    avformat_close_input(&format_);
    if (io_) {
      av_freep(&io_->buffer);
      avio_context_free(&io_);
    }
    throw;
  }
}

int MediaInput::best_stream(AVMediaType type) const {
  const int best = av_find_best_stream(format_, type, -1, -1, nullptr, 0);
  if (best < 0) return -1;
  if (type != AVMEDIA_TYPE_VIDEO || !(stream(best)->disposition & AV_DISPOSITION_ATTACHED_PIC))
    return best;
  // Cover art (an MP3's picture) is a one-frame "video" stream; prefer a real one when present.
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    const AVStream* s = format_->streams[i];
    if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
        !(s->disposition & AV_DISPOSITION_ATTACHED_PIC))
      return static_cast<int>(i);
  }
  return best;
}

// ---- decoding -----------------------------------------------------------------------------------

CodecContextPtr open_decoder(const MediaInput& input, int stream_index, int thread_count,
                             int error_detection_flags) {
  const AVStream* stream = input.stream(stream_index);
  const AVCodecID id = stream->codecpar->codec_id;
  const AVCodec* codec = avcodec_find_decoder(id);
  if (id == AV_CODEC_ID_NONE)
    fail(input.name(), ": unknown codec in stream ", stream_index,
         " (FFmpeg does not recognise it)");
  if (!codec) {
    fail(input.name(), ": unsupported codec '", avcodec_get_name(id), "' in stream ", stream_index,
         " (this FFmpeg build has no decoder for it)");
  }
  CodecContextPtr decoder(avcodec_alloc_context3(codec));
  if (!decoder) fail("out of memory allocating a decoder");
  int err = avcodec_parameters_to_context(decoder.get(), stream->codecpar);
  if (err < 0) fail_av(input.name(), cat("bad parameters for codec ", codec->name), err);
  decoder->pkt_timebase = stream->time_base;
  decoder->max_pixels = kMaxImagePixels;
  decoder->thread_count = thread_count;
  decoder->err_recognition = error_detection_flags;
  err = avcodec_open2(decoder.get(), codec, nullptr);
  if (err < 0) fail_av(input.name(), cat("cannot open the ", codec->name, " decoder"), err);
  return decoder;
}

int decode_stream(MediaInput& input, AVCodecContext* decoder, int stream_index,
                  OnCorruptData policy, const std::function<bool(const AVFrame&)>& on_frame) {
  PacketPtr packet(av_packet_alloc());
  if (!packet) fail("out of memory allocating an FFmpeg packet");
  FramePtr frame = alloc_frame();
  int skipped = 0;
  const auto damaged = [&](const char* what, int err) {
    if (policy == OnCorruptData::kFail) fail_av(input.name(), what, err);
    ++skipped;
  };
  // Hands every frame the decoder has ready to on_frame; false once on_frame asked to stop.
  const auto drain = [&]() {
    while (true) {
      const int err = avcodec_receive_frame(decoder, frame.get());
      if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return true;
      if (err < 0) {
        damaged("cannot decode", err);
        return true;  // next packet
      }
      const bool keep_going = on_frame(*frame);
      av_frame_unref(frame.get());
      if (!keep_going) return false;
    }
  };

  while (true) {
    int err = av_read_frame(input.format(), packet.get());
    if (err == AVERROR_EOF) break;
    if (err < 0) {
      damaged("cannot read the data (truncated or damaged?)", err);
      break;  // a demuxer that failed once is not trusted to make progress
    }
    if (packet->stream_index != stream_index) {
      av_packet_unref(packet.get());
      continue;
    }
    err = avcodec_send_packet(decoder, packet.get());
    if (err == AVERROR(EAGAIN)) {  // not expected (we drain after every packet), but legal
      if (!drain()) return skipped;
      err = avcodec_send_packet(decoder, packet.get());
    }
    av_packet_unref(packet.get());
    if (err < 0) damaged("cannot decode", err);
    if (!drain()) return skipped;
  }
  // End of input: flush the frames the decoder still holds (B-frame reordering, codec delay).
  const int err = avcodec_send_packet(decoder, nullptr);
  if (err < 0 && err != AVERROR_EOF) damaged("cannot decode", err);
  drain();
  return skipped;
}

// ---- pictures -----------------------------------------------------------------------------------

void check_picture_size(const std::string& name, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0) fail(name, ": invalid picture size ", width, "x", height);
  if (width > kMaxImagePixels / height) {
    fail(name, ": picture is ", width, "x", height, " = ", width * height / 1'000'000,
         " megapixels, more than the limit of ", kMaxImagePixels / 1'000'000, " megapixels");
  }
}

}  // namespace g4::media_detail
