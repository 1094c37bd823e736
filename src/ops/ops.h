// The element-wise and row-wise ops of the Gemma 4 forward pass, plain and in float32.
// One function per op; the forward pass (model/forward.cpp) calls them in order.
#pragma once

#include <cstdint>

namespace g4 {

// sum_i a[i] * b[i] with independent partial sums (accurate: several float accumulators, so the
// error grows like sqrt(n)). SIMD on every level of ops/kernels.h.
float dot_f32(const float* a, const float* b, int64_t n);

// y[i] *= s   (attention: rescaling a running sum when the running maximum grows).
void scale_f32(float s, float* y, int64_t n);

// y = x * (mean(x^2) + eps)^-1/2 * w   (spec §2: Gemma 4 multiplies by the raw weight, not 1+w).
// w == nullptr gives the weightless RMS norm used on V and before the multimodal projections.
// y may alias x.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

// y = (x - mean) / sqrt(var + eps) * w + b   (affine LayerNorm; the vision embedder's, spec §3.3).
// y may alias x.
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps);

// gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), exact (no lookup table).
float gelu_tanh(float x);

// gate[i] = gelu_tanh(gate[i]) * up[i]   (GeGLU).
void geglu_inplace(float* gate, const float* up, int64_t n);

// x[i] = cap * tanh(x[i] / cap)
void softcap_inplace(float* x, int64_t n, float cap);

// Rotary position embedding, NeoX pairing: (x[i], x[i + n_rot/2]) rotated by angle[i]
// for i < n_rot/2; dims >= n_rot pass through. cos_sin holds cos, sin for each i.
void rope_neox_inplace(float* x, const float* cos_sin, int n_rot);

// Fills cos_sin[2i], cos_sin[2i+1] = cos, sin of pos * base^(-2i/n_rot) / factors[i] for
// i < n_rot/2 (factors may be null = 1). The angle is computed in double: at 256K positions a
// float angle would be off by several hundredths of a radian.
void rope_angles(int64_t pos, int n_rot, float base, const float* factors, float* cos_sin);

// In-place softmax of n scores; returns nothing. n >= 1.
void softmax_inplace(float* x, int64_t n);

}  // namespace g4
