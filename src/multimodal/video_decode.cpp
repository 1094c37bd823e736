// Video: probing, the HF frame sampling (spec §3.5) and sequential decoding of the sampled frames.
// Decoding is lenient (damaged packets are skipped, as players do); a frame index past the end of
// what actually decodes is an error.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "multimodal/ffmpeg_io.h"
#include "multimodal/media.h"

namespace g4 {
namespace {

using namespace media_detail;

int video_stream_of(const MediaInput& input) {
  const int stream = input.best_stream(AVMEDIA_TYPE_VIDEO);
  if (stream < 0) fail(input.name(), ": no video stream in this file");
  if (input.stream(stream)->disposition & AV_DISPOSITION_ATTACHED_PIC)
    fail(input.name(), ": no video stream in this file (only a cover picture)");
  return stream;
}

// The average frame rate, as PyAV's stream.average_rate; kDefaultVideoFps when unknown.
double frames_per_second(const AVStream& stream) {
  for (const AVRational rate : {stream.avg_frame_rate, stream.r_frame_rate}) {
    if (rate.num > 0 && rate.den > 0) return av_q2d(rate);
  }
  return kDefaultVideoFps;
}

// Reads (without decoding) the rest of the file and counts the stream's packets: one per frame.
int64_t count_packets(MediaInput& input, int stream_index) {
  PacketPtr packet(av_packet_alloc());
  if (!packet) fail("out of memory allocating an FFmpeg packet");
  int64_t count = 0;
  while (av_read_frame(input.format(), packet.get()) >= 0) {
    if (packet->stream_index == stream_index) ++count;
    av_packet_unref(packet.get());
  }
  return count;
}

}  // namespace

VideoInfo probe_video(const std::string& path) {
  MediaInput input(path);
  const int stream_index = video_stream_of(input);
  const AVStream& stream = *input.stream(stream_index);
  const AVCodecParameters& params = *stream.codecpar;

  VideoInfo info;
  info.video_codec = avcodec_get_name(params.codec_id);
  info.width = params.width;
  info.height = params.height;
  info.fps = frames_per_second(stream);
  info.has_audio = input.best_stream(AVMEDIA_TYPE_AUDIO) >= 0;
  // MP4/MOV store the sample count; Matroska/WebM and most others do not, so count packets.
  info.frame_count = stream.nb_frames > 0 ? stream.nb_frames : count_packets(input, stream_index);
  if (stream.duration != AV_NOPTS_VALUE && stream.duration > 0) {
    info.duration_seconds = static_cast<double>(stream.duration) * av_q2d(stream.time_base);
  } else if (input.format()->duration != AV_NOPTS_VALUE && input.format()->duration > 0) {
    info.duration_seconds = static_cast<double>(input.format()->duration) / AV_TIME_BASE;
  } else {
    info.duration_seconds = static_cast<double>(info.frame_count) / info.fps;
  }
  if (info.frame_count <= 0) fail(path, ": the video stream has no frames");
  return info;
}

std::vector<int64_t> sample_frame_indices(int64_t total_frames, double video_fps, int num_frames,
                                          double target_fps) {
  if (total_frames < 1) fail("cannot sample frames from a video with ", total_frames, " frames");
  int64_t wanted = num_frames;
  if (target_fps > 0) {
    if (!(video_fps > 0)) fail("fps-based frame sampling needs the video's frame rate");
    // HF: num_frames = int(total_num_frames / metadata.fps * fps) (truncation)
    const double exact = static_cast<double>(total_frames) / video_fps * target_fps;
    wanted =
        exact >= static_cast<double>(total_frames) ? total_frames : static_cast<int64_t>(exact);
    wanted = std::max<int64_t>(wanted, 1);  // HF divides by zero here
  } else if (num_frames < 1) {
    fail("number of video frames to sample must be at least 1, got ", num_frames);
  }
  wanted = std::min(wanted, total_frames);  // HF raises; every frame is the useful answer

  // torch.arange(0, T, T / n).int() with torch's CPU semantics: length ceil(T / step) computed in
  // double; each element start + i * step computed in double and stored as float32; .int()
  // truncates. float32 rounding can put an element at T (e.g. T = 15, n = 13) — dropped.
  const double total = static_cast<double>(total_frames);
  const double step = total / static_cast<double>(wanted);
  const auto length = static_cast<int64_t>(std::ceil(total / step));
  std::vector<int64_t> indices;
  indices.reserve(static_cast<size_t>(length));
  for (int64_t i = 0; i < length; ++i) {
    const auto value = static_cast<int64_t>(static_cast<float>(static_cast<double>(i) * step));
    if (value >= total_frames) break;
    if (indices.empty() || value > indices.back()) indices.push_back(value);
  }
  return indices;
}

void for_each_video_frame(const std::string& path, const std::vector<int64_t>& frame_indices,
                          const std::function<void(VideoFrame&&)>& on_frame) {
  std::vector<int64_t> wanted = frame_indices;
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  if (!wanted.empty() && wanted.front() < 0)
    fail(path, ": negative video frame index ", wanted.front());

  MediaInput input(path);
  const int stream_index = video_stream_of(input);
  if (wanted.empty()) return;
  const AVStream& stream = *input.stream(stream_index);
  const double fps = frames_per_second(stream);
  const double time_base = av_q2d(stream.time_base);
  const int64_t start_pts = stream.start_time != AV_NOPTS_VALUE ? stream.start_time : 0;

  // Video decoders may use threads (thread_count 0 = FFmpeg's choice): decoding every frame of a
  // long clip to keep 32 is the expensive part.
  CodecContextPtr decoder = open_decoder(input, stream_index, /*thread_count=*/0, 0);
  SwsPtr scaler;
  int64_t index = 0;
  size_t next = 0;
  decode_stream(input, decoder.get(), stream_index, OnCorruptData::kSkip,
                [&](const AVFrame& frame) {
                  if (index == wanted[next]) {
                    VideoFrame out;
                    out.index = index;
                    const int64_t pts = frame.best_effort_timestamp;
                    out.timestamp_seconds = pts != AV_NOPTS_VALUE
                                                ? static_cast<double>(pts - start_pts) * time_base
                                                : static_cast<double>(index) / fps;
                    out.image = frame_to_rgb(frame, scaler, path);
                    on_frame(std::move(out));
                    ++next;
                  }
                  ++index;
                  return next < wanted.size();
                });
  if (next < wanted.size()) {
    fail(path, ": frame ", wanted[next], " was requested but the video stream has only ", index,
         " decodable frames", last_ffmpeg_message_suffix());
  }
}

std::vector<VideoFrame> decode_video_frames(const std::string& path,
                                            const std::vector<int64_t>& frame_indices) {
  std::vector<VideoFrame> frames;
  for_each_video_frame(path, frame_indices,
                       [&](VideoFrame&& f) { frames.push_back(std::move(f)); });
  return frames;
}

}  // namespace g4
