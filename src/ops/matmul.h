// y = W x for a batch of activation rows, with W in any supported weight type, used in place.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace g4 {

class ThreadPool;

// kPrecise keeps activations in float32 ("exact-activation mode", what the fixture references
// compute). kFast may quantize activations (e.g. to 8-bit blocks, as ggml-cpu does) and use
// integer dot products; its accuracy cost is measured against the fixtures (TOLERANCES.md row 5).
enum class MatmulMode { kPrecise, kFast };

// For t < n_tokens: y[t * y_stride + r] = dot(W row r, x[t * x_stride .. + W.cols]) for every
// output row r. Activations stay float32 (the precise, exact-activation path). Rows are split
// across the pool's threads; each weight row is decoded once and used for every token.
void matmul(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, ThreadPool& pool, MatmulMode mode = MatmulMode::kPrecise);

// One row of W decoded to float (embedding lookup).
void weight_row_f32(const WeightMatrix& w, int64_t row, float* out);

}  // namespace g4
