// matmul on the 12B's projection shapes, per weight type, CPU level, mode and token count.
// Decode (1 token; 8 tokens: a batched decode step) is reported as weight bytes/s against the
// memory bandwidth; prefill as multiply-adds/s. Weights are interleaved where the model loader
// would (ops/repack.h). Names: Matmul/<level>/<type>/<mode>/<rows>x<cols>/t<tokens>/threads:<n>.
//   gemma4_microbench --benchmark_filter='Matmul/avx2/Q4_0/fast/.*t1/'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/large_buffer.h"
#include "core/thread_pool.h"
#include "ops/cpu_features.h"
#include "ops/kernels.h"
#include "ops/matmul.h"
#include "ops/quant.h"
#include "ops/repack.h"

namespace {

struct Weights {
  std::vector<uint8_t> bytes;
  g4::LargeBuffer interleaved;
  g4::WeightMatrix w;
};

// Rows quantized from Gaussian values; a large matrix repeats one quantized block row pattern so
// that setting it up stays fast (the bytes still stream from memory).
std::shared_ptr<Weights> make_weights(g4::GgmlType type, int64_t rows, int64_t cols) {
  auto m = std::make_shared<Weights>();
  m->w.name = "bench";
  m->w.type = type;
  m->w.rows = rows;
  m->w.cols = cols;
  m->w.row_bytes = g4::ggml_row_bytes(type, cols);
  m->bytes.resize(size_t(rows * m->w.row_bytes));
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  constexpr int64_t kDistinctRows = 64;
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < std::min(rows, kDistinctRows); ++r) {
    for (float& v : row) v = dist(rng);
    g4::quantize_row(type, row.data(), m->bytes.data() + r * m->w.row_bytes, cols);
  }
  for (int64_t r = kDistinctRows; r < rows; ++r)
    std::copy_n(m->bytes.data() + (r % kDistinctRows) * m->w.row_bytes, m->w.row_bytes,
                m->bytes.data() + r * m->w.row_bytes);
  m->w.data = m->bytes.data();
  return m;
}

void BM_Matmul(benchmark::State& state, g4::CpuLevel level, g4::GgmlType type, g4::MatmulMode mode,
               int64_t rows, int64_t cols, int64_t tokens, int threads) {
  auto weights = make_weights(type, rows, cols);
  const g4::KernelTable& kernels = g4::kernel_table(level);
  if (const int group_rows = g4::interleave_rows(kernels, weights->w)) {
    // as the model loader does (huge pages too)
    weights->interleaved = g4::LargeBuffer(weights->bytes.size());
    g4::interleave_groups(weights->w, group_rows, 0, rows / group_rows,
                          weights->interleaved.data());
    weights->w.data = weights->interleaved.data();
    weights->w.interleaved_rows = group_rows;
  }
  g4::ThreadPool pool(threads);
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(tokens * cols)), y(static_cast<size_t>(tokens * rows));
  for (float& v : x) v = dist(rng);
  for (auto _ : state) {
    g4::matmul(kernels, weights->w, x.data(), cols, tokens, y.data(), rows, pool, mode);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * weights->w.row_bytes);
  state.counters["MAC/s"] = benchmark::Counter(
      double(state.iterations()) * double(rows * cols * tokens), benchmark::Counter::kIsRate);
  state.counters["tokens/s"] =
      benchmark::Counter(double(state.iterations() * tokens), benchmark::Counter::kIsRate);
}

const bool kRegistered = [] {
  const g4::GgmlType types[] = {g4::GgmlType::Q4_0, g4::GgmlType::Q8_0, g4::GgmlType::Q4_1,
                                g4::GgmlType::Q5_0, g4::GgmlType::Q5_1, g4::GgmlType::Q4_K,
                                g4::GgmlType::Q5_K, g4::GgmlType::Q6_K, g4::GgmlType::F16,
                                g4::GgmlType::BF16, g4::GgmlType::F32};
  struct Shape {
    int64_t rows, cols;
  };
  // ffn_up/gate and ffn_down of the 12B, its tied output (262144 x 3840: decode only), and a
  // matrix that stays in cache (1024 x 3840: the kernel's own speed, without the memory's limit)
  const Shape shapes[] = {{15360, 3840}, {3840, 15360}, {262144, 3840}, {1024, 3840}};
  for (g4::CpuLevel level : g4::supported_cpu_levels())
    for (g4::GgmlType type : types)
      for (g4::MatmulMode mode : {g4::MatmulMode::kFast, g4::MatmulMode::kPrecise})
        for (const Shape& s : shapes)
          for (int64_t tokens : {1, 8, 128}) {
            if (s.rows > 100000 && tokens > 1) continue;
            for (int threads : {1, 2}) {
              const std::string name = std::string("Matmul/") + g4::cpu_level_name(level) + "/" +
                                       g4::ggml_type_name(type) + "/" +
                                       (mode == g4::MatmulMode::kFast ? "fast" : "precise") + "/" +
                                       std::to_string(s.rows) + "x" + std::to_string(s.cols) +
                                       "/t" + std::to_string(tokens) +
                                       "/threads:" + std::to_string(threads);
              benchmark::RegisterBenchmark(name.c_str(), BM_Matmul, level, type, mode, s.rows,
                                           s.cols, tokens, threads)
                  ->Unit(benchmark::kMillisecond)
                  ->UseRealTime();
            }
          }
  return true;
}();

}  // namespace
