// Attention over more keys than one partial-softmax split (model/attention.cpp): a decoding step's
// row equals, bit for bit, the same row of a prefill pass, with one or two threads, and both match
// a float64 softmax. The model tests' prompts are far shorter than a split, so the splits, their
// parallel waves and their merges are only exercised here.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/attention.h"
#include "model/kv_cache.h"
#include "ops/quant.h"
#include "random_data.h"

namespace g4 {
namespace {

constexpr int kHeads = 4;

struct Layer {
  LayerGeometry g;
  std::vector<float> q, k, v;  // [position][heads * head_dim], [position][kv heads * head_dim]
};

using test::gaussian;

// softmax(q k^T) v of row `pos`, head `h`, in float64, over keys [lo, pos].
std::vector<double> reference(const Layer& l, int64_t pos, int h, int64_t lo) {
  const int64_t hd = l.g.head_dim, q_row = kHeads * hd, kv_row = l.g.n_head_kv * hd;
  const int kv = h / (kHeads / l.g.n_head_kv);
  std::vector<double> scores;
  double m = -INFINITY;
  for (int64_t p = lo; p <= pos; ++p) {
    double s = 0;
    for (int64_t d = 0; d < hd; ++d) s += double(l.q[size_t(pos * q_row + h * hd + d)]) * l.k[size_t(p * kv_row + kv * hd + d)];
    scores.push_back(s);
    m = std::max(m, s);
  }
  std::vector<double> out(size_t(hd), 0.0);
  double sum = 0;
  for (int64_t p = lo; p <= pos; ++p) {
    const double w = std::exp(scores[size_t(p - lo)] - m);
    sum += w;
    for (int64_t d = 0; d < hd; ++d) out[size_t(d)] += w * l.v[size_t(p * kv_row + kv * hd + d)];
  }
  for (double& x : out) x /= sum;
  return out;
}

// Per cache type: F32 stores exactly, F16 (the default) is read in place by the attention
// kernels, Q8_0 is decoded a tile at a time. This pass's keys and values are first rounded to the
// cache's precision, as the forward pass does, so a row sees the same values either way.
class AttentionTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(AttentionTest, DecodeEqualsPrefillAcrossSplitsAndMatchesFloat64) {
  const GgmlType type = GetParam();
  constexpr int64_t kPositions = 1100,
                    kWindow = 300;  // several 256-key splits (the full layer's in tiles of 128
                                    // keys); the ring wraps mid-tile
  Gemma4HParams hp;
  hp.n_embd = 64;
  hp.n_layer = 2;
  hp.n_head = kHeads;
  hp.sliding_window = int(kWindow);
  hp.layers = {LayerGeometry{true, 2, 32, 32, 1e4f, 32},
               LayerGeometry{false, 1, 128, 128, 1e6f, 32}};
  std::vector<Layer> layers;
  for (int l = 0; l < 2; ++l) {
    const LayerGeometry& g = hp.layers[size_t(l)];
    const size_t q_row = size_t(kHeads * g.head_dim), kv_row = size_t(g.n_head_kv * g.head_dim);
    layers.push_back({g, gaussian(kPositions * q_row, 10 + l, 0.4f), gaussian(kPositions * kv_row, 20 + l, 0.4f),
                      gaussian(kPositions * kv_row, 30 + l, 1.0f)});
    for (size_t p = 0; p < size_t(kPositions); ++p) {
      round_trip_row(type, &layers.back().k[p * kv_row], int64_t(kv_row));
      round_trip_row(type, &layers.back().v[p * kv_row], int64_t(kv_row));
    }
  }
  const KvCacheConfig config{kPositions, type, type};
  ThreadPool pool1(1), pool2(2);
  auto input = [&](int l, const KvCache& cache, int64_t pos0, int64_t n, float* out) {
    const Layer& L = layers[size_t(l)];
    AttentionInput a;
    a.layer = l;
    a.geometry = &L.g;
    a.n_head = kHeads;
    a.sliding_window = hp.sliding_window;
    a.cache = &cache;
    a.pos0 = pos0;
    a.n = n;
    a.q = &L.q[size_t(pos0 * kHeads * L.g.head_dim)];
    a.k = &L.k[size_t(pos0 * L.g.n_head_kv * L.g.head_dim)];
    a.v = &L.v[size_t(pos0 * L.g.n_head_kv * L.g.head_dim)];
    a.out = out;
    return a;
  };

  // Prefill: every row in one pass, nothing cached.
  KvCache empty(hp, config);
  std::vector<std::vector<float>> prefill(2);
  for (int l = 0; l < 2; ++l) {
    prefill[size_t(l)].resize(size_t(kPositions * kHeads * layers[size_t(l)].g.head_dim));
    attention(input(l, empty, 0, kPositions, prefill[size_t(l)].data()), pool2);
  }

  // Decode: one row at a time against the cache, two threads and one.
  KvCache cache(hp, config);
  double max_err = 0;
  for (int64_t pos = 0; pos < kPositions; ++pos) {
    for (int l = 0; l < 2; ++l) {
      const Layer& L = layers[size_t(l)];
      const int64_t q_row = kHeads * L.g.head_dim, kv_row = L.g.n_head_kv * L.g.head_dim;
      std::vector<float> out2(static_cast<size_t>(q_row)), out1(static_cast<size_t>(q_row));
      attention(input(l, cache, pos, 1, out2.data()), pool2);
      attention(input(l, cache, pos, 1, out1.data()), pool1);
      const std::vector<float> want(prefill[size_t(l)].begin() + pos * q_row, prefill[size_t(l)].begin() + (pos + 1) * q_row);
      ASSERT_EQ(out2, want) << ggml_type_name(type) << " layer " << l << " position " << pos;
      ASSERT_EQ(out1, want) << ggml_type_name(type) << " layer " << l << " position " << pos
                            << ", one thread";
      if (pos % 97 == 0 || pos == kPositions - 1)
        for (int h = 0; h < kHeads; ++h) {
          const auto ref = reference(L, pos, h, L.g.sliding ? std::max<int64_t>(0, pos - kWindow + 1) : 0);
          for (int64_t d = 0; d < L.g.head_dim; ++d)
            max_err = std::max(max_err, std::abs(ref[size_t(d)] - want[size_t(h * L.g.head_dim + d)]));
        }
      cache.store(l, pos, &L.k[size_t(pos * kv_row)], &L.v[size_t(pos * kv_row)]);
    }
    cache.advance(1);
  }
  EXPECT_LT(max_err, 1e-5);  // float32 sums of ~1000 terms of size ~1
}

INSTANTIATE_TEST_SUITE_P(CacheTypes, AttentionTest,
                         ::testing::Values(GgmlType::F32, GgmlType::F16, GgmlType::Q8_0),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(ggml_type_name(info.param));
                         });

}  // namespace
}  // namespace g4
