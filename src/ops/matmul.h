// y = W x for a batch of activation rows, with W in any supported weight type, used in place.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace g4 {

class ThreadPool;
struct KernelTable;

// kPrecise keeps activations in float32 ("exact-activation mode", what the fixture references
// compute). kFast quantizes each activation row once per matmul to int8 blocks (32-blocks for
// Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 weights, 256-blocks for the K-quants, as ggml-cpu does) and uses
// integer dot products; F32/F16/BF16 weights stay in float. Its accuracy cost is measured against
// the fixtures (TOLERANCES.md row 5, tests/test_model_fixtures.cpp).
enum class MatmulMode { kPrecise, kFast };

// For t < n_tokens: y[t * y_stride + r] = dot(W row r, x[t * x_stride .. + W.cols]) for every
// output row r. Rows are split across the pool's threads in tiles of kTileRows rows x kTileTokens
// tokens (ops/kernels.h), so each weight block is unpacked once per tile of tokens; with several
// tokens the columns are cut into panels whose activations stay in cache. Uses the kernels of
// selected_cpu_level(). Throws g4::Error for an unsupported type or a row length that is not
// whole blocks.
void matmul(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, ThreadPool& pool, MatmulMode mode = MatmulMode::kPrecise);

// The same with an explicit kernel table (tests compare every CPU level).
void matmul(const KernelTable& kernels, const WeightMatrix& w, const float* x, int64_t x_stride,
            int64_t n_tokens, float* y, int64_t y_stride, ThreadPool& pool, MatmulMode mode);

// One product of matmul_shared_input: y = W x, output row r of token t at y[t * y_stride + r].
struct MatmulOutput {
  const WeightMatrix* w;
  float* y;
  int64_t y_stride;
};

// matmul for several matrices of the same input x (Q, K and V; gate and up), with the same results
// bit for bit as one matmul each, in one pass over the pool: x is quantized once, and a thread
// that finishes its share of one matrix goes on with the next instead of waiting for the others
// (a decoding step then streams its weights with fewer pauses). Every W must have w->cols values
// per row (else g4::Error).
void matmul_shared_input(std::span<const MatmulOutput> outs, const float* x, int64_t x_stride,
                         int64_t n_tokens, ThreadPool& pool, MatmulMode mode = MatmulMode::kPrecise);
void matmul_shared_input(const KernelTable& kernels, std::span<const MatmulOutput> outs,
                         const float* x, int64_t x_stride, int64_t n_tokens, ThreadPool& pool,
                         MatmulMode mode);

// One row of W decoded to float (embedding lookup).
void weight_row_f32(const WeightMatrix& w, int64_t row, float* out);

}  // namespace g4
