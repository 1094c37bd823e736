// Media decoding: images, audio and video files -> RGB pixels and 16 kHz mono samples, in process,
// through FFmpeg's libraries (libavformat/libavcodec/libswscale/libswresample).
//
// What the embedders need (spec §3, §4): 8-bit RGB pictures (the vision embedder rescales them to
// [0,1] itself) and mono float32 waveforms at 16 kHz. Everything user-supplied goes through here,
// so every function treats its input as hostile: any problem (missing file, unknown or corrupt
// data, truncated file, missing stream, unsupported codec, no samples, picture too large) is a
// g4::Error whose message names the file (or the `name` given for in-memory data) and the problem.
// Memory is bounded: pictures above kMaxImagePixels are refused before the decoder allocates them,
// audio longer than the caller's limit is refused while decoding, and video frames are decoded one
// at a time with only the requested ones kept.
//
// FFmpeg never prints: the first call installs a process-wide av_log callback that keeps the last
// few error lines of the calling thread and appends them to the g4::Error text. Inputs are read
// only from the given file or buffer: FFmpeg is not allowed to open any other file or URL
// (playlists and references inside a container are refused).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace g4 {

// ---- images -------------------------------------------------------------------------------------

// 8-bit RGB, row-major, channels interleaved (HWC): pixel (x, y) is rgb[(y * width + x) * 3 + c].
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
};

// Decoded pictures larger than this are refused before the pixel buffers are allocated.
constexpr int64_t kMaxImagePixels = 100'000'000;

// Decodes the first picture of an image file: PNG, JPEG, WebP (still), BMP, GIF (first frame), and
// whatever else FFmpeg recognises (TIFF, ...). Any pixel format is converted to 8-bit RGB:
// - alpha is dropped, not composited (what PIL's Image.convert("RGB") does in the HF processor);
// - palette and grayscale pictures are expanded exactly ((v, v, v) for gray);
// - 8-bit RGB sources (PNG, BMP, lossless WebP, GIF) come out bit-exact;
// - JPEG's YCbCr is converted like libjpeg (PIL's decoder): fancy chroma upsampling, JFIF matrix
//   in fixed point (within 3 levels of PIL, mean 0.05: the IDCTs differ slightly);
// - other YUV sources (lossy WebP, video frames) go through swscale with accurate rounding, using
//   the picture's own colour matrix and range;
// - more than 8 bits per channel (16-bit PNG) is reduced by swscale (within 1 of PIL's high byte);
// - the EXIF orientation (JPEG, WebP) is applied, as transformers' load_image does with
//   PIL.ImageOps.exif_transpose (llama.cpp's stb_image ignores it).
RgbImage decode_image(const std::string& path);
// The same from memory (e.g. a data: URI). `name` appears in error messages, and its extension, if
// any, helps FFmpeg recognise the format ("upload.png"); the content decides in the end.
RgbImage decode_image_bytes(const uint8_t* data, size_t size, const std::string& name);

// ---- audio --------------------------------------------------------------------------------------

constexpr int kAudioSampleRate = 16000;  // spec §4: the audio embedder takes 16 kHz mono
// Default cap on decoded audio: 3 hours = 172.8 M samples (691 MB). The model's processor only
// uses the first 30 s (spec §4, audio_seq_length = 750 tokens), but the engine does not enforce it.
constexpr double kMaxAudioSecondsDefault = 3 * 3600.0;

// Decodes the best audio stream of a file (WAV, MP3, FLAC, OGG Vorbis/Opus, M4A/AAC, the
// soundtrack of a video, ...) to mono float32 at 16 kHz:
// - samples are converted to float exactly: s16 / 32768, s32 / 2^31, (u8 - 128) / 128, float as is,
//   so 16-bit PCM already at 16 kHz mono comes out exactly as s16 / 32768 (what llama.cpp's
//   miniaudio path and HF's soundfile/librosa path produce);
// - channels are averaged with equal weights (librosa.to_mono, used by HF's load_audio, is the mean
//   of the channels; FFmpeg's own downmix matrix would weight and normalise differently);
// - other rates are resampled by libswresample with its soxr engine at 20-bit precision (the
//   library and quality of librosa's default "soxr_hq"), or with swresample's own sinc filter
//   where FFmpeg was built without soxr; the output is time-aligned (no filter delay).
// Fails on a file with no audio stream, with no decodable samples, or longer than max_seconds.
// Individual corrupt packets are skipped (as players do) as long as something decodes.
std::vector<float> decode_audio(const std::string& path,
                                double max_seconds = kMaxAudioSecondsDefault);
std::vector<float> decode_audio_bytes(const uint8_t* data, size_t size, const std::string& name,
                                      double max_seconds = kMaxAudioSecondsDefault);

// ---- video --------------------------------------------------------------------------------------

constexpr double kDefaultVideoFps = 24.0;  // spec §3.5: HF's fallback when a file has no frame rate
constexpr int kDefaultVideoFrames = 32;    // spec §3.5: Gemma4UnifiedVideoProcessor.num_frames

struct VideoInfo {
  double duration_seconds = 0;  // video stream duration (the container's when the stream has none)
  double fps = 0;               // average frame rate; kDefaultVideoFps when the file has none
  int64_t frame_count = 0;      // frames in the video stream: the container's count, else counted
                                // by reading (not decoding) every packet
  int width = 0;
  int height = 0;
  bool has_audio = false;
  std::string video_codec;  // FFmpeg's short codec name, e.g. "h264"
};

struct VideoFrame {
  int64_t index = 0;             // position in decode output order, 0-based (= HF's frame index)
  double timestamp_seconds = 0;  // presentation time from the stream start (index / fps when
                                 // the stream has no timestamps)
  RgbImage image;
};

// Fails on a file without a video stream (e.g. audio only; cover art does not count as video).
// A still image or an animated GIF/WebP probes as a video of 1 or more frames.
VideoInfo probe_video(const std::string& path);

// The reference frame sampling of the HF video processor (spec §3.5, BaseVideoProcessor
// .sample_frames), without media:
// - target_fps <= 0: num_frames = `num_frames`; target_fps > 0 (--video-fps): num_frames =
//   int(total_frames / video_fps * target_fps) and the `num_frames` argument is ignored;
// - indices = torch.arange(0, total_frames, total_frames / num_frames).int(), reproduced exactly:
//   the length is ceil(total / step) in double, each value is float32(i * step) truncated.
// Deliberate differences from HF, where HF raises or crashes: more frames asked than the video
// has -> every frame; an fps-derived count of 0 -> 1 frame; an index that torch's float rounding
// puts at total_frames (e.g. total 15, 13 frames) is dropped. Indices come out strictly increasing.
// Throws g4::Error when total_frames < 1, num_frames < 1 (count mode) or video_fps <= 0 (fps mode).
std::vector<int64_t> sample_frame_indices(int64_t total_frames, double video_fps, int num_frames,
                                          double target_fps);

// Decodes the video stream sequentially and hands each wanted frame (by output index, any order,
// duplicates ignored) to `on_frame` as soon as it is converted, in increasing index order; stops
// after the last wanted frame. Memory: one decoded frame plus the one being delivered. Fails if the
// stream ends before a wanted index (the error says how many frames there were).
void for_each_video_frame(const std::string& path, const std::vector<int64_t>& frame_indices,
                          const std::function<void(VideoFrame&&)>& on_frame);
// Convenience: the wanted frames collected in increasing index order (distinct indices).
std::vector<VideoFrame> decode_video_frames(const std::string& path,
                                            const std::vector<int64_t>& frame_indices);

}  // namespace g4
