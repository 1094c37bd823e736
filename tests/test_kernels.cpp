// Every SIMD kernel against its scalar twin (ops/kernels.h), on every CPU level this machine runs,
// over odd sizes: one block, many blocks, odd token and row counts, tails. Also the scalar
// quantized tiles against dot_row_ref (their definition), and matmul's tiling against plain dot
// products.
//
// Tolerances: bit-exact where the operations are the same (dequantization, activation
// quantization); elsewhere the summation order differs, so |simd - scalar| <= 1e-5 * sum |terms|
// (float32 rounding of a few hundred to a few thousand additions is ~1e-6 of that sum; a wrong
// block, scale or nibble is ~1e-2 of it or more).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "ops/cpu_features.h"
#include "ops/kernels.h"
#include "ops/matmul.h"
#include "ops/quant.h"
#include "ops/repack.h"
#include "random_data.h"

namespace g4 {
namespace {

const GgmlType kQuantTypes[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                                GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
const GgmlType kAllTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                              GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                              GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

using test::gaussian;

// A rows x cols weight matrix of `type`, quantized from Gaussian values (with an offset so that the
// minimums of Q4_1/Q5_1/Q4_K/Q5_K matter).
struct TestMatrix {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
};

TestMatrix make_matrix(GgmlType type, int64_t rows, int64_t cols, uint32_t seed) {
  TestMatrix m;
  m.w.name = "test";
  m.w.type = type;
  m.w.rows = rows;
  m.w.cols = cols;
  m.w.row_bytes = ggml_row_bytes(type, cols);
  m.bytes.resize(size_t(rows * m.w.row_bytes) + 1);
  std::vector<float> values = gaussian(rows * cols, seed);
  for (size_t i = 0; i < values.size(); ++i) values[i] += 0.3f * float(i % 7) / 7.0f;
  for (int64_t r = 0; r < rows; ++r)
    quantize_row(type, values.data() + r * cols, m.bytes.data() + r * m.w.row_bytes, cols);
  m.w.data = m.bytes.data();
  return m;
}

std::vector<CpuLevel> simd_levels() {
  std::vector<CpuLevel> levels;
  for (CpuLevel l : supported_cpu_levels())
    if (l != CpuLevel::kScalar) levels.push_back(l);
  return levels;
}

bool same_bits_or_both_nan(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || f32_to_bits(a) == f32_to_bits(b);
}

const KernelTable& scalar() {
  return kernel_table(CpuLevel::kScalar);
}

// ---- CPU levels ----

TEST(KernelDispatchTest, ScalarIsAlwaysSupportedAndSelectedLevelIsSupported) {
  const std::vector<CpuLevel> levels = supported_cpu_levels();
  ASSERT_FALSE(levels.empty());
  EXPECT_EQ(levels.front(), CpuLevel::kScalar);
  EXPECT_TRUE(cpu_level_supported(selected_cpu_level()));
  for (CpuLevel l : levels) EXPECT_EQ(kernel_table(l).level, l) << cpu_level_name(l);
#if defined(__x86_64__)
  EXPECT_FALSE(cpu_level_supported(CpuLevel::kNeon));
  EXPECT_THROW(kernel_table(CpuLevel::kNeon), Error);
#endif
#if defined(__aarch64__)
  EXPECT_TRUE(cpu_level_supported(CpuLevel::kNeon));
  EXPECT_FALSE(cpu_level_supported(CpuLevel::kAvx2));
#endif
}

TEST(KernelDispatchTest, EveryTableIsComplete) {
  for (CpuLevel l : supported_cpu_levels()) {
    const KernelTable& k = kernel_table(l);
    EXPECT_TRUE(k.dot_f32 && k.axpy_f32 && k.axpy_rows_f32 && k.axpy_rows_f16 &&
                k.attn_scores_f32 && k.attn_scores_f16 && k.scale_f32 && k.geglu_f32 &&
                k.softcap_f32 && k.quantize_act32 && k.quantize_act256 && k.float_tile)
        << cpu_level_name(l);
    if (l != CpuLevel::kScalar) {  // the scalar reference decodes F16/BF16 rows instead
      EXPECT_NE(k.half_tile[size_t(GgmlType::F16)], nullptr) << cpu_level_name(l);
      EXPECT_NE(k.half_tile[size_t(GgmlType::BF16)], nullptr) << cpu_level_name(l);
    }
    for (GgmlType t : kAllTypes) {
      if (t != GgmlType::F32) {
        EXPECT_NE(k.dequantizer(t), nullptr) << cpu_level_name(l) << " " << ggml_type_name(t);
      }
      EXPECT_EQ(k.quantized_tile(t) != nullptr, act_block_size(t) != 0)
          << cpu_level_name(l) << " " << ggml_type_name(t);
    }
  }
}

// ---- float helpers ----

TEST(KernelFloatTest, DotAxpyScaleMatchScalarOnOddSizes) {
  for (CpuLevel l : simd_levels()) {
    const KernelTable& k = kernel_table(l);
    for (int64_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 256, 1001}) {
      const auto a = gaussian(n, 1), b = gaussian(n, 2);
      double abs_sum = 0;
      for (int64_t i = 0; i < n; ++i) abs_sum += std::abs(double(a[size_t(i)]) * b[size_t(i)]);
      EXPECT_NEAR(k.dot_f32(a.data(), b.data(), n), scalar().dot_f32(a.data(), b.data(), n),
                  1e-6 * abs_sum + 1e-30)
          << cpu_level_name(l) << " n=" << n;

      // axpy and scale touch exactly n elements (a guard element after them stays).
      std::vector<float> y = gaussian(n + 1, 3), y_ref = y;
      k.axpy_f32(0.7f, a.data(), y.data(), n);
      scalar().axpy_f32(0.7f, a.data(), y_ref.data(), n);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(y[size_t(i)], y_ref[size_t(i)], 1e-6f * (1 + std::abs(y_ref[size_t(i)])));
      EXPECT_EQ(y[size_t(n)], y_ref[size_t(n)]);
      k.scale_f32(-1.5f, y.data(), n);
      scalar().scale_f32(-1.5f, y_ref.data(), n);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(y[size_t(i)], y_ref[size_t(i)], 1e-6f * (1 + std::abs(y_ref[size_t(i)])));
      EXPECT_EQ(y[size_t(n)], y_ref[size_t(n)]);
    }
  }
}

// n values as fp16 (rounded from Gaussian ones) and the same values decoded to float.
struct HalfRows {
  std::vector<uint16_t> half;
  std::vector<float> decoded;
};
HalfRows half_rows(int64_t n, uint32_t seed) {
  HalfRows r;
  for (float v : gaussian(n, seed)) {
    r.half.push_back(f32_to_fp16(v));
    r.decoded.push_back(fp16_to_f32(r.half.back()));
  }
  return r;
}

// axpy_rows_f32 is axpy_f32 once per (row, value row) in order, bit for bit on every level (the
// attention results do not change with it), and within float rounding of the scalar reference.
// Attention reads an F16 cache straight from its half floats: axpy_rows_f16 must give the bits
// axpy_rows_f32 gives on the decoded rows (a prompt's values come from this pass as floats, later
// ones from the cache).
TEST(KernelFloatTest, AxpyRowsIsAxpyPerRowInOrderFromFloatOrF16Rows) {
  for (CpuLevel l : supported_cpu_levels()) {
    const KernelTable& k = kernel_table(l);
    for (int rows : {1, 2, 3, 4, 5, 16})
      for (int64_t d : {1, 7, 8, 15, 16, 17, 37, 256, 300})
        for (int64_t n : {0, 1, 5, 33}) {
          const int64_t a_stride = n + 3, x_stride = d + 5, y_stride = d + 2;
          const auto a = gaussian(rows * a_stride, 4);
          const HalfRows x16 = half_rows(std::max<int64_t>(1, n) * x_stride, 5);
          const std::vector<float>& x = x16.decoded;
          const std::vector<float> y0 = gaussian(rows * y_stride, 6);
          std::vector<float> y = y0, y_axpy = y0, y_ref = y0, y16 = y0;
          k.axpy_rows_f32(a.data(), a_stride, rows, x.data(), x_stride, n, y.data(), y_stride, d);
          scalar().axpy_rows_f32(a.data(), a_stride, rows, x.data(), x_stride, n, y_ref.data(),
                                 y_stride, d);
          k.axpy_rows_f16(a.data(), a_stride, rows, x16.half.data(), x_stride, n, y16.data(),
                          y_stride, d);
          for (int h = 0; h < rows; ++h)
            for (int64_t p = 0; p < n; ++p)
              k.axpy_f32(a[size_t(h * a_stride + p)], x.data() + p * x_stride,
                         y_axpy.data() + h * y_stride, d);
          ASSERT_EQ(y, y_axpy) << cpu_level_name(l) << " rows=" << rows << " d=" << d << " n=" << n;
          ASSERT_EQ(y16, y) << "fp16 rows, " << cpu_level_name(l) << " rows=" << rows << " d=" << d
                            << " n=" << n;
          for (size_t i = 0; i < y.size(); ++i) {
            EXPECT_NEAR(y[i], y_ref[i], 1e-5f * (1 + std::abs(y_ref[i]))) << cpu_level_name(l);
            if (int64_t(i) % y_stride >= d) {
              EXPECT_EQ(y[i], y0[i]) << "wrote past the row";
            }
          }
        }
  }
}

// Scores: within float rounding of the scalar reference; each score one chain whatever the call
// (scoring keys and heads one at a time gives the same bits: a row's scores must not depend on how
// its keys were cut into tiles, or prefill and decode would disagree); fp16 keys give the bits of
// their decoded floats; nothing outside the heads x keys block is written.
TEST(KernelFloatTest, AttentionScoresAreOneChainPerScoreOnEveryLevel) {
  for (CpuLevel l : supported_cpu_levels()) {
    const KernelTable& k = kernel_table(l);
    for (int heads : {1, 2, 3, 4, 5, 16})
      for (int64_t d : {1, 7, 15, 16, 17, 40, 256, 512})
        for (int64_t n_keys : {1, 3, 9, 17}) {
          const int64_t q_stride = d + 3, key_stride = d + 1, s_stride = n_keys + 2;
          const auto q = gaussian(heads * q_stride, 7);
          const HalfRows keys = half_rows(n_keys * key_stride, 8);
          const std::vector<float> s0(size_t((heads + 1) * s_stride), 0.25f);
          std::vector<float> s32 = s0, s16 = s0, ref = s0;
          k.attn_scores_f32(q.data(), q_stride, heads, keys.decoded.data(), key_stride, n_keys, d,
                            s32.data(), s_stride);
          k.attn_scores_f16(q.data(), q_stride, heads, keys.half.data(), key_stride, n_keys, d,
                            s16.data(), s_stride);
          scalar().attn_scores_f32(q.data(), q_stride, heads, keys.decoded.data(), key_stride,
                                   n_keys, d, ref.data(), s_stride);
          const std::string where = std::string(cpu_level_name(l)) +
                                    " heads=" + std::to_string(heads) + " d=" + std::to_string(d) +
                                    " keys=" + std::to_string(n_keys);
          ASSERT_EQ(s16, s32) << where;
          for (int h = 0; h <= heads; ++h)
            for (int64_t j = 0; j < s_stride; ++j) {
              const size_t i = size_t(h * s_stride + j);
              if (h == heads || j >= n_keys) {
                EXPECT_EQ(s32[i], 0.25f) << "wrote outside the scores, " << where;
                continue;
              }
              float one = 0.0f;
              k.attn_scores_f32(q.data() + h * q_stride, q_stride, 1,
                                keys.decoded.data() + j * key_stride, key_stride, 1, d, &one, 1);
              ASSERT_TRUE(same_bits_or_both_nan(one, s32[i]))
                  << "score depends on the call, " << where;
              double abs_sum = 0.0;
              for (int64_t e = 0; e < d; ++e)
                abs_sum += std::abs(double(q[size_t(h * q_stride + e)]) *
                                    keys.decoded[size_t(j * key_stride + e)]);
              EXPECT_NEAR(s32[i], ref[i], 1e-5 * abs_sum) << where;
            }
        }
  }
}

TEST(KernelFloatTest, TanhOpsMatchScalarWithinFloatRounding) {
  // Values across the range that matters (logits up to ~+-60 before the cap of 30, GELU inputs up
  // to ~+-20) plus extremes, zeros and tiny values; odd lengths for the tails.
  std::vector<float> x = gaussian(1001, 9, 8.0f);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-8f, 3e-4f, 88.0f, -200.0f, 1e4f, -1e30f}) x.push_back(v);
  const std::vector<float> up = gaussian(int64_t(x.size()), 10);
  for (CpuLevel l : simd_levels()) {
    const KernelTable& k = kernel_table(l);
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(9), int64_t(x.size())}) {
      std::vector<float> a(x.begin(), x.begin() + n), b = a;
      k.softcap_f32(a.data(), n, 30.0f);
      scalar().softcap_f32(b.data(), n, 30.0f);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(a[size_t(i)], b[size_t(i)], 30.0f * 4e-7f)
            << cpu_level_name(l) << " x=" << x[size_t(i)];
      std::vector<float> g(x.begin(), x.begin() + n), h = g;
      k.geglu_f32(g.data(), up.data(), n);
      scalar().geglu_f32(h.data(), up.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        // gelu = 0.5 x (1 + tanh(...)): a tanh error e moves it by 0.5 |x| e.
        const float tol = 0.5f * std::abs(x[size_t(i)] * up[size_t(i)]) * 4e-7f +
                          1e-6f * std::abs(h[size_t(i)]) + 1e-30f;
        EXPECT_NEAR(g[size_t(i)], h[size_t(i)], tol) << cpu_level_name(l) << " x=" << x[size_t(i)];
      }
    }
  }
}

// The F16/BF16 tiles read the rows as they are stored; they must give what the same level's float
// tile gives on the rows decoded to float, bit for bit (matmul's decode step relies on it: the
// precise and fast results of an F16 model do not depend on which of the two ran). Odd lengths,
// strides and row and token counts; values that are not exact in bf16 or fp16 included.
TEST(KernelFloatTest, HalfTilesAreTheFloatTileOnDecodedRowsBitForBit) {
  for (CpuLevel l : simd_levels()) {
    const KernelTable& k = kernel_table(l);
    for (GgmlType type : {GgmlType::F16, GgmlType::BF16}) {
      const HalfTileFn half = k.half_tile[size_t(type)];
      ASSERT_NE(half, nullptr) << cpu_level_name(l);
      for (int64_t len : {1, 5, 8, 15, 16, 17, 33, 100, 257}) {
        const int64_t ws = len + 3, xs = len + 5, ys = 11;
        std::vector<uint8_t> stored(size_t(kTileRows * ggml_row_bytes(type, ws)));
        quantize_row(type, gaussian(kTileRows * ws, 6).data(), stored.data(), kTileRows * ws);
        std::vector<float> decoded(size_t(kTileRows * ws));
        dequantize_row(type, stored.data(), decoded.data(), kTileRows * ws);
        const auto x = gaussian(kTileTokens * xs, 7);
        const auto* rows = reinterpret_cast<const uint16_t*>(stored.data());
        for (int n_rows = 1; n_rows <= kTileRows; ++n_rows)
          for (int tokens = 1; tokens <= kTileTokens; ++tokens)
            for (bool accumulate : {false, true}) {
              std::vector<float> y(size_t(kTileTokens * ys), 0.5f), y_ref = y;
              half(rows, ws, n_rows, x.data(), xs, tokens, len, y.data(), ys, accumulate);
              k.float_tile(decoded.data(), ws, n_rows, x.data(), xs, tokens, len, y_ref.data(), ys,
                           accumulate);
              for (size_t i = 0; i < y.size(); ++i)
                ASSERT_TRUE(same_bits_or_both_nan(y[i], y_ref[i]))
                    << cpu_level_name(l) << " " << ggml_type_name(type) << " len=" << len
                    << " rows=" << n_rows << " tokens=" << tokens << " at " << i << ": " << y[i]
                    << " vs " << y_ref[i];
            }
      }
    }
  }
}

TEST(KernelFloatTest, FloatTileMatchesScalarOnOddShapes) {
  for (CpuLevel l : simd_levels()) {
    const KernelTable& k = kernel_table(l);
    for (int64_t len : {1, 7, 8, 9, 33, 100, 257}) {
      const int64_t ws = len + 3, xs = len + 5, ys = 11;
      const auto w = gaussian(kTileRows * ws, 4), x = gaussian(kTileTokens * xs, 5);
      for (int rows = 1; rows <= kTileRows; ++rows)
        for (int tokens = 1; tokens <= kTileTokens; ++tokens)
          for (bool accumulate : {false, true}) {
            std::vector<float> y(size_t(kTileTokens * ys), 0.5f), y_ref = y;
            k.float_tile(w.data(), ws, rows, x.data(), xs, tokens, len, y.data(), ys, accumulate);
            scalar().float_tile(w.data(), ws, rows, x.data(), xs, tokens, len, y_ref.data(), ys,
                                accumulate);
            for (int t = 0; t < kTileTokens; ++t)
              for (int r = 0; r < ys; ++r) {
                const size_t i = size_t(t * ys + r);
                if (t >= tokens || r >= rows) {
                  EXPECT_EQ(y[i], 0.5f) << "wrote outside the tile";
                  continue;
                }
                double abs_sum = accumulate ? 0.5 : 0.0;
                for (int64_t j = 0; j < len; ++j)
                  abs_sum += std::abs(double(w[size_t(r * ws + j)]) * x[size_t(t * xs + j)]);
                EXPECT_NEAR(y[i], y_ref[i], 1e-5 * abs_sum)
                    << cpu_level_name(l) << " len=" << len << " rows=" << rows
                    << " tokens=" << tokens;
              }
          }
    }
  }
}

// ---- dequantization ----

TEST(KernelDequantTest, BitExactToReferenceOnQuantizedAndArbitraryBytes) {
  std::mt19937 rng(7);
  for (CpuLevel l : supported_cpu_levels()) {
    const KernelTable& k = kernel_table(l);
    for (GgmlType type : kAllTypes) {
      if (type == GgmlType::F32) continue;
      const int64_t block = ggml_type_info(type).block_size;
      for (int64_t n_blocks : {1, 2, 3, 9, 33}) {
        const int64_t n =
            block == 1 ? n_blocks * 7 + 2 : n_blocks * block;  // odd plain lengths too
        std::vector<uint8_t> bytes(size_t(ggml_row_bytes(type, n)));
        for (int variant = 0; variant < 2; ++variant) {
          if (variant == 0) {
            const auto v = gaussian(n, uint32_t(n_blocks), 2.0f);
            quantize_row(type, v.data(), bytes.data(), n);
          } else {
            for (uint8_t& b : bytes)
              b = uint8_t(rng());  // any bytes decode (scales may be inf/NaN)
          }
          std::vector<float> got(static_cast<size_t>(n) + 1, -7.0f), want(static_cast<size_t>(n));
          k.dequantizer(type)(bytes.data(), got.data(), n);
          dequantize_row(type, bytes.data(), want.data(), n);
          int mismatches = 0;
          for (int64_t i = 0; i < n; ++i)
            mismatches += !same_bits_or_both_nan(got[size_t(i)], want[size_t(i)]);
          EXPECT_EQ(mismatches, 0) << cpu_level_name(l) << " " << ggml_type_name(type) << " n=" << n
                                   << " variant=" << variant;
          EXPECT_EQ(got[size_t(n)], -7.0f) << "wrote past the end";
        }
      }
    }
  }
}

// ---- activation quantization ----

struct QuantizedActs {
  std::vector<int8_t> q;
  std::vector<float> d, dsum;
  std::vector<int32_t> qsum;
  std::vector<int16_t> bsum;
};

QuantizedActs quantize_acts(const KernelTable& k, int block, const float* x, int64_t n) {
  QuantizedActs a;
  a.q.resize(size_t(n));
  a.d.resize(size_t(n / block));
  if (block == 32) {
    a.dsum.resize(size_t(n / 32));
    a.qsum.resize(size_t(n / 32));
    k.quantize_act32(x, n, a.q.data(), a.d.data(), a.dsum.data(), a.qsum.data());
  } else {
    a.bsum.resize(size_t(n / 16));
    k.quantize_act256(x, n, a.q.data(), a.d.data(), a.bsum.data());
  }
  return a;
}

TEST(KernelActQuantTest, MatchesScalarBitForBitAndStaysWithinHalfAStep) {
  for (int block : {32, 256}) {
    for (int64_t n_blocks : {1, 2, 5}) {
      const int64_t n = n_blocks * block;
      std::vector<float> x = gaussian(n, 11, 3.0f);
      x[0] = 0.0f;
      if (n_blocks > 1)
        std::fill(x.begin() + block, x.begin() + 2 * block, 0.0f);  // an all-zero block
      const QuantizedActs ref = quantize_acts(scalar(), block, x.data(), n);
      // Reference semantics: |x - d q| <= d / 2, sums are the sums of the codes.
      for (int64_t i = 0; i < n; ++i) {
        const float d = ref.d[size_t(i / block)];
        EXPECT_LE(std::abs(x[size_t(i)] - d * ref.q[size_t(i)]), 0.5f * d * 1.0001f + 1e-30f);
      }
      for (int64_t b = 0; b < n / 16 && block == 256; ++b) {
        int sum = 0;
        for (int j = 0; j < 16; ++j) sum += ref.q[size_t(16 * b + j)];
        EXPECT_EQ(ref.bsum[size_t(b)], sum);
      }
      for (int64_t b = 0; b < n / 32 && block == 32; ++b) {
        int sum = 0;
        for (int j = 0; j < 32; ++j) sum += ref.q[size_t(32 * b + j)];
        EXPECT_EQ(ref.qsum[size_t(b)], sum);
        EXPECT_EQ(ref.dsum[size_t(b)], ref.d[size_t(b)] * float(sum));
      }
      for (CpuLevel l : simd_levels()) {
        const QuantizedActs got = quantize_acts(kernel_table(l), block, x.data(), n);
        EXPECT_EQ(got.q, ref.q) << cpu_level_name(l) << " block " << block;
        EXPECT_EQ(got.d, ref.d) << cpu_level_name(l);
        EXPECT_EQ(got.dsum, ref.dsum) << cpu_level_name(l);
        EXPECT_EQ(got.qsum, ref.qsum) << cpu_level_name(l);
        EXPECT_EQ(got.bsum, ref.bsum) << cpu_level_name(l);
      }
    }
  }
}

// ---- quantized tiles ----

ActView view_of(const QuantizedActs& a, int block, int64_t n) {
  ActView v;
  v.q = a.q.data();
  v.q_stride = n;
  v.d = a.d.data();
  v.d_stride = n / block;
  if (block == 32) {
    v.dsum = a.dsum.data();
    v.qsum = a.qsum.data();
  }
  if (block == 256) {
    v.bsum = a.bsum.data();
    v.bsum_stride = n / 16;
  }
  return v;
}

// Up to this many activation rows per quantized tile call in the tests (a tile takes any number:
// groups of 4 and a tail).
constexpr int kTestTokens = 9;

// kTestTokens activation rows of n values, quantized as one buffer per token.
struct TileInputs {
  std::vector<float> x;  // [token][n]
  QuantizedActs acts;
};

// Activations x ([token][n], kTestTokens tokens) quantized by table k.
TileInputs tile_inputs_of(const KernelTable& k, int block, int64_t n, std::vector<float> x) {
  TileInputs in;
  in.x = std::move(x);
  in.acts.q.resize(size_t(kTestTokens * n));
  in.acts.d.resize(size_t(kTestTokens * n / block));
  if (block == 32) {
    in.acts.dsum.resize(size_t(kTestTokens * n / 32));
    in.acts.qsum.resize(size_t(kTestTokens * n / 32));
  }
  if (block == 256) in.acts.bsum.resize(size_t(kTestTokens * n / 16));
  for (int t = 0; t < kTestTokens; ++t) {
    const QuantizedActs one = quantize_acts(k, block, in.x.data() + t * n, n);
    std::copy(one.q.begin(), one.q.end(), in.acts.q.begin() + t * n);
    std::copy(one.d.begin(), one.d.end(), in.acts.d.begin() + t * (n / block));
    std::copy(one.dsum.begin(), one.dsum.end(),
              in.acts.dsum.begin() + t * (n / 32) * (block == 32));
    std::copy(one.qsum.begin(), one.qsum.end(),
              in.acts.qsum.begin() + t * (n / 32) * (block == 32));
    std::copy(one.bsum.begin(), one.bsum.end(),
              in.acts.bsum.begin() + t * (n / 16) * (block == 256));
  }
  return in;
}

TileInputs tile_inputs(const KernelTable& k, int block, int64_t n, uint32_t seed) {
  return tile_inputs_of(k, block, n, gaussian(kTestTokens * n, seed));
}

// Whether byte `at` of a block of `type` belongs to its fp16 scales (d, and dmin or m).
bool is_fp16_scale_byte(GgmlType type, int64_t at) {
  if (type == GgmlType::Q6_K) return at >= 208;
  const bool two = type == GgmlType::Q4_1 || type == GgmlType::Q5_1 || type == GgmlType::Q4_K ||
                   type == GgmlType::Q5_K;
  return at < (two ? 4 : 2);
}

// sum_i |dequant(w)_i * d_x q_x,i| for row r and token t: the scale of the rounding error.
double abs_dot(GgmlType type, const uint8_t* row, const ActView& a, int block, int t, int64_t n) {
  std::vector<float> w(static_cast<size_t>(n));
  dequantize_row(type, row, w.data(), n);
  double s = 0;
  for (int64_t i = 0; i < n; ++i)
    s += std::abs(double(w[size_t(i)]) * a.d[t * a.d_stride + i / block] * a.q[t * a.q_stride + i]);
  return s;
}

TEST(KernelQuantTileTest, ScalarTileEqualsDotOfDequantizedValues) {
  // The scalar integer tile is defined as dot_row_ref against the dequantized activations.
  for (GgmlType type : kQuantTypes) {
    const int block = act_block_size(type);
    const int64_t n = block * 3;
    const TestMatrix m = make_matrix(type, kQuantTileRows, n, 21);
    const TileInputs in = tile_inputs(scalar(), block, n, 22);
    const ActView a = view_of(in.acts, block, n);
    std::vector<float> y(size_t(kTestTokens * kQuantTileRows));
    scalar().quantized_tile(type)(m.w.data, m.w.row_bytes, kQuantTileRows, a, kTestTokens,
                                  n / block, y.data(), kQuantTileRows, false);
    for (int t = 0; t < kTestTokens; ++t) {
      std::vector<float> xd(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        xd[size_t(i)] = a.d[t * a.d_stride + i / block] * float(a.q[t * a.q_stride + i]);
      for (int r = 0; r < kQuantTileRows; ++r) {
        const float want = dot_row_ref(type, m.w.row(r), xd.data(), n);
        EXPECT_NEAR(y[size_t(t * kQuantTileRows + r)], want,
                    1e-5 * abs_dot(type, m.w.row(r), a, block, t, n))
            << ggml_type_name(type) << " r=" << r << " t=" << t;
      }
    }
  }
}

TEST(KernelQuantTileTest, SimdTilesMatchScalarOnOddShapes) {
  for (CpuLevel l : simd_levels()) {
    const KernelTable& k = kernel_table(l);
    for (GgmlType type : kQuantTypes) {
      const int block = act_block_size(type);
      for (int64_t n_blocks : {1, 2, 3, 9, 64, 65, 130, 600}) {  // 600 > one 512-block pass
        if (block == 256 && n_blocks > 9 && n_blocks != 65)
          continue;  // 65 > one 64-super-block pass
        if (block == 32 && n_blocks == 65) continue;
        const int64_t n = n_blocks * block;
        const TestMatrix m = make_matrix(type, kQuantTileRows, n, uint32_t(31 + n_blocks));
        const TileInputs in = tile_inputs(scalar(), block, n, uint32_t(32 + n_blocks));
        const ActView a = view_of(in.acts, block, n);
        const int64_t ys = kQuantTileRows + 3;
        for (int rows = 1; rows <= kQuantTileRows; ++rows)
          for (int tokens = 1; tokens <= kTestTokens; ++tokens)
            for (bool accumulate : {false, true}) {
              std::vector<float> y(size_t(kTestTokens * ys), 0.25f), y_ref = y;
              k.quantized_tile(type)(m.w.data, m.w.row_bytes, rows, a, tokens, n_blocks, y.data(),
                                     ys, accumulate);
              scalar().quantized_tile(type)(m.w.data, m.w.row_bytes, rows, a, tokens, n_blocks,
                                            y_ref.data(), ys, accumulate);
              for (int t = 0; t < kTestTokens; ++t)
                for (int r = 0; r < ys; ++r) {
                  const size_t i = size_t(t * ys + r);
                  if (t >= tokens || r >= rows) {
                    ASSERT_EQ(y[i], 0.25f) << "wrote outside the tile";
                    continue;
                  }
                  const double tol = 1e-5 * (abs_dot(type, m.w.row(r), a, block, t, n) +
                                             (accumulate ? 0.25 : 0.0));
                  ASSERT_NEAR(y[i], y_ref[i], tol)
                      << cpu_level_name(l) << " " << ggml_type_name(type) << " blocks=" << n_blocks
                      << " rows=" << rows << " tokens=" << tokens << " r=" << r << " t=" << t;
                }
            }
      }
    }
  }
}

// ---- matmul: tiling, panels, threads ----

struct MatmulCase {
  int64_t rows, cols, tokens;
};

// y_ref[t][r] = dot_row_ref(W row r, x_t) and the error scale sum |w x|.
void reference_matmul(const WeightMatrix& w, const std::vector<float>& x, int64_t xs,
                      int64_t tokens, std::vector<double>& y_ref, std::vector<double>& scale) {
  y_ref.assign(size_t(tokens * w.rows), 0);
  scale.assign(size_t(tokens * w.rows), 0);
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w.type, w.row(r), row.data(), w.cols);
    for (int64_t t = 0; t < tokens; ++t) {
      y_ref[size_t(t * w.rows + r)] = dot_row_ref(w.type, w.row(r), x.data() + t * xs, w.cols);
      for (int64_t i = 0; i < w.cols; ++i)
        scale[size_t(t * w.rows + r)] += std::abs(double(row[size_t(i)]) * x[size_t(t * xs + i)]);
    }
  }
}

TEST(KernelMatmulTest, PreciseModeMatchesDotRowRefOnEveryLevel) {
  ThreadPool pool(3);
  const MatmulCase cases[] = {{1, 256, 1}, {5, 512, 3}, {13, 256, 9}, {6, 3072, 37}, {9, 768, 4}};
  for (GgmlType type : kAllTypes) {
    for (const MatmulCase& c : cases) {
      const TestMatrix m = make_matrix(type, c.rows, c.cols, 41);
      const int64_t xs = c.cols + 8, ys = c.rows + 2;
      const auto x = gaussian(c.tokens * xs, 42);
      std::vector<double> y_ref, scale;
      reference_matmul(m.w, x, xs, c.tokens, y_ref, scale);
      for (CpuLevel l : supported_cpu_levels()) {
        std::vector<float> y(size_t(c.tokens * ys), 99.0f);
        matmul(kernel_table(l), m.w, x.data(), xs, c.tokens, y.data(), ys, pool,
               MatmulMode::kPrecise);
        for (int64_t t = 0; t < c.tokens; ++t) {
          for (int64_t r = 0; r < c.rows; ++r)
            ASSERT_NEAR(y[size_t(t * ys + r)], y_ref[size_t(t * c.rows + r)],
                        1e-5 * scale[size_t(t * c.rows + r)])
                << cpu_level_name(l) << " " << ggml_type_name(type) << " " << c.rows << "x"
                << c.cols << " tokens " << c.tokens << " r=" << r << " t=" << t;
          EXPECT_EQ(y[size_t(t * ys + c.rows)], 99.0f) << "wrote past the row";
        }
      }
    }
  }
}

TEST(KernelMatmulTest, FastModeAgreesAcrossLevelsAndIsWithinActivationRounding) {
  ThreadPool pool(2);
  // 7168 columns with 37 tokens: two panels of activations (kActPanelBytes / 37 rows).
  const MatmulCase cases[] = {{1, 256, 1}, {7, 512, 1}, {5, 768, 5}, {13, 256, 9}, {3, 7168, 37}};
  for (GgmlType type : kAllTypes) {
    for (const MatmulCase& c : cases) {
      const TestMatrix m = make_matrix(type, c.rows, c.cols, 51);
      const int64_t xs = c.cols, ys = c.rows;
      const auto x = gaussian(c.tokens * xs, 52);
      std::vector<double> y_exact, scale;
      reference_matmul(m.w, x, xs, c.tokens, y_exact, scale);
      std::vector<float> y_scalar(size_t(c.tokens * ys));
      matmul(scalar(), m.w, x.data(), xs, c.tokens, y_scalar.data(), ys, pool, MatmulMode::kFast);
      for (size_t i = 0; i < y_scalar.size(); ++i) {
        // int8 activations: each |x - d q| <= max|x| / 254 of its block, so the result moves by at
        // most ~1/254 of sum |w| max|x|; a few percent of sum |w x| on Gaussian data.
        EXPECT_NEAR(y_scalar[i], y_exact[i], 0.05 * scale[i]) << ggml_type_name(type) << " i=" << i;
        if (act_block_size(type) == 0) {
          EXPECT_NEAR(y_scalar[i], y_exact[i], 1e-5 * scale[i]);  // float path
        }
      }
      for (CpuLevel l : simd_levels()) {
        std::vector<float> y(size_t(c.tokens * ys));
        matmul(kernel_table(l), m.w, x.data(), xs, c.tokens, y.data(), ys, pool, MatmulMode::kFast);
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_NEAR(y[i], y_scalar[i], 1e-5 * scale[i] * 1.1)
              << cpu_level_name(l) << " " << ggml_type_name(type) << " " << c.rows << "x" << c.cols
              << " tokens " << c.tokens << " i=" << i;
      }
    }
  }
}

// ---- interleaved weights (ops/repack.h) ----

// The interleaved copy of a plain matrix in groups of `group_rows` rows (rows a multiple of it),
// as the model loader makes it.
TestMatrix interleaved(const TestMatrix& plain, int group_rows) {
  TestMatrix m;
  m.w = plain.w;
  m.bytes.assign(plain.bytes.size(), 0xEE);
  interleave_groups(plain.w, group_rows, 0, plain.w.rows / group_rows, m.bytes.data());
  m.w.data = m.bytes.data();
  m.w.interleaved_rows = group_rows;
  return m;
}

// The matrix as table k multiplies it: interleaved where k has an interleaved tile for its type
// and the rows make whole groups.
TestMatrix interleaved_if(const KernelTable& k, const TestMatrix& plain) {
  if (const int group_rows = interleave_rows(k, plain.w)) return interleaved(plain, group_rows);
  TestMatrix copy = plain;
  copy.w.data = copy.bytes.data();  // its own bytes: the copy may outlive `plain`
  return copy;
}

// Rows [first, first + n) of a plain matrix as a matrix of their own.
TestMatrix row_range(const TestMatrix& plain, int64_t first, int64_t n) {
  TestMatrix m;
  m.w = plain.w;
  m.w.rows = n;
  m.bytes.assign(plain.bytes.begin() + first * plain.w.row_bytes,
                 plain.bytes.begin() + (first + n) * plain.w.row_bytes);
  m.w.data = m.bytes.data();
  return m;
}

TEST(KernelInterleaveTest, RowsReadBackBitExactFromEveryBlockRange) {
  // Every type with an interleaved layout (repack.cpp), on any level.
  for (GgmlType type :
       {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const int64_t block = ggml_type_info(type).block_size, bb = ggml_type_info(type).block_bytes;
    const int64_t panel = kInterleavePanelColumns / block;  // blocks per column panel
    // Rows within one panel, and rows over two full panels and a narrower third.
    for (int64_t nb : {int64_t(7), 2 * panel + 3})
      for (int group_rows : {8, 16}) {
        const TestMatrix plain = make_matrix(type, 16, block * nb, uint32_t(61 + nb));
        const TestMatrix il = interleaved(plain, group_rows);
        EXPECT_NE(std::memcmp(il.bytes.data(), plain.bytes.data(), size_t(16 * plain.w.row_bytes)),
                  0);
        const auto matrix_end = [&](const TestMatrix& m) {
          return m.bytes.begin() + 16 * m.w.row_bytes;
        };
        std::vector<uint8_t> sorted_il(il.bytes.begin(), matrix_end(il)),
            sorted_plain(plain.bytes.begin(), matrix_end(plain));  // the same bytes, reordered
        std::sort(sorted_il.begin(), sorted_il.end());
        std::sort(sorted_plain.begin(), sorted_plain.end());
        EXPECT_EQ(sorted_il, sorted_plain) << ggml_type_name(type) << ": not a reordering";
        for (int64_t r = 0; r < 16; ++r)
          for (int64_t b0 : {int64_t(0), int64_t(3), panel - 1, nb - 1})
            for (int64_t n : {int64_t(1), int64_t(3), nb - b0}) {
              if (b0 >= nb || n < 1 || b0 + n > nb) continue;
              std::vector<uint8_t> got(size_t(n * bb)), want(size_t(n * bb));
              copy_row_blocks(il.w, r, b0, n, got.data());
              copy_row_blocks(plain.w, r, b0, n, want.data());
              ASSERT_EQ(got, want) << ggml_type_name(type) << " row " << r << " blocks " << b0
                                   << "+" << n << " of " << nb << ", groups of " << group_rows;
            }
      }
  }
}

// The interleaved tiles against the scalar tile on the plain rows, and bit-identical per
// (row, token) whatever the number of tokens in the call or where the columns are cut.
TEST(KernelInterleaveTest, InterleavedTilesMatchScalarAndDoNotDependOnTokensOrPanels) {
  int tested = 0;
  for (CpuLevel l : simd_levels()) {
    const KernelTable& k = kernel_table(l);
    for (GgmlType type : kQuantTypes) {
      const QuantTileFn tile = k.interleaved_tile(type);
      if (!tile) continue;
      ++tested;
      const int block = act_block_size(type);
      const int group_rows = k.interleaved_group_rows(type);
      ASSERT_TRUE(group_rows == 8 || group_rows == 16) << group_rows;
      for (int64_t n_blocks : {1, 2, 3, 9, 64, 130}) {
        const int64_t n = n_blocks * block;
        const TestMatrix plain = make_matrix(type, group_rows, n, uint32_t(71 + n_blocks));
        const TestMatrix il = interleaved(plain, group_rows);
        const TileInputs in = tile_inputs(scalar(), block, n, uint32_t(72 + n_blocks));
        const ActView a = view_of(in.acts, block, n);
        const int64_t ys = group_rows + 3;
        const int64_t bb = ggml_type_info(type).block_bytes;
        std::vector<float> all(size_t(kTestTokens * ys), 0.25f);  // every token in one call
        tile(il.w.data, il.w.row_bytes, group_rows, a, kTestTokens, n_blocks, all.data(), ys,
             false);
        for (int rows = 1; rows <= group_rows; ++rows)
          for (int tokens = 1; tokens <= kTestTokens; tokens += 3)
            for (bool accumulate : {false, true}) {
              std::vector<float> y(size_t(kTestTokens * ys), 0.25f), y_ref = y;
              tile(il.w.data, il.w.row_bytes, rows, a, tokens, n_blocks, y.data(), ys, accumulate);
              // The scalar tile takes up to kQuantTileRows rows a call.
              for (int r0 = 0; r0 < rows; r0 += kQuantTileRows)
                scalar().quantized_tile(type)(plain.w.row(r0), plain.w.row_bytes,
                                              std::min(kQuantTileRows, rows - r0), a, tokens,
                                              n_blocks, y_ref.data() + r0, ys, accumulate);
              for (int t = 0; t < kTestTokens; ++t)
                for (int r = 0; r < ys; ++r) {
                  const size_t i = size_t(t * ys + r);
                  if (t >= tokens || r >= rows) {
                    ASSERT_EQ(y[i], 0.25f) << "wrote outside the tile";
                    continue;
                  }
                  const double tol = 1e-5 * (abs_dot(type, plain.w.row(r), a, block, t, n) +
                                             (accumulate ? 0.25 : 0.0));
                  ASSERT_NEAR(y[i], y_ref[i], tol)
                      << cpu_level_name(l) << " " << ggml_type_name(type) << " blocks=" << n_blocks
                      << " rows=" << rows << " tokens=" << tokens << " r=" << r;
                  if (!accumulate) {
                    ASSERT_TRUE(same_bits_or_both_nan(y[i], all[i]))
                        << "token " << t << " changed with the token count";
                  }
                }
            }
        // Columns cut in two calls (the second accumulating): the same bits as one call.
        if (n_blocks > 1) {
          const int64_t cut = n_blocks / 2;
          std::vector<float> y(size_t(kTestTokens * ys), 0.25f);
          tile(il.w.data, il.w.row_bytes, group_rows, a, kTestTokens, cut, y.data(), ys, false);
          tile(il.w.data + cut * group_rows * bb, il.w.row_bytes, group_rows,
               a.offset(0, cut, block), kTestTokens, n_blocks - cut, y.data(), ys, true);
          for (size_t i = 0; i < y.size(); ++i)
            ASSERT_TRUE(same_bits_or_both_nan(y[i], all[i])) << "panel cut changed i=" << i;
        }
      }
    }
  }
  if (tested == 0) GTEST_SKIP() << "no CPU level here has an interleaved tile";
}

// The integer sums at their largest: every code and packed scale byte at an extreme (0xFF: the
// top code of every unsigned type; 0x80 and 0x7F: Q8_0's and Q6_K's signed extremes) against
// activations all at +127. A kernel that sums in int16 where the values do not fit (Q5_K's
// 31 * 127 pairs, say) is off by far more than rounding here, while random data rarely gets near.
TEST(KernelQuantTileTest, TilesAreExactAtExtremeCodesAndActivations) {
  for (CpuLevel l : simd_levels()) {
    const KernelTable& k = kernel_table(l);
    for (GgmlType type : kQuantTypes) {
      const int block = act_block_size(type);
      const int64_t n = 4 * 256, bb = ggml_type_info(type).block_bytes;
      const TileInputs in =
          tile_inputs_of(scalar(), block, n, std::vector<float>(size_t(kTestTokens * n), 1.0f));
      const ActView a = view_of(in.acts, block, n);
      const int group_rows = k.interleaved_group_rows(type);
      for (uint8_t fill : {uint8_t(0xFF), uint8_t(0x80), uint8_t(0x7F)}) {
        TestMatrix plain = make_matrix(type, kMaxInterleaveRows, n, 91);
        for (size_t i = 0; i < plain.bytes.size(); ++i)
          if (!is_fp16_scale_byte(type, int64_t(i) % bb)) plain.bytes[i] = fill;
        const int64_t ys = kMaxInterleaveRows;
        std::vector<float> ref(size_t(kTestTokens * ys));
        for (int64_t r0 = 0; r0 < kMaxInterleaveRows; r0 += kQuantTileRows)
          scalar().quantized_tile(type)(plain.w.row(r0), plain.w.row_bytes, kQuantTileRows, a,
                                        kTestTokens, n / block, ref.data() + r0, ys, false);
        auto check = [&](const std::vector<float>& y, const char* which) {
          for (int t = 0; t < kTestTokens; ++t)
            for (int r = 0; r < kMaxInterleaveRows; ++r) {
              const size_t i = size_t(t * ys + r);
              ASSERT_NEAR(y[i], ref[i], 1e-5 * abs_dot(type, plain.w.row(r), a, block, t, n))
                  << cpu_level_name(l) << " " << which << " " << ggml_type_name(type)
                  << " fill=" << int(fill) << " token=" << t << " row=" << r;
            }
        };
        std::vector<float> y(ref.size());
        for (int64_t r0 = 0; r0 < kMaxInterleaveRows; r0 += kQuantTileRows)
          k.quantized_tile(type)(plain.w.row(r0), plain.w.row_bytes, kQuantTileRows, a, kTestTokens,
                                 n / block, y.data() + r0, ys, false);
        check(y, "plain tile");
        if (group_rows > 0) {
          const TestMatrix il = interleaved(plain, group_rows);
          for (int64_t g = 0; g < kMaxInterleaveRows / group_rows; ++g)
            k.interleaved_tile(type)(interleaved_records(il.w, 0).group(g), il.w.row_bytes,
                                     group_rows, a, kTestTokens, n / block,
                                     y.data() + g * group_rows, ys, false);
          check(y, "interleaved tile");
        }
      }
    }
  }
}

#if defined(__x86_64__)
// Table k's interleaved tile (on its own layout, one call per group of rows) or plain quantized
// tile (kQuantTileRows rows a call) over every row of `plain`.
void tile_every_row(const KernelTable& k, bool interleaved_tile, const TestMatrix& plain,
                    const ActView& a, int tokens, int64_t n_blocks, float* y, int64_t ys) {
  const GgmlType type = plain.w.type;
  const int step = interleaved_tile ? k.interleaved_group_rows(type) : kQuantTileRows;
  ASSERT_EQ(plain.w.rows % step, 0);
  for (int64_t r0 = 0; r0 < plain.w.rows; r0 += step) {
    if (interleaved_tile) {
      const TestMatrix il = interleaved(row_range(plain, r0, step), step);
      k.interleaved_tile(type)(il.w.data, il.w.row_bytes, step, a, tokens, n_blocks, y + r0, ys,
                               true);
    } else {
      k.quantized_tile(type)(plain.w.row(r0), plain.w.row_bytes, step, a, tokens, n_blocks, y + r0,
                             ys, true);
    }
  }
}

// The AVX-512 table computes the same integer dot products as the AVX2 one (VNNI instead of
// maddubs + madd, two runs of Q6_K codes per 512-bit vector folded back to 8 lanes, Q4_0 in groups
// of 16 rows instead of 8) and then the same float operations, so the two agree bit for bit, on
// quantized rows and on arbitrary bytes.
TEST(KernelQuantTileTest, Avx512TilesEqualAvx2TilesBitForBit) {
  if (!cpu_level_supported(CpuLevel::kAvx512) || !cpu_level_supported(CpuLevel::kAvx2))
    GTEST_SKIP() << "this CPU has no AVX-512 VNNI";
  const KernelTable& avx2 = kernel_table(CpuLevel::kAvx2);
  const KernelTable& avx512 = kernel_table(CpuLevel::kAvx512);
  std::mt19937 rng(5);
  for (GgmlType type : kQuantTypes) {
    const int block = act_block_size(type);
    for (bool random_bytes : {false, true})
      for (int64_t n_blocks : {1, 3, 9, 65}) {
        const int64_t n = n_blocks * block;
        TestMatrix plain = make_matrix(type, kMaxInterleaveRows, n, uint32_t(81 + n_blocks));
        if (random_bytes) {
          // Any code or packed-scale value (Q8_0's -128 included); the fp16 scales stay those of
          // the quantized rows, so no infinity hides the integer sums.
          const int64_t bb = ggml_type_info(type).block_bytes;
          for (size_t i = 0; i < plain.bytes.size(); ++i)
            if (!is_fp16_scale_byte(type, int64_t(i) % bb)) plain.bytes[i] = uint8_t(rng());
        }
        const TileInputs in = tile_inputs(scalar(), block, n, uint32_t(82 + n_blocks));
        const ActView a = view_of(in.acts, block, n);
        const int64_t ys = kMaxInterleaveRows;
        // Interleaved tiles where AVX2 has one (AVX-512 has one for every such type).
        const bool il_tile = avx2.interleaved_tile(type) != nullptr;
        ASSERT_NE(il_tile ? avx512.interleaved_tile(type) : avx512.quantized_tile(type), nullptr)
            << ggml_type_name(type);
        for (int tokens : {1, 2, 4, 5, 9}) {
          std::vector<float> y2(size_t(kTestTokens * ys), 0.5f), y512 = y2;
          tile_every_row(avx2, il_tile, plain, a, tokens, n_blocks, y2.data(), ys);
          tile_every_row(avx512, il_tile, plain, a, tokens, n_blocks, y512.data(), ys);
          for (size_t i = 0; i < y2.size(); ++i)
            ASSERT_TRUE(same_bits_or_both_nan(y512[i], y2[i]))
                << ggml_type_name(type) << (random_bytes ? " random bytes" : "")
                << " blocks=" << n_blocks << " tokens=" << tokens << " i=" << i << ": " << y512[i]
                << " vs " << y2[i];
        }
      }
  }
}
#endif

// matmul on interleaved weights: the same results as on the plain matrix, in precise mode (bit
// for bit) and in fast mode (within the activation rounding of the plain tile), on every level
// (levels without an interleaved tile copy the rows back to the plain layout).
TEST(KernelInterleaveTest, MatmulOnInterleavedWeightsMatchesPlainWeights) {
  ThreadPool pool(2);
  // The last two cross column panels of the layout (ops/repack.h), with one token and with many.
  const MatmulCase cases[] = {{8, 256, 1}, {16, 512, 3}, {16, 8448, 1}, {24, 7168, 37}};
  for (GgmlType type :
       {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    for (const MatmulCase& c : cases)
      for (int group_rows : {8, 16}) {
        if (c.rows % group_rows != 0) continue;
        const TestMatrix plain = make_matrix(type, c.rows, c.cols, 81);
        const TestMatrix il = interleaved(plain, group_rows);
        const auto x = gaussian(c.tokens * c.cols, 82);
        std::vector<double> y_exact, scale;
        reference_matmul(plain.w, x, c.cols, c.tokens, y_exact, scale);
        for (CpuLevel l : supported_cpu_levels()) {
          for (MatmulMode mode : {MatmulMode::kPrecise, MatmulMode::kFast}) {
            std::vector<float> y(size_t(c.tokens * c.rows)), y_plain = y;
            matmul(kernel_table(l), il.w, x.data(), c.cols, c.tokens, y.data(), c.rows, pool, mode);
            matmul(kernel_table(l), plain.w, x.data(), c.cols, c.tokens, y_plain.data(), c.rows,
                   pool, mode);
            // A table whose interleaved tile reads another group height copies the rows back.
            const bool same_kernel = mode == MatmulMode::kPrecise ||
                                     kernel_table(l).interleaved_group_rows(type) != group_rows;
            for (size_t i = 0; i < y.size(); ++i) {
              if (same_kernel)
                ASSERT_TRUE(same_bits_or_both_nan(y[i], y_plain[i]))
                    << cpu_level_name(l) << " " << ggml_type_name(type) << " groups of "
                    << group_rows << " i=" << i;
              else
                ASSERT_NEAR(y[i], y_plain[i], 2.2e-5 * scale[i])  // each within 1.1e-5 of scalar
                    << cpu_level_name(l) << " " << ggml_type_name(type) << " groups of "
                    << group_rows << " i=" << i;
            }
          }
        }
        // Embedding lookup reads the interleaved rows back.
        std::vector<float> row(size_t(c.cols)), want(size_t(c.cols));
        for (int64_t r : {int64_t(0), c.rows - 1}) {
          weight_row_f32(il.w, r, row.data());
          dequantize_row(type, plain.w.row(r), want.data(), c.cols);
          ASSERT_EQ(row, want) << "row " << r;
        }
      }
  }
}

// A token's outputs do not depend on how many tokens share the matmul (batched serving returns
// what a request gets alone), in either mode, for every weight type and layout, on rows longer
// than any column panel (the float tiles and the plain quantized tiles round each panel's sums on
// their own). 24 rows: not whole groups of 16, so the plain tiles run where the level's groups are
// 16 rows; 32 rows: interleaved on every level that can.
TEST(KernelMatmulTest, TokenOutputsDoNotDependOnTheTokenCount) {
  ThreadPool pool(2);
  const int64_t cols = 8448;  // 33 x 256
  for (CpuLevel l : supported_cpu_levels()) {
    const KernelTable& k = kernel_table(l);
    for (GgmlType type : kAllTypes)
      for (int64_t rows : {24, 32}) {
        const TestMatrix m = interleaved_if(k, make_matrix(type, rows, cols, 101));
        const int64_t most = 70;
        const auto x = gaussian(most * cols, 102);
        for (MatmulMode mode : {MatmulMode::kPrecise, MatmulMode::kFast}) {
          std::vector<float> batch(size_t(most * m.w.rows));
          matmul(k, m.w, x.data(), cols, most, batch.data(), m.w.rows, pool, mode);
          for (int64_t T : {1, 3, 5, 9, 33}) {
            std::vector<float> y(size_t(T * m.w.rows));
            matmul(k, m.w, x.data(), cols, T, y.data(), m.w.rows, pool, mode);
            size_t bad = 0;
            for (size_t i = 0; i < y.size(); ++i) bad += !same_bits_or_both_nan(y[i], batch[i]);
            EXPECT_EQ(bad, 0u) << cpu_level_name(l) << " " << ggml_type_name(type)
                               << " rows=" << rows
                               << (mode == MatmulMode::kFast ? " fast" : " precise") << " T=" << T;
          }
        }
      }
  }
}

// Matrices of one input in one call: the same bits as one matmul each, whatever their types (32-
// and 256-block activations, float weights), layouts and row counts, on every level.
TEST(KernelMatmulTest, SharedInputEqualsOneMatmulEach) {
  ThreadPool pool(2);
  const int64_t cols = 4352;  // 17 x 256: one full interleaving panel and a part of another
  for (CpuLevel l : supported_cpu_levels()) {
    const KernelTable& k = kernel_table(l);
    std::vector<TestMatrix> mats;
    mats.push_back(interleaved_if(k, make_matrix(GgmlType::Q4_0, 32, cols, 91)));
    mats.push_back(make_matrix(GgmlType::Q6_K, 13, cols, 92));
    mats.push_back(interleaved_if(k, make_matrix(GgmlType::Q8_0, 16, cols, 93)));
    mats.push_back(make_matrix(GgmlType::F16, 5, cols, 94));
    mats.push_back(interleaved_if(k, make_matrix(GgmlType::Q4_K, 40, cols, 95)));
    for (int64_t T : {1, 5, 37}) {
      const auto x = gaussian(T * cols, uint32_t(96 + T));
      for (MatmulMode mode : {MatmulMode::kPrecise, MatmulMode::kFast}) {
        std::vector<std::vector<float>> fused, alone;
        std::vector<MatmulOutput> outs;
        for (const TestMatrix& m : mats) {
          fused.emplace_back(size_t(T * (m.w.rows + 2)), 0.5f);
          alone.emplace_back(size_t(T * (m.w.rows + 2)), 0.5f);
          matmul(k, m.w, x.data(), cols, T, alone.back().data(), m.w.rows + 2, pool, mode);
        }
        for (size_t i = 0; i < mats.size(); ++i)
          outs.push_back({&mats[i].w, fused[i].data(), mats[i].w.rows + 2});
        matmul_shared_input(k, outs, x.data(), cols, T, pool, mode);
        for (size_t i = 0; i < mats.size(); ++i)
          for (size_t j = 0; j < fused[i].size(); ++j)
            ASSERT_TRUE(same_bits_or_both_nan(fused[i][j], alone[i][j]))
                << cpu_level_name(l) << " " << ggml_type_name(mats[i].w.type) << " T=" << T
                << (mode == MatmulMode::kFast ? " fast" : " precise") << " j=" << j;
      }
    }
  }
  // Matrices of different row lengths cannot share an input.
  const TestMatrix a = make_matrix(GgmlType::Q4_0, 8, 256, 97), b = make_matrix(GgmlType::Q4_0, 8, 512, 98);
  std::vector<float> x(512), ya(8), yb(8);
  const MatmulOutput outs[] = {{&a.w, ya.data(), 8}, {&b.w, yb.data(), 8}};
  EXPECT_THROW(matmul_shared_input(outs, x.data(), 512, 1, pool, MatmulMode::kFast), Error);
}

TEST(KernelMatmulTest, RejectsRowsThatAreNotWholeBlocks) {
  ThreadPool pool(1);
  WeightMatrix w;
  w.name = "blk.0.attn_q.weight";
  w.type = GgmlType::Q4_K;
  w.rows = 2;
  w.cols = 100;
  w.row_bytes = 144;
  std::vector<uint8_t> bytes(288);
  w.data = bytes.data();
  std::vector<float> x(100), y(2);
  EXPECT_THROW(matmul(w, x.data(), 100, 1, y.data(), 2, pool, MatmulMode::kFast), Error);
}

}  // namespace
}  // namespace g4
