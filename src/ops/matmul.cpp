// matmul's loops around the kernels of ops/kernels.h.
//
// Work unit: a row tile (kTileRows weight rows, kQuantTileRows in fast mode). Threads take chunks
// of consecutive row tiles from a shared counter, so each streams its weights in order.
// Decode (few tokens): every weight byte is read once per matmul, by one thread; the kernels
// prefetch the next rows while working on the current ones, so the two cores together keep the
// memory bus busy (the speed limit: bytes of weights / bandwidth).
// Prefill (many tokens): the columns are cut into panels whose activations (int8 in fast mode,
// float in precise mode) fit in L2; for each panel every row tile of the chunk meets every token,
// the weight block's scales decoded once per row tile and its codes unpacked once per group of 4
// tokens (fast mode), or its values decoded to float once per row tile (precise mode).
#include "ops/matmul.h"

#include <algorithm>
#include <atomic>
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
// Columns per panel when there are only a few tokens: bounds the float decoding buffer (kept in
// L1/L2) of the precise path.
constexpr int64_t kFewTokensPanel = 2048;
// Every panel boundary is a multiple of this (whole blocks of every type).
constexpr int64_t kPanelAlign = 256;

template <class T>
std::unique_ptr<T[]> uninitialized(int64_t n) {
  return std::unique_ptr<T[]>(new T[size_t(std::max<int64_t>(n, 1))]);
}

// Columns per panel for n_tokens activation rows of `bytes_per_value` bytes.
int64_t panel_columns(int64_t cols, int64_t n_tokens, int64_t bytes_per_value) {
  if (n_tokens <= kTileTokens) return std::min(cols, kFewTokensPanel);
  const int64_t fit = kActPanelBytes / (n_tokens * bytes_per_value) / kPanelAlign * kPanelAlign;
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

// Hands the row tiles out to the pool's threads in chunks taken from a shared counter, and calls
// fn(tile_begin, tile_end, scratch_index) for each chunk. Dynamic rather than one fixed share per
// thread: on a shared machine a thread that loses its core for a while does not hold up the
// others. A chunk is a contiguous run of rows, so weights stream in order (and prefetch ahead).
// Chunks shrink as the work runs out (each takes 1/(2 x threads) of the tiles left, at most 64
// tiles, so that a prefill chunk's outputs stay in cache across panels, and at least
// kMinChunkBytes of weights), so the threads finish within a small chunk of each other: with
// fixed chunks of up to 64 tiles one thread idled ~35 us at the end of every 33 MB matrix of a
// decode step (6% of its time).
constexpr int64_t kMinChunkBytes = 64 * 1024;

template <class Fn>
void for_tile_chunks(ThreadPool& pool, int64_t n_tiles, int64_t tile_bytes, Fn&& fn) {
  const int64_t min_tiles = std::max<int64_t>(1, kMinChunkBytes / std::max<int64_t>(1, tile_bytes));
  const int64_t shares = int64_t(pool.size()) * 2;
  std::atomic<int64_t> next{0};
  const int64_t max_chunks = (n_tiles + min_tiles - 1) / min_tiles;
  pool.parallel_for(std::min<int64_t>(pool.size(), max_chunks), 1, [&](int64_t, int64_t, int thread) {
    int64_t begin = next.load(std::memory_order_relaxed);
    while (begin < n_tiles) {
      const int64_t size = std::clamp<int64_t>((n_tiles - begin) / shares, min_tiles, 64);
      const int64_t end = std::min(n_tiles, begin + size);
      if (next.compare_exchange_weak(begin, end, std::memory_order_relaxed)) {
        fn(begin, end, thread);
        begin = next.load(std::memory_order_relaxed);
      }
    }
  });
}

// Precise path (and F32/F16/BF16 weights in every mode): rows decoded to float, float tiles.
void matmul_float(const KernelTable& k, const WeightMatrix& w, const float* x, int64_t x_stride,
                  int64_t T, float* y, int64_t y_stride, ThreadPool& pool) {
  const int64_t cols = w.cols;
  const int64_t panel = panel_columns(cols, T, sizeof(float));
  const int64_t n_panels = (cols + panel - 1) / panel;
  const int64_t n_tiles = (w.rows + kTileRows - 1) / kTileRows;
  const DequantizeFn decode = w.type == GgmlType::F32 ? nullptr : k.dequantizer(w.type);
  if (w.type != GgmlType::F32 && !decode) fail("matmul: no decoder for ", ggml_type_name(w.type));
  const int64_t block = ggml_type_info(w.type).block_size,
                block_bytes = ggml_type_info(w.type).block_bytes;

  const bool interleaved = w.interleaved_rows > 1;
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
      const float* rows_f32;
      int64_t w_stride;
      if (!decode) {
        rows_f32 = reinterpret_cast<const float*>(w.row(r0)) + c0;
        w_stride = w.row_bytes / int64_t(sizeof(float));
      } else {
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
      }
      for (int64_t t0 = 0; t0 < T; t0 += kTileTokens) {
        const int n_tok = int(std::min<int64_t>(kTileTokens, T - t0));
        k.float_tile(rows_f32, w_stride, n_rows, x + t0 * x_stride + c0, x_stride, n_tok, width,
                     y + t0 * y_stride + r0, y_stride, accumulate);
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
void matmul_quantized(const KernelTable& k, QuantTileFn tile, const WeightMatrix& w, const float* x,
                      int64_t x_stride, int64_t T, float* y, int64_t y_stride, ThreadPool& pool) {
  const int64_t cols = w.cols;
  const int ab = act_block_size(w.type);
  const int64_t n_ab = cols / ab;  // activation blocks per token
  auto q = uninitialized<int8_t>(T * cols);
  auto d = uninitialized<float>(T * n_ab);
  auto dsum = uninitialized<float>(ab == 32 ? T * n_ab : 0);
  auto bsum = uninitialized<int16_t>(ab == 256 ? T * (cols / 16) : 0);
  auto quantize_token = [&](int64_t t) {
    if (ab == 32)
      k.quantize_act32(x + t * x_stride, cols, q.get() + t * cols, d.get() + t * n_ab,
                       dsum.get() + t * n_ab);
    else
      k.quantize_act256(x + t * x_stride, cols, q.get() + t * cols, d.get() + t * n_ab,
                        bsum.get() + t * (cols / 16));
  };
  if (T == 1) {
    quantize_token(0);
  } else {
    pool.parallel_for(T, 4, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) quantize_token(t);
    });
  }

  const int64_t wb = ggml_type_info(w.type).block_size;  // == ab for every quantized type
  const int64_t block_bytes = ggml_type_info(w.type).block_bytes;
  // Interleaved weights (ops/repack.h) go to the interleaved kernel; a table without one (the
  // scalar reference, NEON) gets the tile's rows copied back to the plain layout first.
  const bool interleaved = w.interleaved_rows > 1;
  const QuantTileFn interleaved_tile = interleaved ? k.interleaved_tile(w.type) : nullptr;

  // Column panels: none wider than `panel` (activations in L2), and for the interleaved tile none
  // crossing one of the layout's panels (ops/repack.h).
  const int64_t panel = T <= kTileTokens ? cols : panel_columns(cols, T, 1);
  std::vector<int64_t> cuts = {0};  // panel p is [cuts[p], cuts[p + 1])
  while (cuts.back() < cols)
    cuts.push_back(std::min(cuts.back() + panel,
                            interleaved_tile ? interleaved_panel_end(w, cuts.back()) : cols));
  std::vector<GroupRecords> panel_records;  // interleaved tile: where each panel's records start
  if (interleaved_tile)
    for (size_t p = 0; p + 1 < cuts.size(); ++p)
      panel_records.push_back(interleaved_records(w, cuts[p] / wb));
  const int64_t n_tiles = (w.rows + kQuantTileRows - 1) / kQuantTileRows;
  std::vector<std::unique_ptr<uint8_t[]>> plain(size_t(pool.size()));  // per thread
  for_tile_chunks(pool, n_tiles, kQuantTileRows * w.row_bytes, [&](int64_t tile_begin, int64_t tile_end, int thread) {
    if (interleaved && !interleaved_tile && !plain[size_t(thread)])
      plain[size_t(thread)] = uninitialized<uint8_t>(kQuantTileRows * (panel / wb) * block_bytes);
    // One row tile against every token (the kernel decodes the rows' scales once), for the
    // columns of panel p.
    auto run_tile = [&](int64_t r0, int n_rows, size_t p) {
      const int64_t c0 = cuts[p], width = cuts[p + 1] - cuts[p];
      const bool accumulate = p > 0;
      ActView act;
      act.q = q.get() + c0;
      act.q_stride = cols;
      act.d = d.get() + c0 / ab;
      act.d_stride = n_ab;
      if (ab == 32) act.dsum = dsum.get() + c0 / ab;
      if (ab == 256) {
        act.bsum = bsum.get() + c0 / 16;
        act.bsum_stride = cols / 16;
      }
      const int64_t nb = width / wb;
      if (interleaved_tile) {
        interleaved_tile(panel_records[p].group(r0 / kInterleaveRows), w.row_bytes, n_rows, act, T,
                         nb, y + r0, y_stride, accumulate);
      } else if (interleaved) {
        uint8_t* rows = plain[size_t(thread)].get();
        for (int r = 0; r < n_rows; ++r)
          copy_row_blocks(w, r0 + r, c0 / wb, nb, rows + r * nb * block_bytes);
        tile(rows, nb * block_bytes, n_rows, act, T, nb, y + r0, y_stride, accumulate);
      } else {
        tile(w.row(r0) + c0 / wb * block_bytes, w.row_bytes, n_rows, act, T, nb, y + r0, y_stride,
             accumulate);
      }
    };
    for (size_t p = 0; p + 1 < cuts.size(); ++p)
      for_row_tiles(tile_begin, tile_end, w.rows, kQuantTileRows, [&](int64_t r0, int n_rows) {
        run_tile(r0, n_rows, p);
      });
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
  check_matmul(w);
  if (n_tokens <= 0 || w.rows == 0) return;
  if (w.cols == 0) {  // empty dot products
    for (int64_t t = 0; t < n_tokens; ++t) std::fill_n(y + t * y_stride, w.rows, 0.0f);
    return;
  }
  const QuantTileFn tile = mode == MatmulMode::kFast ? kernels.quantized_tile(w.type) : nullptr;
  if (tile)
    matmul_quantized(kernels, tile, w, x, x_stride, n_tokens, y, y_stride, pool);
  else
    matmul_float(kernels, w, x, x_stride, n_tokens, y, y_stride, pool);
}

void matmul(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, ThreadPool& pool, MatmulMode mode) {
  matmul(active_kernels(), w, x, x_stride, n_tokens, y, y_stride, pool, mode);
}

}  // namespace g4
