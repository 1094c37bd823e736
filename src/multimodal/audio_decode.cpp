// Audio -> mono float32 at 16 kHz (media.h, spec §4: "16 kHz mono, float waveform"; decoding and
// resampling are the caller's job). Pipeline per decoded frame: exact sample-format conversion to
// float, equal-weight channel average, then resampling (skipped when the stream is already 16 kHz).
extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
}

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "core/error.h"
#include "multimodal/ffmpeg_io.h"
#include "multimodal/media.h"

namespace g4 {
namespace {

using namespace media_detail;

// One sample as float, exactly: integer formats are divided by their full scale (s16 / 32768).
float sample_as_float(const uint8_t* p, AVSampleFormat packed_format) {
  switch (packed_format) {
    case AV_SAMPLE_FMT_U8:
      return (static_cast<float>(*p) - 128.0f) / 128.0f;
    case AV_SAMPLE_FMT_S16: {
      int16_t v;
      std::memcpy(&v, p, sizeof v);
      return static_cast<float>(v) / 32768.0f;
    }
    case AV_SAMPLE_FMT_S32: {
      int32_t v;
      std::memcpy(&v, p, sizeof v);
      return static_cast<float>(static_cast<double>(v) / 2147483648.0);
    }
    case AV_SAMPLE_FMT_S64: {
      int64_t v;
      std::memcpy(&v, p, sizeof v);
      return static_cast<float>(static_cast<double>(v) / 9223372036854775808.0);
    }
    case AV_SAMPLE_FMT_FLT: {
      float v;
      std::memcpy(&v, p, sizeof v);
      return v;
    }
    case AV_SAMPLE_FMT_DBL: {
      double v;
      std::memcpy(&v, p, sizeof v);
      return static_cast<float>(v);
    }
    default:
      return 0.0f;  // unreachable: checked by append_mono
  }
}

// Appends the frame's samples averaged over its channels (librosa.to_mono: the plain mean).
void append_mono(const AVFrame& frame, const std::string& name, std::vector<float>& mono) {
  const auto format = static_cast<AVSampleFormat>(frame.format);
  const AVSampleFormat packed = av_get_packed_sample_fmt(format);
  const int bytes = av_get_bytes_per_sample(format);
  const int channels = frame.ch_layout.nb_channels;
  if (bytes <= 0 || packed == AV_SAMPLE_FMT_NONE || packed >= AV_SAMPLE_FMT_NB)
    fail(name, ": unsupported audio sample format ", static_cast<int>(format));
  if (channels <= 0) fail(name, ": audio frame without channels");
  const bool planar = av_sample_fmt_is_planar(format);
  const size_t start = mono.size();
  mono.resize(start + static_cast<size_t>(frame.nb_samples));
  for (int i = 0; i < frame.nb_samples; ++i) {
    double sum = 0.0;  // exact for one channel, so mono s16 stays exactly s16 / 32768
    for (int c = 0; c < channels; ++c) {
      const uint8_t* p = planar ? frame.extended_data[c] + int64_t{i} * bytes
                                : frame.extended_data[0] + (int64_t{i} * channels + c) * bytes;
      sum += sample_as_float(p, packed);
    }
    mono[start + i] = static_cast<float>(sum / channels);
  }
}

// Mono float -> mono float at 16 kHz. Streaming: push() as frames arrive, finish() at the end.
class MonoResampler {
 public:
  MonoResampler(int input_rate, const std::string& name) : name_(name), input_rate_(input_rate) {
    // Real rates run from 8 kHz (telephony) to 768 kHz (DXD); the bounds keep the output of one
    // frame within 16x its input, so a hostile rate cannot make one frame allocate gigabytes.
    if (input_rate < kMinInputRate || input_rate > kMaxInputRate) {
      fail(name, ": unsupported audio sample rate ", input_rate, " Hz (expected ", kMinInputRate,
           " to ", kMaxInputRate, ")");
    }
    if (input_rate == kAudioSampleRate) return;  // pass-through: keeps 16 kHz input bit-exact
    // soxr is what librosa's default "soxr_hq" uses; FFmpeg builds without it fall back to
    // swresample's own windowed-sinc filter.
    if (!try_init("soxr") && !try_init("swr"))
      fail(name, ": cannot set up resampling from ", input_rate, " Hz to ", kAudioSampleRate,
           " Hz");
  }

  int input_rate() const { return input_rate_; }

  void push(const float* samples, size_t count, std::vector<float>& out) {
    if (!resampler_) {
      out.insert(out.end(), samples, samples + count);
      return;
    }
    while (count > 0) {  // chunks keep swr's int counts in range
      const int chunk = static_cast<int>(std::min<size_t>(count, 1 << 20));
      convert(samples, chunk, out);
      samples += chunk;
      count -= static_cast<size_t>(chunk);
    }
  }

  void finish(std::vector<float>& out) {
    if (resampler_) convert(nullptr, 0, out);  // drains the filter's delay line
  }

 private:
  static constexpr int kMinInputRate = 1000;
  static constexpr int kMaxInputRate = 1'536'000;

  bool try_init(const char* engine) {
    SwrContext* raw = nullptr;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;  // non-const: FFmpeg 5.1 API
    if (swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_FLT, kAudioSampleRate, &mono,
                            AV_SAMPLE_FMT_FLT, input_rate_, 0, nullptr) < 0) {
      fail(name_, ": cannot allocate the audio resampler");
    }
    SwrPtr resampler(raw);
    if (av_opt_set(resampler.get(), "resampler", engine, 0) < 0) return false;
    if (swr_init(resampler.get()) < 0) return false;
    resampler_ = std::move(resampler);
    return true;
  }

  void convert(const float* samples, int count, std::vector<float>& out) {
    while (true) {
      // When flushing, swr_get_out_samples may underestimate what the filter still holds.
      const int capacity =
          std::max(swr_get_out_samples(resampler_.get(), count), samples ? 0 : 4096);
      if (capacity <= 0) return;
      const size_t start = out.size();
      out.resize(start + static_cast<size_t>(capacity));
      auto* dst = reinterpret_cast<uint8_t*>(out.data() + start);
      const auto* src = reinterpret_cast<const uint8_t*>(samples);
      const int produced =
          swr_convert(resampler_.get(), &dst, capacity, samples ? &src : nullptr, count);
      out.resize(start + static_cast<size_t>(std::max(produced, 0)));
      if (produced < 0) fail(name_, ": audio resampling failed: ", av_error_text(produced));
      // Input is consumed in one call; when flushing, repeat until the resampler is empty.
      if (samples || produced == 0) return;
    }
  }

  std::string name_;
  int input_rate_;
  SwrPtr resampler_;
};

std::vector<float> decode_best_audio(MediaInput& input, double max_seconds) {
  const int stream = input.best_stream(AVMEDIA_TYPE_AUDIO);
  if (stream < 0) fail(input.name(), ": no audio stream in this file");
  CodecContextPtr decoder = open_decoder(input, stream, /*thread_count=*/1, 0);
  const double max_samples = std::max(0.0, max_seconds) * kAudioSampleRate;

  std::vector<float> out;
  std::vector<float> mono;  // one frame's worth at the input rate
  std::optional<MonoResampler> resampler;
  const int skipped =
      decode_stream(input, decoder.get(), stream, OnCorruptData::kSkip, [&](const AVFrame& frame) {
        if (frame.nb_samples <= 0) return true;
        // A rate change mid-stream (rare: chained Ogg, broadcast captures) restarts the filter.
        if (!resampler || resampler->input_rate() != frame.sample_rate) {
          if (resampler) resampler->finish(out);
          resampler.emplace(frame.sample_rate, input.name());
        }
        mono.clear();
        append_mono(frame, input.name(), mono);
        resampler->push(mono.data(), mono.size(), out);
        if (static_cast<double>(out.size()) > max_samples) {
          fail(input.name(), ": audio is longer than the limit of ", max_seconds, " s");
        }
        return true;
      });
  if (resampler) resampler->finish(out);
  if (static_cast<double>(out.size()) > max_samples)
    fail(input.name(), ": audio is longer than the limit of ", max_seconds, " s");
  if (out.empty()) {
    fail(input.name(), ": no audio samples could be decoded",
         skipped > 0 ? cat(" (", skipped, " damaged packets", last_ffmpeg_message_suffix(), ")")
                     : std::string(" (zero-length audio)"));
  }
  return out;
}

}  // namespace

std::vector<float> decode_audio(const std::string& path, double max_seconds) {
  MediaInput input(path);
  return decode_best_audio(input, max_seconds);
}

std::vector<float> decode_audio_bytes(const uint8_t* data, size_t size, const std::string& name,
                                      double max_seconds) {
  MediaInput input(data, size, name);
  return decode_best_audio(input, max_seconds);
}

}  // namespace g4
