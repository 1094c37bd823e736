#include "ops/repack.h"

#include <cstring>

#include "core/error.h"
#include "ops/kernels.h"

namespace g4 {
namespace {

constexpr int64_t kScaleBytes = 2;  // the fp16 d that opens every Q4_0 / Q8_0 block
constexpr int64_t kSlice = 4;       // code bytes of one row side by side with the other rows'

int64_t block_bytes(const WeightMatrix& w) {
  return ggml_type_info(w.type).block_bytes;
}

const uint8_t* group_start(const WeightMatrix& w, int64_t row) {
  return w.data + row / kInterleaveRows * kInterleaveRows * w.row_bytes;
}

}  // namespace

bool can_interleave(const KernelTable& kernels, const WeightMatrix& w) {
  return w.interleaved_rows == 1 && kernels.interleaved_tile(w.type) != nullptr &&
         w.rows % kInterleaveRows == 0 && w.cols % ggml_type_info(w.type).block_size == 0;
}

void interleave_groups(const WeightMatrix& w, int64_t group_begin, int64_t group_end,
                       uint8_t* dst) {
  const int64_t bb = block_bytes(w), code_bytes = bb - kScaleBytes;
  const int64_t nb = w.cols / ggml_type_info(w.type).block_size;
  for (int64_t g = group_begin; g < group_end; ++g) {
    const uint8_t* rows = w.data + g * kInterleaveRows * w.row_bytes;
    uint8_t* out = dst + g * kInterleaveRows * w.row_bytes;
    for (int64_t j = 0; j < nb; ++j, out += kInterleaveRows * bb)
      for (int r = 0; r < kInterleaveRows; ++r) {
        const uint8_t* blk = rows + r * w.row_bytes + j * bb;
        std::memcpy(out + r * kScaleBytes, blk, kScaleBytes);
        for (int64_t s = 0; s < code_bytes / kSlice; ++s)
          std::memcpy(out + kInterleaveRows * (kScaleBytes + s * kSlice) + r * kSlice,
                      blk + kScaleBytes + s * kSlice, kSlice);
      }
  }
}

void copy_row_blocks(const WeightMatrix& w, int64_t row, int64_t block_begin, int64_t n_blocks,
                     uint8_t* out) {
  const int64_t bb = block_bytes(w);
  if (w.interleaved_rows == 1) {
    std::memcpy(out, w.row(row) + block_begin * bb, size_t(n_blocks * bb));
    return;
  }
  const int64_t code_bytes = bb - kScaleBytes;
  const int r = int(row % kInterleaveRows);
  for (int64_t j = 0; j < n_blocks; ++j, out += bb) {
    const uint8_t* rec = interleaved_block(w, row, block_begin + j);
    std::memcpy(out, rec + r * kScaleBytes, kScaleBytes);
    for (int64_t s = 0; s < code_bytes / kSlice; ++s)
      std::memcpy(out + kScaleBytes + s * kSlice,
                  rec + kInterleaveRows * (kScaleBytes + s * kSlice) + r * kSlice, kSlice);
  }
}

const uint8_t* interleaved_block(const WeightMatrix& w, int64_t row, int64_t block) {
  return group_start(w, row) + block * kInterleaveRows * block_bytes(w);
}

}  // namespace g4
