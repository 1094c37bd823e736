#include "ops/matmul.h"

#include <algorithm>
#include <vector>

#include "core/thread_pool.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace g4 {

void weight_row_f32(const WeightMatrix& w, int64_t row, float* out) {
  dequantize_row(w.type, w.row(row), out, w.cols);
}

void matmul(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, ThreadPool& pool, MatmulMode mode) {
  (void)mode;  // only the precise path exists so far
  // Rows in tiles of 16 so a tile's decoded weights (16 x cols floats) stay in cache while every
  // token's activations stream past them once.
  constexpr int64_t kRowTile = 16;
  const int64_t n_tiles = (w.rows + kRowTile - 1) / kRowTile;
  pool.parallel_for(n_tiles, 1, [&](int64_t tile_begin, int64_t tile_end, int) {
    std::vector<float> decoded(size_t(kRowTile * w.cols));
    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
      const int64_t r0 = tile * kRowTile;
      const int64_t r1 = std::min(w.rows, r0 + kRowTile);
      const float* rows_f32;
      if (w.type == GgmlType::F32) {
        rows_f32 = reinterpret_cast<const float*>(w.row(r0));
      } else {
        for (int64_t r = r0; r < r1; ++r)
          dequantize_row(w.type, w.row(r), decoded.data() + (r - r0) * w.cols, w.cols);
        rows_f32 = decoded.data();
      }
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * x_stride;
        float* yt = y + t * y_stride;
        for (int64_t r = r0; r < r1; ++r) yt[r] = dot_f32(rows_f32 + (r - r0) * w.cols, xt, w.cols);
      }
    }
  });
}

}  // namespace g4
