// Packed ggml quantization blocks (formats.md §4.2) and the small helpers the quantizers, the
// dequantizers and the SIMD kernels share. A block is read from a weight row with load_block(),
// which copies it, so rows need no particular alignment.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "core/ggml_type.h"

namespace g4 {

static_assert(std::endian::native == std::endian::little,
              "GGUF blocks are little-endian; a big-endian host needs byte swapping here");

constexpr int QK = 32;     // weights per block of the 32-element types (Q8_0, Q4_0, ..., Q5_1)
constexpr int QK_K = 256;  // weights per super-block of the K-quants

// fp16 fields are kept as raw uint16_t bits; convert with core/half.h.

// x[j] = d * qs[j]
struct BlockQ8_0 {
  static constexpr GgmlType kType = GgmlType::Q8_0;
  static constexpr int kElements = QK;
  uint16_t d;
  int8_t qs[QK];
};

// x[j] = ((qs[j] & 0xF) - 8) * d, x[j + 16] = ((qs[j] >> 4) - 8) * d  (j < 16)
struct BlockQ4_0 {
  static constexpr GgmlType kType = GgmlType::Q4_0;
  static constexpr int kElements = QK;
  uint16_t d;
  uint8_t qs[QK / 2];
};

// x[j] = (qs[j] & 0xF) * d + m, x[j + 16] = (qs[j] >> 4) * d + m
struct BlockQ4_1 {
  static constexpr GgmlType kType = GgmlType::Q4_1;
  static constexpr int kElements = QK;
  uint16_t d;
  uint16_t m;
  uint8_t qs[QK / 2];
};

// 5-bit q = low nibble as in Q4_0 | (bit j of the 32-bit little-endian qh) << 4 for element j;
// x = (q - 16) * d
struct BlockQ5_0 {
  static constexpr GgmlType kType = GgmlType::Q5_0;
  static constexpr int kElements = QK;
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[QK / 2];
};

// q as in Q5_0; x = q * d + m
struct BlockQ5_1 {
  static constexpr GgmlType kType = GgmlType::Q5_1;
  static constexpr int kElements = QK;
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[QK / 2];
};

// 8 sub-blocks of 32; 6-bit scale sc and min m per sub-block (see unpack_scale_min_k4);
// x = (d * sc) * q - (dmin * m), q the 4-bit value. Chunk c (64 weights) uses qs[32c .. 32c+31]:
// sub-block 2c in the low nibbles, 2c+1 in the high nibbles.
struct BlockQ4_K {
  static constexpr GgmlType kType = GgmlType::Q4_K;
  static constexpr int kElements = QK_K;
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[QK_K / 2];
};

// As Q4_K with a fifth bit: for chunk c, element l (0..31) of sub-block 2c takes bit 2c of qh[l],
// of sub-block 2c+1 bit 2c+1 of qh[l].
struct BlockQ5_K {
  static constexpr GgmlType kType = GgmlType::Q5_K;
  static constexpr int kElements = QK_K;
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};

// 16 sub-blocks of 16 with signed 8-bit scales; x = (d * scales[s]) * (q - 32), q 6 bits.
// Half h (128 weights) uses ql[64h ..], qh[32h ..], scales[8h ..]; for l < 32 its elements
// l, l+32, l+64, l+96 take (low nibble of ql[l], bits 0-1 of qh[l]), (low ql[l+32], bits 2-3),
// (high ql[l], bits 4-5), (high ql[l+32], bits 6-7), with scales l/16 + 0, 2, 4, 6.
struct BlockQ6_K {
  static constexpr GgmlType kType = GgmlType::Q6_K;
  static constexpr int kElements = QK_K;
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;
};

// Sizes from ggml's ggml-common.h; the same numbers as block_bytes in ggml_type.cpp's table (the
// test QuantBlocks.SizesMatchTypeTable checks them against ggml_type_info at run time).
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

// Block i of a packed row, copied out (rows need no alignment).
template <class Block>
inline Block load_block(const void* row, int64_t i) {
  Block block;
  std::memcpy(&block, static_cast<const uint8_t*>(row) + i * int64_t(sizeof(Block)), sizeof(Block));
  return block;
}

template <class Block>
inline void store_block(void* row, int64_t i, const Block& block) {
  std::memcpy(static_cast<uint8_t*>(row) + i * int64_t(sizeof(Block)), &block, sizeof(Block));
}

// Q5_0/Q5_1 keep the fifth bits as one little-endian uint32 (bit j = element j).
inline uint32_t load_qh32(const uint8_t qh[4]) {
  return uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
}
inline void store_qh32(uint32_t bits, uint8_t qh[4]) {
  for (int i = 0; i < 4; ++i) qh[i] = uint8_t(bits >> (8 * i));
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block (formats.md §4.2,
// get_scale_min_k4): sub-blocks 0-3 use the low 6 bits of bytes j and j+4; sub-blocks 4-7 keep
// their low 4 bits in the nibbles of byte j+4 and their top 2 bits in the top bits of bytes j-4
// (scale) and j (min).
struct ScaleMin {
  uint8_t scale;
  uint8_t min;
};

inline ScaleMin unpack_scale_min_k4(int j, const uint8_t scales[12]) {
  if (j < 4) return {uint8_t(scales[j] & 63), uint8_t(scales[j + 4] & 63)};
  return {uint8_t((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4)),
          uint8_t((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4))};
}

// Inverse of unpack_scale_min_k4 for eight 6-bit values (each < 64).
inline void pack_scale_min_k4(const uint8_t scale[8], const uint8_t min[8], uint8_t scales[12]) {
  for (int j = 0; j < 4; ++j) {
    scales[j] = uint8_t((scale[j] & 63) | ((scale[j + 4] >> 4) << 6));
    scales[j + 4] = uint8_t((min[j] & 63) | ((min[j + 4] >> 4) << 6));
    scales[j + 8] = uint8_t((scale[j + 4] & 0xF) | ((min[j + 4] & 0xF) << 4));
  }
}

}  // namespace g4
