// AVX2 + FMA + F16C kernels (Haswell, Zen and later). Compiled with -mavx2 -mfma -mf16c; only
// called after cpu_features.cpp has checked the CPU. See kernels.h for what each entry computes
// and why nothing here may be an inline function or template shared with other units (every
// helper is in the anonymous namespace; no standard library templates).
//
// Integer dot products: _mm256_maddubs_epi16 multiplies unsigned by signed bytes and adds pairs
// into int16, _mm256_madd_epi16 widens pairs to int32. So weights are kept as unsigned codes
// (Q4_0: the raw nibble q + 8, Q5_0: q + 16, Q6_K: q + 32) and the offset is taken out through the
// activation sums (dsum, bsum); Q8_0's signed weights use the sign trick |w| * (x * sign(w)).
// No int16 saturation: pairs are at most 2 * 63 * 127 = 16002 (|w| <= 128 for Q8_0: 32512).
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/quant_blocks.h"  // block layouts (structs only; none of its inline functions)
#include "ops/kernels.h"

namespace g4 {
namespace {

int64_t min_i64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float half_to_float(uint16_t h) {
  return _cvtsh_ss(h);
}  // exact (F16C)

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Mask for the first n (0..8) lanes, for loads and stores of row tails.
__m256i tail_mask(int64_t n) {
  static const int32_t kLanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLanes + 8 - n));
}

// ---- float helpers (ops.h) ----

float dot_f32_avx2(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    acc1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), acc1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

void axpy_f32_avx2(float a, const float* x, float* y, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(
        y + i, m, _mm256_fmadd_ps(av, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m)));
  }
}

void scale_f32_avx2(float s, float* y, int64_t n) {
  const __m256 sv = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(sv, _mm256_loadu_ps(y + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(sv, _mm256_maskload_ps(y + i, m)));
  }
}

// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|) in (0, 1]: no overflow for any x, and
// the absolute error stays near float rounding (~1e-7) everywhere, small |x| included. exp by
// Cody-Waite range reduction (n ln2 in two parts) and a degree-5 polynomial on |r| <= ln2/2.
__m256 tanh_avx2(__m256 x) {
  const __m256 sign =
      _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(int32_t(0x80000000u))));
  const __m256 ax = _mm256_andnot_ps(sign, x);
  const __m256 y = _mm256_max_ps(_mm256_mul_ps(ax, _mm256_set1_ps(-2.0f)), _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(y, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), y);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i pow2n =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(pow2n));
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_or_ps(sign, _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e)));
}

// gate = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) * up, as ops.cpp's gelu_tanh.
void geglu_f32_avx2(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 inner = _mm256_mul_ps(
        _mm256_set1_ps(0.7978845608028654f),
        _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), g), _mm256_mul_ps(g, g), g));
    const __m256 gelu = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), g),
                                      _mm256_add_ps(_mm256_set1_ps(1.0f), tanh_avx2(inner)));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(gelu, _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) {
    const float g = gate[i];
    gate[i] = 0.5f * g * (1.0f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g))) * up[i];
  }
}

void softcap_f32_avx2(float* x, int64_t n, float cap) {
  const __m256 capv = _mm256_set1_ps(cap);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(x + i,
                     _mm256_mul_ps(capv, tanh_avx2(_mm256_div_ps(_mm256_loadu_ps(x + i), capv))));
  for (; i < n; ++i) x[i] = cap * tanhf(x[i] / cap);  // not std::tanh: an inline wrapper (see top)
}

// ---- float tiles: R rows x C tokens of 8-wide FMAs ----

template <int R, int C>
void float_micro(const float* w, int64_t ws, const float* x, int64_t xs, int64_t k, float* y,
                 int64_t ys, bool accumulate) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    __m256 xv[C];
    for (int c = 0; c < C; ++c) xv[c] = _mm256_loadu_ps(x + c * xs + i);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_loadu_ps(w + r * ws + i);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);
    }
  }
  if (i < k) {
    const __m256i m = tail_mask(k - i);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_maskload_ps(w + r * ws + i, m);
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(x + c * xs + i, m), acc[r][c]);
    }
  }
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) {
      const float v = hsum(acc[r][c]);
      float& out = y[c * ys + r];
      out = accumulate ? out + v : v;
    }
}

template <int C>
void float_rows(const float* w, int64_t ws, int n_rows, const float* x, int64_t xs, int64_t k,
                float* y, int64_t ys, bool accumulate) {
  // At most 8 accumulators: 4 rows for one or two tokens, else 2 rows.
  constexpr int kRows = C <= 2 ? 4 : 2;
  int r = 0;
  for (; r + kRows <= n_rows; r += kRows)
    float_micro<kRows, C>(w + r * ws, ws, x, xs, k, y + r, ys, accumulate);
  for (; r < n_rows; ++r) float_micro<1, C>(w + r * ws, ws, x, xs, k, y + r, ys, accumulate);
}

void float_tile_avx2(const float* w, int64_t ws, int n_rows, const float* x, int64_t xs,
                     int n_tokens, int64_t k, float* y, int64_t ys, bool accumulate) {
  switch (n_tokens) {
    case 1:
      return float_rows<1>(w, ws, n_rows, x, xs, k, y, ys, accumulate);
    case 2:
      return float_rows<2>(w, ws, n_rows, x, xs, k, y, ys, accumulate);
    case 3:
      return float_rows<3>(w, ws, n_rows, x, xs, k, y, ys, accumulate);
    default:
      return float_rows<4>(w, ws, n_rows, x, xs, k, y, ys, accumulate);
  }
}

// ---- dequantization, bit-exact to quant_ref.cpp (same float operations, no FMA) ----

void dequantize_f16_avx2(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint8_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 2 * i))));
  for (; i < n; ++i) dst[i] = half_to_float(load_u16(h + 2 * i));
}

void dequantize_bf16_avx2(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint8_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i v =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 2 * i)));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
  }
  for (; i < n; ++i) {
    const uint32_t bits = uint32_t(load_u16(h + 2 * i)) << 16;
    std::memcpy(dst + i, &bits, 4);
  }
}

// 32 signed bytes -> 4 x 8 floats, times d (+ m when kMin).
template <bool kMin>
void store_scaled(__m256i q, float d, float m, float* y) {
  const __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int p = 0; p < 4; ++p) {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[p])), dv);
    if (kMin) v = _mm256_add_ps(v, mv);
    _mm256_storeu_ps(y + 8 * p, v);
  }
}

// The 32 codes of a 4-bit block, in element order: low nibbles then high nibbles. The 16 bytes
// are loaded into both halves (a load, no shuffle) and only the upper half shifted.
__m256i nibbles32(const uint8_t* qs) {
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
}

// 0x10 in byte j where bit j of the little-endian qh is set (Q5_0/Q5_1 fifth bits).
__m256i fifth_bits32(const uint8_t* qh) {
  const __m256i bytes =
      _mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(load_u32(qh))),
                          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                           2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit),
                          _mm256_set1_epi8(0x10));
}

void dequantize_q8_0_avx2(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t b = 0; b < n / QK; ++b, p += sizeof(BlockQ8_0))
    store_scaled<false>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2)),
                        half_to_float(load_u16(p)), 0.0f, dst + b * QK);
}

void dequantize_q4_0_avx2(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t b = 0; b < n / QK; ++b, p += sizeof(BlockQ4_0))
    store_scaled<false>(_mm256_sub_epi8(nibbles32(p + 2), _mm256_set1_epi8(8)),
                        half_to_float(load_u16(p)), 0.0f, dst + b * QK);
}

void dequantize_q4_1_avx2(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t b = 0; b < n / QK; ++b, p += sizeof(BlockQ4_1))
    store_scaled<true>(nibbles32(p + 4), half_to_float(load_u16(p)), half_to_float(load_u16(p + 2)),
                       dst + b * QK);
}

void dequantize_q5_0_avx2(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t b = 0; b < n / QK; ++b, p += sizeof(BlockQ5_0)) {
    const __m256i q = _mm256_or_si256(nibbles32(p + 6), fifth_bits32(p + 2));
    store_scaled<false>(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), half_to_float(load_u16(p)), 0.0f,
                        dst + b * QK);
  }
}

void dequantize_q5_1_avx2(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t b = 0; b < n / QK; ++b, p += sizeof(BlockQ5_1)) {
    const __m256i q = _mm256_or_si256(nibbles32(p + 8), fifth_bits32(p + 4));
    store_scaled<true>(q, half_to_float(load_u16(p)), half_to_float(load_u16(p + 2)), dst + b * QK);
  }
}

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block (formats.md §4.2; a private copy of
// quant_blocks.h's unpack_scale_min_k4, see the note at the top).
void scale_min_k4(int j, const uint8_t* scales, int& scale, int& min) {
  if (j < 4) {
    scale = scales[j] & 63;
    min = scales[j + 4] & 63;
  } else {
    scale = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
    min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// 32 unsigned codes times (d * sc), minus (dmin * m): the scalar decoder's grouping.
void store_affine(__m256i q, float d_sc, float m, float* y) {
  const __m256 dv = _mm256_set1_ps(d_sc), mv = _mm256_set1_ps(m);
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int p = 0; p < 4; ++p)
    _mm256_storeu_ps(
        y + 8 * p,
        _mm256_sub_ps(_mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[p]))), mv));
}

// Q4_K / Q5_K: chunk c of 64 weights is sub-block 2c (low nibbles of qs[32c..]) then 2c+1 (high).
template <bool kFifthBit>
void dequantize_k4_avx2(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  constexpr int64_t kBytes = kFifthBit ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  constexpr int kQs = kFifthBit ? 48 : 16;  // offset of qs (Q5_K: after 32 bytes of qh)
  for (int64_t b = 0; b < n / QK_K; ++b, p += kBytes) {
    const float d = half_to_float(load_u16(p)), dmin = half_to_float(load_u16(p + 2));
    const uint8_t* scales = p + 4;
    const __m256i qh = kFifthBit ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16))
                                 : _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kQs + 32 * c));
      __m256i lo = _mm256_and_si256(raw, _mm256_set1_epi8(0x0F));
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), _mm256_set1_epi8(0x0F));
      if (kFifthBit) {
        const __m256i bit_lo = _mm256_set1_epi8(char(1 << (2 * c))),
                      bit_hi = _mm256_set1_epi8(char(2 << (2 * c)));
        lo = _mm256_or_si256(
            lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit_lo), bit_lo),
                                 _mm256_set1_epi8(0x10)));
        hi = _mm256_or_si256(
            hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit_hi), bit_hi),
                                 _mm256_set1_epi8(0x10)));
      }
      int sc, m;
      scale_min_k4(2 * c, scales, sc, m);
      store_affine(lo, d * float(sc), dmin * float(m), dst + b * QK_K + 64 * c);
      scale_min_k4(2 * c + 1, scales, sc, m);
      store_affine(hi, d * float(sc), dmin * float(m), dst + b * QK_K + 64 * c + 32);
    }
  }
}

// Q6_K half h (128 weights): ql0 = ql[64h..+31], ql1 = ql[64h+32..+31], qh = qh[32h..+31] give the
// four runs of 32: (ql0 low, qh bits 0-1), (ql1 low, bits 2-3), (ql0 high, bits 4-5), (ql1 high,
// 6-7).
void q6k_codes(const uint8_t* ql, const uint8_t* qh_bytes, __m256i q[4]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
  const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
  const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh_bytes));
  q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
  q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m2));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
}

void dequantize_q6_k_avx2(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b, p += sizeof(BlockQ6_K)) {
    const auto* scales = reinterpret_cast<const int8_t*>(p + 192);
    const float d = half_to_float(load_u16(p + 208));
    for (int h = 0; h < 2; ++h) {
      __m256i q[4];
      q6k_codes(p + 64 * h, p + 128 + 32 * h, q);
      for (int g = 0; g < 4; ++g) {
        const __m256i s = _mm256_sub_epi8(q[g], _mm256_set1_epi8(32));
        const __m128i lo = _mm256_castsi256_si128(s), hi = _mm256_extracti128_si256(s, 1);
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int part = 0; part < 4; ++part) {
          // elements l = 8 part .. 8 part + 7 of run g: scale index l / 16 + 2 g (decoder: d * sc *
          // q)
          const __m256 ds = _mm256_set1_ps(d * float(scales[8 * h + part / 2 + 2 * g]));
          _mm256_storeu_ps(
              dst + b * QK_K + 128 * h + 32 * g + 8 * part,
              _mm256_mul_ps(ds, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[part]))));
        }
      }
    }
  }
}

// ---- activation quantization (bit-exact to kernels_scalar.cpp) ----

// q = round(x * id) of 32 floats packed to 32 int8 in order. sum_lo / sum_hi: the codes' sums over
// elements 0-15 and 16-31.
__m256i quantize32(const float* x, __m256 id, int& sum_lo, int& sum_hi) {
  __m256i i32[4];
  for (int p = 0; p < 4; ++p) {
    __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * p), id));  // nearest even
    v = _mm256_max_epi32(_mm256_min_epi32(v, _mm256_set1_epi32(127)), _mm256_set1_epi32(-127));
    i32[p] = v;
  }
  sum_lo = hsum_i32(_mm256_add_epi32(i32[0], i32[1]));
  sum_hi = hsum_i32(_mm256_add_epi32(i32[2], i32[3]));
  // packs interleave the 128-bit lanes; the permutation puts the 8 groups of 4 back in order.
  const __m256i w01 = _mm256_packs_epi32(i32[0], i32[1]), w23 = _mm256_packs_epi32(i32[2], i32[3]);
  return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23),
                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

float block_absmax(const float* x, int count) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < count; i += 8)
    m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask));
  return hmax(m);
}

void quantize_act32_avx2(const float* x, int64_t n, int8_t* q, float* d, float* dsum) {
  for (int64_t b = 0; b < n / QK; ++b) {
    const float scale = block_absmax(x + b * QK, QK) / 127.0f;
    const __m256 id = _mm256_set1_ps(scale > 0.0f ? 1.0f / scale : 0.0f);
    int sum_lo, sum_hi;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * QK),
                        quantize32(x + b * QK, id, sum_lo, sum_hi));
    d[b] = scale;
    dsum[b] = scale * float(sum_lo + sum_hi);
  }
}

void quantize_act256_avx2(const float* x, int64_t n, int8_t* q, float* d, int16_t* bsum) {
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float* xb = x + b * QK_K;
    const float scale = block_absmax(xb, QK_K) / 127.0f;
    const __m256 id = _mm256_set1_ps(scale > 0.0f ? 1.0f / scale : 0.0f);
    for (int j = 0; j < QK_K / 32; ++j) {
      int sum_lo, sum_hi;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * QK_K + 32 * j),
                          quantize32(xb + 32 * j, id, sum_lo, sum_hi));
      bsum[b * (QK_K / 16) + 2 * j] = int16_t(sum_lo);
      bsum[b * (QK_K / 16) + 2 * j + 1] = int16_t(sum_hi);
    }
    d[b] = scale;
  }
}

// ---- quantized tiles, 32-blocks ----

// Per weight type: where the block's fields are, how to get unsigned codes, and what multiplies
// the activation's dsum (the offset or the minimum).
struct Q8_0Traits {
  static constexpr int64_t kBytes = sizeof(BlockQ8_0);
  static constexpr bool kSigned = true;  // sign trick, no dsum term
  static constexpr bool kMin = false;
  static constexpr float kOffset = 0.0f;
  static __m256i codes(const uint8_t* b) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
  }
};
struct Q4_0Traits {
  static constexpr int64_t kBytes = sizeof(BlockQ4_0);
  static constexpr bool kSigned = false;
  static constexpr bool kMin = false;
  static constexpr float kOffset = 8.0f;
  static __m256i codes(const uint8_t* b) { return nibbles32(b + 2); }
};
struct Q4_1Traits {
  static constexpr int64_t kBytes = sizeof(BlockQ4_1);
  static constexpr bool kSigned = false;
  static constexpr bool kMin = true;
  static constexpr float kOffset = 0.0f;
  static __m256i codes(const uint8_t* b) { return nibbles32(b + 4); }
};
struct Q5_0Traits {
  static constexpr int64_t kBytes = sizeof(BlockQ5_0);
  static constexpr bool kSigned = false;
  static constexpr bool kMin = false;
  static constexpr float kOffset = 16.0f;
  static __m256i codes(const uint8_t* b) {
    return _mm256_or_si256(nibbles32(b + 6), fifth_bits32(b + 2));
  }
};
struct Q5_1Traits {
  static constexpr int64_t kBytes = sizeof(BlockQ5_1);
  static constexpr bool kSigned = false;
  static constexpr bool kMin = true;
  static constexpr float kOffset = 0.0f;
  static __m256i codes(const uint8_t* b) {
    return _mm256_or_si256(nibbles32(b + 8), fifth_bits32(b + 4));
  }
};

template <class W>
__m256i int_dot32(__m256i w, __m256i x) {
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (W::kSigned)
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)),
                             ones);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones);
}

constexpr int kChunk = 64;  // blocks whose combined scales are prepared at once

// The fp16 fields `stride` bytes apart of `count` (<= 8) consecutive blocks, as 8 floats (0 past
// count). Inserted into a register one by one: storing them to memory for one vector load would
// stall on store forwarding.
__m256 halves8(const uint8_t* p, int64_t stride, int count) {
  __m128i h = _mm_setzero_si128();
  if (count == 8) {
    h = _mm_insert_epi16(h, load_u16(p), 0);
    h = _mm_insert_epi16(h, load_u16(p + stride), 1);
    h = _mm_insert_epi16(h, load_u16(p + 2 * stride), 2);
    h = _mm_insert_epi16(h, load_u16(p + 3 * stride), 3);
    h = _mm_insert_epi16(h, load_u16(p + 4 * stride), 4);
    h = _mm_insert_epi16(h, load_u16(p + 5 * stride), 5);
    h = _mm_insert_epi16(h, load_u16(p + 6 * stride), 6);
    h = _mm_insert_epi16(h, load_u16(p + 7 * stride), 7);
  } else {
    alignas(16) uint16_t tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < count; ++j) tail[j] = load_u16(p + j * stride);
    h = _mm_load_si128(reinterpret_cast<const __m128i*>(tail));
  }
  return _mm256_cvtph_ps(h);
}

constexpr int kMaxBlocks = 512;  // 32-blocks whose weight scales one call decodes at once
constexpr int kMaxSuper = 8;     // K-quant super-blocks whose scales are decoded at once (in L1)

// A view `tokens` tokens and `blocks` blocks (of `block` activations) further on.
ActView offset_view(const ActView& a, int64_t tokens, int64_t blocks, int block) {
  ActView v = a;
  v.q += tokens * a.q_stride + blocks * block;
  v.d += tokens * a.d_stride + blocks;
  if (v.dsum) v.dsum += tokens * a.d_stride + blocks;
  if (v.bsum) v.bsum += tokens * a.bsum_stride + blocks * (block / 16);
  return v;
}

// R rows x C tokens over nb 32-blocks whose weight scales (dw) and dsum coefficients (coef: the
// minimum, or -offset * d) were decoded by the caller, zero-padded to a multiple of 8. Per chunk
// of blocks, two passes:
//  1. vectorized over 8 blocks at a time: the combined scales s = d_w * d_x of every (row, token,
//     block), and the dsum terms coef * d_x * sum(q_x);
//  2. the integer dots, each converted once and accumulated with one FMA of its combined scale.
template <class W, int R, int C>
void quant32_micro(const uint8_t* w, int64_t wrb, const float (*dw)[kMaxBlocks],
                   const float (*coef)[kMaxBlocks], const ActView& a, int64_t nb, bool prefetch,
                   float* y, int64_t ys, bool accumulate) {
  constexpr bool kDsumTerm = W::kMin || W::kOffset != 0.0f;
  // 8 partial sums per (row, token), the dsum terms included: all summed at the end. Kept in
  // memory across chunks; each chunk's integer pass has its own register accumulators (an array
  // of vectors live across several loops gets stored back every iteration by GCC).
  __m256 total[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) total[r][c] = _mm256_setzero_ps();
  alignas(32) float s[R][C][kChunk];
  for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
    const int n = int(min_i64(kChunk, nb - b0));
    for (int j = 0; j < n; j += 8) {
      const __m256i m = tail_mask(n - j < 8 ? n - j : 8);
      for (int r = 0; r < R; ++r) {
        const __m256 dwv = _mm256_load_ps(&dw[r][b0 + j]);
        for (int c = 0; c < C; ++c) {
          _mm256_store_ps(&s[r][c][j],
                          _mm256_mul_ps(dwv, _mm256_maskload_ps(a.d + c * a.d_stride + b0 + j, m)));
          if constexpr (kDsumTerm)
            total[r][c] = _mm256_fmadd_ps(_mm256_load_ps(&coef[r][b0 + j]),
                                          _mm256_maskload_ps(a.dsum + c * a.d_stride + b0 + j, m),
                                          total[r][c]);
        }
      }
    }
    __m256 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    for (int j = 0; j < n; ++j) {
      __m256i wq[R];
      for (int r = 0; r < R; ++r) {
        const uint8_t* blk = w + r * wrb + (b0 + j) * W::kBytes;
        // The next row group's scale decoding would otherwise wait on memory: fetch the same
        // block of the row R rows down (matmul walks rows in order; past the end it is harmless).
        // Every other block is enough: two blocks span less than a cache line.
        if (prefetch && (j & 1) == 0) _mm_prefetch(reinterpret_cast<const char*>(blk + R * wrb), _MM_HINT_T0);
        wq[r] = W::codes(blk);
      }
      for (int c = 0; c < C; ++c) {
        const __m256i xq = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(a.q + c * a.q_stride + (b0 + j) * QK));
        for (int r = 0; r < R; ++r)
          acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(int_dot32<W>(wq[r], xq)),
                                      _mm256_broadcast_ss(&s[r][c][j]), acc[r][c]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) total[r][c] = _mm256_add_ps(total[r][c], acc[r][c]);
  }
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) {
      const float v = hsum(total[r][c]);
      float& out = y[c * ys + r];
      out = accumulate ? out + v : v;
    }
}

// R rows against every token, nb <= kMaxBlocks: the rows' scales decoded once, then the tokens
// in groups of up to 4 (the codes are unpacked once per group).
template <class W, int R>
void quant32_rows(const uint8_t* w, int64_t wrb, const ActView& a, int64_t n_tokens, int64_t nb,
                  float* y, int64_t ys, bool accumulate) {
  constexpr bool kDsumTerm = W::kMin || W::kOffset != 0.0f;
  alignas(32) float dw[R][kMaxBlocks];
  alignas(32) float coef[kDsumTerm ? R : 1][kMaxBlocks];
  for (int r = 0; r < R; ++r)
    for (int64_t j = 0; j < nb; j += 8) {
      const int count = int(min_i64(8, nb - j));
      const uint8_t* first = w + r * wrb + j * W::kBytes;
      const __m256 d = halves8(first, W::kBytes, count);
      _mm256_store_ps(&dw[r][j], d);
      if constexpr (W::kMin) _mm256_store_ps(&coef[r][j], halves8(first + 2, W::kBytes, count));
      if constexpr (W::kOffset != 0.0f)
        _mm256_store_ps(&coef[r][j], _mm256_mul_ps(d, _mm256_set1_ps(-W::kOffset)));
    }
  for (int64_t t0 = 0; t0 < n_tokens; t0 += 4) {
    const ActView at = offset_view(a, t0, 0, QK);
    const bool prefetch = t0 == 0;
    float* yt = y + t0 * ys;
    switch (min_i64(4, n_tokens - t0)) {
      case 1:
        quant32_micro<W, R, 1>(w, wrb, dw, coef, at, nb, prefetch, yt, ys, accumulate);
        break;
      case 2:
        quant32_micro<W, R, 2>(w, wrb, dw, coef, at, nb, prefetch, yt, ys, accumulate);
        break;
      case 3:
        quant32_micro<W, R, 3>(w, wrb, dw, coef, at, nb, prefetch, yt, ys, accumulate);
        break;
      default:
        quant32_micro<W, R, 4>(w, wrb, dw, coef, at, nb, prefetch, yt, ys, accumulate);
        break;
    }
  }
}

// One token: rows 4 at a time (4 independent chains, 4 weight streams); more: 2 rows x 4 tokens
// (8 accumulators, the 16 ymm registers' limit).
template <class W>
void quant_tile_32(const uint8_t* w, int64_t wrb, int n_rows, const ActView& a, int64_t n_tokens,
                   int64_t nb, float* y, int64_t ys, bool accumulate) {
  for (int64_t b0 = 0; b0 < nb; b0 += kMaxBlocks) {
    const int64_t n = min_i64(kMaxBlocks, nb - b0);
    const uint8_t* wb = w + b0 * W::kBytes;
    const ActView ab = offset_view(a, 0, b0, QK);
    const bool acc = accumulate || b0 > 0;
    int r = 0;
    if (n_tokens == 1)
      for (; r + 4 <= n_rows; r += 4)
        quant32_rows<W, 4>(wb + r * wrb, wrb, ab, n_tokens, n, y + r, ys, acc);
    for (; r + 2 <= n_rows; r += 2)
      quant32_rows<W, 2>(wb + r * wrb, wrb, ab, n_tokens, n, y + r, ys, acc);
    for (; r < n_rows; ++r) quant32_rows<W, 1>(wb + r * wrb, wrb, ab, n_tokens, n, y + r, ys, acc);
  }
}

// ---- quantized tiles, Q4_0 rows interleaved by 8 (ops/repack.h) ----
//
// Each record (block j of 8 rows) is 8 fp16 scales, then 4 vectors of 32 code bytes: vector v,
// lane r = bytes 4v..4v+3 of row r, whose low nibbles are codes 4v..4v+3 and high nibbles codes
// 16+4v..16+4v+3. One maddubs against 4 activation codes broadcast to every lane advances all 8
// rows; the block's integer dots of the 8 rows end in one vector: one conversion and one FMA per
// 8 rows and token.
//
// Every (row, token) result is the same chain of float operations whatever the token count, the
// row count or the column panel (per block, in order: acc = fma(dot, d_w d_x, acc), then
// acc = fma(-8 d_w, dsum, acc), carried through y between calls): a sequence gets bit-identical
// logits alone or batched with others.

constexpr int kInterleaved = 8;
constexpr int64_t kRecordQ4_0 = kInterleaved * int64_t(sizeof(BlockQ4_0));
// Decode streams each record once: fetching 4.5 KiB ahead, non-temporally, keeps enough lines in
// flight to hide DRAM latency (measured on Zen 3: 2 threads read a 530 MB Q4_0 matrix at ~50 GB/s
// instead of ~35 with the hardware prefetcher alone; nearer or T0 fetches did worse).
constexpr int64_t kPrefetchAhead = 4608;

// Prefetches every 64-byte line of the record of `bytes` bytes kPrefetchAhead past `rec`.
void prefetch_record(const uint8_t* rec, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64)
    _mm_prefetch(reinterpret_cast<const char*>(rec + kPrefetchAhead + off), _MM_HINT_NTA);
}

__m256i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// The sums of adjacent int16 pairs, as int32. Shifts rather than madd with ones: the multiplier
// pipe (one per Zen 3 core) is the bottleneck of the tile, already busy with the maddubs.
__m256i pair_sums(__m256i v) {
  return _mm256_add_epi32(_mm256_srai_epi32(v, 16), _mm256_srai_epi32(_mm256_slli_epi32(v, 16), 16));
}

// C tokens (up to 4: the block's 8 code vectors stay in registers) against the group's nb blocks.
template <int C>
void q4_0x8_tokens(const uint8_t* w, const ActView& a, int64_t nb, float* y, int64_t ys,
                   __m256i row_mask, bool accumulate) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc[C];
  for (int c = 0; c < C; ++c)
    acc[c] = accumulate ? _mm256_maskload_ps(y + c * ys, row_mask) : _mm256_setzero_ps();
  for (int64_t j = 0; j < nb; ++j) {
    const uint8_t* rec = w + j * kRecordQ4_0;
    if (C == 1) prefetch_record(rec, kRecordQ4_0);
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rec)));
    const __m256 coef = _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));
    __m256i codes[8];  // codes[v] pairs with activation codes 4v..4v+3
    for (int v = 0; v < 4; ++v) {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 16 + 32 * v));
      codes[v] = _mm256_and_si256(raw, m4);
      codes[v + 4] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
    }
    for (int c = 0; c < C; ++c) {
      const int8_t* xq = a.q + c * a.q_stride + j * QK;
      // Two partial sums for a shorter dependency chain; 8 pairs of 15 * 127 fit in int16.
      __m256i s0 = _mm256_maddubs_epi16(codes[0], broadcast4(xq));
      __m256i s1 = _mm256_maddubs_epi16(codes[1], broadcast4(xq + 4));
      for (int v = 2; v < 8; v += 2) {
        s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(codes[v], broadcast4(xq + 4 * v)));
        s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(codes[v + 1], broadcast4(xq + 4 * v + 4)));
      }
      const __m256 dot = _mm256_cvtepi32_ps(pair_sums(_mm256_add_epi16(s0, s1)));
      const int64_t di = c * a.d_stride + j;
      acc[c] = _mm256_fmadd_ps(dot, _mm256_mul_ps(d, _mm256_broadcast_ss(a.d + di)), acc[c]);
      acc[c] = _mm256_fmadd_ps(coef, _mm256_broadcast_ss(a.dsum + di), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) _mm256_maskstore_ps(y + c * ys, row_mask, acc[c]);
}


// ---- quantized tiles, Q8_0 rows interleaved by 8 (ops/repack.h) ----
//
// Records of 8 fp16 scales then 8 vectors of 32 bytes (vector v, lane r: codes 4v..4v+3 of row
// r). Signed codes use the sign trick (|w| times x with w's sign); a pair of such products can
// reach 2 * 127 * 128, so each maddubs is widened to int32 before the sum. Same float chain per
// (row, token) as the Q4_0 tile, without the offset term.

constexpr int64_t kRecordQ8_0 = kInterleaved * int64_t(sizeof(BlockQ8_0));

template <int C>
void q8_0x8_tokens(const uint8_t* w, const ActView& a, int64_t nb, float* y, int64_t ys,
                   __m256i row_mask, bool accumulate) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[C];
  for (int c = 0; c < C; ++c)
    acc[c] = accumulate ? _mm256_maskload_ps(y + c * ys, row_mask) : _mm256_setzero_ps();
  for (int64_t j = 0; j < nb; ++j) {
    const uint8_t* rec = w + j * kRecordQ8_0;
    if (C == 1) prefetch_record(rec, kRecordQ8_0);
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rec)));
    __m256i codes[8];
    for (int v = 0; v < 8; ++v)
      codes[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 16 + 32 * v));
    for (int c = 0; c < C; ++c) {
      const int8_t* xq = a.q + c * a.q_stride + j * QK;
      __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
      for (int v = 0; v < 8; v += 2) {
        const __m256i p0 = _mm256_maddubs_epi16(_mm256_sign_epi8(codes[v], codes[v]),
                                                _mm256_sign_epi8(broadcast4(xq + 4 * v), codes[v]));
        const __m256i p1 =
            _mm256_maddubs_epi16(_mm256_sign_epi8(codes[v + 1], codes[v + 1]),
                                 _mm256_sign_epi8(broadcast4(xq + 4 * v + 4), codes[v + 1]));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p0, ones));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p1, ones));
      }
      const __m256 dot = _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1));
      acc[c] = _mm256_fmadd_ps(
          dot, _mm256_mul_ps(d, _mm256_broadcast_ss(a.d + c * a.d_stride + j)), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) _mm256_maskstore_ps(y + c * ys, row_mask, acc[c]);
}

// ---- quantized tiles, Q4_K rows interleaved by 8 (ops/repack.h) ----
//
// Record of 1152 bytes: 8 fp16 d, 8 fp16 dmin, the packed 6-bit scales as 3 slices of 4 bytes
// (lane r of slice t: bytes 4t..4t+3 of row r's 12), then 32 code slices (lane r of slice q:
// bytes 4q..4q+3 of row r's 128). The scales of all 8 rows decode with a few vector operations
// (the word trick of k4_scales, lane by lane). Sub-block k (32 codes) sums 8 maddubs in int16
// (8 pairs of 15 * 127 fit) and takes its scale with one madd; the minimums' term is a second
// integer vector per token. Per record and token: acc = fma(dots, d_w d_x, acc), then
// acc = fnmadd(mins, dmin_w d_x, acc): the same chain for any token count or column panel.

constexpr int64_t kRecordQ4_K = kInterleaved * int64_t(sizeof(BlockQ4_K));

// pshufb masks, per 32-bit lane: byte b of the lane as an int16, twice (a scale pair for madd).
alignas(32) const int8_t kLaneByteTwice[4][32] = {
    {0, -128, 0, -128, 4, -128, 4, -128, 8, -128, 8, -128, 12, -128, 12, -128,
     0, -128, 0, -128, 4, -128, 4, -128, 8, -128, 8, -128, 12, -128, 12, -128},
    {1, -128, 1, -128, 5, -128, 5, -128, 9, -128, 9, -128, 13, -128, 13, -128,
     1, -128, 1, -128, 5, -128, 5, -128, 9, -128, 9, -128, 13, -128, 13, -128},
    {2, -128, 2, -128, 6, -128, 6, -128, 10, -128, 10, -128, 14, -128, 14, -128,
     2, -128, 2, -128, 6, -128, 6, -128, 10, -128, 10, -128, 14, -128, 14, -128},
    {3, -128, 3, -128, 7, -128, 7, -128, 11, -128, 11, -128, 15, -128, 15, -128,
     3, -128, 3, -128, 7, -128, 7, -128, 11, -128, 11, -128, 15, -128, 15, -128}};
// Bytes 2h and 2h + 1 of each 32-bit lane as two int16: the minimums of sub-blocks 2h, 2h + 1.
alignas(32) const int8_t kLaneBytePair[2][32] = {
    {0, -128, 1, -128, 4, -128, 5, -128, 8, -128, 9, -128, 12, -128, 13, -128,
     0, -128, 1, -128, 4, -128, 5, -128, 8, -128, 9, -128, 12, -128, 13, -128},
    {2, -128, 3, -128, 6, -128, 7, -128, 10, -128, 11, -128, 14, -128, 15, -128,
     2, -128, 3, -128, 6, -128, 7, -128, 10, -128, 11, -128, 14, -128, 15, -128}};

__m256i load_mask(const int8_t* m) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}

template <int C>
void q4_kx8_tokens(const uint8_t* w, const ActView& a, int64_t nb, float* y, int64_t ys,
                   __m256i row_mask, bool accumulate) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m6 = _mm256_set1_epi8(0x3F),
                top2 = _mm256_set1_epi8(0x30);
  __m256 acc[C];
  for (int c = 0; c < C; ++c)
    acc[c] = accumulate ? _mm256_maskload_ps(y + c * ys, row_mask) : _mm256_setzero_ps();
  for (int64_t j = 0; j < nb; ++j) {
    const uint8_t* rec = w + j * kRecordQ4_K;
    if (C == 1) prefetch_record(rec, kRecordQ4_K);
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rec)));
    const __m256 dmin =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + 16)));
    // Lane r of sc[0] / sc[1]: the scales of sub-blocks 0-3 / 4-7 of row r; mn likewise.
    const __m256i u0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 32)),
                  u1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 64)),
                  u2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 96));
    const __m256i sc[2] = {
        _mm256_and_si256(u0, m6),
        _mm256_or_si256(_mm256_and_si256(u2, m4),
                        _mm256_and_si256(_mm256_srli_epi32(u0, 2), top2))};
    const __m256i mn[2] = {
        _mm256_and_si256(u1, m6),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u2, 4), m4),
                        _mm256_and_si256(_mm256_srli_epi32(u1, 2), top2))};
    __m256i isum[C];
    for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
    for (int k = 0; k < 8; ++k) {  // sub-block k: low (k even) or high nibbles of chunk k / 2
      const __m256i scale = _mm256_shuffle_epi8(sc[k / 4], load_mask(kLaneByteTwice[k % 4]));
      const uint8_t* slices = rec + 128 + 32 * 8 * (k / 2);
      __m256i codes[8];
      for (int i = 0; i < 8; ++i) {
        const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(slices + 32 * i));
        codes[i] = _mm256_and_si256((k & 1) ? _mm256_srli_epi16(raw, 4) : raw, m4);
      }
      for (int c = 0; c < C; ++c) {
        const int8_t* xq = a.q + c * a.q_stride + j * QK_K + 32 * k;
        __m256i s0 = _mm256_maddubs_epi16(codes[0], broadcast4(xq));
        __m256i s1 = _mm256_maddubs_epi16(codes[1], broadcast4(xq + 4));
        for (int i = 2; i < 8; i += 2) {
          s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(codes[i], broadcast4(xq + 4 * i)));
          s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(codes[i + 1], broadcast4(xq + 4 * i + 4)));
        }
        isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(_mm256_add_epi16(s0, s1), scale));
      }
    }
    // Minimums: lane r of pairs[h] holds (min_r(2h), min_r(2h + 1)) as int16.
    __m256i pairs[4];
    for (int h = 0; h < 4; ++h)
      pairs[h] = _mm256_shuffle_epi8(mn[h / 2], load_mask(kLaneBytePair[h % 2]));
    for (int c = 0; c < C; ++c) {
      // Sums of the 8 runs of 32 activations: lane i of the low half run i (i < 4), of the
      // high half run 4 + i; each pair (2h, 2h + 1) broadcast against pairs[h].
      const __m256i runs16 = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(a.bsum + c * a.bsum_stride + j * (QK_K / 16)));
      const __m256i runs32 = _mm256_hadd_epi16(runs16, runs16);
      __m256i imin = _mm256_setzero_si256();
      for (int h = 0; h < 4; ++h)
        imin = _mm256_add_epi32(
            imin, _mm256_madd_epi16(pairs[h], _mm256_permutevar8x32_epi32(
                                                  runs32, _mm256_set1_epi32(h < 2 ? h : h + 2))));
      const __m256 dx = _mm256_broadcast_ss(a.d + c * a.d_stride + j);
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(d, dx), acc[c]);
      acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(imin), _mm256_mul_ps(dmin, dx), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) _mm256_maskstore_ps(y + c * ys, row_mask, acc[c]);
}

// Tokens in groups of up to 4 (each group's weights are unpacked once per record).
template <template <int> class Tokens>
void interleaved_tile(const uint8_t* w, int64_t, int n_rows, const ActView& a, int64_t n_tokens,
                      int64_t nb, float* y, int64_t ys, bool accumulate) {
  const __m256i row_mask = tail_mask(n_rows);
  for (int64_t t0 = 0; t0 < n_tokens; t0 += 4) {
    const ActView at = offset_view(a, t0, 0, QK);
    float* yt = y + t0 * ys;
    switch (min_i64(4, n_tokens - t0)) {
      case 1:
        Tokens<1>::run(w, at, nb, yt, ys, row_mask, accumulate);
        break;
      case 2:
        Tokens<2>::run(w, at, nb, yt, ys, row_mask, accumulate);
        break;
      case 3:
        Tokens<3>::run(w, at, nb, yt, ys, row_mask, accumulate);
        break;
      default:
        Tokens<4>::run(w, at, nb, yt, ys, row_mask, accumulate);
        break;
    }
  }
}
template <int C>
struct Q4_0x8 {
  static void run(const uint8_t* w, const ActView& a, int64_t nb, float* y, int64_t ys,
                  __m256i mask, bool accumulate) {
    q4_0x8_tokens<C>(w, a, nb, y, ys, mask, accumulate);
  }
};
template <int C>
struct Q4_Kx8 {
  static void run(const uint8_t* w, const ActView& a, int64_t nb, float* y, int64_t ys,
                  __m256i mask, bool accumulate) {
    q4_kx8_tokens<C>(w, a, nb, y, ys, mask, accumulate);
  }
};
template <int C>
struct Q8_0x8 {
  static void run(const uint8_t* w, const ActView& a, int64_t nb, float* y, int64_t ys,
                  __m256i mask, bool accumulate) {
    q8_0x8_tokens<C>(w, a, nb, y, ys, mask, accumulate);
  }
};

// ---- quantized tiles, K-quants (256-blocks), one row at a time ----

// Sum over the 16 runs of 16 of coef[s] * bsum[s] (both int16), as an int.
int dot_runs(__m256i coef, const int16_t* bsum) {
  return hsum_i32(
      _mm256_madd_epi16(coef, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsum))));
}

// Fetches the super-block two scale passes ahead (its 144-210 bytes): the scale pass of a chunk
// would otherwise wait on memory.
void prefetch_super(const uint8_t* p, int64_t block_bytes) {
  const char* ahead = reinterpret_cast<const char*>(p + 2 * kMaxSuper * block_bytes);
  for (int64_t off = 0; off < block_bytes; off += 64) _mm_prefetch(ahead + off, _MM_HINT_T0);
}

// A row's super-block scales, decoded once for all its tokens.
struct KScales {
  float d[kMaxSuper], dmin[kMaxSuper];
  alignas(
      32) int16_t sc[kMaxSuper][16];  // Q4_K/Q5_K: scale of sub-block j at [j]; Q6_K: the 16 scales
  alignas(
      32) int16_t mn[kMaxSuper][16];  // Q4_K/Q5_K: min of each run of 16 (sub-block j at 2j, 2j+1)
};

template <bool kFifthBit>
void k4_scales(const uint8_t* row, int64_t nb, KScales& ks) {
  constexpr int64_t kBytes = kFifthBit ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = row + b * kBytes;
    ks.d[b] = half_to_float(load_u16(p));
    ks.dmin[b] = half_to_float(load_u16(p + 2));
    // The 12 bytes of 6-bit scales and minimums, 4 sub-blocks per 32-bit word: sub-blocks 0-3
    // are the low 6 bits of bytes 0-3 (scales) and 4-7 (minimums); 4-7 take their low 4 bits
    // from bytes 8-11 and their top 2 from the top bits of bytes 0-3 / 4-7.
    const uint32_t u0 = load_u32(p + 4), u1 = load_u32(p + 8), u2 = load_u32(p + 12);
    const uint64_t sc = uint64_t(u0 & 0x3F3F3F3Fu) |
                        uint64_t((u2 & 0x0F0F0F0Fu) | ((u0 >> 2) & 0x30303030u)) << 32;
    const uint64_t mn = uint64_t(u1 & 0x3F3F3F3Fu) |
                        uint64_t(((u2 >> 4) & 0x0F0F0F0Fu) | ((u1 >> 2) & 0x30303030u)) << 32;
    _mm_store_si128(reinterpret_cast<__m128i*>(ks.sc[b]),
                    _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sc))));
    const __m128i mn8 = _mm_cvtsi64_si128(int64_t(mn));
    _mm256_store_si256(reinterpret_cast<__m256i*>(ks.mn[b]),
                       _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn8, mn8)));  // each min twice
  }
}

template <bool kFifthBit, int C>
void k4_tokens(const uint8_t* row, const KScales& ks, const ActView& a, int64_t nb, bool prefetch,
               float* out) {
  constexpr int64_t kBytes = kFifthBit ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  constexpr int kQs = kFifthBit ? 48 : 16;
  __m256 acc[C];
  float mins[C];
  for (int c = 0; c < C; ++c) {
    acc[c] = _mm256_setzero_ps();
    mins[c] = 0.0f;
  }
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = row + b * kBytes;
    if (prefetch) prefetch_super(p, kBytes);
    const __m256i qh = kFifthBit ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16))
                                 : _mm256_setzero_si256();
    __m256i isum[C];
    for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
    for (int ch = 0; ch < 4; ++ch) {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kQs + 32 * ch));
      __m256i lo = _mm256_and_si256(raw, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
      if (kFifthBit) {
        const __m256i bit_lo = _mm256_set1_epi8(char(1 << (2 * ch))),
                      bit_hi = _mm256_set1_epi8(char(2 << (2 * ch)));
        lo = _mm256_or_si256(
            lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit_lo), bit_lo),
                                 _mm256_set1_epi8(0x10)));
        hi = _mm256_or_si256(
            hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit_hi), bit_hi),
                                 _mm256_set1_epi8(0x10)));
      }
      const __m256i sc_lo = _mm256_set1_epi16(ks.sc[b][2 * ch]),
                    sc_hi = _mm256_set1_epi16(ks.sc[b][2 * ch + 1]);
      for (int c = 0; c < C; ++c) {
        const int8_t* xq = a.q + c * a.q_stride + b * QK_K + 64 * ch;
        const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
        const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32));
        isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), sc_lo));
        isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), sc_hi));
      }
    }
    const __m256i mn = _mm256_load_si256(reinterpret_cast<const __m256i*>(ks.mn[b]));
    for (int c = 0; c < C; ++c) {
      const float dx = a.d[c * a.d_stride + b];
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_set1_ps(ks.d[b] * dx), acc[c]);
      mins[c] +=
          (ks.dmin[b] * dx) * float(dot_runs(mn, a.bsum + c * a.bsum_stride + b * (QK_K / 16)));
    }
  }
  for (int c = 0; c < C; ++c) out[c] = hsum(acc[c]) - mins[c];
}

void q6k_scales(const uint8_t* row, int64_t nb, KScales& ks) {
  for (int64_t b = 0; b < nb; ++b)
    ks.d[b] = half_to_float(load_u16(row + b * int64_t(sizeof(BlockQ6_K)) + 208));
}

// pshufb masks: for the pair of sub-block scales (2p, 2p + 1), byte 2p eight times then byte
// 2p + 1 eight times; widened to int16 they scale the two halves of a 32-code run.
alignas(16) const int8_t kScalePairs[8][16] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9},
    {10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13},
    {14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15}};

// The codes carry +32: the offset 32 * sum_s sc_s * bsum_s is taken out of the integer sums
// (exact), so each super-block ends in one conversion and one FMA per token.
template <int C>
void q6k_tokens(const uint8_t* row, const KScales& ks, const ActView& a, int64_t nb, bool prefetch,
                float* out) {
  __m256 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = row + b * int64_t(sizeof(BlockQ6_K));
    if (prefetch) prefetch_super(p, sizeof(BlockQ6_K));
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 192));
    __m256i isum[C];
    for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      __m256i q[4];
      q6k_codes(p + 64 * h, p + 128 + 32 * h, q);
      for (int g = 0; g < 4; ++g) {
        // bytes 0-15 of run g use scale 8h + 2g, bytes 16-31 scale 8h + 2g + 1
        const __m256i scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(
            sc8, _mm_load_si128(reinterpret_cast<const __m128i*>(kScalePairs[4 * h + g]))));
        for (int c = 0; c < C; ++c) {
          const __m256i xq = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(a.q + c * a.q_stride + b * QK_K + 128 * h + 32 * g));
          isum[c] =
              _mm256_add_epi32(isum[c], _mm256_madd_epi16(_mm256_maddubs_epi16(q[g], xq), scv));
        }
      }
    }
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    for (int c = 0; c < C; ++c) {
      const __m256i runs = _mm256_madd_epi16(
          sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                    a.bsum + c * a.bsum_stride + b * (QK_K / 16))));
      const __m256i dot = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(runs, 5));
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                               _mm256_set1_ps(ks.d[b] * a.d[c * a.d_stride + b]), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) out[c] = hsum(acc[c]);
}

// One row at a time, in chunks of kMaxSuper super-blocks: the chunk's scales decoded once, then
// its tokens in groups of up to 4 (partial sums added into y).
template <class ScalesFn, class TokensFn>
void quant256_tile(ScalesFn scales_fn, TokensFn tokens_fn, int64_t block_bytes, const uint8_t* w,
                   int64_t wrb, int n_rows, const ActView& a, int64_t n_tokens, int64_t nb,
                   float* y, int64_t ys, bool accumulate) {
  KScales ks;
  for (int r = 0; r < n_rows; ++r)
    for (int64_t b0 = 0; b0 < nb; b0 += kMaxSuper) {  // along the row: prefetching runs ahead in it
      const int64_t n = min_i64(kMaxSuper, nb - b0);
      const ActView ab = offset_view(a, 0, b0, QK_K);
      const uint8_t* row = w + r * wrb + b0 * block_bytes;
      scales_fn(row, n, ks);
      for (int64_t t0 = 0; t0 < n_tokens; t0 += 4) {
        float v[4];
        const int c_count = int(min_i64(4, n_tokens - t0));
        tokens_fn(row, ks, offset_view(ab, t0, 0, QK_K), n, c_count, t0 == 0, v);
        for (int c = 0; c < c_count; ++c) {
          float& out = y[(t0 + c) * ys + r];
          out = accumulate || b0 > 0 ? out + v[c] : v[c];
        }
      }
    }
}

template <bool kFifthBit>
void quant_tile_k4(const uint8_t* w, int64_t wrb, int n_rows, const ActView& a, int64_t n_tokens,
                   int64_t nb, float* y, int64_t ys, bool accumulate) {
  auto tokens = [](const uint8_t* row, const KScales& ks, const ActView& at, int64_t n, int c,
                   bool prefetch, float* v) {
    switch (c) {
      case 1:
        return k4_tokens<kFifthBit, 1>(row, ks, at, n, prefetch, v);
      case 2:
        return k4_tokens<kFifthBit, 2>(row, ks, at, n, prefetch, v);
      case 3:
        return k4_tokens<kFifthBit, 3>(row, ks, at, n, prefetch, v);
      default:
        return k4_tokens<kFifthBit, 4>(row, ks, at, n, prefetch, v);
    }
  };
  quant256_tile(k4_scales<kFifthBit>, tokens, kFifthBit ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K), w,
                wrb, n_rows, a, n_tokens, nb, y, ys, accumulate);
}

void quant_tile_q6_k(const uint8_t* w, int64_t wrb, int n_rows, const ActView& a, int64_t n_tokens,
                     int64_t nb, float* y, int64_t ys, bool accumulate) {
  auto tokens = [](const uint8_t* row, const KScales& ks, const ActView& at, int64_t n, int c,
                   bool prefetch, float* v) {
    switch (c) {
      case 1:
        return q6k_tokens<1>(row, ks, at, n, prefetch, v);
      case 2:
        return q6k_tokens<2>(row, ks, at, n, prefetch, v);
      case 3:
        return q6k_tokens<3>(row, ks, at, n, prefetch, v);
      default:
        return q6k_tokens<4>(row, ks, at, n, prefetch, v);
    }
  };
  quant256_tile(q6k_scales, tokens, sizeof(BlockQ6_K), w, wrb, n_rows, a, n_tokens, nb, y, ys,
                accumulate);
}

}  // namespace

void fill_avx2_kernels(KernelTable& t) {
  t.dot_f32 = dot_f32_avx2;
  t.axpy_f32 = axpy_f32_avx2;
  t.scale_f32 = scale_f32_avx2;
  t.geglu_f32 = geglu_f32_avx2;
  t.softcap_f32 = softcap_f32_avx2;
  t.quantize_act32 = quantize_act32_avx2;
  t.quantize_act256 = quantize_act256_avx2;
  t.float_tile = float_tile_avx2;
  t.dequantize[size_t(GgmlType::F16)] = dequantize_f16_avx2;
  t.dequantize[size_t(GgmlType::BF16)] = dequantize_bf16_avx2;
  t.dequantize[size_t(GgmlType::Q8_0)] = dequantize_q8_0_avx2;
  t.dequantize[size_t(GgmlType::Q4_0)] = dequantize_q4_0_avx2;
  t.dequantize[size_t(GgmlType::Q4_1)] = dequantize_q4_1_avx2;
  t.dequantize[size_t(GgmlType::Q5_0)] = dequantize_q5_0_avx2;
  t.dequantize[size_t(GgmlType::Q5_1)] = dequantize_q5_1_avx2;
  t.dequantize[size_t(GgmlType::Q4_K)] = dequantize_k4_avx2<false>;
  t.dequantize[size_t(GgmlType::Q5_K)] = dequantize_k4_avx2<true>;
  t.dequantize[size_t(GgmlType::Q6_K)] = dequantize_q6_k_avx2;
  t.quant_tile[size_t(GgmlType::Q8_0)] = quant_tile_32<Q8_0Traits>;
  t.quant_tile[size_t(GgmlType::Q4_0)] = quant_tile_32<Q4_0Traits>;
  t.quant_tile_interleaved[size_t(GgmlType::Q4_0)] = interleaved_tile<Q4_0x8>;
  t.quant_tile_interleaved[size_t(GgmlType::Q8_0)] = interleaved_tile<Q8_0x8>;
  t.quant_tile_interleaved[size_t(GgmlType::Q4_K)] = interleaved_tile<Q4_Kx8>;
  t.quant_tile[size_t(GgmlType::Q4_1)] = quant_tile_32<Q4_1Traits>;
  t.quant_tile[size_t(GgmlType::Q5_0)] = quant_tile_32<Q5_0Traits>;
  t.quant_tile[size_t(GgmlType::Q5_1)] = quant_tile_32<Q5_1Traits>;
  t.quant_tile[size_t(GgmlType::Q4_K)] = quant_tile_k4<false>;
  t.quant_tile[size_t(GgmlType::Q5_K)] = quant_tile_k4<true>;
  t.quant_tile[size_t(GgmlType::Q6_K)] = quant_tile_q6_k;
}

}  // namespace g4
