// Typed views of weights used in place from a mapped file.
#pragma once

#include <cstdint>
#include <string>

#include "core/ggml_type.h"

namespace g4 {

// A weight matrix W of `rows` x `cols` (PyTorch [out, in]; GGUF ne = {cols, rows}). Each row is
// `row_bytes` of `type` blocks, so y = W x takes one dot product per row.
struct WeightMatrix {
  std::string name;
  GgmlType type = GgmlType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_bytes = 0;
  const uint8_t* data = nullptr;
  // 1: the GGUF layout (row after row). 8 or 16 (ops/repack.h): rows stored in groups of that
  // many, block by block, for the SIMD kernels; row() is then meaningless (use copy_row_blocks).
  int interleaved_rows = 1;

  bool present() const { return data != nullptr; }
  const uint8_t* row(int64_t r) const { return data + r * row_bytes; }
};

}  // namespace g4
