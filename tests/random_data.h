// Seeded random test data, the same on every run (one helper for every test file; the kernel-only
// aarch64 test build includes it too, so it needs nothing beyond the standard library).
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace g4::test {

// n samples of a normal distribution (mean, sigma) from `seed`.
inline std::vector<float> gaussian(int64_t n, uint32_t seed, float sigma = 1.0f, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, sigma);
  std::vector<float> v(size_t(std::max<int64_t>(n, 0)));
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace g4::test
