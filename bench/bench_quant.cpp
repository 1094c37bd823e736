// Scalar reference throughput per weight type on one 4096-element row: dequantize_row,
// dot_row_ref and quantize_row. The SIMD kernels of a later issue are measured against these.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "core/ggml_type.h"
#include "ops/quant.h"

namespace {

constexpr int64_t kRowLength = 4096;

const g4::GgmlType kTypes[] = {g4::GgmlType::F32,  g4::GgmlType::F16,  g4::GgmlType::BF16,
                               g4::GgmlType::Q8_0, g4::GgmlType::Q4_0, g4::GgmlType::Q4_1,
                               g4::GgmlType::Q5_0, g4::GgmlType::Q5_1, g4::GgmlType::Q4_K,
                               g4::GgmlType::Q5_K, g4::GgmlType::Q6_K};

std::vector<float> gaussian_row(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(kRowLength);
  for (float& v : x) v = dist(rng);
  return x;
}

std::vector<uint8_t> quantized_row(g4::GgmlType type) {
  const std::vector<float> w = gaussian_row(1);
  std::vector<uint8_t> row(size_t(g4::ggml_row_bytes(type, kRowLength)));
  g4::quantize_row(type, w.data(), row.data(), kRowLength);
  return row;
}

void set_counters(benchmark::State& state, g4::GgmlType type) {
  state.SetItemsProcessed(state.iterations() * kRowLength);
  state.SetBytesProcessed(state.iterations() * g4::ggml_row_bytes(type, kRowLength));
}

void BM_DequantizeRow(benchmark::State& state, g4::GgmlType type) {
  const std::vector<uint8_t> row = quantized_row(type);
  std::vector<float> out(kRowLength);
  for (auto _ : state) {
    g4::dequantize_row(type, row.data(), out.data(), kRowLength);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, type);
}

void BM_DotRowRef(benchmark::State& state, g4::GgmlType type) {
  const std::vector<uint8_t> row = quantized_row(type);
  const std::vector<float> x = gaussian_row(2);
  for (auto _ : state)
    benchmark::DoNotOptimize(g4::dot_row_ref(type, row.data(), x.data(), kRowLength));
  set_counters(state, type);
}

void BM_QuantizeRow(benchmark::State& state, g4::GgmlType type) {
  const std::vector<float> w = gaussian_row(3);
  std::vector<uint8_t> row(size_t(g4::ggml_row_bytes(type, kRowLength)));
  for (auto _ : state) {
    g4::quantize_row(type, w.data(), row.data(), kRowLength);
    benchmark::DoNotOptimize(row.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, type);
}

// One benchmark per (operation, type), named e.g. "DequantizeRow/Q4_K".
const bool kRegistered = [] {
  for (const g4::GgmlType type : kTypes) {
    const std::string name = g4::ggml_type_name(type);
    benchmark::RegisterBenchmark(("DequantizeRow/" + name).c_str(), BM_DequantizeRow, type);
    benchmark::RegisterBenchmark(("DotRowRef/" + name).c_str(), BM_DotRowRef, type);
    benchmark::RegisterBenchmark(("QuantizeRow/" + name).c_str(), BM_QuantizeRow, type);
  }
  return true;
}();

}  // namespace
