// The inner loops of matmul and of the attention helpers, one table of function pointers per CPU
// level (cpu_features.h). kernels_scalar.cpp is the portable reference; x86/kernels_x86.inc and
// arm/kernels_neon*.cpp are the SIMD versions, each compiled with its own ISA flags and chosen at
// run time. tests/test_kernels.cpp checks every SIMD entry against the scalar one.
//
// Two kinds of matrix kernel:
// - float tiles (MatmulMode::kPrecise, and F32/F16/BF16 weights in every mode): weights decoded to
//   float32 (dequantize[type], bit-exact to quant.h's dequantize_row) times float32 activations;
// - quantized tiles (MatmulMode::kFast): the activations are quantized once per matmul to int8
//   blocks (QuantizedActs) and each weight block meets them in integer dot products.
#pragma once

#include <cstdint>

#include "core/ggml_type.h"
#include "ops/cpu_features.h"

namespace g4 {

// Tile of one kernel call: a float tile takes up to kTileRows weight rows and kTileTokens
// activation rows; a quantized tile up to kQuantTileRows weight rows (an interleaved tile up to
// one group of interleaved rows, 8 or 16, ops/repack.h) and any number of activation rows.
constexpr int kTileRows = 4;
constexpr int kTileTokens = 4;
constexpr int kQuantTileRows = 8;

// Activation rows quantized for the integer dot products (x ~ d * q per block, q in [-127, 127],
// d = max|x| / 127, q = x / d rounded to nearest even). Two block shapes, picked by weight type:
//   32-blocks  (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 weights): d, dsum = d * sum(q) (the sum carries the
//              weights' offsets and minimums, as ggml's Q8_1 does) and the integer sum qsum per
//              block (for codes offset to unsigned: the AVX-512 Q8_0 tile);
//   256-blocks (Q4_K, Q5_K, Q6_K weights, ggml's Q8_K): d per block and the integer sum of each
//              run of 16 q (bsum), for the K-quants' sub-block minimums and offsets.
// A view at token 0 and block 0 of a range; strides are per token.
struct ActView {
  const int8_t* q = nullptr;
  int64_t q_stride = 0;  // int8 values between tokens
  const float* d = nullptr;
  const float* dsum = nullptr;    // 32-blocks only
  const int32_t* qsum = nullptr;  // 32-blocks only
  int64_t d_stride = 0;           // values between tokens (d, dsum and qsum)
  const int16_t* bsum = nullptr;  // 256-blocks only
  int64_t bsum_stride = 0;

  // The view `tokens` tokens and `blocks` blocks (of `block` activations) further on.
  ActView offset(int64_t tokens, int64_t blocks, int block) const {
    ActView v = *this;
    v.q += tokens * q_stride + blocks * block;
    v.d += tokens * d_stride + blocks;
    if (v.dsum) v.dsum += tokens * d_stride + blocks;
    if (v.qsum) v.qsum += tokens * d_stride + blocks;
    if (v.bsum) v.bsum += tokens * bsum_stride + blocks * (block / 16);
    return v;
  }
};

// Block size of the quantized activations that weight type `type` pairs with (32 or 256), or 0
// for F32/F16/BF16 (their fast path stays in float).
int act_block_size(GgmlType type);

// Quantizes n activations (n a multiple of the block size) into q[n], d[n / block], and
// dsum[n / 32] and qsum[n / 32] (32-blocks) or bsum[n / 16] (256-blocks).
using QuantizeAct32Fn = void (*)(const float* x, int64_t n, int8_t* q, float* d, float* dsum,
                                 int32_t* qsum);
using QuantizeAct256Fn = void (*)(const float* x, int64_t n, int8_t* q, float* d, int16_t* bsum);

// y[t * y_stride + r] = (or +=, when accumulate) sum over n_blocks weight blocks of W row r
// against activation row t, for r < n_rows <= kQuantTileRows and every t < n_tokens (any count: the
// kernel decodes each weight block's scales once and unpacks its codes once per group of a few
// tokens). `w` is the first block of row 0; rows are w_row_bytes apart.
using QuantTileFn = void (*)(const uint8_t* w, int64_t w_row_bytes, int n_rows, const ActView& act,
                             int64_t n_tokens, int64_t n_blocks, float* y, int64_t y_stride,
                             bool accumulate);

// The float version: y[t * y_stride + r] (+)= sum_{i < k} w[r * w_stride + i] * x[t * x_stride +
// i].
using FloatTileFn = void (*)(const float* w, int64_t w_stride, int n_rows, const float* x,
                             int64_t x_stride, int n_tokens, int64_t k, float* y, int64_t y_stride,
                             bool accumulate);

// The same with fp16 or bf16 weights (w_stride in elements), converted in registers: bit for bit
// what float_tile gives on the rows decoded to float, without the decoded copy (a decode step then
// streams the weights once, straight into the multiplies).
using HalfTileFn = void (*)(const uint16_t* w, int64_t w_stride, int n_rows, const float* x,
                            int64_t x_stride, int n_tokens, int64_t k, float* y, int64_t y_stride,
                            bool accumulate);

// Decodes n weights (whole blocks) of `type` to float, bit-exact to dequantize_row.
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);

constexpr int kTypeSlots = 40;  // GgmlType ids are below this

struct KernelTable {
  CpuLevel level = CpuLevel::kScalar;

  // ops.h: dot, y += a x, y *= s, and the two tanh ops of the forward pass (SIMD versions use a
  // polynomial exp: within 2e-7 absolute of std::tanh, see tests/test_kernels.cpp).
  float (*dot_f32)(const float* a, const float* b, int64_t n) = nullptr;
  void (*axpy_f32)(float a, const float* x, float* y, int64_t n) = nullptr;
  void (*scale_f32)(float s, float* y, int64_t n) = nullptr;
  // For h < n_rows: y[h * y_stride + i] += a[h * a_stride + p] * x[p * x_stride + i], i < d, for
  // p = 0, 1, .., n - 1 in turn: per row h the same operations as axpy_f32 once per p (attention's
  // weighted sum of value rows, several query heads per value row), with y kept in registers.
  void (*axpy_rows_f32)(const float* a, int64_t a_stride, int n_rows, const float* x, int64_t x_stride,
                        int64_t n, float* y, int64_t y_stride, int64_t d) = nullptr;
  // The same with fp16 value rows (x_stride in halves), straight from an F16 KV cache: bit for bit
  // axpy_rows_f32 on the decoded rows.
  void (*axpy_rows_f16)(const float* a, int64_t a_stride, int n_rows, const uint16_t* x,
                        int64_t x_stride, int64_t n, float* y, int64_t y_stride,
                        int64_t d) = nullptr;
  // Attention scores: s[h * s_stride + j] = q_h . key_j for h < n_heads (q_h at q + h * q_stride)
  // and j < n_keys (key j at keys + j * key_stride), each d long. Every score is one fixed chain of
  // operations, whatever n_heads, n_keys or its place in the call (a row's scores do not depend on
  // how its keys were cut into calls), and the fp16 form gives bit for bit what the float form
  // gives on the decoded keys.
  void (*attn_scores_f32)(const float* q, int64_t q_stride, int n_heads, const float* keys,
                          int64_t key_stride, int64_t n_keys, int64_t d, float* s,
                          int64_t s_stride) = nullptr;
  void (*attn_scores_f16)(const float* q, int64_t q_stride, int n_heads, const uint16_t* keys,
                          int64_t key_stride, int64_t n_keys, int64_t d, float* s,
                          int64_t s_stride) = nullptr;
  void (*geglu_f32)(float* gate, const float* up,
                    int64_t n) = nullptr;                         // gate = gelu_tanh(gate) * up
  void (*softcap_f32)(float* x, int64_t n, float cap) = nullptr;  // x = cap * tanh(x / cap)

  QuantizeAct32Fn quantize_act32 = nullptr;
  QuantizeAct256Fn quantize_act256 = nullptr;
  FloatTileFn float_tile = nullptr;

  // Indexed by GgmlType id; null where the type has no such kernel (F32 needs no decoding and,
  // like F16/BF16, has no quantized tile).
  DequantizeFn dequantize[kTypeSlots] = {};
  QuantTileFn quant_tile[kTypeSlots] = {};
  HalfTileFn half_tile[kTypeSlots] = {};  // F16 and BF16 (SIMD levels; the scalar table decodes)
  // The same on weights in the interleaved layout of ops/repack.h (SIMD levels only): `w` is the
  // record of the call's first block in one group of interleave_group_rows[type] rows (records
  // follow each other block by block), the first n_rows of the group's rows are computed,
  // w_row_bytes is not used.
  QuantTileFn quant_tile_interleaved[kTypeSlots] = {};
  int interleave_group_rows[kTypeSlots] = {};  // 8 or 16 where there is such a tile

  DequantizeFn dequantizer(GgmlType type) const { return dequantize[size_t(type)]; }
  QuantTileFn quantized_tile(GgmlType type) const { return quant_tile[size_t(type)]; }
  QuantTileFn interleaved_tile(GgmlType type) const { return quant_tile_interleaved[size_t(type)]; }
  int interleaved_group_rows(GgmlType type) const { return interleave_group_rows[size_t(type)]; }
};

// The table of a supported level (throws g4::Error for one this machine cannot run).
const KernelTable& kernel_table(CpuLevel level);

// The table of selected_cpu_level(), resolved on first use.
const KernelTable& active_kernels();

// Each ISA's translation unit fills in its entries (kernels.cpp builds the tables). The SIMD units
// are compiled with their own ISA flags, so they must not emit any inline function or template
// that other units also use (the linker would keep one copy, possibly the AVX2 one, and the
// baseline binary would die on an older CPU): they keep every helper in an anonymous namespace,
// use no standard library templates, and fill a table instead of constructing one.
// tests/CMakeLists.txt checks their objects for such shared (weak) symbols.
void fill_scalar_kernels(KernelTable& table);
void fill_avx2_kernels(KernelTable& table);          // x86-64 builds only
void fill_avx512_kernels(KernelTable& table);        // x86-64 builds only
void fill_neon_kernels(KernelTable& table);          // aarch64 builds only
void fill_neon_dotprod_kernels(KernelTable& table);  // aarch64 builds only

}  // namespace g4
