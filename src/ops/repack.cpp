#include "ops/repack.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "ops/kernels.h"

namespace g4 {
namespace {

// A block field: `bytes` bytes at `offset` in the GGUF block, cut into slices of `slice` bytes.
// In a record the fields follow each other in this order, each as its slices one after the
// other, a slice holding that slice of the group's rows side by side.
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

// Where the records of a matrix sit: the panels one after the other, each holding every group's
// records for its blocks (the last panel may be narrower). Computed once per call, not per block.
struct RecordGrid {
  int64_t block_bytes, n_blocks, per_panel, rows, group_rows;

  RecordGrid(const WeightMatrix& w, int group_rows)
      : block_bytes(ggml_type_info(w.type).block_bytes),
        n_blocks(w.cols / ggml_type_info(w.type).block_size),
        per_panel(kInterleavePanelColumns / ggml_type_info(w.type).block_size),
        rows(w.rows),
        group_rows(group_rows) {}
  explicit RecordGrid(const WeightMatrix& w) : RecordGrid(w, w.interleaved_rows) {}

  // Byte offset of the record of block `block` of row group `group`.
  int64_t offset(int64_t group, int64_t block) const {
    const int64_t first = block / per_panel * per_panel;  // the panel's first block
    const int64_t width = std::min(per_panel, n_blocks - first);
    return first * block_bytes * rows + (group * width + block - first) * group_rows * block_bytes;
  }
};

// memcpy of a slice: the sizes the layouts use get a fixed-size copy the compiler turns into
// one load and store (a library call per slice made interleaving run at ~1 GB/s per thread).
inline void copy_slice(uint8_t* to, const uint8_t* from, int64_t n) {
  switch (n) {
    case 2: std::memcpy(to, from, 2); break;
    case 4: std::memcpy(to, from, 4); break;
    case 8: std::memcpy(to, from, 8); break;
    default: std::memcpy(to, from, size_t(n));
  }
}

// Field `f` of the blocks block[0..rows) (one per row of the group) into `record`, slices of N
// bytes.
template <int64_t N>
void gather_field(const Field& f, const uint8_t* const block[], int rows, uint8_t* record) {
  for (int64_t s = 0; s < f.bytes / N; ++s)
    for (int r = 0; r < rows; ++r)
      std::memcpy(record + (s * rows + r) * N, block[r] + f.offset + s * N, N);
}

// Calls fn(block_offset, record_offset, n) for every piece of row r's block in a record of
// `rows` rows: n bytes at block_offset in the GGUF block sit at record_offset in the record.
template <class Fn>
void for_each_slice(const Layout& layout, int rows, int r, Fn&& fn) {
  int64_t record = 0;
  for (int f = 0; f < layout.n_fields; ++f) {
    const Field& field = layout.fields[f];
    for (int64_t s = 0; s < field.bytes / field.slice; ++s)
      fn(field.offset + s * field.slice, record + (s * rows + r) * field.slice, field.slice);
    record += rows * field.bytes;
  }
}

}  // namespace

int interleave_rows(const KernelTable& kernels, const WeightMatrix& w) {
  const int group_rows = kernels.interleaved_group_rows(w.type);
  const bool whole =
      group_rows > 0 && w.rows % group_rows == 0 && w.cols % ggml_type_info(w.type).block_size == 0;
  return w.interleaved_rows == 1 && kernels.interleaved_tile(w.type) != nullptr && whole
             ? group_rows
             : 0;
}

void interleave_groups(const WeightMatrix& w, int group_rows, int64_t group_begin,
                       int64_t group_end, uint8_t* dst) {
  if (group_rows < 1 || group_rows > kMaxInterleaveRows)
    fail("interleave: groups of ", group_rows, " rows (at most ", kMaxInterleaveRows, ")");
  const Layout layout = layout_of(w.type);
  const RecordGrid grid(w, group_rows);
  for (int64_t g = group_begin; g < group_end; ++g) {
    const uint8_t* rows = w.data + g * group_rows * w.row_bytes;
    for (int64_t j = 0; j < grid.n_blocks; ++j) {
      const uint8_t* block[kMaxInterleaveRows];
      for (int r = 0; r < group_rows; ++r) block[r] = rows + r * w.row_bytes + j * grid.block_bytes;
      uint8_t* record = dst + grid.offset(g, j);
      for (int f = 0; f < layout.n_fields; ++f) {
        const Field& field = layout.fields[f];
        switch (field.slice) {
          case 2:
            gather_field<2>(field, block, group_rows, record);
            break;
          case 4:
            gather_field<4>(field, block, group_rows, record);
            break;
          case 8:
            gather_field<8>(field, block, group_rows, record);
            break;
          default: fail("interleave: no slices of ", field.slice, " bytes");
        }
        record += group_rows * field.bytes;
      }
    }
  }
}

void copy_row_blocks(const WeightMatrix& w, int64_t row, int64_t block_begin, int64_t n_blocks,
                     uint8_t* out) {
  const int64_t bb = ggml_type_info(w.type).block_bytes;
  if (w.interleaved_rows == 1) {
    std::memcpy(out, w.row(row) + block_begin * bb, size_t(n_blocks * bb));
    return;
  }
  const Layout layout = layout_of(w.type);
  const RecordGrid grid(w);
  const int rows = w.interleaved_rows, r = int(row % rows);
  for (int64_t j = 0; j < n_blocks; ++j, out += bb) {
    const uint8_t* rec = w.data + grid.offset(row / rows, block_begin + j);
    for_each_slice(layout, rows, r, [&](int64_t to, int64_t from, int64_t n) {
      copy_slice(out + to, rec + from, n);
    });
  }
}

GroupRecords interleaved_records(const WeightMatrix& w, int64_t block) {
  const RecordGrid grid(w);
  const int64_t start = grid.offset(0, block);
  return {w.data + start, grid.offset(1, block) - start};
}

int64_t interleaved_panel_end(const WeightMatrix& w, int64_t col) {
  if (w.interleaved_rows == 1) return w.cols;
  return std::min(w.cols, (col / kInterleavePanelColumns + 1) * kInterleavePanelColumns);
}

}  // namespace g4
