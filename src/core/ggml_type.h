// The ggml tensor element types a GGUF file can name, and their block geometry.
// Every type id is known (so a file can be described and validated), but only the types in
// `type_is_supported` can be computed with.
#pragma once

#include <cstdint>
#include <string>

namespace g4 {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct GgmlTypeInfo {
  const char* name;     // "Q4_K"
  int64_t block_size;   // weights per block (1 for plain types)
  int64_t block_bytes;  // bytes per block
};

// nullptr for an id no ggml version defines (hostile or future files).
const GgmlTypeInfo* ggml_type_info(uint32_t type_id);
const GgmlTypeInfo& ggml_type_info(GgmlType type);
inline const char* ggml_type_name(GgmlType type) { return ggml_type_info(type).name; }

// Types this engine can dequantize and multiply (the weight types of real Gemma 4 GGUFs).
bool type_is_supported(GgmlType type);

// Parses "q4_k", "Q4_K", "f16"... Throws g4::Error naming the accepted types.
GgmlType ggml_type_from_name(const std::string& name);

// Bytes of one row of n elements; n must be a multiple of the block size (checked by callers).
inline int64_t ggml_row_bytes(GgmlType type, int64_t n) {
  const GgmlTypeInfo& info = ggml_type_info(type);
  return n / info.block_size * info.block_bytes;
}

}  // namespace g4
