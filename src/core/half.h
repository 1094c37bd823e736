// IEEE fp16 and bfloat16 <-> float32, bit-exact (round-to-nearest-even on the way down).
#pragma once

#include <cstdint>
#include <cstring>

namespace g4 {

inline float bits_to_f32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

// fp16 -> f32 is exact for every input (subnormals, inf, NaN included).
inline float fp16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  if (exp == 0) {
    if (mant == 0) return bits_to_f32(sign);
    // subnormal: mant * 2^-24, exactly representable in f32
    float v = float(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (exp == 31) return bits_to_f32(sign | 0x7F800000u | (mant << 13));
  return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

// f32 -> fp16 with round-to-nearest-even, overflow to inf, NaN kept NaN.
inline uint16_t f32_to_fp16(float f) {
  const uint32_t x = f32_to_bits(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return uint16_t(sign | 0x7C00 | (abs > 0x7F800000u ? 0x200 : 0));
  if (abs >= 0x477FF000u) return uint16_t(sign | 0x7C00);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                                 // below 2^-14: fp16 subnormal or zero
    // value / 2^-24 rounded to nearest even integer
    const float v = bits_to_f32(abs) * 16777216.0f;  // exact scaling by a power of two
    uint32_t q = uint32_t(v);
    const float rem = v - float(q);
    if (rem > 0.5f || (rem == 0.5f && (q & 1))) ++q;
    return uint16_t(sign | q);
  }
  const uint32_t mant_round = abs + 0xFFFu + ((abs >> 13) & 1u);  // round to nearest even at bit 13
  return uint16_t(sign | (((mant_round >> 13) - (112u << 10)) & 0x7FFF));
}

inline float bf16_to_f32(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
  uint32_t x = f32_to_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x >> 16) | 0x40);  // quiet NaN
  x += 0x7FFFu + ((x >> 16) & 1u);
  return uint16_t(x >> 16);
}

}  // namespace g4
