// Still images -> 8-bit RGB (media.h). The first picture of the best video stream is decoded
// strictly: any decoder error or damage flag is a g4::Error, as PIL raises on a damaged file.
#include <algorithm>
#include <cstdlib>
#include <optional>

#include "core/error.h"
#include "multimodal/ffmpeg_io.h"
#include "multimodal/media.h"

namespace g4 {
namespace {

using namespace media_detail;

// EXIF orientation as FFmpeg's decoders export it (frame metadata "Orientation", JPEG and WebP),
// 1 when absent or invalid.
int exif_orientation(const AVFrame& frame) {
  const AVDictionaryEntry* entry = av_dict_get(frame.metadata, "Orientation", nullptr, 0);
  if (!entry) return 1;
  const int value = std::atoi(entry->value);
  return value >= 1 && value <= 8 ? value : 1;
}

// Turns the stored picture upright, as transformers' load_image does (PIL.ImageOps.exif_transpose:
// 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90
// counter-clockwise).
RgbImage apply_exif_orientation(RgbImage in, int orientation) {
  // Output pixel (x, y) reads source (x, y), or (y, x) when the axes swap, then mirrored.
  struct Mapping {
    bool swap_axes, mirror_x, mirror_y;
  };
  static constexpr Mapping kMappings[9] = {{},
                                           {},
                                           {false, true, false},
                                           {false, true, true},
                                           {false, false, true},
                                           {true, false, false},
                                           {true, false, true},
                                           {true, true, true},
                                           {true, true, false}};
  if (orientation <= 1 || orientation > 8) return in;
  const Mapping m = kMappings[orientation];
  const int w = in.width, h = in.height;
  RgbImage out;
  out.width = m.swap_axes ? h : w;
  out.height = m.swap_axes ? w : h;
  out.rgb.resize(in.rgb.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = m.swap_axes ? y : x;
      int sy = m.swap_axes ? x : y;
      if (m.mirror_x) sx = w - 1 - sx;
      if (m.mirror_y) sy = h - 1 - sy;
      const uint8_t* src = &in.rgb[(static_cast<size_t>(sy) * w + sx) * 3];
      std::copy(src, src + 3, &out.rgb[(static_cast<size_t>(y) * out.width + x) * 3]);
    }
  }
  return out;
}

RgbImage decode_first_picture(MediaInput& input) {
  const int stream = input.best_stream(AVMEDIA_TYPE_VIDEO);
  if (stream < 0) fail(input.name(), ": no image in this file");
  const AVCodecParameters* params = input.stream(stream)->codecpar;
  // Refuse oversized pictures from the header, before the decoder allocates anything.
  if (params->width > 0 && params->height > 0)
    check_picture_size(input.name(), params->width, params->height);

  // CRC checks make a PNG with a damaged chunk an error instead of a silently wrong picture.
  CodecContextPtr decoder = open_decoder(input, stream, /*thread_count=*/1, AV_EF_CRCCHECK);
  std::optional<RgbImage> picture;
  SwsPtr scaler;
  decode_stream(input, decoder.get(), stream, OnCorruptData::kFail, [&](const AVFrame& frame) {
    if (frame.decode_error_flags != 0 || (frame.flags & AV_FRAME_FLAG_CORRUPT))
      fail(input.name(), ": damaged image data (the decoder flagged the picture as corrupt)");
    picture =
        apply_exif_orientation(frame_to_rgb(frame, scaler, input.name()), exif_orientation(frame));
    return false;  // the first frame is the image (GIF: the first frame of an animation)
  });
  if (!picture) fail(input.name(), ": no picture could be decoded (truncated or damaged file?)");
  return std::move(*picture);
}

}  // namespace

RgbImage decode_image(const std::string& path) {
  MediaInput input(path);
  return decode_first_picture(input);
}

RgbImage decode_image_bytes(const uint8_t* data, size_t size, const std::string& name) {
  MediaInput input(data, size, name);
  return decode_first_picture(input);
}

}  // namespace g4
