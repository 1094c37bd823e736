// Quantizers for the K-quant super-blocks (Q4_K, Q5_K, Q6_K). ggml's reference quantizers are not
// reproduced bit for bit (the brief asks for a good encoding, and every valid encoding is readable
// by every GGUF engine); see quant_kquants.cpp for the search.
#pragma once

#include <cstdint>

#include "core/ggml_type.h"
#include "core/quant_blocks.h"

namespace g4 {

// Each encodes one super-block of QK_K finite floats. `block_index` is only used in error
// messages. Throws g4::Error when a scale does not fit in fp16.
void quantize_block(const float* x, int64_t block_index, BlockQ4_K& out);
void quantize_block(const float* x, int64_t block_index, BlockQ5_K& out);
void quantize_block(const float* x, int64_t block_index, BlockQ6_K& out);

// fp16 bits of a block scale; throws (naming the type and block) when it would be inf.
uint16_t quant_scale_to_fp16(float value, GgmlType type, int64_t block_index);

}  // namespace g4
