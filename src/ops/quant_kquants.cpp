// K-quant quantizers: a least-squares scale (and min) search per sub-block, then quantization of
// those sub-block scales against one fp16 super-block scale, then a small local search over the
// quantized sub-block scales using the exact float32 values the decoder will produce.
//
// Q4_K / Q5_K: x ~ (d * sc) * q - (dmin * m), q in [0, nmax], sc and m 6-bit (0..63).
// Q6_K:        x ~ (d * sc) * (q - 32), q - 32 in [-32, 31], sc a signed byte.
#include "ops/quant_kquants.h"

#include <algorithm>
#include <cmath>

#include "core/half.h"

namespace g4 {
namespace {

// Trial level maps per sub-block: iscale = (levels + k * kTrialStep) / range for |k| <= kTrials.
// Measured on the fixture weights: kTrials 15 lowers Q4_K's RMSE by only 0.1% (0.07006 -> 0.06999)
// for 1.5x the time; 6 raises it by 0.4%.
constexpr int kTrials = 10;
constexpr float kTrialStep = 0.1f;

// Nearest integer in [lo, hi] (halves round up; this is a search, any tie rule will do).
// Branch-free: max(lo, v) maps NaN (0 * inf when a scale underflowed) to lo, and truncating the
// non-negative v - lo + 0.5 is floor.
int nearest_level(float v, int lo, int hi) {
  const float clamped = std::min(std::max(float(lo), v), float(hi));
  return int(clamped - float(lo) + 0.5f) + lo;
}

// ---- asymmetric sub-blocks (Q4_K, Q5_K): x ~ scale * L - min, L in [0, nmax] ----

struct AffineFit {
  float scale = 0.0f;  // >= 0
  float min = 0.0f;    // >= 0: the format subtracts it, so the lowest value it reaches is <= 0
};

// Squared error of the best levels for a given (scale, min). Summed in float, which is plenty for
// comparing candidates.
float affine_error(const float* x, int count, int nmax, float scale, float min) {
  const float inv_scale = scale > 0.0f ? 1.0f / scale : 0.0f;
  float err = 0.0f;
  for (int i = 0; i < count; ++i) {
    const int l = nearest_level((x[i] + min) * inv_scale, 0, nmax);
    const float diff = scale * float(l) - min - x[i];
    err += diff * diff;
  }
  return err;
}

// Maps x to levels round(iscale * (x - lo)) in [0, nmax], then fits (scale, min) to those levels
// by least squares, with min >= 0 enforced. False if degenerate. `sum_x` is the sum of x.
bool fit_affine_for_map(const float* x, int count, int nmax, float lo, float iscale, float sum_x,
                        AffineFit& fit) {
  int s_l = 0, s_ll = 0;  // exact, so det below has no cancellation error
  float s_xl = 0;
  for (int i = 0; i < count; ++i) {
    const int l = nearest_level(iscale * (x[i] - lo), 0, nmax);
    s_l += l;
    s_ll += l * l;
    s_xl += x[i] * float(l);
  }
  const int64_t det = int64_t(count) * s_ll - int64_t(s_l) * s_l;
  if (det <= 0) return false;
  double scale = (double(count) * s_xl - double(s_l) * sum_x) / double(det);
  double offset = (double(s_ll) * sum_x - double(s_l) * s_xl) / double(det);  // x ~ scale*L+offset
  if (offset > 0.0) {  // the format needs offset <= 0
    offset = 0.0;
    scale = double(s_xl) / double(s_ll);
  }
  if (!(scale > 0.0)) return false;
  fit = {float(scale), float(-offset)};
  return true;
}

AffineFit search_affine(const float* x, int count, int nmax) {
  const float lo = std::min(0.0f, *std::min_element(x, x + count));
  const float hi = *std::max_element(x, x + count);
  if (!(hi > lo)) return {0.0f, -lo};  // constant block at lo <= 0: the min alone represents it

  AffineFit best{(hi - lo) / float(nmax), -lo};  // plain min/max mapping as the baseline
  float best_err = affine_error(x, count, nmax, best.scale, best.min);
  float sum_x = 0.0f;
  for (int i = 0; i < count; ++i) sum_x += x[i];
  for (int k = -kTrials; k <= kTrials; ++k) {
    const float iscale = (float(nmax) + kTrialStep * float(k)) / (hi - lo);
    AffineFit fit;
    if (!fit_affine_for_map(x, count, nmax, lo, iscale, sum_x, fit)) continue;
    const float err = affine_error(x, count, nmax, fit.scale, fit.min);
    if (err < best_err) best_err = err, best = fit;
  }
  return best;
}

// The 8 quantized sub-block (scale, min) pairs and super-block scales of a Q4_K/Q5_K block, and
// the chosen levels (256 values in [0, nmax], in element order).
struct AffineSuperBlock {
  uint16_t d = 0;
  uint16_t dmin = 0;
  uint8_t scale[8] = {};
  uint8_t min[8] = {};
  uint8_t levels[QK_K] = {};
};

// Picks the level of every element for sub-block scale d*sc and offset dmin*m exactly as the
// decoder evaluates them; returns the squared error.
double assign_affine_levels(const float* x, int nmax, float step, float offset, uint8_t* levels) {
  double err = 0.0;
  for (int i = 0; i < 32; ++i) {
    const int l = step > 0.0f ? nearest_level((x[i] + offset) / step, 0, nmax) : 0;
    levels[i] = uint8_t(l);
    const double diff = double(step * float(l) - offset) - double(x[i]);
    err += diff * diff;
  }
  return err;
}

AffineSuperBlock quantize_affine_super_block(const float* x, int nmax, GgmlType type,
                                             int64_t block_index) {
  AffineFit fits[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    fits[j] = search_affine(x + 32 * j, 32, nmax);
    max_scale = std::max(max_scale, fits[j].scale);
    max_min = std::max(max_min, fits[j].min);
  }
  AffineSuperBlock out;
  out.d = quant_scale_to_fp16(max_scale / 63.0f, type, block_index);
  out.dmin = quant_scale_to_fp16(max_min / 63.0f, type, block_index);
  const float d = fp16_to_f32(out.d);
  const float dmin = fp16_to_f32(out.dmin);
  for (int j = 0; j < 8; ++j) {
    const int sc0 = d > 0.0f ? nearest_level(fits[j].scale / d, 0, 63) : 0;
    const int m0 = dmin > 0.0f ? nearest_level(fits[j].min / dmin, 0, 63) : 0;
    // Rounding sc and m independently is not always best: try the neighbours as well.
    double best_err = INFINITY;
    uint8_t trial[32];
    for (int sc = std::max(0, sc0 - 1); sc <= std::min(63, sc0 + 1); ++sc) {
      for (int m = std::max(0, m0 - 1); m <= std::min(63, m0 + 1); ++m) {
        const double err =
            assign_affine_levels(x + 32 * j, nmax, d * float(sc), dmin * float(m), trial);
        if (err < best_err) {
          best_err = err;
          out.scale[j] = uint8_t(sc);
          out.min[j] = uint8_t(m);
          std::copy(trial, trial + 32, out.levels + 32 * j);
        }
      }
    }
  }
  return out;
}

// ---- symmetric sub-blocks (Q6_K): x ~ scale * L, L in [-32, 31] ----

float symmetric_error(const float* x, int count, float scale) {
  const float inv_scale = scale != 0.0f ? 1.0f / scale : 0.0f;
  float err = 0.0f;
  for (int i = 0; i < count; ++i) {
    const int l = nearest_level(x[i] * inv_scale, -32, 31);
    const float diff = scale * float(l) - x[i];
    err += diff * diff;
  }
  return err;
}

// Best signed scale. The value of largest |x| may map to -32 (the extra negative level) or +31.
float search_symmetric(const float* x, int count) {
  float amax = 0.0f, vmax = 0.0f;
  for (int i = 0; i < count; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), vmax = x[i];
  if (amax == 0.0f) return 0.0f;

  float best = vmax / -32.0f;
  float best_err = symmetric_error(x, count, best);
  for (const float target : {-32.0f, 31.0f}) {
    for (int k = -kTrials; k <= kTrials; ++k) {
      const float iscale = (target + kTrialStep * float(k)) / vmax;
      float s_xl = 0.0f;
      int s_ll = 0;
      for (int i = 0; i < count; ++i) {
        const int l = nearest_level(iscale * x[i], -32, 31);
        s_xl += x[i] * float(l);
        s_ll += l * l;
      }
      if (s_ll == 0) continue;
      const float scale = s_xl / float(s_ll);
      const float err = symmetric_error(x, count, scale);
      if (err < best_err) best_err = err, best = scale;
    }
  }
  return best;
}

double assign_symmetric_levels(const float* x, float step, int8_t* levels) {
  double err = 0.0;
  for (int i = 0; i < 16; ++i) {
    const int l = step != 0.0f ? nearest_level(x[i] / step, -32, 31) : 0;
    levels[i] = int8_t(l);
    const double diff = double(step * float(l)) - double(x[i]);
    err += diff * diff;
  }
  return err;
}

// The super-block scales and packed sub-block scales/mins of a Q4_K or Q5_K block.
template <class Block>
void store_scales(const AffineSuperBlock& sb, Block& b) {
  b.d = sb.d;
  b.dmin = sb.dmin;
  pack_scale_min_k4(sb.scale, sb.min, b.scales);
}

}  // namespace

void quantize_block(const float* x, int64_t block_index, BlockQ4_K& b) {
  const AffineSuperBlock sb = quantize_affine_super_block(x, 15, GgmlType::Q4_K, block_index);
  b = {};
  store_scales(sb, b);
  for (int c = 0; c < 4; ++c)  // chunk c: sub-block 2c in the low nibbles, 2c+1 in the high ones
    for (int l = 0; l < 32; ++l)
      b.qs[32 * c + l] = uint8_t(sb.levels[64 * c + l] | sb.levels[64 * c + 32 + l] << 4);
}

void quantize_block(const float* x, int64_t block_index, BlockQ5_K& b) {
  const AffineSuperBlock sb = quantize_affine_super_block(x, 31, GgmlType::Q5_K, block_index);
  b = {};
  store_scales(sb, b);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int lo = sb.levels[64 * c + l], hi = sb.levels[64 * c + 32 + l];
      b.qs[32 * c + l] = uint8_t((lo & 0xF) | (hi & 0xF) << 4);
      b.qh[l] |= uint8_t((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
    }
  }
}

void quantize_block(const float* x, int64_t block_index, BlockQ6_K& b) {
  float scales[16];
  float smax = 0.0f, samax = 0.0f;  // signed scale of largest magnitude
  for (int s = 0; s < 16; ++s) {
    scales[s] = search_symmetric(x + 16 * s, 16);
    if (std::fabs(scales[s]) > samax) samax = std::fabs(scales[s]), smax = scales[s];
  }
  b = {};
  // The largest scale maps to -128, the extra negative step of a signed byte.
  b.d = quant_scale_to_fp16(smax / -128.0f, GgmlType::Q6_K, block_index);
  const float d = fp16_to_f32(b.d);
  int8_t levels[QK_K];
  for (int s = 0; s < 16; ++s) {
    const int sc0 = d != 0.0f ? nearest_level(scales[s] / d, -128, 127) : 0;
    double best_err = INFINITY;
    int8_t trial[16];
    for (int sc = std::max(-128, sc0 - 1); sc <= std::min(127, sc0 + 1); ++sc) {
      const double err = assign_symmetric_levels(x + 16 * s, d * float(sc), trial);
      if (err < best_err) {
        best_err = err;
        b.scales[s] = int8_t(sc);
        std::copy(trial, trial + 16, levels + 16 * s);
      }
    }
  }
  // Element e = 128h + 32k + l (k = 0..3, l < 32): its low 4 bits go to ql[64h + l + 32(k & 1)]
  // (high nibble when k >= 2), its top 2 bits to bits 2k..2k+1 of qh[32h + l].
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 4; ++k) {
      for (int l = 0; l < 32; ++l) {
        const int q = levels[128 * h + 32 * k + l] + 32;
        uint8_t& ql = b.ql[64 * h + l + 32 * (k & 1)];
        ql |= uint8_t((q & 0xF) << (k >= 2 ? 4 : 0));
        b.qh[32 * h + l] |= uint8_t((q >> 4) << (2 * k));
      }
    }
  }
}

}  // namespace g4
