// The small kernels of ops/kernels.h on every CPU level this machine runs: the attention helpers
// (dot, axpy), the tanh ops, activation quantization and per-type dequantization.
// Names: Kernel/<op>/<level>[/<type>]/<n>.   gemma4_microbench --benchmark_filter='Kernel/'
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

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

// Attention's weighted sum of values: `rows` query heads, 64 value rows of head_dim 256.
void BM_AxpyRows(benchmark::State& state, const g4::KernelTable* k, int rows) {
  constexpr int64_t kKeys = 64, kDim = 256;
  const auto a = gaussian(rows * kKeys, 1), x = gaussian(kKeys * kDim, 2);
  auto y = gaussian(rows * kDim, 3);
  for (auto _ : state) {
    k->axpy_rows_f32(a.data(), kKeys, rows, x.data(), kDim, kKeys, y.data(), kDim, kDim);
    benchmark::ClobberMemory();
  }
  items(state, rows * kKeys * kDim);
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
  std::vector<int16_t> bsum(static_cast<size_t>(n / 16));
  for (auto _ : state) {
    if (block == 32)
      k->quantize_act32(x.data(), n, q.data(), d.data(), dsum.data());
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
    for (int rows : {2, 16})
      benchmark::RegisterBenchmark(("Kernel/AxpyRows/" + lv + "/" + std::to_string(rows) + "x64x256").c_str(),
                                   BM_AxpyRows, k, rows);
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
