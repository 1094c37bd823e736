// matmul's loops around the kernels of ops/kernels.h.
//
// Work unit: a row tile (kTileRows weight rows; in fast mode kQuantTileRows, or one group of
// interleaved rows). Each thread takes chunks of consecutive row tiles from its own share of the
// rows (for_tile_chunks), so each streams its weights in order.
// Decode (few tokens): every weight byte is read once per matmul, by one thread; the next rows
// are fetched (by the kernels' prefetches or the hardware's) while the current ones are worked
// on, so the two cores together keep the memory bus busy (the speed limit: bytes of weights /
// bandwidth).
// Prefill (many tokens): the columns are cut into panels (for the interleaved tiles, whose int8
// activations then fit in L2; for the others at fixed cuts, kFixedPanel); for each panel every row
// tile of the chunk meets every token, the weight block's scales decoded once per row tile and its
// codes unpacked once per group of 4 tokens (fast mode), or its values decoded to float once per
// row tile (precise mode). Where a row is cut never depends on the token count in a way that
// changes its sums: a sequence gets the same bits alone or batched.
#include "ops/matmul.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/kernels.h"
#include "ops/quant.h"
#include "ops/repack.h"

namespace g4 {
namespace {

// Bytes of activations one column panel may hold: the panel is re-read by every row tile, so it
// should stay in the per-core L2 cache (512 KiB on Zen 3, 1-2 MiB on newer cores), with room for
// the weights streaming past.
constexpr int64_t kActPanelBytes = 256 * 1024;
// Columns per panel, whatever the token count, of the tiles that round each call's sums on their
// own (the float tiles, and the quantized tiles on the plain layout): cuts that moved with the
// token count would give a sequence other bits batched than alone. Also bounds the float decoding
// buffer (kept in L1/L2).
constexpr int64_t kFixedPanel = 2048;
// Every panel boundary is a multiple of this (whole blocks of every type).
constexpr int64_t kPanelAlign = 256;

template <class T>
std::unique_ptr<T[]> uninitialized(int64_t n) {
  return std::unique_ptr<T[]>(new T[size_t(std::max<int64_t>(n, 1))]);
}

// Columns per panel of the interleaved tiles for n_tokens (> kTileTokens) int8 activation rows
// (they carry their sums through y from panel to panel, so any cut gives the same bits).
int64_t panel_columns(int64_t cols, int64_t n_tokens) {
  const int64_t fit = kActPanelBytes / n_tokens / kPanelAlign * kPanelAlign;
  return std::min(cols, std::max(kPanelAlign, fit));
}

void check_matmul(const WeightMatrix& w) {
  if (!type_is_supported(w.type))
    fail("matmul: weight ", w.name, " has type ", ggml_type_name(w.type), ", which has no kernels");
  const int64_t block = ggml_type_info(w.type).block_size;
  if (w.cols % block != 0)
    fail("matmul: weight ", w.name, " has rows of ", w.cols, " values, not whole ",
         ggml_type_name(w.type), " blocks of ", block);
}

// Calls fn(row0, n_rows) for each tile of `height` rows in tiles [tile_begin, tile_end).
template <class Fn>
void for_row_tiles(int64_t tile_begin, int64_t tile_end, int64_t rows, int height, Fn&& fn) {
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t r0 = tile * height;
    fn(r0, int(std::min<int64_t>(height, rows - r0)));
  }
}

// Hands the row tiles out to the pool's threads (ThreadPool::parallel_chunks) and calls
// fn(tile_begin, tile_end, scratch_index) for each chunk: each thread streams its own contiguous
// share of the rows in chunks of at most 64 tiles (so that a prefill chunk's outputs stay in cache
// across panels) and at least kMinChunkBytes of weights, shrinking towards the share's end, and
// takes over half of another's share when its own is done. Dynamic rather than fixed shares: on a
// shared machine a thread that loses its core for a while does not hold up the others (with fixed
// chunks of up to 64 tiles one thread idled ~35 us at the end of every 33 MB matrix of a decode
// step, 6% of its time). Owned shares rather than chunks taken in turn from one shared counter:
// a thread's next chunk starts where its last one ended, so the weights stay one stream per
// thread (a decode step's matmuls over 20 layers of 12B-shaped Q4_0 matrices, 2 threads, the
// two splits alternated in one process: faster in 14 of 16 samples of this VM's fast phase,
// median +4%; the slow phase unchanged, +0.4% over 107).
constexpr int64_t kMinChunkBytes = 64 * 1024;

template <class Fn>
void for_tile_chunks(ThreadPool& pool, int64_t n_tiles, int64_t tile_bytes, Fn&& fn) {
  const int64_t min_tiles = std::max<int64_t>(1, kMinChunkBytes / std::max<int64_t>(1, tile_bytes));
  pool.parallel_chunks(n_tiles, min_tiles, 64, fn);
}

// Precise path (and F32/F16/BF16 weights in every mode): float tiles on rows decoded to float, or
// on the F16/BF16 rows themselves (KernelTable::half_tile).
void matmul_float(const KernelTable& k, const WeightMatrix& w, const float* x, int64_t x_stride,
                  int64_t T, float* y, int64_t y_stride, ThreadPool& pool) {
  const int64_t cols = w.cols;
  const bool interleaved = w.interleaved_rows > 1;
  // F16/BF16 rows go straight into the tile where the table has one for them; others are decoded.
  const HalfTileFn half = interleaved ? nullptr : k.half_tile[size_t(w.type)];
  const int64_t panel = std::min(cols, kFixedPanel);
  const int64_t n_panels = (cols + panel - 1) / panel;
  const int64_t n_tiles = (w.rows + kTileRows - 1) / kTileRows;
  const DequantizeFn decode = w.type == GgmlType::F32 || half ? nullptr : k.dequantizer(w.type);
  if (w.type != GgmlType::F32 && !half && !decode)
    fail("matmul: no decoder for ", ggml_type_name(w.type));
  const int64_t block = ggml_type_info(w.type).block_size,
                block_bytes = ggml_type_info(w.type).block_bytes;

  std::vector<std::unique_ptr<float[]>> decoded(size_t(pool.size()));  // per thread
  std::vector<std::unique_ptr<uint8_t[]>> raw(size_t(pool.size()));   // interleaved: one row's blocks
  for_tile_chunks(pool, n_tiles, kTileRows * w.row_bytes, [&](int64_t tile_begin, int64_t tile_end, int thread) {
    if (decode && !decoded[size_t(thread)]) {
      decoded[size_t(thread)] = uninitialized<float>(kTileRows * panel);
      if (interleaved) raw[size_t(thread)] = uninitialized<uint8_t>(panel / block * block_bytes);
    }
    float* buffer = decoded[size_t(thread)].get();
    // One row tile against every token, for columns [c0, c0 + width).
    auto run_tile = [&](int64_t r0, int n_rows, int64_t c0, int64_t width, bool accumulate) {
      // The rows as the tile reads them: fp16/bf16 in place (half), float32 in place, or decoded.
      const float* rows_f32 = nullptr;
      int64_t w_stride = w.row_bytes / 2;
      if (decode) {
        for (int r = 0; r < n_rows; ++r) {
          const uint8_t* blocks = w.row(r0 + r) + c0 / block * block_bytes;
          if (interleaved) {
            copy_row_blocks(w, r0 + r, c0 / block, width / block, raw[size_t(thread)].get());
            blocks = raw[size_t(thread)].get();
          }
          decode(blocks, buffer + r * width, width);
        }
        rows_f32 = buffer;
        w_stride = width;
      } else if (!half) {
        rows_f32 = reinterpret_cast<const float*>(w.row(r0)) + c0;
        w_stride = w.row_bytes / int64_t(sizeof(float));
      }
      for (int64_t t0 = 0; t0 < T; t0 += kTileTokens) {
        const int n_tok = int(std::min<int64_t>(kTileTokens, T - t0));
        const float* xt = x + t0 * x_stride + c0;
        float* yt = y + t0 * y_stride + r0;
        if (half)
          half(reinterpret_cast<const uint16_t*>(w.row(r0)) + c0, w_stride, n_rows, xt, x_stride,
               n_tok, width, yt, y_stride, accumulate);
        else
          k.float_tile(rows_f32, w_stride, n_rows, xt, x_stride, n_tok, width, yt, y_stride,
                       accumulate);
      }
    };
    if (T <= kTileTokens) {  // few tokens: each row tile runs through all columns while in cache
      for_row_tiles(tile_begin, tile_end, w.rows, kTileRows, [&](int64_t r0, int n_rows) {
        for (int64_t p = 0; p < n_panels; ++p)
          run_tile(r0, n_rows, p * panel, std::min(panel, cols - p * panel), p > 0);
      });
    } else {  // many tokens: one activation panel stays in cache while the chunk's row tiles pass
      for (int64_t p = 0; p < n_panels; ++p)
        for_row_tiles(tile_begin, tile_end, w.rows, kTileRows, [&](int64_t r0, int n_rows) {
          run_tile(r0, n_rows, p * panel, std::min(panel, cols - p * panel), p > 0);
        });
    }
  });
}

// Fast path: activations quantized once, integer tiles.

// The activation rows of a fast-mode matmul, each quantized once to int8 blocks of `block` (32 or
// 256) values.
struct QuantizedActs {
  int block = 32;
  int64_t cols = 0, n_blocks = 0;  // per token
  std::unique_ptr<int8_t[]> q;
  std::unique_ptr<float[]> d, dsum;   // dsum: 32-blocks
  std::unique_ptr<int32_t[]> qsum;    // qsum: 32-blocks
  std::unique_ptr<int16_t[]> bsum;    // bsum: 256-blocks

  QuantizedActs(const KernelTable& k, int block_size, const float* x, int64_t x_stride,
                int64_t columns, int64_t T, ThreadPool& pool)
      : block(block_size), cols(columns), n_blocks(columns / block_size) {
    q = uninitialized<int8_t>(T * cols);
    d = uninitialized<float>(T * n_blocks);
    dsum = uninitialized<float>(block == 32 ? T * n_blocks : 0);
    qsum = uninitialized<int32_t>(block == 32 ? T * n_blocks : 0);
    bsum = uninitialized<int16_t>(block == 256 ? T * (cols / 16) : 0);
    auto quantize_token = [&](int64_t t) {
      if (block == 32)
        k.quantize_act32(x + t * x_stride, cols, q.get() + t * cols, d.get() + t * n_blocks,
                         dsum.get() + t * n_blocks, qsum.get() + t * n_blocks);
      else
        k.quantize_act256(x + t * x_stride, cols, q.get() + t * cols, d.get() + t * n_blocks,
                          bsum.get() + t * (cols / 16));
    };
    if (T == 1) {
      quantize_token(0);
    } else {
      pool.parallel_for(T, 4, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) quantize_token(t);
      });
    }
  }

  // The view of columns [c0, ...) of every token.
  ActView view(int64_t c0) const {
    ActView a;
    a.q = q.get() + c0;
    a.q_stride = cols;
    a.d = d.get() + c0 / block;
    a.d_stride = n_blocks;
    if (block == 32) {
      a.dsum = dsum.get() + c0 / block;
      a.qsum = qsum.get() + c0 / block;
    }
    if (block == 256) {
      a.bsum = bsum.get() + c0 / 16;
      a.bsum_stride = cols / 16;
    }
    return a;
  }
};

// One matrix's row tiles against quantized activations: y = W x for the tiles a thread is handed.
class QuantizedTiles {
 public:
  QuantizedTiles(const KernelTable& k, QuantTileFn tile, const WeightMatrix& w, int64_t T,
                 float* y, int64_t y_stride, int n_threads)
      : w_(w), tile_(tile), T_(T), y_(y), y_stride_(y_stride),
        wb_(ggml_type_info(w.type).block_size), block_bytes_(ggml_type_info(w.type).block_bytes) {
    // Interleaved weights (ops/repack.h) go to the interleaved kernel; a table without one for
    // their groups' height (the scalar reference, NEON, a layout made for another table) gets the
    // tile's rows copied back to the plain layout first.
    if (w.interleaved_rows > 1) {
      if (k.interleaved_group_rows(w.type) == w.interleaved_rows) {
        interleaved_tile_ = k.interleaved_tile(w.type);
        tile_rows_ = w.interleaved_rows;  // one group per call
      } else {
        plain_.resize(size_t(n_threads));
      }
    }
    // Column panels: for the interleaved tile none wider than `panel` (activations in L2) and none
    // crossing one of the layout's panels (ops/repack.h); for the plain tiles, fixed cuts.
    panel_ = !interleaved_tile_ ? std::min(w.cols, kFixedPanel)
             : T <= kTileTokens ? w.cols
                                : panel_columns(w.cols, T);
    cuts_ = {0};  // panel p is [cuts_[p], cuts_[p + 1])
    while (cuts_.back() < w.cols)
      cuts_.push_back(std::min(cuts_.back() + panel_, interleaved_tile_
                                                           ? interleaved_panel_end(w, cuts_.back())
                                                           : w.cols));
    if (interleaved_tile_)  // where each panel's records start
      for (size_t p = 0; p + 1 < cuts_.size(); ++p)
        panel_records_.push_back(interleaved_records(w, cuts_[p] / wb_));
  }

  int64_t n_tiles() const { return (w_.rows + tile_rows_ - 1) / tile_rows_; }
  int64_t tile_bytes() const { return tile_rows_ * w_.row_bytes; }

  // Row tiles [tile_begin, tile_end), every panel, every token.
  void run(int64_t tile_begin, int64_t tile_end, int thread, const QuantizedActs& acts) {
    uint8_t* plain = nullptr;
    if (!plain_.empty()) {
      if (!plain_[size_t(thread)])
        plain_[size_t(thread)] = uninitialized<uint8_t>(kQuantTileRows * (panel_ / wb_) * block_bytes_);
      plain = plain_[size_t(thread)].get();
    }
    // One row tile against every token over panel p (the kernel decodes the rows' scales once).
    auto run_tile = [&](size_t p, int64_t r0, int n_rows) {
      const int64_t c0 = cuts_[p], nb = (cuts_[p + 1] - c0) / wb_;
      const ActView act = acts.view(c0);
      const bool accumulate = p > 0;
      float* y = y_ + r0;
      if (interleaved_tile_) {
        interleaved_tile_(panel_records_[p].group(r0 / tile_rows_), w_.row_bytes, n_rows, act, T_,
                          nb, y, y_stride_, accumulate);
      } else if (plain) {
        for (int r = 0; r < n_rows; ++r)
          copy_row_blocks(w_, r0 + r, c0 / wb_, nb, plain + r * nb * block_bytes_);
        tile_(plain, nb * block_bytes_, n_rows, act, T_, nb, y, y_stride_, accumulate);
      } else {
        tile_(w_.row(r0) + c0 / wb_ * block_bytes_, w_.row_bytes, n_rows, act, T_, nb, y, y_stride_,
              accumulate);
      }
    };
    const size_t n_panels = cuts_.size() - 1;
    if (interleaved_tile_ || T_ > kTileTokens) {
      // Panel after panel: the interleaved layout stores them so (one stream); many tokens keep a
      // panel's activations in L2 while the row tiles pass.
      for (size_t p = 0; p < n_panels; ++p)
        for_row_tiles(tile_begin, tile_end, w_.rows, tile_rows_,
                      [&](int64_t r0, int n_rows) { run_tile(p, r0, n_rows); });
    } else {
      // Few tokens on plain rows: each row tile's panels in turn, so its rows stream in order.
      for_row_tiles(tile_begin, tile_end, w_.rows, tile_rows_, [&](int64_t r0, int n_rows) {
        for (size_t p = 0; p < n_panels; ++p) run_tile(p, r0, n_rows);
      });
    }
  }

 private:
  const WeightMatrix& w_;
  QuantTileFn tile_, interleaved_tile_ = nullptr;
  int tile_rows_ = kQuantTileRows;
  int64_t T_;
  float* y_;
  int64_t y_stride_, wb_, block_bytes_, panel_ = 0;
  std::vector<int64_t> cuts_;
  std::vector<GroupRecords> panel_records_;
  std::vector<std::unique_ptr<uint8_t[]>> plain_;  // per thread
};

// Several matrices' row tiles as one run of tiles, handed out to the threads together: a thread
// that finishes one matrix's rows goes on with the next's instead of waiting for the others.
void run_quantized(std::vector<QuantizedTiles>& mats, const QuantizedActs& acts, ThreadPool& pool) {
  std::vector<int64_t> first = {0};  // mats[m]'s tiles are [first[m], first[m + 1])
  int64_t tile_bytes = 0;
  for (const QuantizedTiles& m : mats) {
    first.push_back(first.back() + m.n_tiles());
    tile_bytes = std::max(tile_bytes, m.tile_bytes());
  }
  for_tile_chunks(pool, first.back(), tile_bytes, [&](int64_t begin, int64_t end, int thread) {
    for (size_t m = 0; m < mats.size(); ++m) {
      const int64_t b = std::max(begin, first[m]), e = std::min(end, first[m + 1]);
      if (b < e) mats[m].run(b - first[m], e - first[m], thread, acts);
    }
  });
}

}  // namespace

void weight_row_f32(const WeightMatrix& w, int64_t row, float* out) {
  if (w.interleaved_rows > 1) {
    std::vector<uint8_t> plain(size_t(w.row_bytes));
    copy_row_blocks(w, row, 0, w.cols / ggml_type_info(w.type).block_size, plain.data());
    WeightMatrix one = w;
    one.rows = 1;
    one.data = plain.data();
    one.interleaved_rows = 1;
    return weight_row_f32(one, 0, out);
  }
  const DequantizeFn decode = active_kernels().dequantizer(w.type);
  if (decode && w.cols % ggml_type_info(w.type).block_size == 0)
    decode(w.row(row), out, w.cols);
  else
    dequantize_row(w.type, w.row(row), out, w.cols);  // F32, or the reference's error message
}

void matmul(const KernelTable& kernels, const WeightMatrix& w, const float* x, int64_t x_stride,
            int64_t n_tokens, float* y, int64_t y_stride, ThreadPool& pool, MatmulMode mode) {
  const MatmulOutput out{&w, y, y_stride};
  matmul_shared_input(kernels, {&out, 1}, x, x_stride, n_tokens, pool, mode);
}

void matmul_shared_input(const KernelTable& kernels, std::span<const MatmulOutput> outs,
                         const float* x, int64_t x_stride, int64_t n_tokens, ThreadPool& pool,
                         MatmulMode mode) {
  if (outs.empty()) return;
  const int64_t cols = outs[0].w->cols;
  for (const MatmulOutput& o : outs) {
    check_matmul(*o.w);
    if (o.w->cols != cols)
      fail("matmul: ", o.w->name, " has rows of ", o.w->cols, " values, not ", cols,
           " like the other matrices of its input");
  }
  if (n_tokens <= 0) return;
  if (cols == 0) {  // empty dot products
    for (const MatmulOutput& o : outs)
      for (int64_t t = 0; t < n_tokens; ++t) std::fill_n(o.y + t * o.y_stride, o.w->rows, 0.0f);
    return;
  }
  // Fast mode: the matrices with an integer tile share one quantization of x per activation
  // block size (32 or 256) and one pass over the pool; the others go through the float path.
  std::vector<QuantizedTiles> by_block[2];  // [0]: 32-blocks, [1]: 256-blocks
  for (const MatmulOutput& o : outs) {
    if (o.w->rows == 0) continue;
    const QuantTileFn tile =
        mode == MatmulMode::kFast ? kernels.quantized_tile(o.w->type) : nullptr;
    if (tile)
      by_block[act_block_size(o.w->type) == 32 ? 0 : 1].emplace_back(
          kernels, tile, *o.w, n_tokens, o.y, o.y_stride, pool.size());
    else
      matmul_float(kernels, *o.w, x, x_stride, n_tokens, o.y, o.y_stride, pool);
  }
  for (int i = 0; i < 2; ++i) {
    if (by_block[i].empty()) continue;
    const QuantizedActs acts(kernels, i == 0 ? 32 : 256, x, x_stride, cols, n_tokens, pool);
    run_quantized(by_block[i], acts, pool);
  }
}

void matmul_shared_input(std::span<const MatmulOutput> outs, const float* x, int64_t x_stride,
                         int64_t n_tokens, ThreadPool& pool, MatmulMode mode) {
  matmul_shared_input(active_kernels(), outs, x, x_stride, n_tokens, pool, mode);
}

void matmul(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, ThreadPool& pool, MatmulMode mode) {
  matmul(active_kernels(), w, x, x_stride, n_tokens, y, y_stride, pool, mode);
}

}  // namespace g4
