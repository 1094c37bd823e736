// FFmpeg plumbing shared by the image, audio and video decoders (internal, not part of the API):
// owning pointers, a demuxer over a memory buffer or a mapped file, decoder setup, the decode loop,
// the log capture that turns FFmpeg's messages into g4::Error text, and picture -> RGB conversion.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/mapped_file.h"
#include "multimodal/media.h"

namespace g4::media_detail {

struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct SwrDeleter {
  void operator()(SwrContext* s) const { swr_free(&s); }
};
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;

FramePtr alloc_frame();

// "Invalid data found when processing input (FFmpeg: <its last error lines>)" for an AVERROR code.
std::string av_error_text(int err);
// "; FFmpeg: ..." when FFmpeg logged errors on this thread since the input was opened.
std::string last_ffmpeg_message_suffix();
// Throws g4::Error "<name>: <what>: <av_error_text(err)>".
[[noreturn]] void fail_av(const std::string& name, const std::string& what, int err);

// An opened demuxer over bytes in memory: a caller's buffer or a whole file mapped read-only.
// Construction probes the format and reads the stream headers (avformat_find_stream_info); every
// decoder opened on it refuses pictures above kMaxImagePixels. Not copyable or movable (FFmpeg
// keeps pointers to it).
class MediaInput {
 public:
  explicit MediaInput(const std::string& path);
  MediaInput(const uint8_t* data, size_t size, const std::string& name);
  ~MediaInput();
  MediaInput(const MediaInput&) = delete;
  MediaInput& operator=(const MediaInput&) = delete;

  const std::string& name() const { return name_; }
  AVFormatContext* format() const { return format_; }
  AVStream* stream(int index) const { return format_->streams[index]; }
  // The stream FFmpeg ranks best for `type`, or -1 when there is none.
  int best_stream(AVMediaType type) const;

  // Reader state for the custom AVIOContext (public so the C callbacks can reach it).
  struct Reader {
    const uint8_t* data = nullptr;
    size_t size = 0;
    size_t pos = 0;
  };

 private:
  void open();
  std::string name_;
  std::optional<MappedFile> file_;
  Reader reader_;
  AVIOContext* io_ = nullptr;
  AVFormatContext* format_ = nullptr;
};

// Opens a decoder for one stream. `thread_count` 1 keeps decoding on the calling thread (so its
// error messages are captured); 0 lets FFmpeg pick. Fails naming the codec when FFmpeg has none.
CodecContextPtr open_decoder(const MediaInput& input, int stream_index, int thread_count,
                             int error_detection_flags);

// What to do when the decoder rejects a packet or the demuxer reports damaged data.
enum class OnCorruptData {
  kFail,  // throw (images: a damaged picture is an error, as in PIL)
  kSkip,  // skip the packet; demuxer errors end the stream (audio/video, as players do)
};

// Sends every packet of `stream_index` through `decoder` and calls on_frame for each decoded frame
// in output order until it returns false or the stream is exhausted (the decoder is flushed at the
// end). Returns the number of packets skipped under OnCorruptData::kSkip.
int decode_stream(MediaInput& input, AVCodecContext* decoder, int stream_index,
                  OnCorruptData policy, const std::function<bool(const AVFrame&)>& on_frame);

// Fails unless width x height is positive and at most kMaxImagePixels.
void check_picture_size(const std::string& name, int64_t width, int64_t height);

// Converts a decoded picture to packed 8-bit RGB (see decode_image in media.h for the rules).
// `scaler` caches the swscale context between frames of one stream.
RgbImage frame_to_rgb(const AVFrame& frame, SwsPtr& scaler, const std::string& name);

}  // namespace g4::media_detail
