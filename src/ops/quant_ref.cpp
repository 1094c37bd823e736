// Scalar reference dequantization, quantization dispatch and dot products for the supported weight
// types (formats.md §4.2; Q4_1, Q5_0, Q5_1, Q5_K, Q6_K from ggml's public format description).
//
// Bit-exactness: each decoder evaluates the format's expression in float32 with the grouping ggml's
// to_float uses, e.g. Q4_K y = (d * sc) * q - (dmin * m). Every product here is exact in float
// (an fp16 scale has 11 significant bits; sc * q needs at most 13 more, Q6_K's 127 * 32), so
// grouping the products differently would not change a bit: the only rounding is the final
// addition of the min in Q4_1/Q5_1/Q4_K/Q5_K. The build uses -ffp-contract=off regardless
// (TOLERANCES.md row 4). Checked bit for bit against deq/<variant>.json.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/quant_blocks.h"
#include "ops/quant.h"
#include "ops/quant_kquants.h"

namespace g4 {
namespace {

// ---- block decoders: one packed block -> Block::kElements floats ----

void decode_block(const BlockQ8_0& b, float* y) {
  const float d = fp16_to_f32(b.d);
  for (int j = 0; j < QK; ++j) y[j] = float(b.qs[j]) * d;
}

void decode_block(const BlockQ4_0& b, float* y) {
  const float d = fp16_to_f32(b.d);
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = float((b.qs[j] & 0xF) - 8) * d;
    y[j + QK / 2] = float((b.qs[j] >> 4) - 8) * d;
  }
}

void decode_block(const BlockQ4_1& b, float* y) {
  const float d = fp16_to_f32(b.d);
  const float m = fp16_to_f32(b.m);
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = float(b.qs[j] & 0xF) * d + m;
    y[j + QK / 2] = float(b.qs[j] >> 4) * d + m;
  }
}

// The 5-bit values of a Q5_0/Q5_1 block: low nibbles (first half) / high nibbles (second half) of
// qs, fifth bit j of qh for element j.
void unpack_q5(const uint8_t qh_bytes[4], const uint8_t qs[QK / 2], int q[QK]) {
  const uint32_t qh = load_qh32(qh_bytes);
  for (int j = 0; j < QK / 2; ++j) {
    q[j] = (qs[j] & 0xF) | int((qh >> j) & 1) << 4;
    q[j + QK / 2] = (qs[j] >> 4) | int((qh >> (j + QK / 2)) & 1) << 4;
  }
}

void decode_block(const BlockQ5_0& b, float* y) {
  const float d = fp16_to_f32(b.d);
  int q[QK];
  unpack_q5(b.qh, b.qs, q);
  for (int j = 0; j < QK; ++j) y[j] = float(q[j] - 16) * d;
}

void decode_block(const BlockQ5_1& b, float* y) {
  const float d = fp16_to_f32(b.d);
  const float m = fp16_to_f32(b.m);
  int q[QK];
  unpack_q5(b.qh, b.qs, q);
  for (int j = 0; j < QK; ++j) y[j] = float(q[j]) * d + m;
}

void decode_block(const BlockQ4_K& b, float* y) {
  const float d = fp16_to_f32(b.d);
  const float dmin = fp16_to_f32(b.dmin);
  for (int c = 0; c < 4; ++c) {  // 64 weights per chunk: sub-blocks 2c (low), 2c+1 (high)
    const ScaleMin lo = unpack_scale_min_k4(2 * c, b.scales);
    const ScaleMin hi = unpack_scale_min_k4(2 * c + 1, b.scales);
    const float d_lo = d * float(lo.scale), m_lo = dmin * float(lo.min);
    const float d_hi = d * float(hi.scale), m_hi = dmin * float(hi.min);
    const uint8_t* qs = b.qs + 32 * c;
    float* out = y + 64 * c;
    for (int l = 0; l < 32; ++l) out[l] = d_lo * float(qs[l] & 0xF) - m_lo;
    for (int l = 0; l < 32; ++l) out[l + 32] = d_hi * float(qs[l] >> 4) - m_hi;
  }
}

void decode_block(const BlockQ5_K& b, float* y) {
  const float d = fp16_to_f32(b.d);
  const float dmin = fp16_to_f32(b.dmin);
  for (int c = 0; c < 4; ++c) {
    const ScaleMin lo = unpack_scale_min_k4(2 * c, b.scales);
    const ScaleMin hi = unpack_scale_min_k4(2 * c + 1, b.scales);
    const float d_lo = d * float(lo.scale), m_lo = dmin * float(lo.min);
    const float d_hi = d * float(hi.scale), m_hi = dmin * float(hi.min);
    const uint8_t* qs = b.qs + 32 * c;
    float* out = y + 64 * c;
    for (int l = 0; l < 32; ++l) {
      const int q = (qs[l] & 0xF) | ((b.qh[l] >> (2 * c)) & 1) << 4;
      out[l] = d_lo * float(q) - m_lo;
    }
    for (int l = 0; l < 32; ++l) {
      const int q = (qs[l] >> 4) | ((b.qh[l] >> (2 * c + 1)) & 1) << 4;
      out[l + 32] = d_hi * float(q) - m_hi;
    }
  }
}

void decode_block(const BlockQ6_K& b, float* y) {
  const float d = fp16_to_f32(b.d);
  for (int h = 0; h < 2; ++h) {  // two halves of 128 weights
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    const int8_t* sc = b.scales + 8 * h;
    float* out = y + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int s = l / 16;
      const int q0 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
      const int q1 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
      const int q2 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
      const int q3 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
      out[l] = d * float(sc[s]) * float(q0);
      out[l + 32] = d * float(sc[s + 2]) * float(q1);
      out[l + 64] = d * float(sc[s + 4]) * float(q2);
      out[l + 96] = d * float(sc[s + 6]) * float(q3);
    }
  }
}

// ---- plain types, decoded in chunks so that dot_row_ref accumulates them like blocks ----

constexpr int64_t kPlainChunk = 32;

void decode_plain(GgmlType type, const uint8_t* src, float* y, int64_t count) {
  switch (type) {
    case GgmlType::F32:
      std::memcpy(y, src, size_t(count) * 4);
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        y[i] = fp16_to_f32(h);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        y[i] = bf16_to_f32(h);
      }
      return;
    default:
      fail("decode_plain: ", ggml_type_name(type), " is not a plain type");
  }
}

void encode_plain(GgmlType type, const float* x, uint8_t* dst, int64_t n) {
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, x, size_t(n) * 4);
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_fp16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    default:
      fail("encode_plain: ", ggml_type_name(type), " is not a plain type");
  }
}

bool is_plain(GgmlType type) {
  return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
}

// Throws unless `type` is supported and n a non-negative multiple of its block size.
void check_row(const char* op, GgmlType type, int64_t n) {
  const GgmlTypeInfo& info = ggml_type_info(type);  // throws for an unknown id
  if (!type_is_supported(type))
    fail(op, ": weight type ", info.name,
         " is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, "
         "Q6_K)");
  if (n < 0 || n % info.block_size != 0)
    fail(op, ": row length ", n, " is not a multiple of the ", info.name, " block size ",
         info.block_size);
}

// Calls fn(Block{}) with a value of the block struct of `type` (a quantized supported type), so
// that one template body serves every block type.
template <class Fn>
auto with_block_type(GgmlType type, Fn&& fn) {
  switch (type) {
    case GgmlType::Q8_0:
      return fn(BlockQ8_0{});
    case GgmlType::Q4_0:
      return fn(BlockQ4_0{});
    case GgmlType::Q4_1:
      return fn(BlockQ4_1{});
    case GgmlType::Q5_0:
      return fn(BlockQ5_0{});
    case GgmlType::Q5_1:
      return fn(BlockQ5_1{});
    case GgmlType::Q4_K:
      return fn(BlockQ4_K{});
    case GgmlType::Q5_K:
      return fn(BlockQ5_K{});
    case GgmlType::Q6_K:
      return fn(BlockQ6_K{});
    default:
      fail("no block layout for weight type ", ggml_type_name(type));
  }
}

template <class Block>
void dequantize_blocks(const void* src, float* dst, int64_t n_blocks) {
  for (int64_t i = 0; i < n_blocks; ++i)
    decode_block(load_block<Block>(src, i), dst + i * Block::kElements);
}

// Sum of y[j] * x[j] over one chunk, in float, j ascending.
float chunk_dot(const float* y, const float* x, int64_t count) {
  float sum = 0.0f;
  for (int64_t j = 0; j < count; ++j) sum += y[j] * x[j];
  return sum;
}

template <class Block>
float dot_blocks(const void* row, const float* x, int64_t n_blocks) {
  float y[Block::kElements];
  float total = 0.0f;
  for (int64_t i = 0; i < n_blocks; ++i) {
    decode_block(load_block<Block>(row, i), y);
    total += chunk_dot(y, x + i * Block::kElements, Block::kElements);
  }
  return total;
}

// ---- quantizers of the 32-element types: ggml's reference rules (formats.md §4.2) ----

// Largest |x| of a block and the signed value that has it (the first one on ties).
struct AbsMax {
  float abs;
  float value;
};
AbsMax abs_max(const float* x, int count) {
  AbsMax r{0.0f, 0.0f};
  for (int j = 0; j < count; ++j)
    if (r.abs < std::fabs(x[j])) r = {std::fabs(x[j]), x[j]};
  return r;
}

struct MinMax {
  float min;
  float max;
};
MinMax min_max(const float* x, int count) {
  MinMax r{x[0], x[0]};
  for (int j = 1; j < count; ++j) {
    r.min = std::min(r.min, x[j]);
    r.max = std::max(r.max, x[j]);
  }
  return r;
}

// ggml converts x*id + 0.5 (or + 8.5, + 16.5) to an integer by truncation, then clamps from above.
// For consistent blocks v lies in [0, max_level + 1), so this is exactly that rule; the guards
// only keep the conversion defined when id overflowed to inf (|x| below ~1e-37, where the fp16
// scale is 0 and every q decodes to the same value anyway).
int trunc_clamped(float v, int max_level) {
  if (!(v >= 0.0f)) return 0;  // also NaN
  if (v >= float(max_level)) return max_level;
  return int(v);
}

// roundf (half away from zero), clamped to [-limit, limit]; NaN (0 * inf, see above) gives 0.
int round_clamped(float v, int limit) {
  if (std::isnan(v)) return 0;
  return int(std::round(std::clamp(v, -float(limit), float(limit))));
}

// The reciprocal ggml multiplies by (0 for an all-zero block, so every q is the midpoint).
float inverse_or_zero(float d) {
  return d != 0.0f ? 1.0f / d : 0.0f;
}

// Q8_0: d = amax / 127, q = roundf(x / d) (round half away from zero).
void quantize_block(const float* x, int64_t block, BlockQ8_0& b) {
  const float amax = abs_max(x, QK).abs;
  const float d = amax / 127.0f;
  const float id = inverse_or_zero(d);
  b.d = quant_scale_to_fp16(d, GgmlType::Q8_0, block);
  for (int j = 0; j < QK; ++j) b.qs[j] = int8_t(round_clamped(x[j] * id, 127));
}

// Q4_0: d = max / -8 with max the signed value of largest |x|, q = min(15, trunc(x / d + 8.5)).
void quantize_block(const float* x, int64_t block, BlockQ4_0& b) {
  const float max = abs_max(x, QK).value;
  const float d = max / -8.0f;
  const float id = inverse_or_zero(d);
  b.d = quant_scale_to_fp16(d, GgmlType::Q4_0, block);
  for (int j = 0; j < QK / 2; ++j) {
    const int q0 = trunc_clamped(x[j] * id + 8.5f, 15);
    const int q1 = trunc_clamped(x[j + QK / 2] * id + 8.5f, 15);
    b.qs[j] = uint8_t(q0 | q1 << 4);
  }
}

// Q4_1: d = (max - min) / 15, m = min, q = min(15, trunc((x - min) / d + 0.5)).
void quantize_block(const float* x, int64_t block, BlockQ4_1& b) {
  const MinMax mm = min_max(x, QK);
  const float d = (mm.max - mm.min) / 15.0f;
  const float id = inverse_or_zero(d);
  b.d = quant_scale_to_fp16(d, GgmlType::Q4_1, block);
  b.m = quant_scale_to_fp16(mm.min, GgmlType::Q4_1, block);
  for (int j = 0; j < QK / 2; ++j) {
    const int q0 = trunc_clamped((x[j] - mm.min) * id + 0.5f, 15);
    const int q1 = trunc_clamped((x[j + QK / 2] - mm.min) * id + 0.5f, 15);
    b.qs[j] = uint8_t(q0 | q1 << 4);
  }
}

void pack_q5(const int q[QK], uint8_t qh[4], uint8_t qs[QK / 2]) {
  uint32_t high = 0;
  for (int j = 0; j < QK / 2; ++j) {
    qs[j] = uint8_t((q[j] & 0xF) | (q[j + QK / 2] & 0xF) << 4);
    high |= uint32_t(q[j] >> 4) << j;
    high |= uint32_t(q[j + QK / 2] >> 4) << (j + QK / 2);
  }
  store_qh32(high, qh);
}

// Q5_0: d = max / -16, q = min(31, trunc(x / d + 16.5)).
void quantize_block(const float* x, int64_t block, BlockQ5_0& b) {
  const float max = abs_max(x, QK).value;
  const float d = max / -16.0f;
  const float id = inverse_or_zero(d);
  b.d = quant_scale_to_fp16(d, GgmlType::Q5_0, block);
  int q[QK];
  for (int j = 0; j < QK; ++j) q[j] = trunc_clamped(x[j] * id + 16.5f, 31);
  pack_q5(q, b.qh, b.qs);
}

// Q5_1: d = (max - min) / 31, m = min, q = trunc((x - min) / d + 0.5) (at most 31 by construction).
void quantize_block(const float* x, int64_t block, BlockQ5_1& b) {
  const MinMax mm = min_max(x, QK);
  const float d = (mm.max - mm.min) / 31.0f;
  const float id = inverse_or_zero(d);
  b.d = quant_scale_to_fp16(d, GgmlType::Q5_1, block);
  b.m = quant_scale_to_fp16(mm.min, GgmlType::Q5_1, block);
  int q[QK];
  for (int j = 0; j < QK; ++j) q[j] = trunc_clamped((x[j] - mm.min) * id + 0.5f, 31);
  pack_q5(q, b.qh, b.qs);
}

}  // namespace

// A scale that does not fit would dequantize to inf (or inf - inf = NaN), so reject the row.
uint16_t quant_scale_to_fp16(float value, GgmlType type, int64_t block_index) {
  const uint16_t h = f32_to_fp16(value);
  if ((h & 0x7C00) == 0x7C00)
    fail("quantize_row(", ggml_type_name(type), "): block ", block_index, " needs scale ", value,
         ", beyond the fp16 range of the format");
  return h;
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  check_row("dequantize_row", type, n);
  if (is_plain(type)) {
    decode_plain(type, static_cast<const uint8_t*>(src), dst, n);
    return;
  }
  with_block_type(type, [&](auto block) {
    using Block = decltype(block);
    dequantize_blocks<Block>(src, dst, n / Block::kElements);
  });
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  check_row("quantize_row", type, n);
  if (is_plain(type)) {
    encode_plain(type, src, static_cast<uint8_t*>(dst), n);
    return;
  }
  // The block quantizers' integer conversions are only defined for finite input.
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(src[i]))
      fail("quantize_row(", ggml_type_name(type), "): element ", i, " is ", src[i],
           " (only finite values can be quantized)");
  with_block_type(type, [&](auto block) {
    using Block = decltype(block);
    const int64_t n_blocks = n / Block::kElements;
    for (int64_t i = 0; i < n_blocks; ++i) {
      Block b{};
      quantize_block(src + i * Block::kElements, i, b);
      store_block(dst, i, b);
    }
  });
}

// Accumulation order: see quant.h (chunks of one block, or of kPlainChunk plain elements).
float dot_row_ref(GgmlType type, const void* row, const float* x, int64_t n) {
  check_row("dot_row_ref", type, n);
  if (is_plain(type)) {
    const int64_t elem_bytes = ggml_type_info(type).block_bytes;
    const auto* bytes = static_cast<const uint8_t*>(row);
    float y[kPlainChunk];
    float total = 0.0f;
    for (int64_t start = 0; start < n; start += kPlainChunk) {
      const int64_t count = std::min(kPlainChunk, n - start);
      decode_plain(type, bytes + start * elem_bytes, y, count);
      total += chunk_dot(y, x + start, count);
    }
    return total;
  }
  return with_block_type(type, [&](auto block) {
    using Block = decltype(block);
    return dot_blocks<Block>(row, x, n / Block::kElements);
  });
}

void round_trip_row(GgmlType type, float* x, int64_t n) {
  if (type == GgmlType::F32) return;
  std::vector<uint8_t> encoded(size_t(ggml_row_bytes(type, n)));
  quantize_row(type, x, encoded.data(), n);
  dequantize_row(type, encoded.data(), x, n);
}

}  // namespace g4
