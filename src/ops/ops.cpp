#include "ops/ops.h"

#include <algorithm>
#include <cmath>

#include "ops/kernels.h"

namespace g4 {

float dot_f32(const float* a, const float* b, int64_t n) {
  return active_kernels().dot_f32(a, b, n);
}

void scale_f32(float s, float* y, int64_t n) {
  active_kernels().scale_f32(s, y, n);
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  // Eight partial sums: a single chain of dependent double adds waited ~4 cycles per value (the
  // norms of a 12B decode step were ~0.8% of its time, in a single thread).
  double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) part[k] += double(x[i + k]) * double(x[i + k]);
  for (; i < n; ++i) part[0] += double(x[i]) * double(x[i]);
  const double sum_sq = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  const float scale = float(1.0 / std::sqrt(sum_sq / double(n) + double(eps)));
  if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / double(n);
  double sum_sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sum_sq += (x[i] - mean) * (x[i] - mean);
  const float scale = float(1.0 / std::sqrt(sum_sq / double(n) + double(eps)));
  const float m = float(mean);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * scale * w[i] + b[i];
}

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

void geglu_inplace(float* gate, const float* up, int64_t n) {
  active_kernels().geglu_f32(gate, up, n);
}

void softcap_inplace(float* x, int64_t n, float cap) {
  active_kernels().softcap_f32(x, n, cap);
}

void rope_angles(int64_t pos, int n_rot, float base, const float* factors, float* cos_sin) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    double inv_freq = std::pow(double(base), -2.0 * i / double(n_rot));
    if (factors) inv_freq /= double(factors[i]);
    const double angle = double(pos) * inv_freq;
    cos_sin[2 * i] = float(std::cos(angle));
    cos_sin[2 * i + 1] = float(std::sin(angle));
  }
}

void rope_neox_inplace(float* x, const float* cos_sin, int n_rot) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
    const float a = x[i], b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
  }
}

void softmax_inplace(float* x, int64_t n) {
  const float max_v = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_v);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace g4
