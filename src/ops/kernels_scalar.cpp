// The portable kernels: what runs where no SIMD level is available, and the reference the SIMD
// kernels are tested against (tests/test_kernels.cpp).
//
// Quantized tiles compute, per weight block and activation block, the exact integer dot product of
// the weight's integer codes with the activation's int8 codes, then scale it in float:
//   32-blocks:  (d_w * d_x) * sum(q_w * q_x)  [+ m_w * dsum_x for Q4_1/Q5_1, whose x = d q + m]
//   K-quants:   (d_w * d_x) * sum_s sc_s * sum(q_w * q_x) - (dmin_w * d_x) * sum_s m_s * bsum_s
// with q_w the signed code (Q4_0: nibble - 8, Q5_0: q - 16, Q6_K: q - 32). This equals
// sum_i dequant(w)_i * (d_x q_x,i) up to float rounding (formats.md §4.2 for the block formulas).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/half.h"
#include "core/quant_blocks.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace g4 {
namespace {

float dot_f32_scalar(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  for (; i < n; ++i) acc[0] += a[i] * b[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

void axpy_f32_scalar(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void axpy_rows_f32_scalar(const float* a, int64_t a_stride, int n_rows, const float* x,
                          int64_t x_stride, int64_t n, float* y, int64_t y_stride, int64_t d) {
  for (int64_t p = 0; p < n; ++p)
    for (int h = 0; h < n_rows; ++h)
      axpy_f32_scalar(a[h * a_stride + p], x + p * x_stride, y + h * y_stride, d);
}

// The fp16 forms decode each row once (a software conversion per element and head would be ~15x
// slower) and then do exactly what the float forms do.
const float* decoded_row(const uint16_t* x, int64_t d) {
  thread_local std::vector<float> row;
  row.resize(size_t(d));
  for (int64_t i = 0; i < d; ++i) row[size_t(i)] = fp16_to_f32(x[i]);
  return row.data();
}

void axpy_rows_f16_scalar(const float* a, int64_t a_stride, int n_rows, const uint16_t* x,
                          int64_t x_stride, int64_t n, float* y, int64_t y_stride, int64_t d) {
  for (int64_t p = 0; p < n; ++p) {
    const float* row = decoded_row(x + p * x_stride, d);
    for (int h = 0; h < n_rows; ++h) axpy_f32_scalar(a[h * a_stride + p], row, y + h * y_stride, d);
  }
}

void attn_scores_f32_scalar(const float* q, int64_t q_stride, int n_heads, const float* keys,
                            int64_t key_stride, int64_t n_keys, int64_t d, float* s,
                            int64_t s_stride) {
  for (int64_t j = 0; j < n_keys; ++j)
    for (int h = 0; h < n_heads; ++h)
      s[h * s_stride + j] = dot_f32_scalar(keys + j * key_stride, q + h * q_stride, d);
}

void attn_scores_f16_scalar(const float* q, int64_t q_stride, int n_heads, const uint16_t* keys,
                            int64_t key_stride, int64_t n_keys, int64_t d, float* s,
                            int64_t s_stride) {
  for (int64_t j = 0; j < n_keys; ++j)
    attn_scores_f32_scalar(q, q_stride, n_heads, decoded_row(keys + j * key_stride, d), 0, 1, d,
                           s + j, s_stride);
}

void scale_f32_scalar(float s, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= s;
}

void geglu_f32_scalar(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gelu_tanh(gate[i]) * up[i];
}

void softcap_f32_scalar(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

// Nearest integer, ties to even (what every SIMD convert instruction does), clamped to +-127;
// NaN (from an inf activation) becomes 0 rather than undefined behaviour.
int8_t round_to_int8(float v) {
  v = std::nearbyint(v);
  if (!(v == v)) return 0;
  return int8_t(std::clamp(v, -127.0f, 127.0f));
}

// One block: d = max|x| / 127, q = x / d. Returns d.
float quantize_act_block(const float* x, int count, int8_t* q) {
  float amax = 0.0f;
  for (int j = 0; j < count; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d > 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < count; ++j) q[j] = round_to_int8(x[j] * id);
  return d;
}

void quantize_act32_scalar(const float* x, int64_t n, int8_t* q, float* d, float* dsum,
                           int32_t* qsum) {
  for (int64_t b = 0; b < n / QK; ++b) {
    const float scale = quantize_act_block(x + b * QK, QK, q + b * QK);
    int sum = 0;
    for (int j = 0; j < QK; ++j) sum += q[b * QK + j];
    d[b] = scale;
    dsum[b] = scale * float(sum);
    qsum[b] = sum;
  }
}

void quantize_act256_scalar(const float* x, int64_t n, int8_t* q, float* d, int16_t* bsum) {
  for (int64_t b = 0; b < n / QK_K; ++b) {
    d[b] = quantize_act_block(x + b * QK_K, QK_K, q + b * QK_K);
    for (int s = 0; s < QK_K / 16; ++s) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += q[b * QK_K + 16 * s + j];
      bsum[b * (QK_K / 16) + s] = int16_t(sum);
    }
  }
}

void float_tile_scalar(const float* w, int64_t w_stride, int n_rows, const float* x,
                       int64_t x_stride, int n_tokens, int64_t k, float* y, int64_t y_stride,
                       bool accumulate) {
  for (int t = 0; t < n_tokens; ++t)
    for (int r = 0; r < n_rows; ++r) {
      const float v = dot_f32_scalar(w + r * w_stride, x + t * x_stride, k);
      float& out = y[t * y_stride + r];
      out = accumulate ? out + v : v;
    }
}

// ---- quantized tiles ----

// A 32-weight block as signed integer codes: x = d * q (+ m).
struct Codes32 {
  int8_t q[QK];
  float d;
  float m;  // 0 for the symmetric types
};

void unpack_nibbles(const uint8_t qs[QK / 2], int offset, int8_t* q) {
  for (int j = 0; j < QK / 2; ++j) {
    q[j] = int8_t((qs[j] & 0xF) - offset);
    q[j + QK / 2] = int8_t((qs[j] >> 4) - offset);
  }
}

void unpack_5bit(const uint8_t qh_bytes[4], const uint8_t qs[QK / 2], int offset, int8_t* q) {
  const uint32_t qh = load_qh32(qh_bytes);
  for (int j = 0; j < QK; ++j) {
    const int nibble = j < QK / 2 ? (qs[j] & 0xF) : (qs[j - QK / 2] >> 4);
    q[j] = int8_t((nibble | int((qh >> j) & 1) << 4) - offset);
  }
}

Codes32 codes(const BlockQ8_0& b) {
  Codes32 c{};
  std::memcpy(c.q, b.qs, QK);
  c.d = fp16_to_f32(b.d);
  return c;
}
Codes32 codes(const BlockQ4_0& b) {
  Codes32 c{};
  unpack_nibbles(b.qs, 8, c.q);
  c.d = fp16_to_f32(b.d);
  return c;
}
Codes32 codes(const BlockQ4_1& b) {
  Codes32 c{};
  unpack_nibbles(b.qs, 0, c.q);
  c.d = fp16_to_f32(b.d);
  c.m = fp16_to_f32(b.m);
  return c;
}
Codes32 codes(const BlockQ5_0& b) {
  Codes32 c{};
  unpack_5bit(b.qh, b.qs, 16, c.q);
  c.d = fp16_to_f32(b.d);
  return c;
}
Codes32 codes(const BlockQ5_1& b) {
  Codes32 c{};
  unpack_5bit(b.qh, b.qs, 0, c.q);
  c.d = fp16_to_f32(b.d);
  c.m = fp16_to_f32(b.m);
  return c;
}

// A K-quant super-block: x = (d * sc[s]) * q - (dmin * mn[s]) for element i of run s = i / 16.
struct Codes256 {
  int8_t q[QK_K];
  int16_t sc[QK_K / 16];
  int16_t mn[QK_K / 16];
  float d;
  float dmin;
};

void scales_k4(const uint8_t scales[12], Codes256& c) {
  for (int j = 0; j < 8; ++j) {
    const ScaleMin sm = unpack_scale_min_k4(j, scales);
    c.sc[2 * j] = c.sc[2 * j + 1] = sm.scale;
    c.mn[2 * j] = c.mn[2 * j + 1] = sm.min;
  }
}

Codes256 codes(const BlockQ4_K& b) {
  Codes256 c{};
  c.d = fp16_to_f32(b.d);
  c.dmin = fp16_to_f32(b.dmin);
  scales_k4(b.scales, c);
  for (int ch = 0; ch < 4; ++ch)
    for (int l = 0; l < 32; ++l) {
      c.q[64 * ch + l] = int8_t(b.qs[32 * ch + l] & 0xF);
      c.q[64 * ch + 32 + l] = int8_t(b.qs[32 * ch + l] >> 4);
    }
  return c;
}

Codes256 codes(const BlockQ5_K& b) {
  Codes256 c{};
  c.d = fp16_to_f32(b.d);
  c.dmin = fp16_to_f32(b.dmin);
  scales_k4(b.scales, c);
  for (int ch = 0; ch < 4; ++ch)
    for (int l = 0; l < 32; ++l) {
      c.q[64 * ch + l] = int8_t((b.qs[32 * ch + l] & 0xF) | ((b.qh[l] >> (2 * ch)) & 1) << 4);
      c.q[64 * ch + 32 + l] =
          int8_t((b.qs[32 * ch + l] >> 4) | ((b.qh[l] >> (2 * ch + 1)) & 1) << 4);
    }
  return c;
}

Codes256 codes(const BlockQ6_K& b) {
  Codes256 c{};
  c.d = fp16_to_f32(b.d);
  for (int s = 0; s < 16; ++s) c.sc[s] = b.scales[s];
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    int8_t* q = c.q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      q[l] = int8_t(((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32);
      q[l + 32] = int8_t(((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32);
      q[l + 64] = int8_t(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
      q[l + 96] = int8_t(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
    }
  }
  return c;
}

int dot_codes(const int8_t* a, const int8_t* b, int count) {
  int sum = 0;
  for (int j = 0; j < count; ++j) sum += int(a[j]) * int(b[j]);
  return sum;
}

float block_dot(const Codes32& w, const ActView& act, int64_t t, int64_t b) {
  const int64_t di = t * act.d_stride + b;
  const int isum = dot_codes(w.q, act.q + t * act.q_stride + b * QK, QK);
  return (w.d * act.d[di]) * float(isum) + w.m * act.dsum[di];
}

float block_dot(const Codes256& w, const ActView& act, int64_t t, int64_t b) {
  const int8_t* xq = act.q + t * act.q_stride + b * QK_K;
  const int16_t* bsum = act.bsum + t * act.bsum_stride + b * (QK_K / 16);
  int64_t isum = 0, imin = 0;
  for (int s = 0; s < QK_K / 16; ++s) {
    isum += int64_t(w.sc[s]) * dot_codes(w.q + 16 * s, xq + 16 * s, 16);
    imin += int64_t(w.mn[s]) * bsum[s];
  }
  const float dx = act.d[t * act.d_stride + b];
  return (w.d * dx) * float(isum) - (w.dmin * dx) * float(imin);
}

template <class Block>
void quant_tile_scalar(const uint8_t* w, int64_t w_row_bytes, int n_rows, const ActView& act,
                       int64_t n_tokens, int64_t n_blocks, float* y, int64_t y_stride,
                       bool accumulate) {
  // One running sum per (row, token), started from y when accumulating: a row cut into column
  // panels adds the same terms in the same order as in one call.
  std::vector<float> acc(size_t(n_rows * n_tokens), 0.0f);  // [r][t]
  if (accumulate)
    for (int r = 0; r < n_rows; ++r)
      for (int64_t t = 0; t < n_tokens; ++t) acc[size_t(r * n_tokens + t)] = y[t * y_stride + r];
  for (int r = 0; r < n_rows; ++r)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const auto unpacked = codes(load_block<Block>(w + r * w_row_bytes, b));
      for (int64_t t = 0; t < n_tokens; ++t)
        acc[size_t(r * n_tokens + t)] += block_dot(unpacked, act, t, b);
    }
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int r = 0; r < n_rows; ++r) y[t * y_stride + r] = acc[size_t(r * n_tokens + t)];
}

template <GgmlType kType>
void dequantize_scalar(const void* src, float* dst, int64_t n) {
  dequantize_row(kType, src, dst, n);
}

}  // namespace

void fill_scalar_kernels(KernelTable& t) {
  t.dot_f32 = dot_f32_scalar;
  t.axpy_f32 = axpy_f32_scalar;
  t.axpy_rows_f32 = axpy_rows_f32_scalar;
  t.axpy_rows_f16 = axpy_rows_f16_scalar;
  t.attn_scores_f32 = attn_scores_f32_scalar;
  t.attn_scores_f16 = attn_scores_f16_scalar;
  t.scale_f32 = scale_f32_scalar;
  t.geglu_f32 = geglu_f32_scalar;
  t.softcap_f32 = softcap_f32_scalar;
  t.quantize_act32 = quantize_act32_scalar;
  t.quantize_act256 = quantize_act256_scalar;
  t.float_tile = float_tile_scalar;
  auto set = [&](GgmlType type, DequantizeFn deq, QuantTileFn tile) {
    t.dequantize[size_t(type)] = deq;
    t.quant_tile[size_t(type)] = tile;
  };
  set(GgmlType::F16, dequantize_scalar<GgmlType::F16>, nullptr);
  set(GgmlType::BF16, dequantize_scalar<GgmlType::BF16>, nullptr);
  set(GgmlType::Q8_0, dequantize_scalar<GgmlType::Q8_0>, quant_tile_scalar<BlockQ8_0>);
  set(GgmlType::Q4_0, dequantize_scalar<GgmlType::Q4_0>, quant_tile_scalar<BlockQ4_0>);
  set(GgmlType::Q4_1, dequantize_scalar<GgmlType::Q4_1>, quant_tile_scalar<BlockQ4_1>);
  set(GgmlType::Q5_0, dequantize_scalar<GgmlType::Q5_0>, quant_tile_scalar<BlockQ5_0>);
  set(GgmlType::Q5_1, dequantize_scalar<GgmlType::Q5_1>, quant_tile_scalar<BlockQ5_1>);
  set(GgmlType::Q4_K, dequantize_scalar<GgmlType::Q4_K>, quant_tile_scalar<BlockQ4_K>);
  set(GgmlType::Q5_K, dequantize_scalar<GgmlType::Q5_K>, quant_tile_scalar<BlockQ5_K>);
  set(GgmlType::Q6_K, dequantize_scalar<GgmlType::Q6_K>, quant_tile_scalar<BlockQ6_K>);
}

}  // namespace g4
