// Tests for core/half.h (suite Half*) and the scalar weight-type reference in ops/quant.h
// (suites Quant*): bit-exact dequantization against ggml's to_float (fixtures deq/<variant>.json),
// the reference quantizers against llama-quantize's output and hand-derived blocks, round-trip
// error bounds derived from each format, edge inputs, dot_row_ref's documented order, and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/quant_blocks.h"
#include "ops/quant.h"
#include "random_data.h"
#include "sha256.h"
#include "test_util.h"

namespace g4 {
namespace {

using nlohmann::json;

// ------------------------------------------------------------------------------------------------
// Shared helpers
// ------------------------------------------------------------------------------------------------

const GgmlType kAllTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                              GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                              GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

bool is_plain(GgmlType type) {
  return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
}

int64_t block_size(GgmlType type) {
  return ggml_type_info(type).block_size;
}

// Elements in a "one block" row: the block size, or 32 for the plain types.
int64_t one_block(GgmlType type) {
  return is_plain(type) ? 32 : block_size(type);
}

std::vector<uint8_t> quantize(GgmlType type, const std::vector<float>& x) {
  std::vector<uint8_t> packed(size_t(ggml_row_bytes(type, int64_t(x.size()))));
  quantize_row(type, x.data(), packed.data(), int64_t(x.size()));
  return packed;
}

std::vector<float> dequantize(GgmlType type, const std::vector<uint8_t>& packed, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(type, packed.data(), y.data(), n);
  return y;
}

using test::gaussian;

double relative_rmse(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
    ref += double(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

float fp16_round(float v) {
  return fp16_to_f32(f32_to_fp16(v));
}

std::string type_param_name(const ::testing::TestParamInfo<GgmlType>& info) {
  return ggml_type_name(info.param);
}

// ------------------------------------------------------------------------------------------------
// Half: core/half.h
// ------------------------------------------------------------------------------------------------

// The value of fp16 bits h from the IEEE definition, in double (exact), for finite h.
double fp16_definition(uint16_t h) {
  const int exp = (h >> 10) & 0x1F;
  const int mant = h & 0x3FF;
  const double magnitude =
      exp == 0 ? std::ldexp(double(mant), -24) : std::ldexp(1.0 + mant / 1024.0, exp - 15);
  return (h & 0x8000) ? -magnitude : magnitude;
}

TEST(Half, Fp16ToF32IsExactForEveryValue) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = fp16_to_f32(uint16_t(h));
    const bool negative = h & 0x8000;
    if (((h >> 10) & 0x1F) == 0x1F) {
      if (h & 0x3FF)
        EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      else
        EXPECT_EQ(f, negative ? -INFINITY : INFINITY) << std::hex << h;
      continue;
    }
    ASSERT_EQ(double(f), fp16_definition(uint16_t(h))) << std::hex << h;
    EXPECT_EQ(std::signbit(f), negative) << std::hex << h;  // -0 stays -0
  }
}

TEST(Half, Fp16RoundTripsEveryValue) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = fp16_to_f32(uint16_t(h));
    const uint16_t back = f32_to_fp16(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_f32(back))) << std::hex << h;  // NaN stays NaN
      EXPECT_EQ(back & 0x8000, h & 0x8000) << std::hex << h;
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

// Every midpoint between neighbouring fp16 values rounds to the even one; a float ulp either side
// goes to the nearer neighbour. Covers subnormals, the subnormal/normal boundary and 65504 -> inf.
TEST(Half, Fp16RoundsToNearestTiesToEven) {
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    const double lo = fp16_definition(uint16_t(h));
    const double hi = h + 1 == 0x7C00 ? 65536.0 : fp16_definition(uint16_t(h + 1));
    const float mid = float((lo + hi) / 2);  // 12 significant bits: exact in float
    ASSERT_EQ(double(mid), (lo + hi) / 2);
    const uint16_t even = (h & 1) ? uint16_t(h + 1) : uint16_t(h);
    ASSERT_EQ(f32_to_fp16(mid), even) << std::hex << h;
    ASSERT_EQ(f32_to_fp16(-mid), even | 0x8000) << std::hex << h;
    ASSERT_EQ(f32_to_fp16(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(f32_to_fp16(std::nextafter(mid, INFINITY)), h + 1) << std::hex << h;
  }
  EXPECT_EQ(f32_to_fp16(1e6f), 0x7C00);
  EXPECT_EQ(f32_to_fp16(-1e30f), 0xFC00);
  EXPECT_EQ(f32_to_fp16(std::numeric_limits<float>::max()), 0x7C00);
  EXPECT_EQ(f32_to_fp16(1e-30f), 0x0000);
  EXPECT_EQ(f32_to_fp16(-1e-30f), 0x8000);
}

// Random floats of every magnitude against a brute-force nearest-value oracle.
TEST(Half, Fp16MatchesNearestValueOracle) {
  // Every finite non-negative fp16 value, ascending with the bits; 0x7C00 (inf) stands at 65536,
  // where the next power of two would be, so that 65520 is a tie between 65504 and inf.
  std::vector<double> values;
  for (uint32_t h = 0; h < 0x7C00; ++h) values.push_back(fp16_definition(uint16_t(h)));
  values.push_back(65536.0);
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits_dist;
  for (int trial = 0; trial < 300000; ++trial) {
    // exponents around the fp16 range: 2^-30 .. 2^17
    uint32_t bits = (bits_dist(rng) & 0x807FFFFFu) | ((97 + bits_dist(rng) % 48) << 23);
    const float f = bits_to_f32(bits);
    const double a = std::fabs(double(f));
    uint16_t expected;
    if (a >= 65536.0) {
      expected = 0x7C00;
    } else {
      const size_t up = size_t(std::lower_bound(values.begin(), values.end(), a) - values.begin());
      if (up == 0 || values[up] == a) {
        expected = uint16_t(up);
      } else {
        const double d_lo = a - values[up - 1], d_hi = values[up] - a;
        expected = uint16_t(d_lo < d_hi ? up - 1 : d_hi < d_lo ? up : (up % 2 == 0 ? up : up - 1));
      }
    }
    if (std::signbit(f)) expected |= 0x8000;
    ASSERT_EQ(f32_to_fp16(f), expected) << "bits 0x" << std::hex << bits;
  }
}

TEST(Half, Fp16KeepsNaNAndInfinity) {
  for (uint32_t bits : {0x7F800001u, 0x7FC00000u, 0xFFFFFFFFu, 0x7F80FFFFu}) {
    const uint16_t h = f32_to_fp16(bits_to_f32(bits));
    EXPECT_TRUE(std::isnan(fp16_to_f32(h))) << std::hex << bits;
  }
  EXPECT_EQ(f32_to_fp16(INFINITY), 0x7C00);
  EXPECT_EQ(f32_to_fp16(-INFINITY), 0xFC00);
}

TEST(Half, Bf16RoundTripsEveryValue) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = bf16_to_f32(uint16_t(h));
    ASSERT_EQ(f32_to_bits(f), h << 16);  // bf16 is the top half of a float
    const uint16_t back = f32_to_bf16(f);
    if (std::isnan(f))
      EXPECT_TRUE(std::isnan(bf16_to_f32(back))) << std::hex << h;
    else
      ASSERT_EQ(back, h) << std::hex << h;
  }
}

TEST(Half, Bf16RoundsToNearestTiesToEven) {
  for (uint32_t h = 0; h < 0x7F80; ++h) {  // every finite positive value and its upper neighbour
    for (uint32_t sign : {0u, 0x8000u}) {
      const uint32_t base = (h | sign) << 16;
      const uint16_t even = uint16_t(((h & 1) ? h + 1 : h) | sign);
      ASSERT_EQ(f32_to_bf16(bits_to_f32(base | 0x8000)), even) << std::hex << h;
      ASSERT_EQ(f32_to_bf16(bits_to_f32(base | 0x7FFF)), h | sign) << std::hex << h;
      ASSERT_EQ(f32_to_bf16(bits_to_f32(base | 0x8001)), (h + 1) | sign) << std::hex << h;
    }
  }
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds up to inf
}

TEST(Half, Bf16KeepsNaN) {
  // Signalling NaNs whose payload lives only in the low 16 bits must not truncate to inf.
  for (uint32_t bits : {0x7F800001u, 0xFF800001u, 0x7FFFFFFFu, 0x7FC00000u}) {
    const uint16_t h = f32_to_bf16(bits_to_f32(bits));
    EXPECT_TRUE(std::isnan(bf16_to_f32(h))) << std::hex << bits;
    EXPECT_EQ(h & 0x8000, (bits >> 16) & 0x8000);
  }
}

// ------------------------------------------------------------------------------------------------
// QuantBlocks: core/quant_blocks.h
// ------------------------------------------------------------------------------------------------

TEST(QuantBlocks, SizesMatchTypeTable) {
  auto check = [](auto block) {
    using Block = decltype(block);
    const GgmlTypeInfo& info = ggml_type_info(Block::kType);
    EXPECT_EQ(int64_t(sizeof(Block)), info.block_bytes) << info.name;
    EXPECT_EQ(Block::kElements, info.block_size) << info.name;
  };
  check(BlockQ8_0{});
  check(BlockQ4_0{});
  check(BlockQ4_1{});
  check(BlockQ5_0{});
  check(BlockQ5_1{});
  check(BlockQ4_K{});
  check(BlockQ5_K{});
  check(BlockQ6_K{});
}

TEST(QuantBlocks, ScaleMinPackingRoundTrips) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 2000; ++trial) {
    uint8_t scale[8], min[8], packed[12];
    for (int j = 0; j < 8; ++j) {
      scale[j] = uint8_t(trial == 0 ? 63 : trial == 1 ? 0 : rng() % 64);
      min[j] = uint8_t(trial == 0 ? 0 : trial == 1 ? 63 : rng() % 64);
    }
    pack_scale_min_k4(scale, min, packed);
    for (int j = 0; j < 8; ++j) {
      const ScaleMin sm = unpack_scale_min_k4(j, packed);
      ASSERT_EQ(sm.scale, scale[j]) << "sub-block " << j;
      ASSERT_EQ(sm.min, min[j]) << "sub-block " << j;
    }
  }
  // One hand-checked layout (formats.md §4.2): sub-block 5 has scale 0b110101, min 0b101110.
  uint8_t scale[8] = {}, min[8] = {}, packed[12];
  scale[5] = 0x35;
  min[5] = 0x2E;
  pack_scale_min_k4(scale, min, packed);
  EXPECT_EQ(packed[9], 0xE5);  // low nibbles: scale 0x5 | min 0xE << 4
  EXPECT_EQ(packed[1], 0xC0);  // top two bits of the scale (0b11) in byte 5 - 4
  EXPECT_EQ(packed[5], 0x80);  // top two bits of the min (0b10) in byte 5
}

// ------------------------------------------------------------------------------------------------
// Fixtures: bit-exact dequantization (deq/<variant>.json) and llama-quantize's encodings
// ------------------------------------------------------------------------------------------------

const char* const kVariants[] = {"q4_0", "q4_1",   "q4_k_m", "q5_0",
                                 "q5_1", "q5_k_m", "q6_k",   "q8_0"};

std::vector<uint8_t> read_file_range(const std::filesystem::path& path, uint64_t offset,
                                     uint64_t size) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(std::streamoff(offset));
  std::vector<uint8_t> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(size));
  if (!in) ADD_FAILURE() << "cannot read " << size << " bytes at " << offset << " of " << path;
  return bytes;
}

std::string to_hex(const uint8_t* bytes, size_t size) {
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (size_t i = 0; i < size; ++i) {
    hex += digits[bytes[i] >> 4];
    hex += digits[bytes[i] & 0xF];
  }
  return hex;
}

class QuantFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(QuantFixture, DequantizeIsBitExact) {
  const std::string variant = GetParam();
  G4_REQUIRE_FIXTURE("gemma4-tiny/deq/" + variant + ".json");
  const auto deq_dir = test::fixtures_dir() / "gemma4-tiny" / "deq";
  std::ifstream json_in(deq_dir / (variant + ".json"));
  const json doc = json::parse(json_in);
  const auto gguf_path =
      deq_dir / ".." / std::filesystem::path(doc["file"].get<std::string>()).filename();
  ASSERT_TRUE(std::filesystem::exists(gguf_path)) << gguf_path;
  ASSERT_FALSE(doc["tensors"].empty());

  for (const json& t : doc["tensors"]) {
    const std::string name = t["name"];
    SCOPED_TRACE(variant + " " + name + " " + t["ggml_type"].get<std::string>());
    const GgmlType type = ggml_type_from_name(t["ggml_type"].get<std::string>());
    const int64_t row_len = t["row_len"], n_rows = t["n_rows"];
    const uint64_t n_bytes = t["n_bytes"];
    const int64_t row_bytes = ggml_row_bytes(type, row_len);
    ASSERT_EQ(uint64_t(row_bytes * n_rows), n_bytes);

    const std::vector<uint8_t> raw = read_file_range(gguf_path, t["data_offset_in_file"], n_bytes);
    const std::string first_block_hex = t["first_block_hex"];
    ASSERT_EQ(to_hex(raw.data(), first_block_hex.size() / 2), first_block_hex);

    std::vector<float> y(size_t(row_len * n_rows));
    for (int64_t r = 0; r < n_rows; ++r)
      dequantize_row(type, raw.data() + r * row_bytes, y.data() + r * row_len, row_len);

    // %.9g round-trips a float exactly; going through double cannot double-round here, because a
    // 9-digit decimal is never within a double ulp of a float rounding midpoint.
    for (const auto& [row_key, values] : t["rows"].items()) {
      const int64_t r = std::stoll(row_key);
      ASSERT_EQ(int64_t(values.size()), row_len);
      for (int64_t i = 0; i < row_len; ++i) {
        const float expected = float(values[size_t(i)].get<double>());
        ASSERT_EQ(f32_to_bits(y[size_t(r * row_len + i)]), f32_to_bits(expected))
            << "row " << r << " element " << i;
      }
    }
    double sum = 0.0;
    uint64_t wsum = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      sum += double(y[i]);
      wsum += uint64_t(f32_to_bits(y[i])) * (2 * uint64_t(i) + 1);
    }
    EXPECT_EQ(sum, t["sum_f64_naive"].get<double>());
    EXPECT_EQ(wsum, t["wsum64"].get<uint64_t>());
    EXPECT_EQ(test::sha256_hex(y.data(), y.size() * sizeof(float)),
              t["sha256_f32le"].get<std::string>());
  }
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantFixture, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param); });

// Where each tensor's data is in a GGUF file (formats.md §4.1). A few lines of parsing so these
// tests do not depend on the engine's GGUF reader; bounds-checked, for the fixture files only.
struct TensorLocation {
  GgmlType type;
  std::vector<int64_t> ne;
  uint64_t offset;  // absolute, in the file
};

std::map<std::string, TensorLocation> scan_gguf_tensors(const std::vector<uint8_t>& file) {
  size_t pos = 0;
  auto take = [&](size_t size) {
    if (size > file.size() - pos) throw Error("GGUF scan: truncated file");
    const size_t at = pos;
    pos += size;
    return at;
  };
  auto u32 = [&] {
    uint32_t v;
    std::memcpy(&v, &file[take(4)], 4);
    return v;
  };
  auto u64 = [&] {
    uint64_t v;
    std::memcpy(&v, &file[take(8)], 8);
    return v;
  };
  auto str = [&] {
    const uint64_t n = u64();
    const size_t at = take(n);
    return std::string(file.begin() + long(at), file.begin() + long(at + n));
  };
  std::function<void(uint32_t)> skip_value = [&](uint32_t value_type) {
    static const size_t kSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (value_type == 8) {
      str();
    } else if (value_type == 9) {
      const uint32_t elem_type = u32();
      const uint64_t count = u64();
      for (uint64_t i = 0; i < count; ++i) skip_value(elem_type);
    } else if (value_type < 13) {
      take(kSizes[value_type]);
    } else {
      throw Error("GGUF scan: bad value type");
    }
  };
  if (u32() != 0x46554747u) throw Error("GGUF scan: bad magic");
  u32();  // version
  const uint64_t n_tensors = u64(), n_kv = u64();
  uint64_t alignment = 32;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = str();
    const uint32_t value_type = u32();
    if (key == "general.alignment" && value_type == 4)
      alignment = u32();
    else
      skip_value(value_type);
  }
  std::map<std::string, TensorLocation> tensors;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const std::string name = str();
    TensorLocation loc;
    const uint32_t n_dims = u32();
    for (uint32_t d = 0; d < n_dims; ++d) loc.ne.push_back(int64_t(u64()));
    loc.type = GgmlType(u32());
    loc.offset = u64();
    tensors[name] = loc;
  }
  const uint64_t data_start = (pos + alignment - 1) / alignment * alignment;
  for (auto& [name, loc] : tensors) loc.offset += data_start;
  return tensors;
}

struct QuantizedFile {
  std::vector<uint8_t> f32_file, quant_file;
  std::map<std::string, TensorLocation> f32_tensors, quant_tensors;
};

QuantizedFile load_fixture_pair(const std::string& variant) {
  const auto dir = test::fixtures_dir() / "gemma4-tiny";
  QuantizedFile files;
  files.f32_file = test::read_file_bytes(dir / "text-f32.gguf");
  files.quant_file = test::read_file_bytes(dir / ("text-" + variant + ".gguf"));
  files.f32_tensors = scan_gguf_tensors(files.f32_file);
  files.quant_tensors = scan_gguf_tensors(files.quant_file);
  return files;
}

// The F32 source of every tensor of `type` in the quantized file: name, values, packed bytes.
struct TensorPair {
  std::string name;
  int64_t row_len, n_rows;
  std::vector<float> source;
  std::vector<uint8_t> packed;  // as llama-quantize wrote it
};

std::vector<TensorPair> tensors_of_type(const QuantizedFile& files, GgmlType type) {
  std::vector<TensorPair> pairs;
  for (const auto& [name, loc] : files.quant_tensors) {
    if (loc.type != type) continue;
    const TensorLocation& src = files.f32_tensors.at(name);
    EXPECT_EQ(src.type, GgmlType::F32) << name;
    TensorPair pair{name, loc.ne[0], 1, {}, {}};
    for (size_t d = 1; d < loc.ne.size(); ++d) pair.n_rows *= loc.ne[d];
    const int64_t n = pair.row_len * pair.n_rows;
    const size_t n_bytes = size_t(ggml_row_bytes(type, pair.row_len) * pair.n_rows);
    if (src.offset + uint64_t(n) * 4 > files.f32_file.size() ||
        loc.offset + n_bytes > files.quant_file.size())
      throw Error("fixture tensor out of range: " + name);
    pair.source.resize(size_t(n));
    std::memcpy(pair.source.data(), &files.f32_file[src.offset], size_t(n) * 4);
    pair.packed.assign(files.quant_file.begin() + long(loc.offset),
                       files.quant_file.begin() + long(loc.offset + n_bytes));
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

struct VariantType {
  const char* variant;
  GgmlType type;
};

std::string variant_type_name(const ::testing::TestParamInfo<VariantType>& info) {
  return std::string(info.param.variant) + "_" + ggml_type_name(info.param.type);
}

// llama-quantize (without an importance matrix) uses ggml's reference quantizers for these
// types, so quantizing text-f32.gguf must reproduce the quantized files byte for byte.
class QuantMatchesLlamaQuantize : public ::testing::TestWithParam<VariantType> {};

TEST_P(QuantMatchesLlamaQuantize, EveryTensorByteForByte) {
  const auto [variant, type] = GetParam();
  G4_REQUIRE_FIXTURE(std::string("gemma4-tiny/text-") + variant + ".gguf");
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  const std::vector<TensorPair> pairs = tensors_of_type(load_fixture_pair(variant), type);
  ASSERT_GE(pairs.size(), 41u);  // README: 41 or 42 tensors of the file's main type
  for (const TensorPair& pair : pairs) {
    const int64_t row_bytes = ggml_row_bytes(type, pair.row_len);
    std::vector<uint8_t> mine(pair.packed.size());
    for (int64_t r = 0; r < pair.n_rows; ++r)
      quantize_row(type, pair.source.data() + r * pair.row_len, mine.data() + r * row_bytes,
                   pair.row_len);
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < mine.size(); ++i)
      if (mine[i] != pair.packed[i] && mismatches++ == 0) first = i;
    EXPECT_EQ(mismatches, 0u) << pair.name << ": first differing byte " << first << " (block "
                              << first / size_t(ggml_type_info(type).block_bytes) << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantMatchesLlamaQuantize,
                         ::testing::Values(VariantType{"q8_0", GgmlType::Q8_0},
                                           VariantType{"q4_0", GgmlType::Q4_0},
                                           VariantType{"q4_1", GgmlType::Q4_1},
                                           VariantType{"q5_0", GgmlType::Q5_0},
                                           VariantType{"q5_1", GgmlType::Q5_1}),
                         variant_type_name);

// Our K-quant search against ggml's reference quantizer on the same real (Gaussian) weights:
// relative RMSE of the dequantized tensors, all tensors of the type together.
class QuantKQualityVsLlamaQuantize : public ::testing::TestWithParam<VariantType> {};

TEST_P(QuantKQualityVsLlamaQuantize, RmseNoWorseThanGgml) {
  const auto [variant, type] = GetParam();
  G4_REQUIRE_FIXTURE(std::string("gemma4-tiny/text-") + variant + ".gguf");
  G4_REQUIRE_FIXTURE("gemma4-tiny/text-f32.gguf");
  const std::vector<TensorPair> pairs = tensors_of_type(load_fixture_pair(variant), type);
  ASSERT_GE(pairs.size(), 5u);
  double err_ours = 0, err_ggml = 0, ref = 0;
  for (const TensorPair& pair : pairs) {
    const int64_t n = int64_t(pair.source.size());
    const std::vector<float> ours = dequantize(type, quantize(type, pair.source), n);
    const std::vector<float> ggml = dequantize(type, pair.packed, n);
    for (int64_t i = 0; i < n; ++i) {
      const double x = pair.source[size_t(i)];
      err_ours += (ours[size_t(i)] - x) * (ours[size_t(i)] - x);
      err_ggml += (ggml[size_t(i)] - x) * (ggml[size_t(i)] - x);
      ref += x * x;
    }
  }
  const double ours = std::sqrt(err_ours / ref), ggml = std::sqrt(err_ggml / ref);
  RecordProperty("relative_rmse_ours", std::to_string(ours));
  RecordProperty("relative_rmse_ggml", std::to_string(ggml));
  std::printf("[   info   ] %s on %zu tensors of text-%s: relative RMSE ours %.5f, ggml %.5f\n",
              ggml_type_name(type), pairs.size(), variant, ours, ggml);
  EXPECT_LE(ours, ggml);
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantKQualityVsLlamaQuantize,
                         ::testing::Values(VariantType{"q4_k_m", GgmlType::Q4_K},
                                           VariantType{"q5_k_m", GgmlType::Q5_K},
                                           VariantType{"q6_k", GgmlType::Q6_K}),
                         variant_type_name);

// ------------------------------------------------------------------------------------------------
// QuantRef: hand-derived encodings of ggml's Q8_0 and Q4_0 reference rules (formats.md §4.2)
// ------------------------------------------------------------------------------------------------

// Q8_0: d = amax / 127, q = roundf(x / d): halves round away from zero.
TEST(QuantRef, Q8_0HandMadeBlock) {
  // amax = 127 -> d = 1 exactly, so q is x rounded.
  std::vector<float> x(32, 0.0f);
  const float values[] = {127.0f, -127.0f,     0.5f, -0.5f, 1.5f,    2.5f,
                          -2.5f,  0.49999997f, 3.2f, -3.7f, 100.49f, -0.4f};
  const int expected_q[] = {127, -127, 1, -1, 2, 3, -3, 0, 3, -4, 100, 0};
  std::copy(std::begin(values), std::end(values), x.begin());
  const std::vector<uint8_t> packed = quantize(GgmlType::Q8_0, x);
  const BlockQ8_0 b = load_block<BlockQ8_0>(packed.data(), 0);
  EXPECT_EQ(b.d, 0x3C00);  // fp16 1.0
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], j < 12 ? expected_q[j] : 0) << "element " << j;

  // amax = 12.7 -> d = 0.1f (fp16 0x2E66 = 0.0999755859375); the quantizer divides by the float d,
  // not the fp16 one: 0.73 / 0.1 = 7.3 -> 7 and -12.7 -> -127.
  std::vector<float> y(32, 0.0f);
  y[0] = 12.7f;
  y[1] = -12.7f;
  y[2] = 0.73f;
  y[3] = -0.26f;
  y[31] = 6.36f;
  const BlockQ8_0 c = load_block<BlockQ8_0>(quantize(GgmlType::Q8_0, y).data(), 0);
  EXPECT_EQ(c.d, 0x2E66);
  EXPECT_EQ(c.qs[0], 127);
  EXPECT_EQ(c.qs[1], -127);
  EXPECT_EQ(c.qs[2], 7);
  EXPECT_EQ(c.qs[3], -3);
  EXPECT_EQ(c.qs[31], 64);  // 63.6
  // All zeros: d = 0, and ggml's id = 0 makes every q 0.
  const BlockQ8_0 z =
      load_block<BlockQ8_0>(quantize(GgmlType::Q8_0, std::vector<float>(32)).data(), 0);
  EXPECT_EQ(z.d, 0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(z.qs[j], 0);
}

// Q4_0: max = the signed value of largest |x| (first on ties), d = max / -8,
// q = min(15, trunc(x / d + 8.5)); low nibbles hold elements 0..15, high nibbles 16..31.
TEST(QuantRef, Q4_0HandMadeBlock) {
  // max = -8 -> d = 1, q = trunc(x + 8.5) capped at 15.
  std::vector<float> x(32, 0.0f);
  const float values[] = {-8.0f, 7.0f, 7.9f, 0.0f, 0.5f, -0.5f, 1.49f, -7.6f, 3.0f, -3.2f};
  const int expected_q[] = {0, 15, 15, 8, 9, 8, 9, 0, 11, 5};
  for (int i = 0; i < 10; ++i) x[size_t(i < 5 ? i : 16 + i)] = values[i];  // both halves
  const BlockQ4_0 b = load_block<BlockQ4_0>(quantize(GgmlType::Q4_0, x).data(), 0);
  EXPECT_EQ(b.d, 0x3C00);
  int q[32];
  for (int j = 0; j < 16; ++j) q[j] = b.qs[j] & 0xF, q[j + 16] = b.qs[j] >> 4;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(q[i < 5 ? i : 16 + i], expected_q[i]) << "value " << i;
  for (int j : {5, 6, 15, 16, 17, 18, 19, 20, 31}) EXPECT_EQ(q[j], 8) << "zero element " << j;
  EXPECT_EQ(b.qs[0], uint8_t(0 | 8 << 4));  // element 0 (q 0) with element 16 (zero, q 8)

  // max = +8 -> d = -1: x = 8 maps to q 0 (value 8) and x = -8 would need q 16, capped at 15.
  std::vector<float> y(32, 0.0f);
  y[0] = 8.0f;
  y[1] = -8.0f;
  y[2] = 2.0f;
  const BlockQ4_0 c = load_block<BlockQ4_0>(quantize(GgmlType::Q4_0, y).data(), 0);
  EXPECT_EQ(c.d, 0xBC00);  // fp16 -1
  EXPECT_EQ(c.qs[0] & 0xF, 0);
  EXPECT_EQ(c.qs[1] & 0xF, 15);
  EXPECT_EQ(c.qs[2] & 0xF, 6);  // trunc(-2 + 8.5) = 6

  // Ties on |x|: the first element decides the sign of d.
  std::vector<float> tie(32, 0.0f);
  tie[3] = -4.0f;
  tie[9] = 4.0f;
  EXPECT_EQ(load_block<BlockQ4_0>(quantize(GgmlType::Q4_0, tie).data(), 0).d, 0x3800);  // +0.5
  std::swap(tie[3], tie[9]);
  EXPECT_EQ(load_block<BlockQ4_0>(quantize(GgmlType::Q4_0, tie).data(), 0).d, 0xB800);  // -0.5
}

// ------------------------------------------------------------------------------------------------
// QuantType: per-type properties
// ------------------------------------------------------------------------------------------------

// Checks |y - x| against the largest error the format allows with the scales the encoder chose
// (K-quants) or the scales ggml's rule fixes (the 32-element types), plus float rounding `slack`
// (relative to the block's largest |x|).
void expect_within_format_bound(GgmlType type, const std::vector<float>& x,
                                const std::vector<uint8_t>& packed, const std::vector<float>& y) {
  const int64_t n = int64_t(x.size());
  constexpr double kSlack = 1e-6;
  auto block_amax = [&](int64_t start, int64_t count) {
    double amax = 0;
    for (int64_t i = start; i < start + count; ++i)
      amax = std::max(amax, std::fabs(double(x[size_t(i)])));
    return amax;
  };
  // Error of the nearest level in [lo_level, hi_level] * step - offset: half a step inside the
  // range, the distance to the range's end outside it.
  auto level_bound = [](double xv, double step, double offset, int lo_level, int hi_level) {
    const double a = lo_level * step - offset, b = hi_level * step - offset;
    const double lo = std::min(a, b), hi = std::max(a, b);
    if (xv < lo) return lo - xv;
    if (xv > hi) return xv - hi;
    return std::fabs(step) / 2;
  };
  auto check = [&](int64_t i, double bound, double amax) {
    const double err = std::fabs(double(y[size_t(i)]) - x[size_t(i)]);
    ASSERT_LE(err, bound + kSlack * amax) << ggml_type_name(type) << " element " << i << " x "
                                          << x[size_t(i)] << " y " << y[size_t(i)];
  };
  switch (type) {
    case GgmlType::F32:
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(f32_to_bits(y[size_t(i)]), f32_to_bits(x[size_t(i)]));
      return;
    case GgmlType::F16:  // half an fp16 ulp: 2^-11 relative for normals, 2^-25 for subnormals
      for (int64_t i = 0; i < n; ++i)
        check(i, std::max(std::ldexp(std::fabs(double(x[size_t(i)])), -11), std::ldexp(1.0, -25)),
              0);
      return;
    case GgmlType::BF16:  // half a bf16 ulp: 2^-8 relative
      for (int64_t i = 0; i < n; ++i) check(i, std::ldexp(std::fabs(double(x[size_t(i)])), -8), 0);
      return;
    default:
      break;
  }
  const int64_t bs = block_size(type);
  for (int64_t blk = 0; blk < n / bs; ++blk) {
    const int64_t s = blk * bs;
    const double amax = block_amax(s, bs);
    const float* xb = x.data() + s;
    if (type == GgmlType::Q8_0 || type == GgmlType::Q4_0 || type == GgmlType::Q5_0) {
      // symmetric: d from ggml's rule, levels [-lo, hi] * d; d is stored rounded to fp16
      const int levels = type == GgmlType::Q8_0 ? 127 : type == GgmlType::Q4_0 ? 8 : 16;
      float max = 0;
      for (int64_t i = 0; i < bs; ++i)
        if (std::fabs(xb[i]) > std::fabs(max)) max = xb[i];
      const double d =
          type == GgmlType::Q8_0 ? double(std::fabs(max) / 127.0f) : double(max / -float(levels));
      const double d16 = fp16_round(float(d));
      const int lo = type == GgmlType::Q8_0 ? -127 : -levels,
                hi = type == GgmlType::Q8_0 ? 127 : levels - 1;
      for (int64_t i = 0; i < bs; ++i)
        check(s + i, level_bound(xb[i], d, 0.0, lo, hi) + std::abs(lo) * std::fabs(d - d16), amax);
    } else if (type == GgmlType::Q4_1 || type == GgmlType::Q5_1) {
      const int levels = type == GgmlType::Q4_1 ? 15 : 31;
      const float mn = *std::min_element(xb, xb + bs), mx = *std::max_element(xb, xb + bs);
      const double d = (mx - mn) / float(levels);
      const double fp16_terms =
          levels * std::fabs(d - fp16_round(float(d))) + std::fabs(mn - fp16_round(mn));
      for (int64_t i = 0; i < bs; ++i) check(s + i, d / 2 + fp16_terms, amax);
    } else if (type == GgmlType::Q4_K || type == GgmlType::Q5_K) {
      const int nmax = type == GgmlType::Q4_K ? 15 : 31;
      uint16_t d16, dmin16;
      uint8_t scales[12];
      std::memcpy(&d16, packed.data() + blk * ggml_type_info(type).block_bytes, 2);
      std::memcpy(&dmin16, packed.data() + blk * ggml_type_info(type).block_bytes + 2, 2);
      std::memcpy(scales, packed.data() + blk * ggml_type_info(type).block_bytes + 4, 12);
      for (int64_t i = 0; i < bs; ++i) {
        const ScaleMin sm = unpack_scale_min_k4(int(i / 32), scales);
        const double step = double(fp16_to_f32(d16) * float(sm.scale));
        const double offset = double(fp16_to_f32(dmin16) * float(sm.min));
        check(s + i, level_bound(xb[i], step, offset, 0, nmax), amax);
      }
    } else if (type == GgmlType::Q6_K) {
      const BlockQ6_K b = load_block<BlockQ6_K>(packed.data(), blk);
      for (int64_t i = 0; i < bs; ++i) {
        const double step = double(fp16_to_f32(b.d) * float(b.scales[i / 16]));
        check(s + i, level_bound(xb[i], step, 0.0, -32, 31), amax);
      }
    }
  }
}

class QuantType : public ::testing::TestWithParam<GgmlType> {};

TEST_P(QuantType, RoundTripWithinFormatBound) {
  const GgmlType type = GetParam();
  uint32_t seed = 1;
  for (const int64_t n : {one_block(type), int64_t(4096)}) {
    for (const auto& [mean, sigma] :
         {std::pair{0.0f, 1.0f}, {0.0f, 0.02f}, {0.5f, 1.0f}, {-3.0f, 0.5f}}) {
      SCOPED_TRACE(testing::Message() << "n " << n << " mean " << mean << " sigma " << sigma);
      const std::vector<float> x = gaussian(n, seed++, sigma, mean);
      const std::vector<uint8_t> packed = quantize(type, x);
      expect_within_format_bound(type, x, packed, dequantize(type, packed, n));
    }
  }
}

// Relative RMSE on N(0, 1) data. Limits are the measured values (printed) plus ~3% headroom for
// other standard libraries' normal_distribution; they fail for a real regression.
TEST_P(QuantType, RelativeRmseOnGaussianData) {
  const GgmlType type = GetParam();
  const std::map<GgmlType, double> kLimit = {
      {GgmlType::F32, 0.0},      {GgmlType::F16, 2.15e-4}, {GgmlType::BF16, 1.72e-3},
      {GgmlType::Q8_0, 5.55e-3}, {GgmlType::Q4_0, 0.0885}, {GgmlType::Q4_1, 0.0805},
      {GgmlType::Q5_0, 0.0440},  {GgmlType::Q5_1, 0.0391}, {GgmlType::Q4_K, 0.0721},
      {GgmlType::Q5_K, 0.0357},  {GgmlType::Q6_K, 0.0173}};
  const std::vector<float> x = gaussian(1 << 16, 42, 1.0f, 0.0f);
  const double rmse = relative_rmse(x, dequantize(type, quantize(type, x), int64_t(x.size())));
  std::printf("[   info   ] %s relative RMSE on N(0,1): %.5f\n", ggml_type_name(type), rmse);
  RecordProperty("relative_rmse", std::to_string(rmse));
  EXPECT_LE(rmse, kLimit.at(type));
}

TEST_P(QuantType, ZerosDecodeToZeros) {
  const GgmlType type = GetParam();
  for (const int64_t n : {one_block(type), 8 * one_block(type)}) {
    const std::vector<float> y = dequantize(type, quantize(type, std::vector<float>(size_t(n))), n);
    for (float v : y) ASSERT_EQ(v, 0.0f);
  }
}

// Blocks whose values are all equal (alone, and between ordinary blocks) come back to within
// the fp16 rounding of their scale (bf16 rounding for BF16): 2^-11 relative, doubled for the
// float products; for scales in fp16's subnormal range (c = -0.001) the scale is off by up to
// 2^-25 absolute, times the largest level product a format has (Q6_K: 128 * 32 = 4096).
TEST_P(QuantType, AllEqualBlocks) {
  const GgmlType type = GetParam();
  const int64_t bs = one_block(type);
  for (const float c : {1.0f, -1.0f, 3.7f, -0.001f, 1234.5f, -60000.0f}) {
    std::vector<float> x = gaussian(4 * bs, 5, 1.0f, 0.0f);
    std::fill(x.begin() + bs, x.begin() + 2 * bs, c);
    const std::vector<float> y = dequantize(type, quantize(type, x), 4 * bs);
    const double tolerance =
        std::fabs(c) * (type == GgmlType::BF16 ? 0x1p-8 : 0x1p-10) + 4096 * 0x1p-25;
    for (int64_t i = bs; i < 2 * bs; ++i)
      ASSERT_LE(std::fabs(double(y[size_t(i)]) - c), tolerance) << "c " << c << " element " << i;
  }
}

// The largest magnitude each format can hold: its fp16 scales top out at 65504.
double representable_limit(GgmlType type) {
  switch (type) {
    case GgmlType::Q8_0:
      return 65504.0 * 127;
    case GgmlType::Q4_0:
      return 65504.0 * 8;
    case GgmlType::Q5_0:
      return 65504.0 * 16;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
      return 65504.0;  // the min itself is fp16
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
      return 65504.0 * 63;  // dmin * 63 >= the min
    case GgmlType::Q6_K:
      return 65504.0 * 128 * 32;
    case GgmlType::F16:
      return 65504.0;
    default:
      return double(std::numeric_limits<float>::max());
  }
}

TEST_P(QuantType, HugeValues) {
  const GgmlType type = GetParam();
  const int64_t n = 4 * one_block(type);
  // Gaussian data whose largest |x| is about a quarter of the format's limit: same relative
  // accuracy as unit data (the bound test above, scaled).
  const double target = std::min(representable_limit(type) / 4, 1e30);
  std::vector<float> x = gaussian(n, 9, 1.0f, 0.0f);
  const float amax = std::fabs(*std::max_element(
      x.begin(), x.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }));
  for (float& v : x) v = float(v / amax * target);
  const std::vector<uint8_t> packed = quantize(type, x);
  const std::vector<float> y = dequantize(type, packed, n);
  for (float v : y) ASSERT_TRUE(std::isfinite(v));
  expect_within_format_bound(type, x, packed, y);

  // Beyond the limit a quantized format cannot store the scale: a clear error, not inf.
  if (is_plain(type)) return;
  std::vector<float> too_big(size_t(n), 1.0f);
  too_big[size_t(n / 2)] = 1e30f;
  EXPECT_THROW(quantize(type, too_big), Error);
}

TEST_P(QuantType, TinyValues) {
  const GgmlType type = GetParam();
  const int64_t n = 4 * one_block(type);
  for (const float scale : {1e-30f, 1e-38f, 1e-44f}) {  // the last two are float subnormals
    std::vector<float> x = gaussian(n, 11, 1.0f, 0.0f);
    for (float& v : x) v *= scale;
    const std::vector<float> y = dequantize(type, quantize(type, x), n);
    // The scales underflow fp16, so values may come back as 0 — never as anything larger.
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_TRUE(std::isfinite(y[size_t(i)]));
      ASSERT_LE(std::fabs(y[size_t(i)] - x[size_t(i)]), std::fabs(x[size_t(i)]) + 8 * scale)
          << "scale " << scale << " element " << i;
    }
  }
}

TEST_P(QuantType, NonFiniteInput) {
  const GgmlType type = GetParam();
  const int64_t n = one_block(type);
  for (const float bad : {NAN, INFINITY, -INFINITY}) {
    std::vector<float> x(size_t(n), 0.5f);
    x[3] = bad;
    if (is_plain(type)) {  // stored as is (F16/BF16 keep inf and NaN)
      const std::vector<float> y = dequantize(type, quantize(type, x), n);
      if (std::isnan(bad))
        EXPECT_TRUE(std::isnan(y[3]));
      else
        EXPECT_EQ(y[3], bad);
    } else {
      EXPECT_THROW(quantize(type, x), Error);
    }
  }
}

TEST_P(QuantType, RejectsLengthsThatAreNotWholeBlocks) {
  const GgmlType type = GetParam();
  std::vector<float> x(1024, 0.0f), y(1024);
  std::vector<uint8_t> packed(4096, 0);
  const int64_t bs = block_size(type);
  std::vector<int64_t> bad = {-bs, -1};
  if (bs > 1) bad.insert(bad.end(), {1, bs - 1, bs + 1, 2 * bs + 16});
  for (const int64_t n : bad) {
    EXPECT_THROW(dequantize_row(type, packed.data(), y.data(), n), Error) << n;
    EXPECT_THROW(quantize_row(type, x.data(), packed.data(), n), Error) << n;
    EXPECT_THROW(dot_row_ref(type, packed.data(), x.data(), n), Error) << n;
  }
  // n = 0 is a valid empty row.
  EXPECT_NO_THROW(dequantize_row(type, packed.data(), y.data(), 0));
  EXPECT_EQ(dot_row_ref(type, packed.data(), x.data(), 0), 0.0f);
}

// dot_row_ref follows its documented order exactly (so SIMD kernels have a precise reference) and
// is within float accumulation error of the exact dot of the dequantized row.
TEST_P(QuantType, DotRowRefOrderAndAccuracy) {
  const GgmlType type = GetParam();
  const int64_t bs = one_block(type);
  std::vector<int64_t> lengths = {bs, 3 * bs, 4096};
  if (is_plain(type)) lengths.insert(lengths.end(), {1, 31, 33, 100});  // short last chunk
  uint32_t seed = 100;
  for (const int64_t n : lengths) {
    const std::vector<float> w = gaussian(n, seed++, 1.0f, 0.1f);
    const std::vector<float> x = gaussian(n, seed++, 2.0f, -0.2f);
    const std::vector<uint8_t> row = quantize(type, w);
    const std::vector<float> y = dequantize(type, row, n);
    const float dot = dot_row_ref(type, row.data(), x.data(), n);

    // Documented order: chunks of the block size (32 for plain types), float sums.
    const int64_t chunk = is_plain(type) ? 32 : block_size(type);
    float total = 0.0f;
    for (int64_t start = 0; start < n; start += chunk) {
      float partial = 0.0f;
      for (int64_t j = start; j < std::min(n, start + chunk); ++j)
        partial += y[size_t(j)] * x[size_t(j)];
      total += partial;
    }
    EXPECT_EQ(f32_to_bits(dot), f32_to_bits(total)) << "n " << n;

    // Accuracy: each term passes through at most (chunk - 1) + (n_chunks - 1) additions and one
    // multiplication, each with relative error <= 2^-24 (first order).
    double exact = 0.0, magnitude = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      exact += double(y[size_t(i)]) * x[size_t(i)];
      magnitude += std::fabs(double(y[size_t(i)]) * x[size_t(i)]);
    }
    const double n_chunks = double((n + chunk - 1) / chunk);
    const double bound = (double(std::min(n, chunk)) + n_chunks + 1) * 0x1p-24 * magnitude;
    EXPECT_LE(std::fabs(double(dot) - exact), bound) << "n " << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantType, ::testing::ValuesIn(kAllTypes), type_param_name);

// ------------------------------------------------------------------------------------------------
// QuantErrors: types the engine cannot compute with
// ------------------------------------------------------------------------------------------------

TEST(QuantErrors, UnsupportedTypesThrow) {
  std::vector<float> x(256, 1.0f), y(256);
  std::vector<uint8_t> packed(1024, 0);
  for (const GgmlType type : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q8_K, GgmlType::Q8_1,
                              GgmlType::IQ4_NL, GgmlType::I32, GgmlType::F64, GgmlType(5)}) {
    SCOPED_TRACE(uint32_t(type));
    EXPECT_THROW(dequantize_row(type, packed.data(), y.data(), 256), Error);
    EXPECT_THROW(quantize_row(type, x.data(), packed.data(), 256), Error);
    EXPECT_THROW(dot_row_ref(type, packed.data(), x.data(), 256), Error);
  }
  try {
    dequantize_row(GgmlType::Q2_K, packed.data(), y.data(), 256);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q2_K"), std::string::npos) << e.what();
  }
}

// Arbitrary bytes (any fp16 scale pattern, NaN and inf included) decode without trouble.
TEST(QuantErrors, ArbitraryBytesDecode) {
  std::mt19937 rng(17);
  std::vector<uint8_t> packed(size_t(ggml_row_bytes(GgmlType::Q8_0, 1024)) * 2);
  std::vector<float> y(1024), x(1024, 1.0f);
  for (int trial = 0; trial < 20; ++trial) {
    for (uint8_t& b : packed) b = uint8_t(rng());
    for (const GgmlType type : kAllTypes) {
      dequantize_row(type, packed.data(), y.data(), 512);
      (void)dot_row_ref(type, packed.data(), x.data(), 512);
    }
  }
  SUCCEED();
}

// ------------------------------------------------------------------------------------------------
// QuantSha256: tests/sha256.h on the FIPS 180-4 / NIST test vectors
// ------------------------------------------------------------------------------------------------

TEST(QuantSha256, StandardVectors) {
  EXPECT_EQ(test::sha256_hex("", 0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(test::sha256_hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(test::sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string long_msg =
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmn"
      "opqrsmnopqrstnopqrstu";
  EXPECT_EQ(test::sha256_hex(long_msg.data(), long_msg.size()),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  test::Sha256 million;  // one million 'a', fed in uneven pieces
  const std::string piece(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    const size_t take = std::min(left, piece.size());
    million.update(piece.data(), take);
    left -= take;
  }
  EXPECT_EQ(million.hex_digest(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace g4
