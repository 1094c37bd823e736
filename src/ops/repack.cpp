#include "ops/repack.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "ops/kernels.h"

namespace g4 {
namespace {

// A block field: `bytes` bytes at `offset` in the GGUF block, cut into slices of `slice` bytes.
// In a record the fields follow each other in this order, each as its slices one after the
// other, a slice holding that slice of rows 0..7 side by side.
struct Field {
  int64_t offset, bytes, slice;
};
struct Layout {
  Field fields[5];
  int n_fields = 0;
};

// Every type with an interleaved tile somewhere (the kernels rely on these records).
Layout layout_of(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:  // d, then 16 code bytes
      return {{{0, 2, 2}, {2, 16, 4}}, 2};
    case GgmlType::Q8_0:  // d, then 32 code bytes
      return {{{0, 2, 2}, {2, 32, 4}}, 2};
    case GgmlType::Q4_K:  // d, dmin, 12 bytes of 6-bit scales and minimums, 128 code bytes
      return {{{0, 2, 2}, {2, 2, 2}, {4, 12, 4}, {16, 128, 4}}, 4};
    case GgmlType::Q5_K:  // as Q4_K, with the 32 qh bytes before the codes
      return {{{0, 2, 2}, {2, 2, 2}, {4, 12, 4}, {16, 32, 4}, {48, 128, 4}}, 5};
    case GgmlType::Q6_K:  // d, 16 int8 scales, then ql and qh in 8-byte slices
      return {{{208, 2, 2}, {192, 16, 4}, {0, 128, 8}, {128, 64, 8}}, 4};
    default:
      fail("no interleaved layout for weight type ", ggml_type_name(type));
  }
}

int64_t block_bytes(const WeightMatrix& w) {
  return ggml_type_info(w.type).block_bytes;
}

int64_t blocks_per_panel(const WeightMatrix& w) {
  return kInterleavePanelColumns / ggml_type_info(w.type).block_size;
}

// Where the record of block `block` of row group `group` sits: the panels one after the other,
// each holding every group's records for its blocks (the last panel may be narrower).
int64_t record_offset(const WeightMatrix& w, int64_t group, int64_t block) {
  const int64_t bb = block_bytes(w), nb = w.cols / ggml_type_info(w.type).block_size;
  const int64_t first = block / blocks_per_panel(w) * blocks_per_panel(w);  // the panel's first block
  const int64_t width = std::min(blocks_per_panel(w), nb - first);
  return first * bb * w.rows + (group * width + block - first) * kInterleaveRows * bb;
}

// Calls fn(block_offset, record_offset, n) for every piece of row r's block: n bytes at
// block_offset in the GGUF block sit at record_offset in the record.
template <class Fn>
void for_each_slice(const Layout& layout, int r, Fn&& fn) {
  int64_t record = 0;
  for (int f = 0; f < layout.n_fields; ++f) {
    const Field& field = layout.fields[f];
    for (int64_t s = 0; s < field.bytes / field.slice; ++s)
      fn(field.offset + s * field.slice, record + (s * kInterleaveRows + r) * field.slice,
         field.slice);
    record += kInterleaveRows * field.bytes;
  }
}

}  // namespace

bool can_interleave(const KernelTable& kernels, const WeightMatrix& w) {
  return w.interleaved_rows == 1 && kernels.interleaved_tile(w.type) != nullptr &&
         w.rows % kInterleaveRows == 0 && w.cols % ggml_type_info(w.type).block_size == 0;
}

void interleave_groups(const WeightMatrix& w, int64_t group_begin, int64_t group_end,
                       uint8_t* dst) {
  const Layout layout = layout_of(w.type);
  const int64_t bb = block_bytes(w);
  const int64_t nb = w.cols / ggml_type_info(w.type).block_size;
  for (int64_t g = group_begin; g < group_end; ++g) {
    const uint8_t* rows = w.data + g * kInterleaveRows * w.row_bytes;
    for (int64_t j = 0; j < nb; ++j) {
      uint8_t* out = dst + record_offset(w, g, j);
      for (int r = 0; r < kInterleaveRows; ++r) {
        const uint8_t* blk = rows + r * w.row_bytes + j * bb;
        for_each_slice(layout, r, [&](int64_t from, int64_t to, int64_t n) {
          std::memcpy(out + to, blk + from, size_t(n));
        });
      }
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
  const Layout layout = layout_of(w.type);
  const int r = int(row % kInterleaveRows);
  for (int64_t j = 0; j < n_blocks; ++j, out += bb) {
    const uint8_t* rec = interleaved_block(w, row, block_begin + j);
    for_each_slice(layout, r, [&](int64_t to, int64_t from, int64_t n) {
      std::memcpy(out + to, rec + from, size_t(n));
    });
  }
}

GroupRecords interleaved_records(const WeightMatrix& w, int64_t block) {
  const int64_t start = record_offset(w, 0, block);
  return {w.data + start, record_offset(w, 1, block) - start};
}

const uint8_t* interleaved_block(const WeightMatrix& w, int64_t row, int64_t block) {
  return interleaved_records(w, block).group(row / kInterleaveRows);
}

int64_t interleaved_panel_end(const WeightMatrix& w, int64_t col) {
  if (w.interleaved_rows == 1) return w.cols;
  return std::min(w.cols, (col / kInterleavePanelColumns + 1) * kInterleavePanelColumns);
}

}  // namespace g4
