// Test-only media generation with FFmpeg's encoders and muxers, so the media tests need no binary
// files in the repository: still images encoded to one packet (PNG, BMP, JPEG, WebP), and a small
// muxer for audio/video files (WAV, FLAC, MP3, Ogg, M4A, MP4, MKV, GIF).
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "multimodal/ffmpeg_io.h"
#include "multimodal/media.h"

namespace g4::test {

using media_detail::CodecContextPtr;
using media_detail::FramePtr;
using media_detail::PacketPtr;
using media_detail::SwsPtr;
using EncoderOptions = std::map<std::string, std::string>;

inline bool have_encoder(const char* name) {
  return avcodec_find_encoder_by_name(name) != nullptr;
}

inline void check_av(int err, const std::string& what) {
  if (err < 0) {
    char text[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(err, text, sizeof text);
    throw std::runtime_error(what + ": " + text);
  }
}

inline FramePtr new_video_frame(AVPixelFormat format, int width, int height) {
  FramePtr frame(av_frame_alloc());
  frame->format = format;
  frame->width = width;
  frame->height = height;
  check_av(av_frame_get_buffer(frame.get(), 0), "av_frame_get_buffer");
  return frame;
}

// RGB24 picture -> frame of `format` (swscale; exact for RGB24/RGBA/BGRA targets).
inline FramePtr rgb_to_frame(const RgbImage& image, AVPixelFormat format) {
  FramePtr frame = new_video_frame(format, image.width, image.height);
  SwsPtr sws(sws_getContext(image.width, image.height, AV_PIX_FMT_RGB24, image.width, image.height,
                            format, SWS_BICUBIC | SWS_ACCURATE_RND, nullptr, nullptr, nullptr));
  if (!sws) throw std::runtime_error("sws_getContext");
  const uint8_t* src[4] = {image.rgb.data(), nullptr, nullptr, nullptr};
  const int src_stride[4] = {image.width * 3, 0, 0, 0};
  sws_scale(sws.get(), src, src_stride, 0, image.height, frame->data, frame->linesize);
  return frame;
}

inline CodecContextPtr open_encoder(const char* name,
                                    const std::function<void(AVCodecContext*)>& setup,
                                    const EncoderOptions& options) {
  // Encoders chat at info level until the decoder side installs its log callback (media.h).
  av_log_set_level(AV_LOG_ERROR);
  const AVCodec* codec = avcodec_find_encoder_by_name(name);
  if (!codec) throw std::runtime_error(std::string("no encoder ") + name);
  CodecContextPtr ctx(avcodec_alloc_context3(codec));
  ctx->thread_count = 1;  // deterministic output
  setup(ctx.get());
  AVDictionary* dict = nullptr;
  for (const auto& [k, v] : options) av_dict_set(&dict, k.c_str(), v.c_str(), 0);
  const int err = avcodec_open2(ctx.get(), codec, &dict);
  av_dict_free(&dict);
  check_av(err, std::string("avcodec_open2 ") + name);
  return ctx;
}

// One picture through an image encoder whose packet is a complete file (png, bmp, mjpeg, libwebp).
inline std::vector<uint8_t> encode_still(const char* codec_name, AVFrame& frame,
                                         const EncoderOptions& options = {},
                                         const std::function<void(AVCodecContext*)>& extra = {}) {
  CodecContextPtr enc = open_encoder(
      codec_name,
      [&](AVCodecContext* c) {
        c->width = frame.width;
        c->height = frame.height;
        c->pix_fmt = static_cast<AVPixelFormat>(frame.format);
        c->time_base = {1, 25};
        if (extra) extra(c);
      },
      options);
  frame.pts = 0;
  check_av(avcodec_send_frame(enc.get(), &frame), "send_frame");
  check_av(avcodec_send_frame(enc.get(), nullptr), "flush");
  std::vector<uint8_t> bytes;
  PacketPtr packet(av_packet_alloc());
  while (avcodec_receive_packet(enc.get(), packet.get()) >= 0) {
    bytes.insert(bytes.end(), packet->data, packet->data + packet->size);
    av_packet_unref(packet.get());
  }
  return bytes;
}

// A muxed file with any number of encoded streams. Streams are added first; the header is written
// at the first frame. Audio is given as interleaved float samples and cut into encoder frames.
class MediaWriter {
 public:
  explicit MediaWriter(const std::filesystem::path& path, const char* format = nullptr)
      : path_(path.string()) {
    check_av(avformat_alloc_output_context2(&format_, nullptr, format, path_.c_str()),
             "alloc output " + path_);
  }
  ~MediaWriter() {
    if (format_ && format_->pb) avio_closep(&format_->pb);
    avformat_free_context(format_);
  }
  MediaWriter(const MediaWriter&) = delete;
  MediaWriter& operator=(const MediaWriter&) = delete;

  int add_video(const char* codec, int width, int height, int fps, AVPixelFormat pix_fmt,
                const EncoderOptions& options = {}) {
    Stream s;
    s.encoder = open_encoder(
        codec,
        [&](AVCodecContext* c) {
          c->width = width;
          c->height = height;
          c->pix_fmt = pix_fmt;
          c->time_base = {1, fps};
          c->framerate = {fps, 1};
          c->gop_size = 12;
          if (format_->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        },
        options);
    return add_stream(std::move(s));
  }

  int add_audio(const char* codec, int sample_rate, int channels,
                const EncoderOptions& options = {}, int64_t bit_rate = 0) {
    Stream s;
    const AVCodec* c = avcodec_find_encoder_by_name(codec);
    if (!c) throw std::runtime_error(std::string("no encoder ") + codec);
    s.encoder = open_encoder(
        codec,
        [&](AVCodecContext* ctx) {
          ctx->sample_rate = sample_rate;
          ctx->sample_fmt = c->sample_fmts ? c->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
          av_channel_layout_default(&ctx->ch_layout, channels);
          ctx->time_base = {1, sample_rate};
          if (bit_rate) ctx->bit_rate = bit_rate;
          if (format_->oformat->flags & AVFMT_GLOBALHEADER)
            ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        },
        options);
    s.channels = channels;
    return add_stream(std::move(s));
  }

  void write_video(int stream, const RgbImage& image) {
    Stream& s = streams_[stream];
    FramePtr frame = rgb_to_frame(image, s.encoder->pix_fmt);
    write_video_frame(stream, *frame);
  }
  void write_video_frame(int stream, AVFrame& frame) {
    Stream& s = streams_[stream];
    frame.pts = s.next_pts++;
    encode(s, &frame);
  }

  void write_audio(int stream, const std::vector<float>& interleaved) {
    Stream& s = streams_[stream];
    s.pending.insert(s.pending.end(), interleaved.begin(), interleaved.end());
    const int n = frame_samples(s);
    while (static_cast<int64_t>(s.pending.size()) >= int64_t{n} * s.channels) send_audio(s, n);
  }

  void finish() {
    start();
    for (Stream& s : streams_) {
      if (s.encoder->codec_type == AVMEDIA_TYPE_AUDIO && !s.pending.empty()) {
        const int n = static_cast<int>(s.pending.size()) / s.channels;
        const bool small_ok = s.encoder->codec->capabilities &
                              (AV_CODEC_CAP_SMALL_LAST_FRAME | AV_CODEC_CAP_VARIABLE_FRAME_SIZE);
        if (!small_ok) s.pending.resize(size_t(frame_samples(s)) * s.channels, 0.0f);
        send_audio(s, small_ok ? n : frame_samples(s));
      }
      encode(s, nullptr);
    }
    check_av(av_write_trailer(format_), "write trailer");
    avio_closep(&format_->pb);
  }

 private:
  struct Stream {
    CodecContextPtr encoder;
    AVStream* stream = nullptr;
    int channels = 0;
    int64_t next_pts = 0;
    std::vector<float> pending;
  };

  int add_stream(Stream s) {
    s.stream = avformat_new_stream(format_, nullptr);
    check_av(avcodec_parameters_from_context(s.stream->codecpar, s.encoder.get()), "params");
    s.stream->time_base = s.encoder->time_base;
    streams_.push_back(std::move(s));
    return static_cast<int>(streams_.size()) - 1;
  }

  void start() {
    if (started_) return;
    started_ = true;
    check_av(avio_open(&format_->pb, path_.c_str(), AVIO_FLAG_WRITE), "open " + path_);
    check_av(avformat_write_header(format_, nullptr), "write header");
  }

  static int frame_samples(const Stream& s) {
    return s.encoder->frame_size > 0 ? s.encoder->frame_size : 1024;
  }

  void send_audio(Stream& s, int n) {
    FramePtr frame(av_frame_alloc());
    frame->format = s.encoder->sample_fmt;
    frame->nb_samples = n;
    frame->sample_rate = s.encoder->sample_rate;
    check_av(av_channel_layout_copy(&frame->ch_layout, &s.encoder->ch_layout), "layout");
    check_av(av_frame_get_buffer(frame.get(), 0), "audio buffer");
    const auto fmt = static_cast<AVSampleFormat>(frame->format);
    const bool planar = av_sample_fmt_is_planar(fmt);
    const int bytes = av_get_bytes_per_sample(fmt);
    for (int i = 0; i < n; ++i) {
      for (int c = 0; c < s.channels; ++c) {
        const float v = std::clamp(s.pending[size_t(i) * s.channels + c], -1.0f, 1.0f);
        uint8_t* p = planar ? frame->extended_data[c] + i * bytes
                            : frame->extended_data[0] + (i * s.channels + c) * bytes;
        switch (av_get_packed_sample_fmt(fmt)) {
          case AV_SAMPLE_FMT_S16: {
            const auto q = static_cast<int16_t>(std::lrint(v * 32767.0f));
            std::memcpy(p, &q, 2);
            break;
          }
          case AV_SAMPLE_FMT_S32: {
            const auto q = static_cast<int32_t>(std::lrint(double(v) * 2147483647.0));
            std::memcpy(p, &q, 4);
            break;
          }
          case AV_SAMPLE_FMT_FLT:
            std::memcpy(p, &v, 4);
            break;
          default:
            throw std::runtime_error("test writer: unsupported sample format");
        }
      }
    }
    s.pending.erase(s.pending.begin(),
                    s.pending.begin() + std::min<size_t>(s.pending.size(), size_t(n) * s.channels));
    frame->pts = s.next_pts;
    s.next_pts += n;
    encode(s, frame.get());
  }

  void encode(Stream& s, AVFrame* frame) {
    start();
    check_av(avcodec_send_frame(s.encoder.get(), frame), "send_frame");
    PacketPtr packet(av_packet_alloc());
    while (avcodec_receive_packet(s.encoder.get(), packet.get()) >= 0) {
      // Video encoders leave the duration at 0; MP4 then ends its edit list before the last frame.
      if (packet->duration == 0 && s.encoder->codec_type == AVMEDIA_TYPE_VIDEO)
        packet->duration = 1;
      av_packet_rescale_ts(packet.get(), s.encoder->time_base, s.stream->time_base);
      packet->stream_index = s.stream->index;
      check_av(av_interleaved_write_frame(format_, packet.get()), "write packet");
    }
  }

  std::string path_;
  AVFormatContext* format_ = nullptr;
  std::vector<Stream> streams_;
  bool started_ = false;
};

// Interleaved float samples: channel c is amplitudes[c] * sin(2 pi f t).
inline std::vector<float> sine(int sample_rate, double seconds, double frequency,
                               const std::vector<double>& amplitudes) {
  const auto n = static_cast<size_t>(std::llround(seconds * sample_rate));
  const size_t channels = amplitudes.size();
  std::vector<float> out(n * channels);
  for (size_t i = 0; i < n; ++i) {
    const double s = std::sin(2.0 * std::numbers::pi * frequency * double(i) / sample_rate);
    for (size_t c = 0; c < channels; ++c) out[i * channels + c] = float(amplitudes[c] * s);
  }
  return out;
}

}  // namespace g4::test
