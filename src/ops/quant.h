// Weight types: dequantization, quantization and dot products, one scalar reference per type.
// Block layouts are in core/quant_blocks.h. Dequantization is bit-exact to ggml's to_float
// (verified against ../shared/fixtures/gemma4-tiny/deq). SIMD versions (issue 5) must match the
// references here within the tolerance their tests state.
#pragma once

#include <cstdint>

#include "core/ggml_type.h"

namespace g4 {

// Every function here throws g4::Error, naming the type, when the type is not supported
// (type_is_supported() false) or when n is negative or not a multiple of the block size
// (32 for Q8_0/Q4_0/Q4_1/Q5_0/Q5_1, 256 for the K-quants, 1 for F32/F16/BF16).

// Writes n floats decoded from `src`. Any bytes decode (an fp16 scale may be inf or NaN).
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// Encodes n floats into `dst` (ggml_row_bytes(type, n) bytes).
// - F16/BF16: round to nearest even (inf and NaN kept); F32: copied.
// - Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: ggml's reference quantizers, byte for byte.
// - Q4_K, Q5_K, Q6_K: a least-squares search for the scales (any valid encoding is readable by
//   every GGUF engine); lower RMSE than ggml's reference quantizer on Gaussian weights.
// The block types throw g4::Error for a non-finite input value and for a block whose scale
// does not fit in fp16 (e.g. |x| > 65504 for Q4_1's min, ~8.3e6 for Q8_0).
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

// sum_i dequant(row)[i] * x[i], with the activations x kept in float32 ("exact-activation mode").
// Accumulation order, which the SIMD kernels are tested against: the row is cut into chunks (one
// block of a quantized type; 32 elements of F32/F16/BF16, the last chunk possibly shorter); each
// chunk's products are summed in float with the index ascending, and the chunk sums are added in
// float, in order. The products use exactly dequantize_row's values.
float dot_row_ref(GgmlType type, const void* row, const float* x, int64_t n);

// x := dequantize(quantize(x)): the values a row has after a round trip through `type`, so rows
// used straight from a computation match rows read back from storage of that type (KV cache).
void round_trip_row(GgmlType type, float* x, int64_t n);

}  // namespace g4
