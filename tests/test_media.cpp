// Media decoding (src/multimodal/media.h): images, audio and video through FFmpeg.
// Test media are generated here with FFmpeg's own encoders (tests/media_writer.h) into a temp dir;
// the only files read from disk are the gemma4-tiny fixtures (image.png, audio.wav), whose
// expected values come from independent references:
//   image.png: pixels from a one-off zlib-based Python PNG reader (not FFmpeg): 480x336, FNV-1a-64
//              of the RGB bytes 0x043722f5e653691f, and the pixels listed below;
//   audio.wav: mm/audio.decoded_samples.f32 = what llama.cpp's miniaudio produced (s16 / 32768),
//              compared bit for bit.
#include <gtest/gtest.h>

extern "C" {
#include <libavutil/crc.h>
#include <libavutil/pixdesc.h>
}

#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <numbers>
#include <random>
#include <set>

#include "core/error.h"
#include "media_writer.h"
#include "multimodal/media.h"
#include "test_util.h"

namespace g4 {
namespace {

namespace fs = std::filesystem;
using test::EncoderOptions;
using test::have_encoder;
using test::MediaWriter;
using test::TempDir;

#define REQUIRE_ENCODER(name) \
  if (!have_encoder(name)) GTEST_SKIP() << "this FFmpeg build has no encoder " << (name)

// ---- helpers ------------------------------------------------------------------------------------

uint64_t fnv1a64(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
  return h;
}

// Busy pseudo-random content with some structure (lossless round trips must keep every bit).
RgbImage noise_image(int width, int height, uint32_t seed) {
  RgbImage im{width, height, std::vector<uint8_t>(size_t(width) * height * 3)};
  std::mt19937 rng(seed);
  for (size_t i = 0; i < im.rgb.size(); ++i) im.rgb[i] = uint8_t(rng() >> 24);
  return im;
}

// Smooth content for lossy codecs (JPEG, lossy WebP).
RgbImage gradient_image(int width, int height) {
  RgbImage im{width, height, std::vector<uint8_t>(size_t(width) * height * 3)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &im.rgb[(size_t(y) * width + x) * 3];
      p[0] = uint8_t(255 * x / (width - 1));
      p[1] = uint8_t(255 * y / (height - 1));
      p[2] = uint8_t(128 + 100 * std::sin(x * 0.05 + y * 0.03));
    }
  return im;
}

RgbImage solid_image(int width, int height, uint8_t r, uint8_t g, uint8_t b) {
  RgbImage im{width, height, {}};
  for (int i = 0; i < width * height; ++i) im.rgb.insert(im.rgb.end(), {r, g, b});
  return im;
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  test::write_file_bytes(path, bytes);
}

std::vector<uint8_t> encode_png(const RgbImage& im) {
  test::FramePtr frame = test::rgb_to_frame(im, AV_PIX_FMT_RGB24);
  return test::encode_still("png", *frame);
}

// Runs `f`, expecting a g4::Error whose message contains every one of `parts`.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected a g4::Error";
  } catch (const Error& e) {
    if (std::getenv("G4_PRINT_MEDIA_ERRORS")) std::printf("error: %s\n", e.what());
    for (const std::string& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "message '" << e.what() << "' lacks '" << part << "'";
  }
}

double max_abs_diff(const RgbImage& a, const RgbImage& b) {
  double worst = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i)
    worst = std::max(worst, std::abs(double(a.rgb[i]) - b.rgb[i]));
  return worst;
}

double mean_abs_diff(const RgbImage& a, const RgbImage& b) {
  double sum = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) sum += std::abs(double(a.rgb[i]) - b.rgb[i]);
  return sum / double(a.rgb.size());
}

// ---- images -------------------------------------------------------------------------------------

TEST(MediaImage, FixturePngDecodesToTheReferencePixels) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/image.png");
  const fs::path path = test::fixtures_dir() / "gemma4-tiny/image.png";
  const RgbImage im = decode_image(path.string());
  ASSERT_EQ(im.width, 480);
  ASSERT_EQ(im.height, 336);
  ASSERT_EQ(im.rgb.size(), 480u * 336 * 3);
  // Values from an independent zlib + PNG-filter reader written in Python (see file comment).
  EXPECT_EQ(fnv1a64(im.rgb), 0x043722f5e653691full);
  struct Pixel {
    int x, y;
    uint8_t r, g, b;
  };
  for (const Pixel& p :
       {Pixel{0, 0, 62, 231, 114}, Pixel{1, 0, 45, 213, 113}, Pixel{479, 0, 158, 210, 58},
        Pixel{0, 335, 42, 91, 165}, Pixel{479, 335, 150, 63, 68}, Pixel{240, 168, 61, 116, 185},
        Pixel{123, 45, 50, 167, 140}, Pixel{301, 277, 129, 147, 75}}) {
    const uint8_t* v = &im.rgb[(size_t(p.y) * im.width + p.x) * 3];
    EXPECT_EQ(v[0], p.r) << p.x << "," << p.y;
    EXPECT_EQ(v[1], p.g) << p.x << "," << p.y;
    EXPECT_EQ(v[2], p.b) << p.x << "," << p.y;
  }
  // The in-memory variant (data: URIs) gives the same picture.
  const std::vector<uint8_t> bytes = test::read_file_bytes(path);
  EXPECT_EQ(decode_image_bytes(bytes.data(), bytes.size(), "image.png").rgb, im.rgb);
  EXPECT_EQ(decode_image_bytes(bytes.data(), bytes.size(), "no-extension").rgb, im.rgb);
}

TEST(MediaImage, LosslessFormatsRoundTripExactly) {
  TempDir dir;
  const RgbImage src = noise_image(37, 23, 7);  // odd sizes: no stride assumptions
  struct Case {
    const char* encoder;
    AVPixelFormat format;
    const char* file;
    EncoderOptions options;
  };
  const std::vector<Case> cases = {
      {"png", AV_PIX_FMT_RGB24, "rgb.png", {}},
      {"bmp", AV_PIX_FMT_BGR24, "bgr.bmp", {}},
      {"libwebp", AV_PIX_FMT_BGRA, "lossless.webp", {{"lossless", "1"}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    if (!have_encoder(c.encoder)) {
      ADD_FAILURE() << "encoder " << c.encoder << " missing";
      continue;
    }
    test::FramePtr frame = test::rgb_to_frame(src, c.format);
    write_bytes(dir / c.file, test::encode_still(c.encoder, *frame, c.options));
    const RgbImage out = decode_image((dir / c.file).string());
    ASSERT_EQ(out.width, src.width);
    ASSERT_EQ(out.height, src.height);
    EXPECT_EQ(out.rgb, src.rgb);
  }
}

TEST(MediaImage, AlphaIsDroppedNotComposited) {
  // PIL's convert("RGB") drops alpha; a transparent pixel keeps its colour.
  RgbImage expected = noise_image(9, 5, 3);
  test::FramePtr rgba = test::new_video_frame(AV_PIX_FMT_RGBA, 9, 5);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 9; ++x) {
      uint8_t* p = rgba->data[0] + y * rgba->linesize[0] + x * 4;
      std::memcpy(p, &expected.rgb[(y * 9 + x) * 3], 3);
      p[3] = uint8_t((x * 31 + y * 7) % 256);  // includes fully transparent pixels
    }
  const std::vector<uint8_t> png = test::encode_still("png", *rgba);
  const RgbImage out = decode_image_bytes(png.data(), png.size(), "rgba.png");
  EXPECT_EQ(out.rgb, expected.rgb);
}

TEST(MediaImage, GrayGrayAlphaAndPaletteExpandExactly) {
  const int w = 16, h = 3;
  // 8-bit gray: every value 0..47
  test::FramePtr gray = test::new_video_frame(AV_PIX_FMT_GRAY8, w, h);
  test::FramePtr gray_alpha = test::new_video_frame(AV_PIX_FMT_YA8, w, h);
  test::FramePtr pal = test::new_video_frame(AV_PIX_FMT_PAL8, w, h);
  RgbImage gray_expected{w, h, {}};
  RgbImage pal_expected{w, h, {}};
  uint32_t palette[256];
  for (int i = 0; i < 256; ++i)
    palette[i] =
        0xFF000000u | uint32_t(i * 7 % 256) << 16 | uint32_t(255 - i) << 8 | uint32_t(i * 13 % 256);
  std::memcpy(pal->data[1], palette, sizeof palette);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const uint8_t v = uint8_t((y * w + x) * 5);
      gray->data[0][y * gray->linesize[0] + x] = v;
      gray_alpha->data[0][y * gray_alpha->linesize[0] + 2 * x] = v;
      gray_alpha->data[0][y * gray_alpha->linesize[0] + 2 * x + 1] = uint8_t(x * 16);
      gray_expected.rgb.insert(gray_expected.rgb.end(), {v, v, v});
      const uint8_t index = uint8_t(y * 50 + x * 3);
      pal->data[0][y * pal->linesize[0] + x] = index;
      const uint32_t c = palette[index];
      pal_expected.rgb.insert(pal_expected.rgb.end(),
                              {uint8_t(c >> 16), uint8_t(c >> 8), uint8_t(c)});
    }
  const auto decode = [](AVFrame& frame) {
    const std::vector<uint8_t> png = test::encode_still("png", frame);
    return decode_image_bytes(png.data(), png.size(), "x.png");
  };
  EXPECT_EQ(decode(*gray).rgb, gray_expected.rgb);
  EXPECT_EQ(decode(*gray_alpha).rgb, gray_expected.rgb);
  EXPECT_EQ(decode(*pal).rgb, pal_expected.rgb);
}

TEST(MediaImage, SixteenBitPngIsReducedToEightBits) {
  // PIL keeps the high byte of 16-bit samples; swscale may round instead: allow 1.
  const RgbImage src = noise_image(8, 4, 11);
  test::FramePtr rgb48 = test::new_video_frame(AV_PIX_FMT_RGB48BE, 8, 4);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 8 * 3; ++x) {
      uint8_t* p = rgb48->data[0] + y * rgb48->linesize[0] + 2 * x;
      p[0] = src.rgb[y * 24 + x];
      p[1] = uint8_t(x * 9);  // low byte noise
    }
  const std::vector<uint8_t> png = test::encode_still("png", *rgb48);
  const RgbImage out = decode_image_bytes(png.data(), png.size(), "deep.png");
  EXPECT_LE(max_abs_diff(out, src), 1.0);
}

TEST(MediaImage, JpegAndLossyWebpDecodeApproximately) {
  const RgbImage src = gradient_image(64, 48);
  {
    test::FramePtr yuv = test::rgb_to_frame(src, AV_PIX_FMT_YUVJ444P);
    yuv->quality = FF_QP2LAMBDA * 1;
    const std::vector<uint8_t> jpeg = test::encode_still("mjpeg", *yuv, {}, [](AVCodecContext* c) {
      c->flags |= AV_CODEC_FLAG_QSCALE;
      c->global_quality = FF_QP2LAMBDA * 1;
      c->color_range = AVCOL_RANGE_JPEG;
    });
    const RgbImage out = decode_image_bytes(jpeg.data(), jpeg.size(), "photo.jpg");
    ASSERT_EQ(out.width, 64);
    ASSERT_EQ(out.height, 48);
    // Measured: mean 0.77, max 6 (quantisation at q=1 plus two colour conversions).
    EXPECT_LT(mean_abs_diff(out, src), 1.5);
    EXPECT_LE(max_abs_diff(out, src), 12);
  }
  if (have_encoder("libwebp")) {
    test::FramePtr yuv = test::rgb_to_frame(src, AV_PIX_FMT_YUV420P);
    const std::vector<uint8_t> webp = test::encode_still("libwebp", *yuv, {{"quality", "95"}});
    const RgbImage out = decode_image_bytes(webp.data(), webp.size(), "photo.webp");
    ASSERT_EQ(out.width, 64);
    // 4:2:0 chroma and limited range: looser than JPEG 4:4:4. Measured: mean 1.28, max 9.
    EXPECT_LT(mean_abs_diff(out, src), 2.5);
    EXPECT_LE(max_abs_diff(out, src), 18);
  }
}

// libjpeg's YCbCr -> RGB (what PIL gives for JPEG): the JFIF matrix in 16-bit fixed point and
// "fancy" upsampling, i.e. a triangle filter (weights 3/4, 1/4) around centred chroma samples.
TEST(MediaImage, JpegColourConversionFollowsLibjpeg) {
  const auto frame_with = [](AVPixelFormat format, int w, int h, uint8_t y, uint8_t cb,
                             uint8_t cr) {
    test::FramePtr f = test::new_video_frame(format, w, h);
    for (int plane = 0; plane < 3; ++plane) {
      const int rows =
          plane == 0 ? h : AV_CEIL_RSHIFT(h, av_pix_fmt_desc_get(format)->log2_chroma_h);
      for (int r = 0; r < rows; ++r)
        std::memset(f->data[plane] + r * f->linesize[plane],
                    plane == 0   ? y
                    : plane == 1 ? cb
                                 : cr,
                    size_t(f->linesize[plane]));
    }
    return f;
  };
  test::SwsPtr scaler;
  // Uniform colour, worked by hand from the JFIF formulas with libjpeg's rounding:
  // Y 100, Cb 150, Cr 90 -> R = 100 + floor((91881 * -38 + 32768) / 65536) = 47, G = 120, B = 139.
  for (AVPixelFormat format : {AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUVJ444P}) {
    test::FramePtr f = frame_with(format, 7, 5, 100, 150, 90);
    const RgbImage im = media_detail::frame_to_rgb(*f, scaler, "uniform");
    for (int i = 0; i < 7 * 5; ++i) {
      ASSERT_EQ(im.rgb[i * 3 + 0], 47);
      ASSERT_EQ(im.rgb[i * 3 + 1], 120);
      ASSERT_EQ(im.rgb[i * 3 + 2], 139);
    }
  }
  // A chroma step 128 -> 168 (4:2:2, horizontal): upsampled Cb 128 128 128 138 158 168 168 168,
  // so B = 128 + round(1.772 (Cb - 128)) = 128 128 128 146 181 199 199 199. Nearest-sample
  // upsampling would give 128 x4, 199 x4.
  const std::vector<int> expected_b = {128, 128, 128, 146, 181, 199, 199, 199};
  test::FramePtr h_step = frame_with(AV_PIX_FMT_YUVJ422P, 8, 2, 128, 128, 128);
  for (int r = 0; r < 2; ++r)
    h_step->data[1][r * h_step->linesize[1] + 2] = h_step->data[1][r * h_step->linesize[1] + 3] =
        168;
  const RgbImage h_im = media_detail::frame_to_rgb(*h_step, scaler, "h-step");
  for (int x = 0; x < 8; ++x) EXPECT_EQ(h_im.rgb[x * 3 + 2], expected_b[x]) << "x " << x;
  // The same step vertically in 4:2:0 (chroma rows 128, 168; 4 luma rows): 128 146 181 199.
  test::FramePtr v_step = frame_with(AV_PIX_FMT_YUVJ420P, 8, 4, 128, 128, 128);
  std::memset(v_step->data[1] + v_step->linesize[1], 168, 4);
  const RgbImage v_im = media_detail::frame_to_rgb(*v_step, scaler, "v-step");
  const std::vector<int> expected_column_b = {128, 146, 181, 199};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 8; ++x)
      EXPECT_EQ(v_im.rgb[(y * 8 + x) * 3 + 2], expected_column_b[y]) << x << "," << y;
}

TEST(MediaImage, ExifOrientationIsApplied) {
  // 32x16 source: 4x2 blocks of 8x8, each its own colour. JPEG 4:4:4 at high quality keeps the
  // block centres within a few levels.
  const auto block_color = [](int bx, int by) {
    return std::array<uint8_t, 3>{uint8_t(30 + 60 * bx), uint8_t(by ? 220 : 40),
                                  uint8_t(200 - 50 * bx)};
  };
  RgbImage src{32, 16, std::vector<uint8_t>(32 * 16 * 3)};
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 32; ++x) {
      const auto c = block_color(x / 8, y / 8);
      std::copy(c.begin(), c.end(), &src.rgb[(y * 32 + x) * 3]);
    }
  test::FramePtr yuv = test::rgb_to_frame(src, AV_PIX_FMT_YUVJ444P);
  yuv->quality = FF_QP2LAMBDA * 2;
  const std::vector<uint8_t> jpeg = test::encode_still("mjpeg", *yuv, {}, [](AVCodecContext* c) {
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * 2;
    c->color_range = AVCOL_RANGE_JPEG;
  });
  // An APP1 Exif segment (little-endian TIFF, one IFD entry: 0x0112 Orientation, SHORT) after SOI.
  const auto with_orientation = [&](uint8_t orientation) {
    std::vector<uint8_t> exif = {0xFF, 0xE1, 0, 0, 'E',         'x', 'i', 'f', 0,    0,    'I', 'I',
                                 42,   0,    8, 0, 0,           0,   1,   0,   0x12, 0x01, 3,   0,
                                 1,    0,    0, 0, orientation, 0,   0,   0,   0,    0,    0,   0};
    exif[3] = uint8_t(exif.size() - 2);
    std::vector<uint8_t> out = jpeg;
    out.insert(out.begin() + 2, exif.begin(), exif.end());
    return out;
  };
  // Where source block (bx, by) lands, in output block units, per orientation (worked by hand:
  // 6 turns the picture 90 degrees clockwise, so the top-left block ends up top-right).
  struct Case {
    uint8_t orientation;
    int out_w, out_h;
    std::function<std::pair<int, int>(int, int)> where;
  };
  const std::vector<Case> cases = {
      {1, 32, 16,
       [](int bx, int by) {
         return std::pair{bx, by};
       }},
      {2, 32, 16,
       [](int bx, int by) {
         return std::pair{3 - bx, by};
       }},
      {3, 32, 16,
       [](int bx, int by) {
         return std::pair{3 - bx, 1 - by};
       }},
      {4, 32, 16,
       [](int bx, int by) {
         return std::pair{bx, 1 - by};
       }},
      {5, 16, 32,
       [](int bx, int by) {
         return std::pair{by, bx};
       }},
      {6, 16, 32,
       [](int bx, int by) {
         return std::pair{1 - by, bx};
       }},
      {7, 16, 32,
       [](int bx, int by) {
         return std::pair{1 - by, 3 - bx};
       }},
      {8, 16, 32,
       [](int bx, int by) {
         return std::pair{by, 3 - bx};
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(int(c.orientation));
    const std::vector<uint8_t> bytes = with_orientation(c.orientation);
    const RgbImage im = decode_image_bytes(bytes.data(), bytes.size(), "photo.jpg");
    ASSERT_EQ(im.width, c.out_w);
    ASSERT_EQ(im.height, c.out_h);
    for (int by = 0; by < 2; ++by)
      for (int bx = 0; bx < 4; ++bx) {
        const auto [ox, oy] = c.where(bx, by);
        const uint8_t* p = &im.rgb[((oy * 8 + 4) * size_t(im.width) + ox * 8 + 4) * 3];
        const auto want = block_color(bx, by);
        for (int k = 0; k < 3; ++k) EXPECT_NEAR(p[k], want[k], 6) << bx << "," << by;
      }
  }
}

TEST(MediaImage, GifGivesTheFirstFrame) {
  REQUIRE_ENCODER("gif");
  TempDir dir;
  const int w = 10, h = 6;
  {
    MediaWriter gif(dir / "anim.gif", "gif");
    const int s = gif.add_video("gif", w, h, 5, AV_PIX_FMT_PAL8);
    for (int f = 0; f < 2; ++f) {
      test::FramePtr frame = test::new_video_frame(AV_PIX_FMT_PAL8, w, h);
      uint32_t palette[256] = {};
      for (int i = 0; i < 256; ++i)
        palette[i] = 0xFF000000u | uint32_t((i * 37 + f * 100) % 256) << 16 |
                     uint32_t((i * 11) % 256) << 8 | uint32_t(200 - i % 200);
      std::memcpy(frame->data[1], palette, sizeof palette);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          frame->data[0][y * frame->linesize[0] + x] = uint8_t(x + y * w + f);
      gif.write_video_frame(s, *frame);
    }
    gif.finish();
  }
  const RgbImage out = decode_image((dir / "anim.gif").string());
  ASSERT_EQ(out.width, w);
  ASSERT_EQ(out.height, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int i = x + y * w;  // frame 0 palette
      const uint8_t* p = &out.rgb[size_t(i) * 3];
      EXPECT_EQ(p[0], (i * 37) % 256) << i;
      EXPECT_EQ(p[1], (i * 11) % 256) << i;
      EXPECT_EQ(p[2], 200 - i % 200) << i;
    }
}

TEST(MediaImage, OneByOnePixel) {
  const RgbImage src = solid_image(1, 1, 12, 34, 56);
  const std::vector<uint8_t> png = encode_png(src);
  const RgbImage out = decode_image_bytes(png.data(), png.size(), "dot.png");
  EXPECT_EQ(out.width, 1);
  EXPECT_EQ(out.height, 1);
  EXPECT_EQ(out.rgb, src.rgb);
}

// A PNG whose IHDR announces width x height, with a valid CRC and a tiny IDAT.
std::vector<uint8_t> png_with_header_size(uint32_t width, uint32_t height) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const auto chunk = [&](const char* type, const std::vector<uint8_t>& body) {
    const auto be32 = [&](uint32_t v) {
      for (int s = 24; s >= 0; s -= 8) png.push_back(uint8_t(v >> s));
    };
    be32(uint32_t(body.size()));
    std::vector<uint8_t> crc_input(type, type + 4);
    crc_input.insert(crc_input.end(), body.begin(), body.end());
    png.insert(png.end(), crc_input.begin(), crc_input.end());
    const uint32_t crc = av_crc(av_crc_get_table(AV_CRC_32_IEEE_LE), 0xFFFFFFFFu, crc_input.data(),
                                crc_input.size()) ^
                         0xFFFFFFFFu;
    be32(crc);
  };
  std::vector<uint8_t> ihdr;
  for (uint32_t v : {width, height})
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(uint8_t(v >> s));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, no interlace
  chunk("IHDR", ihdr);
  chunk("IDAT", {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});  // empty zlib stream
  chunk("IEND", {});
  return png;
}

TEST(MediaImage, OversizedPicturesAreRefusedBeforeDecoding) {
  // 20000 x 20000 = 400 megapixels (1.2 GB of RGB): must fail fast with a clear message.
  const std::vector<uint8_t> png = png_with_header_size(20000, 20000);
  expect_error([&] { decode_image_bytes(png.data(), png.size(), "huge.png"); },
               {"huge.png", "20000x20000", "limited to 100 megapixels"});
  // 12000 x 10000 = 120 megapixels: over our cap, under FFmpeg's own (~268 M with padding).
  const std::vector<uint8_t> big = png_with_header_size(12000, 10000);
  expect_error([&] { decode_image_bytes(big.data(), big.size(), "big.png"); },
               {"big.png", "12000x10000", "limited to 100 megapixels"});
  // Just under the cap: refused for its (broken) data, not for its size.
  const std::vector<uint8_t> fine = png_with_header_size(2, 2);
  expect_error([&] { decode_image_bytes(fine.data(), fine.size(), "broken.png"); }, {"broken.png"});
  // BMP header claiming 60000 x 60000.
  std::vector<uint8_t> bmp(54, 0);
  const auto le32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bmp[at + i] = uint8_t(v >> (8 * i));
  };
  bmp[0] = 'B';
  bmp[1] = 'M';
  le32(2, 54 + 16);
  le32(10, 54);
  le32(14, 40);
  le32(18, 60000);
  le32(22, 60000);
  bmp[26] = 1;
  bmp[28] = 24;
  bmp.resize(54 + 16, 0x55);
  expect_error([&] { decode_image_bytes(bmp.data(), bmp.size(), "huge.bmp"); }, {"huge.bmp"});
}

TEST(MediaImage, ErrorsNameTheFileAndTheProblem) {
  TempDir dir;
  expect_error([&] { decode_image((dir / "missing.png").string()); }, {"missing.png"});
  write_bytes(dir / "empty.png", {});
  expect_error([&] { decode_image((dir / "empty.png").string()); }, {"empty.png", "empty"});
  const std::string text = "this is not an image, just some text that goes on for a while.";
  write_bytes(dir / "text.png", std::vector<uint8_t>(text.begin(), text.end()));
  expect_error([&] { decode_image((dir / "text.png").string()); }, {"text.png"});
  expect_error([&] { decode_image(dir.path().string()); }, {dir.path().string()});  // a directory
  const std::vector<float> tone = test::sine(16000, 0.1, 440, {0.5});
  {
    MediaWriter wav(dir / "tone.wav");
    const int s = wav.add_audio("pcm_s16le", 16000, 1);
    wav.write_audio(s, tone);
    wav.finish();
  }
  expect_error([&] { decode_image((dir / "tone.wav").string()); }, {"tone.wav", "no image"});
}

// Truncations and byte flips must give a g4::Error or a well-formed result, never a crash
// (run under ASan: -DG4_SANITIZE=ON). Returns how many mutations were refused.
template <class Decode>
int mutate_and_decode(const std::vector<uint8_t>& original, const std::vector<size_t>& cuts,
                      int flips, uint32_t seed, Decode&& decode) {
  int refused = 0;
  const auto attempt = [&](const std::vector<uint8_t>& bytes) {
    try {
      decode(bytes);
    } catch (const Error&) {
      ++refused;
    }
  };
  for (size_t cut : cuts) {
    if (cut >= original.size()) continue;
    attempt(std::vector<uint8_t>(original.begin(), original.begin() + cut));
  }
  std::mt19937 rng(seed);
  for (int i = 0; i < flips; ++i) {
    std::vector<uint8_t> bytes = original;
    const int n = 1 + int(rng() % 4);
    for (int k = 0; k < n; ++k) bytes[rng() % bytes.size()] ^= uint8_t(1 + rng() % 255);
    attempt(bytes);
  }
  return refused;
}

TEST(MediaImage, TruncatedOrDamagedImagesFailCleanly) {
  const RgbImage src = noise_image(40, 30, 5);
  const std::vector<uint8_t> png = encode_png(src);
  const size_t n = png.size();
  // Every truncation that cuts into the header or the pixel data must be an error (PIL raises on
  // these too); only the final IEND chunk (12 bytes) may be missing.
  const std::vector<size_t> cuts = {1, 7, 8, 16, 29, 33, 41, 60, n / 3, n / 2, n - 40, n - 13};
  for (size_t cut : cuts) {
    const std::vector<uint8_t> part(png.begin(), png.begin() + cut);
    EXPECT_THROW(decode_image_bytes(part.data(), part.size(), "cut.png"), Error)
        << "cut at " << cut;
  }
  // Byte flips: the chunk CRCs catch them; whatever decodes must be well formed.
  const int refused = mutate_and_decode(png, {}, 60, 1, [](const std::vector<uint8_t>& b) {
    const RgbImage im = decode_image_bytes(b.data(), b.size(), "flipped.png");
    ASSERT_EQ(im.rgb.size(), size_t(im.width) * im.height * 3);
  });
  EXPECT_GE(refused, 55);

  // JPEG, BMP, WebP, GIF-less quick fuzz: no crash, sane output.
  test::FramePtr yuv = test::rgb_to_frame(gradient_image(48, 32), AV_PIX_FMT_YUVJ420P);
  const std::vector<uint8_t> jpeg = test::encode_still(
      "mjpeg", *yuv, {}, [](AVCodecContext* c) { c->color_range = AVCOL_RANGE_JPEG; });
  test::FramePtr bgr = test::rgb_to_frame(src, AV_PIX_FMT_BGR24);
  const std::vector<uint8_t> bmp = test::encode_still("bmp", *bgr);
  for (const auto* bytes : {&jpeg, &bmp}) {
    std::vector<size_t> many_cuts;
    for (size_t c = 1; c < bytes->size(); c += std::max<size_t>(1, bytes->size() / 25))
      many_cuts.push_back(c);
    mutate_and_decode(*bytes, many_cuts, 40, 2, [](const std::vector<uint8_t>& b) {
      const RgbImage im = decode_image_bytes(b.data(), b.size(), "fuzz");
      ASSERT_EQ(im.rgb.size(), size_t(im.width) * im.height * 3);
    });
  }
}

// ---- audio --------------------------------------------------------------------------------------

TEST(MediaAudio, FixtureWavIsExactlyS16Over32768) {
  G4_REQUIRE_FIXTURE("gemma4-tiny/audio.wav");
  G4_REQUIRE_FIXTURE("gemma4-tiny/mm/audio.decoded_samples.f32");
  const fs::path dir = test::fixtures_dir() / "gemma4-tiny";
  const std::vector<float> samples = decode_audio((dir / "audio.wav").string());
  const std::vector<uint8_t> reference =
      test::read_file_bytes(dir / "mm/audio.decoded_samples.f32");
  ASSERT_EQ(samples.size() * sizeof(float), reference.size());
  ASSERT_EQ(samples.size(), 32200u);
  EXPECT_EQ(std::memcmp(samples.data(), reference.data(), reference.size()), 0);
}

TEST(MediaAudio, SixteenKhzMonoPcmIsPassedThroughExactly) {
  TempDir dir;
  // Every s16 value once: -32768 .. 32767 (the writer maps v -> lrint(v * 32767)).
  std::vector<float> ramp;
  for (int v = -32767; v <= 32767; ++v) ramp.push_back(float(v) / 32767.0f);
  {
    MediaWriter wav(dir / "ramp.wav");
    const int s = wav.add_audio("pcm_s16le", 16000, 1);
    wav.write_audio(s, ramp);
    wav.finish();
  }
  const std::vector<uint8_t> bytes = test::read_file_bytes(dir / "ramp.wav");
  const std::vector<float> out = decode_audio_bytes(bytes.data(), bytes.size(), "ramp.wav");
  ASSERT_EQ(out.size(), ramp.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const int expected_s16 = int(i) - 32767;
    ASSERT_EQ(out[i], float(expected_s16) / 32768.0f) << i;
  }
}

struct SineFit {
  double amplitude;      // of the best-fitting sinusoid at the test frequency
  double residual_rms;   // what remains after removing it
  double delay_seconds;  // of that sinusoid relative to sin(2 pi f t), within +-half a period
};

// Least-squares fit of a*sin + b*cos at `frequency` over [begin, end).
SineFit fit_sine(const std::vector<float>& x, size_t begin, size_t end, double frequency) {
  double ss = 0, sc = 0, cc = 0, xs = 0, xc = 0;
  for (size_t i = begin; i < end; ++i) {
    const double w = 2 * std::numbers::pi * frequency * double(i) / kAudioSampleRate;
    const double s = std::sin(w), c = std::cos(w);
    ss += s * s;
    sc += s * c;
    cc += c * c;
    xs += x[i] * s;
    xc += x[i] * c;
  }
  const double det = ss * cc - sc * sc;
  const double a = (xs * cc - xc * sc) / det;
  const double b = (xc * ss - xs * sc) / det;
  double residual = 0;
  for (size_t i = begin; i < end; ++i) {
    const double w = 2 * std::numbers::pi * frequency * double(i) / kAudioSampleRate;
    const double r = x[i] - a * std::sin(w) - b * std::cos(w);
    residual += r * r;
  }
  // a sin(w) + b cos(w) = A sin(w + phi), phi = atan2(b, a): a delay of -phi / (2 pi f)
  const double delay = -std::atan2(b, a) / (2 * std::numbers::pi * frequency);
  return {std::hypot(a, b), std::sqrt(residual / double(end - begin)), delay};
}

struct AudioFormatCase {
  const char* name;
  const char* encoder;
  const char* file;
  int sample_rate;
  int64_t bit_rate;
  double length_tolerance;     // samples at 16 kHz (end padding; see the cases)
  double amplitude_tolerance;  // relative
  double residual_limit;       // rms, for a 0.5-amplitude tone
};

class MediaAudioCodecs : public testing::TestWithParam<AudioFormatCase> {};

// 1 s of a 440 Hz tone at 0.5, stereo, through each codec and container, decoded to 16 kHz mono.
TEST_P(MediaAudioCodecs, ToneSurvivesDecodingResamplingAndDownmix) {
  const AudioFormatCase& c = GetParam();
  REQUIRE_ENCODER(c.encoder);
  TempDir dir;
  const fs::path path = dir / c.file;
  {
    MediaWriter writer(path);
    const int s = writer.add_audio(c.encoder, c.sample_rate, 2, {}, c.bit_rate);
    writer.write_audio(s, test::sine(c.sample_rate, 1.0, 440.0, {0.5, 0.5}));
    writer.finish();
  }
  const std::vector<float> out = decode_audio(path.string());
  EXPECT_NEAR(double(out.size()), 16000.0, c.length_tolerance);
  ASSERT_GT(out.size(), 12000u);
  // 8000 samples = exactly 220 periods of 440 Hz, away from both ends.
  const SineFit fit = fit_sine(out, 2000, 10000, 440.0);
  EXPECT_NEAR(fit.amplitude, 0.5, 0.5 * c.amplitude_tolerance);
  EXPECT_LT(fit.residual_rms, c.residual_limit);
  // Start alignment: encoder priming is removed and the resampler adds no delay (measured: 0.000
  // to 0.002 ms for every codec here).
  EXPECT_NEAR(fit.delay_seconds, 0.0, 1e-4);
  // Nothing is aliased or shifted to another frequency.
  EXPECT_LT(fit_sine(out, 2000, 10000, 1000.0).amplitude, 0.01);
}

INSTANTIATE_TEST_SUITE_P(
    MediaAudio, MediaAudioCodecs,
    testing::Values(
        // lossless: only the resampler (44.1 kHz -> 16 kHz) and s16 quantisation remain
        AudioFormatCase{"wav", "pcm_s16le", "tone.wav", 44100, 0, 2, 0.002, 0.001},
        AudioFormatCase{"flac", "flac", "tone.flac", 44100, 0, 2, 0.002, 0.001},
        // Measured (FFmpeg 5.1): mp3 16000 samples, amplitude 0.485 (LAME's own level, pure tone:
        // residual 3e-5); vorbis 15954 (the last 2.9 ms are lost at the end, start aligned);
        // opus 16000; aac in M4A 16347: FFmpeg's MP4 demuxer trims the encoder's priming
        // (start aligned) but not the padding of the last AAC frame (up to 1024 samples at
        // 44.1 kHz = 372 at 16 kHz), as with the ffmpeg command line.
        AudioFormatCase{"mp3", "libmp3lame", "tone.mp3", 44100, 192000, 40, 0.05, 0.02},
        AudioFormatCase{"vorbis", "libvorbis", "tone.ogg", 44100, 0, 80, 0.03, 0.02},
        AudioFormatCase{"opus", "libopus", "tone.opus", 48000, 128000, 40, 0.03, 0.02},
        AudioFormatCase{"aac", "aac", "tone.m4a", 44100, 192000, 380, 0.03, 0.02}),
    [](const testing::TestParamInfo<AudioFormatCase>& info) {
      return std::string(info.param.name);
    });

TEST(MediaAudio, ChannelsAreAveragedWithEqualWeights) {
  // Three channels (FL, FR, FC): 0.6, 0.3, 0.0 x the tone -> mean 0.3. FFmpeg's default downmix
  // would weight the centre channel differently.
  TempDir dir;
  {
    MediaWriter wav(dir / "three.wav");
    const int s = wav.add_audio("pcm_s16le", 16000, 3);
    wav.write_audio(s, test::sine(16000, 0.5, 440.0, {0.6, 0.3, 0.0}));
    wav.finish();
  }
  const std::vector<float> out = decode_audio((dir / "three.wav").string());
  ASSERT_EQ(out.size(), 8000u);
  EXPECT_NEAR(fit_sine(out, 0, 8000, 440.0).amplitude, 0.3, 1e-4);
}

TEST(MediaAudio, ResamplingKeepsTiming) {
  // Silence for 0.25 s, then a tone: the onset must stay at 0.25 s (4000 samples at 16 kHz).
  TempDir dir;
  std::vector<float> signal(size_t(44100 / 4) * 2, 0.0f);
  const std::vector<float> tone = test::sine(44100, 0.5, 440.0, {0.5, 0.5});
  signal.insert(signal.end(), tone.begin(), tone.end());
  {
    MediaWriter wav(dir / "onset.wav");
    const int s = wav.add_audio("pcm_s16le", 44100, 2);
    wav.write_audio(s, signal);
    wav.finish();
  }
  const std::vector<float> out = decode_audio((dir / "onset.wav").string());
  EXPECT_NEAR(double(out.size()), 0.75 * 16000, 2);
  size_t onset = 0;
  while (onset < out.size() && std::abs(out[onset]) < 0.05f) ++onset;
  EXPECT_NEAR(double(onset), 4000.0, 8.0);  // 0.5 ms
}

TEST(MediaAudio, ErrorsNameTheFileAndTheProblem) {
  TempDir dir;
  expect_error([&] { decode_audio((dir / "missing.wav").string()); }, {"missing.wav"});
  {
    MediaWriter wav(dir / "empty.wav");
    wav.add_audio("pcm_s16le", 16000, 1);
    wav.finish();
  }
  expect_error([&] { decode_audio((dir / "empty.wav").string()); },
               {"empty.wav", "no audio samples"});
  const std::vector<uint8_t> png = encode_png(solid_image(4, 4, 1, 2, 3));
  expect_error([&] { decode_audio_bytes(png.data(), png.size(), "picture.png"); },
               {"picture.png", "no audio stream"});
  // A WAV whose format tag (0xABCD) no decoder knows.
  {
    MediaWriter wav(dir / "tone.wav");
    const int s = wav.add_audio("pcm_s16le", 16000, 1);
    wav.write_audio(s, test::sine(16000, 0.1, 440, {0.5}));
    wav.finish();
  }
  std::vector<uint8_t> odd = test::read_file_bytes(dir / "tone.wav");
  ASSERT_EQ(std::string(odd.begin() + 12, odd.begin() + 16), "fmt ");
  odd[20] = 0xCD;
  odd[21] = 0xAB;
  expect_error([&] { decode_audio_bytes(odd.data(), odd.size(), "odd.wav"); },
               {"odd.wav", "codec"});
  // Longer than the caller's limit.
  expect_error([&] { decode_audio((dir / "tone.wav").string(), 0.05); },
               {"tone.wav", "longer than the limit"});
  EXPECT_EQ(decode_audio((dir / "tone.wav").string(), 0.1).size(), 1600u);
}

TEST(MediaAudio, TruncatedOrDamagedAudioFailsCleanly) {
  TempDir dir;
  const std::vector<float> tone = test::sine(44100, 0.5, 440.0, {0.5, 0.4});
  std::vector<std::string> files = {"a.wav", "a.flac"};
  if (have_encoder("libmp3lame")) files.push_back("a.mp3");
  if (have_encoder("libopus")) files.push_back("a.opus");
  files.push_back("a.m4a");
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    {
      MediaWriter writer(dir / file);
      const char* codec = file == "a.wav"    ? "pcm_s16le"
                          : file == "a.flac" ? "flac"
                          : file == "a.mp3"  ? "libmp3lame"
                          : file == "a.opus" ? "libopus"
                                             : "aac";
      const int rate = file == "a.opus" ? 48000 : 44100;
      const int s = writer.add_audio(codec, rate, 2);
      writer.write_audio(s, file == "a.opus" ? test::sine(48000, 0.5, 440.0, {0.5, 0.4}) : tone);
      writer.finish();
    }
    const std::vector<uint8_t> bytes = test::read_file_bytes(dir / file);
    std::vector<size_t> cuts;
    for (size_t c = 1; c < bytes.size(); c += bytes.size() / 20) cuts.push_back(c);
    mutate_and_decode(bytes, cuts, 30, 3, [&](const std::vector<uint8_t>& b) {
      const std::vector<float> out = decode_audio_bytes(b.data(), b.size(), file);
      ASSERT_FALSE(out.empty());
      ASSERT_LT(out.size(), 16000u * 60);  // never invents minutes of audio
      for (float v : out) ASSERT_TRUE(std::isfinite(v));
    });
    // Cut inside the header: always an error.
    const std::vector<uint8_t> head(bytes.begin(), bytes.begin() + 4);
    EXPECT_THROW(decode_audio_bytes(head.data(), head.size(), file), Error);
  }
}

// ---- video --------------------------------------------------------------------------------------

constexpr int kVideoFrames = 30;
constexpr int kVideoFps = 10;

// Frame i of the generated clips: a solid colour, well separated from every other frame's.
std::array<uint8_t, 3> frame_color(int i) {
  return {uint8_t(16 + 7 * i), uint8_t(230 - 6 * i), uint8_t(i % 2 ? 40 : 200)};
}

// Index of the frame colour closest to the picture's centre pixel.
int classify_frame(const RgbImage& im) {
  const uint8_t* p = &im.rgb[(size_t(im.height / 2) * im.width + im.width / 2) * 3];
  int best = -1;
  double best_d = 1e9;
  for (int i = 0; i < kVideoFrames; ++i) {
    const auto c = frame_color(i);
    const double d = std::abs(p[0] - c[0]) + std::abs(p[1] - c[1]) + std::abs(p[2] - c[2]);
    if (d < best_d) best_d = d, best = i;
  }
  return best_d < 15 ? best : -1;
}

void write_clip(const fs::path& path, const char* video_codec, AVPixelFormat pix_fmt,
                const EncoderOptions& options, const char* audio_codec, int audio_rate) {
  MediaWriter writer(path);
  const int v = writer.add_video(video_codec, 64, 48, kVideoFps, pix_fmt, options);
  const int a = audio_codec ? writer.add_audio(audio_codec, audio_rate, 2) : -1;
  for (int i = 0; i < kVideoFrames; ++i) {
    const auto c = frame_color(i);
    writer.write_video(v, solid_image(64, 48, c[0], c[1], c[2]));
  }
  if (a >= 0) writer.write_audio(a, test::sine(audio_rate, 3.0, 440.0, {0.5, 0.5}));
  writer.finish();
}

TEST(MediaVideo, SampleFrameIndicesMatchTheHfProcessor) {
  // T = 100, n = 32: step 3.125 exactly -> floor(i * 3.125)
  std::vector<int64_t> expected;
  for (int i = 0; i < 32; ++i) expected.push_back(int64_t(i * 25 / 8));
  EXPECT_EQ(sample_frame_indices(100, 25.0, 32, 0), expected);
  // T = 30, n = 8: 3.75 -> 0 3 7 11 15 18 22 26
  EXPECT_EQ(sample_frame_indices(30, 10.0, 8, 0),
            (std::vector<int64_t>{0, 3, 7, 11, 15, 18, 22, 26}));
  // torch quirk: arange(0, 15, 15/13) has 14 elements, the last one rounds to 15 -> dropped.
  EXPECT_EQ(sample_frame_indices(15, 24.0, 13, 0),
            (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13}));
  // More frames asked than exist: every frame (HF raises).
  std::vector<int64_t> all(20);
  for (int i = 0; i < 20; ++i) all[i] = i;
  EXPECT_EQ(sample_frame_indices(20, 24.0, 32, 0), all);
  EXPECT_EQ(sample_frame_indices(1, 24.0, 32, 0), (std::vector<int64_t>{0}));
  // fps mode: int(300 / 30 * 1) = 10 frames, every 30th.
  EXPECT_EQ(sample_frame_indices(300, 30.0, 32, 1.0),
            (std::vector<int64_t>{0, 30, 60, 90, 120, 150, 180, 210, 240, 270}));
  // int(100 / 29.97 * 2) = int(6.67) = 6 -> step 16.67
  EXPECT_EQ(sample_frame_indices(100, 29.97, 32, 2.0),
            (std::vector<int64_t>{0, 16, 33, 50, 66, 83}));
  // fps mode on a very short clip: at least one frame (HF divides by zero).
  EXPECT_EQ(sample_frame_indices(5, 30.0, 32, 1.0), (std::vector<int64_t>{0}));
  // fps above the video's: every frame.
  EXPECT_EQ(sample_frame_indices(4, 2.0, 32, 10.0), (std::vector<int64_t>{0, 1, 2, 3}));
  // Invalid arguments.
  EXPECT_THROW(sample_frame_indices(0, 24.0, 32, 0), Error);
  EXPECT_THROW(sample_frame_indices(10, 24.0, 0, 0), Error);
  EXPECT_THROW(sample_frame_indices(10, 0.0, 32, 1.0), Error);
}

TEST(MediaVideo, SampledIndicesAreIncreasingAndInRange) {
  for (int64_t total : {1, 2, 7, 15, 31, 32, 33, 100, 997, 12345, 1000003}) {
    for (int n : {1, 2, 3, 13, 31, 32, 64}) {
      for (double target_fps : {0.0, 0.5, 2.0}) {
        const std::vector<int64_t> idx = sample_frame_indices(total, 23.976, n, target_fps);
        ASSERT_FALSE(idx.empty());
        EXPECT_EQ(idx.front(), 0);
        for (size_t i = 1; i < idx.size(); ++i) ASSERT_LT(idx[i - 1], idx[i]);
        EXPECT_LT(idx.back(), total);
        if (target_fps == 0) {
          EXPECT_EQ(int64_t(idx.size()), std::min<int64_t>(n, total));
        }
      }
    }
  }
}

TEST(MediaVideo, Mp4H264WithAacSoundtrack) {
  REQUIRE_ENCODER("libx264");
  TempDir dir;
  const fs::path path = dir / "clip.mp4";
  // B-frames on (x264's default), so decode order != presentation order.
  write_clip(path, "libx264", AV_PIX_FMT_YUV420P, {{"crf", "12"}, {"preset", "fast"}}, "aac",
             44100);

  const VideoInfo info = probe_video(path.string());
  EXPECT_EQ(info.video_codec, "h264");
  EXPECT_EQ(info.width, 64);
  EXPECT_EQ(info.height, 48);
  EXPECT_NEAR(info.fps, 10.0, 1e-9);
  EXPECT_EQ(info.frame_count, kVideoFrames);
  EXPECT_NEAR(info.duration_seconds, 3.0, 0.05);
  EXPECT_TRUE(info.has_audio);

  const std::vector<int64_t> wanted = sample_frame_indices(info.frame_count, info.fps, 8, 0);
  const std::vector<VideoFrame> frames = decode_video_frames(path.string(), wanted);
  ASSERT_EQ(frames.size(), wanted.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].index, wanted[i]);
    EXPECT_EQ(classify_frame(frames[i].image), wanted[i]) << "frame " << wanted[i];
    EXPECT_NEAR(frames[i].timestamp_seconds, double(wanted[i]) / kVideoFps, 1e-6);
    EXPECT_EQ(frames[i].image.width, 64);
  }
  // Unsorted, duplicated requests; the last frame.
  const std::vector<VideoFrame> some = decode_video_frames(path.string(), {29, 0, 29, 14});
  ASSERT_EQ(some.size(), 3u);
  EXPECT_EQ(classify_frame(some[0].image), 0);
  EXPECT_EQ(classify_frame(some[1].image), 14);
  EXPECT_EQ(classify_frame(some[2].image), 29);

  const std::vector<float> sound = decode_audio(path.string());
  EXPECT_NEAR(double(sound.size()), 48000.0, 380.0);  // AAC end padding, see MediaAudioCodecs
  EXPECT_NEAR(fit_sine(sound, 8000, 40000, 440.0).amplitude, 0.5, 0.02);

  expect_error([&] { decode_video_frames(path.string(), {30}); },
               {"clip.mp4", "frame 30", "30 decodable frames"});
  expect_error([&] { decode_video_frames(path.string(), {-1}); }, {"clip.mp4", "negative"});
  // The first frame as an image.
  EXPECT_EQ(classify_frame(decode_image(path.string())), 0);
}

TEST(MediaVideo, MatroskaVp9WithOpusCountsFramesByPackets) {
  REQUIRE_ENCODER("libvpx-vp9");
  REQUIRE_ENCODER("libopus");
  TempDir dir;
  const fs::path path = dir / "clip.mkv";
  write_clip(path, "libvpx-vp9", AV_PIX_FMT_YUV420P,
             {{"crf", "10"}, {"b", "0"}, {"deadline", "realtime"}, {"cpu-used", "8"}}, "libopus",
             48000);
  const VideoInfo info = probe_video(path.string());
  EXPECT_EQ(info.video_codec, "vp9");
  EXPECT_EQ(info.frame_count, kVideoFrames);  // Matroska stores no count: packets were counted
  EXPECT_NEAR(info.fps, 10.0, 0.01);
  EXPECT_NEAR(info.duration_seconds, 3.0, 0.1);
  EXPECT_TRUE(info.has_audio);
  const std::vector<int64_t> wanted = sample_frame_indices(info.frame_count, info.fps, 32, 2.0);
  ASSERT_EQ(wanted, (std::vector<int64_t>{0, 5, 10, 15, 20, 25}));
  int delivered = 0;
  for_each_video_frame(path.string(), wanted, [&](VideoFrame&& f) {
    EXPECT_EQ(f.index, wanted[size_t(delivered)]);
    EXPECT_EQ(classify_frame(f.image), f.index);
    ++delivered;
  });
  EXPECT_EQ(delivered, 6);
  const std::vector<float> sound = decode_audio(path.string());
  EXPECT_NEAR(double(sound.size()), 48000.0, 40.0);
}

TEST(MediaVideo, SilentVideoAndNonVideoFiles) {
  TempDir dir;
  const fs::path path = dir / "silent.mkv";
  write_clip(path, "mpeg4", AV_PIX_FMT_YUV420P, {{"qscale", "2"}}, nullptr, 0);
  const VideoInfo info = probe_video(path.string());
  EXPECT_FALSE(info.has_audio);
  EXPECT_EQ(info.frame_count, kVideoFrames);
  EXPECT_EQ(classify_frame(decode_video_frames(path.string(), {17}).at(0).image), 17);
  expect_error([&] { decode_audio(path.string()); }, {"silent.mkv", "no audio stream"});
  {
    MediaWriter wav(dir / "tone.wav");
    const int s = wav.add_audio("pcm_s16le", 16000, 1);
    wav.write_audio(s, test::sine(16000, 0.1, 440, {0.5}));
    wav.finish();
  }
  expect_error([&] { probe_video((dir / "tone.wav").string()); }, {"tone.wav", "no video stream"});
  expect_error([&] { decode_video_frames((dir / "tone.wav").string(), {0}); },
               {"tone.wav", "no video stream"});
  expect_error([&] { probe_video((dir / "nothing.mp4").string()); }, {"nothing.mp4"});
}

TEST(MediaVideo, TruncatedOrDamagedVideoFailsCleanly) {
  REQUIRE_ENCODER("libx264");
  TempDir dir;
  for (const char* file : {"v.mp4", "v.mkv"}) {
    SCOPED_TRACE(file);
    const fs::path path = dir / file;
    write_clip(path, "libx264", AV_PIX_FMT_YUV420P, {{"crf", "20"}, {"preset", "ultrafast"}}, "aac",
               44100);
    const std::vector<uint8_t> bytes = test::read_file_bytes(path);
    std::vector<size_t> cuts;
    for (size_t c = 1; c < bytes.size(); c += bytes.size() / 12) cuts.push_back(c);
    const fs::path mutated = dir / (std::string("m-") + file);
    mutate_and_decode(bytes, cuts, 16, 4, [&](const std::vector<uint8_t>& b) {
      test::write_file_bytes(mutated, b);
      const VideoInfo info = probe_video(mutated.string());
      ASSERT_GE(info.frame_count, 1);
      ASSERT_LE(info.frame_count, 1'000'000);
      const std::vector<int64_t> wanted = sample_frame_indices(info.frame_count, info.fps, 4, 0);
      for (const VideoFrame& f : decode_video_frames(mutated.string(), wanted))
        ASSERT_EQ(f.image.rgb.size(), size_t(f.image.width) * f.image.height * 3);
    });
  }
}

}  // namespace
}  // namespace g4
