// Weights re-laid out at load time for the SIMD kernels: rows interleaved in groups of 8 or 16.
//
// A GGUF matrix stores each row's blocks one after the other. The interleaved layout stores the
// rows in groups (of the rows per group the kernel table asks for the type: 8, or 16 for the
// AVX-512 Q4_0, Q8_0, Q4_K and Q5_K tiles); within a group, block j of the group's rows is one
// record: each field of the block in turn (repack.cpp lists them per type), cut into slices whose
// copies for the group's rows sit side by side. Q4_0 / Q8_0: the fp16 scales d, then the codes in
// 4-byte slices (32 bytes per slice for 8 rows, 64 for 16); Q4_K: the d, the dmin, the packed 6-bit
// scales in 4-byte slices, then the codes in 4-byte slices; Q5_K: as Q4_K with qh in
// 4-byte slices before the codes; Q6_K (8 rows): the 8 d, the scales in 4-byte slices, then
// ql and qh in 8-byte slices (64 bytes: one 512-bit vector). One 32-byte load then holds 4 codes of
// each of 8 rows (a 64-byte load, of 16 rows), so a single multiply-add against 4 broadcast
// activation codes advances every row of the group at once and a block's dot products end in one
// vector (ops/x86/kernels_x86.inc): no horizontal sums and no scale gathering per row. The records
// are the same bytes in another order (same size); the loader drops the file's pages once a matrix
// is copied (model/model.cpp), so the resident memory does not grow.
//
// Rows longer than kInterleavePanelColumns are stored in column panels: first every group's
// records for the first panel's blocks (group after group), then the next panel's. A one-token
// matmul walks the panels one after the other, so the activations it re-reads for every group
// stay in L1 (those of a 15360-long row do not, next to the weights streaming through: 36 against
// 46 GB/s with 2 threads on a Zen 5 VM), and each panel is still one sequential stream.
#pragma once

#include <cstdint>

#include "core/ggml_type.h"
#include "core/tensor.h"

namespace g4 {

struct KernelTable;

// The most rows a group of the layout holds.
constexpr int kMaxInterleaveRows = 16;
// Columns per panel of the interleaved layout: a multiple of 256 (whole blocks of every type).
constexpr int64_t kInterleavePanelColumns = 4096;

// The rows per group of the layout `kernels` has an interleaved tile for, for the plain matrix w
// (8 or 16), or 0 where w is not to be interleaved: no such tile, rows not in whole groups, or w
// interleaved already.
int interleave_rows(const KernelTable& kernels, const WeightMatrix& w);

// The row groups [group_begin, group_end) of `group_rows` rows (8 or 16) of the plain matrix `w`
// into `dst` (sized for all of w's rows: rows * row_bytes), in the interleaved layout.
void interleave_groups(const WeightMatrix& w, int group_rows, int64_t group_begin,
                       int64_t group_end, uint8_t* dst);

// Blocks [block_begin, block_begin + n_blocks) of row `row` of `w` (plain or interleaved) in the
// plain GGUF block layout.
void copy_row_blocks(const WeightMatrix& w, int64_t row, int64_t block_begin, int64_t n_blocks,
                     uint8_t* out);

// The records of block `block` of every group (interleaved layout): group g's at start + g *
// group_stride. The records of a group's blocks follow each other up to the end of their column
// panel.
struct GroupRecords {
  const uint8_t* start;
  int64_t group_stride;
  const uint8_t* group(int64_t g) const { return start + g * group_stride; }
};
GroupRecords interleaved_records(const WeightMatrix& w, int64_t block);

// The column where the layout's panel holding column `col` ends: an interleaved tile may run from
// `col` up to it in one call. w.cols for a plain matrix.
int64_t interleaved_panel_end(const WeightMatrix& w, int64_t col);

}  // namespace g4
