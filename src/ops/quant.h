// Weight types: dequantization, quantization and dot products, one scalar reference per type.
// Block layouts are in core/quant_blocks.h. Dequantization is bit-exact to ggml's to_float
// (verified against ../shared/fixtures/gemma4-tiny/deq). SIMD versions (issue 5) must match the
// references here within the tolerance their tests state.
#pragma once

#include <cstdint>

#include "core/ggml_type.h"

namespace g4 {

// Writes n floats (n a multiple of the type's block size) decoded from `src`.
// Supported: every type for which type_is_supported() is true. Throws g4::Error otherwise.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// Encodes n floats (n a multiple of the block size) into `dst` (ggml_row_bytes(type, n) bytes).
// Follows ggml's reference quantizers for the simple types; the K-quants use a search for
// good scales (any valid encoding is readable by every GGUF engine).
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

// sum_i dequant(row)[i] * x[i], with the activations x kept in float32 ("exact-activation mode").
// Scalar reference: accumulates per block in float, blocks summed in float.
float dot_row_ref(GgmlType type, const void* row, const float* x, int64_t n);

}  // namespace g4
