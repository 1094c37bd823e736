// The small kernels of ops/kernels.h on every CPU level this machine runs: the attention helpers
// (dot, axpy), the tanh ops, activation quantization and per-type dequantization.
// Names: Kernel/<op>/<level>[/<type>]/<n>.   gemma4_microbench --benchmark_filter='Kernel/'
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/half.h"
#include "ops/cpu_features.h"
#include "ops/kernels.h"
#include "ops/quant.h"

namespace {

std::vector<float> gaussian(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

void items(benchmark::State& state, int64_t n) {
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_Dot(benchmark::State& state, const g4::KernelTable* k, int64_t n) {
  const auto a = gaussian(n, 1), b = gaussian(n, 2);
  for (auto _ : state) benchmark::DoNotOptimize(k->dot_f32(a.data(), b.data(), n));
  items(state, n);
}

void BM_Axpy(benchmark::State& state, const g4::KernelTable* k, int64_t n) {
  const auto x = gaussian(n, 1);
  auto y = gaussian(n, 2);
  for (auto _ : state) {
    k->axpy_f32(1e-3f, x.data(), y.data(), n);
    benchmark::ClobberMemory();
  }
  items(state, n);
}

// Attention's inner loops on a 12B layer's shapes: `heads` query heads sharing one KV head, a tile
// of `keys` cached keys and values of head_dim `dim`, as floats or as the F16 cache's halves.
struct AttentionTile {
  std::vector<float> q, k, v, scores, y;
  std::vector<uint16_t> k16, v16;
  AttentionTile(int heads, int64_t keys, int64_t dim)
      : q(gaussian(heads * dim, 1)),
        k(gaussian(keys * dim, 2)),
        v(gaussian(keys * dim, 3)),
        scores(gaussian(heads * keys, 4)),
        y(gaussian(heads * dim, 5)) {
    for (float x : k) k16.push_back(g4::f32_to_fp16(x));
    for (float x : v) v16.push_back(g4::f32_to_fp16(x));
  }
};

void BM_AxpyRows(benchmark::State& state, const g4::KernelTable* k, int heads, int64_t keys,
                 int64_t dim, bool half) {
  AttentionTile t(heads, keys, dim);
  for (auto _ : state) {
    if (half)
      k->axpy_rows_f16(t.scores.data(), keys, heads, t.v16.data(), dim, keys, t.y.data(), dim, dim);
    else
      k->axpy_rows_f32(t.scores.data(), keys, heads, t.v.data(), dim, keys, t.y.data(), dim, dim);
    benchmark::ClobberMemory();
  }
  items(state, heads * keys * dim);
}

void BM_AttnScores(benchmark::State& state, const g4::KernelTable* k, int heads, int64_t keys,
                   int64_t dim, bool half) {
  AttentionTile t(heads, keys, dim);
  for (auto _ : state) {
    if (half)
      k->attn_scores_f16(t.q.data(), dim, heads, t.k16.data(), dim, keys, dim, t.scores.data(),
                         keys);
    else
      k->attn_scores_f32(t.q.data(), dim, heads, t.k.data(), dim, keys, dim, t.scores.data(), keys);
    benchmark::ClobberMemory();
  }
  items(state, heads * keys * dim);
}

void BM_Softcap(benchmark::State& state, const g4::KernelTable* k, int64_t n) {
  const auto x = gaussian(n, 1);
  auto y = x;
  for (auto _ : state) {
    state.PauseTiming();
    y = x;
    state.ResumeTiming();
    k->softcap_f32(y.data(), n, 30.0f);
    benchmark::ClobberMemory();
  }
  items(state, n);
}

void BM_Geglu(benchmark::State& state, const g4::KernelTable* k, int64_t n) {
  const auto gate = gaussian(n, 1), up = gaussian(n, 2);
  auto g = gate;
  for (auto _ : state) {
    state.PauseTiming();
    g = gate;
    state.ResumeTiming();
    k->geglu_f32(g.data(), up.data(), n);
    benchmark::ClobberMemory();
  }
  items(state, n);
}

void BM_QuantizeAct(benchmark::State& state, const g4::KernelTable* k, int block, int64_t n) {
  const auto x = gaussian(n, 1);
  std::vector<int8_t> q(static_cast<size_t>(n));
  std::vector<float> d(static_cast<size_t>(n / 32)), dsum(static_cast<size_t>(n / 32));
  std::vector<int32_t> qsum(static_cast<size_t>(n / 32));
  std::vector<int16_t> bsum(static_cast<size_t>(n / 16));
  for (auto _ : state) {
    if (block == 32)
      k->quantize_act32(x.data(), n, q.data(), d.data(), dsum.data(), qsum.data());
    else
      k->quantize_act256(x.data(), n, q.data(), d.data(), bsum.data());
    benchmark::ClobberMemory();
  }
  items(state, n);
}

void BM_Dequantize(benchmark::State& state, const g4::KernelTable* k, g4::GgmlType type,
                   int64_t n) {
  const auto x = gaussian(n, 1);
  std::vector<uint8_t> row(static_cast<size_t>(g4::ggml_row_bytes(type, n)));
  g4::quantize_row(type, x.data(), row.data(), n);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    k->dequantizer(type)(row.data(), out.data(), n);
    benchmark::ClobberMemory();
  }
  items(state, n);
}

const bool kRegistered = [] {
  for (g4::CpuLevel level : g4::supported_cpu_levels()) {
    const g4::KernelTable* k = &g4::kernel_table(level);
    const std::string lv = g4::cpu_level_name(level);
    for (int64_t n : {256, 4096}) {
      benchmark::RegisterBenchmark(("Kernel/Dot/" + lv + "/" + std::to_string(n)).c_str(), BM_Dot,
                                   k, n);
      benchmark::RegisterBenchmark(("Kernel/Axpy/" + lv + "/" + std::to_string(n)).c_str(), BM_Axpy,
                                   k, n);
    }
    // A sliding layer's tile (2 heads per KV head, 64 keys of 256) and a full layer's (16, 32 of
    // 512).
    for (const auto& [heads, keys, dim] :
         {std::tuple{2, int64_t(64), int64_t(256)}, std::tuple{16, int64_t(32), int64_t(512)}})
      for (bool half : {false, true}) {
        std::string shape = half ? "/f16/" : "/f32/";
        shape += std::to_string(heads) + "x" + std::to_string(keys) + "x" + std::to_string(dim);
        benchmark::RegisterBenchmark(("Kernel/AxpyRows/" + lv + shape).c_str(), BM_AxpyRows, k,
                                     heads, keys, dim, half);
        benchmark::RegisterBenchmark(("Kernel/AttnScores/" + lv + shape).c_str(), BM_AttnScores, k,
                                     heads, keys, dim, half);
      }
    benchmark::RegisterBenchmark(("Kernel/Softcap/" + lv + "/262144").c_str(), BM_Softcap, k,
                                 int64_t(262144));
    benchmark::RegisterBenchmark(("Kernel/Geglu/" + lv + "/15360").c_str(), BM_Geglu, k,
                                 int64_t(15360));
    benchmark::RegisterBenchmark(("Kernel/QuantizeAct32/" + lv + "/15360").c_str(), BM_QuantizeAct,
                                 k, 32, int64_t(15360));
    benchmark::RegisterBenchmark(("Kernel/QuantizeAct256/" + lv + "/15360").c_str(), BM_QuantizeAct,
                                 k, 256, int64_t(15360));
    for (g4::GgmlType type :
         {g4::GgmlType::F16, g4::GgmlType::BF16, g4::GgmlType::Q8_0, g4::GgmlType::Q4_0,
          g4::GgmlType::Q4_1, g4::GgmlType::Q5_0, g4::GgmlType::Q5_1, g4::GgmlType::Q4_K,
          g4::GgmlType::Q5_K, g4::GgmlType::Q6_K})
      benchmark::RegisterBenchmark(
          ("Kernel/Dequantize/" + lv + "/" + g4::ggml_type_name(type) + "/4096").c_str(),
          BM_Dequantize, k, type, int64_t(4096));
  }
  return true;
}();

}  // namespace
