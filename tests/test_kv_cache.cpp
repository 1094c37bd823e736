// KV cache geometry and types: full layers keep every position, sliding layers a ring of the
// window; rows stored in F32, F16, BF16, Q8_0 or Q4_0.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "model/kv_cache.h"
#include "ops/quant.h"
#include "random_data.h"

namespace g4 {
namespace {

Gemma4HParams two_layer_hparams(int window) {
  Gemma4HParams hp;
  hp.n_embd = 64;
  hp.n_layer = 2;
  hp.n_head = 2;
  hp.sliding_window = window;
  hp.layers = {LayerGeometry{true, 2, 32, 32, 1e4f, 32}, LayerGeometry{false, 1, 64, 64, 1e6f, 32}};
  return hp;
}

std::vector<float> row(int64_t n, int seed) { return test::gaussian(n, uint32_t(seed)); }

TEST(KvCacheTest, SlidingLayersUseARingFullLayersDoNot) {
  const Gemma4HParams hp = two_layer_hparams(4);
  KvCache cache(hp, KvCacheConfig{100, GgmlType::F32, GgmlType::F32});
  // sliding: 4 slots of 2*32 floats; full: 100 slots of 64 floats; K and V each.
  EXPECT_EQ(cache.size_bytes(), int64_t(2 * (4 * 64 + 100 * 64) * sizeof(float)));
  EXPECT_EQ(cache.size_bytes(), KvCache::plan(hp, cache.config()).total());
  // Position 5 lands in the ring slot of position 1 on the sliding layer only.
  const auto a = row(64, 1), b = row(64, 2);
  cache.store(0, 1, a.data(), a.data());
  cache.store(1, 1, a.data(), a.data());
  cache.store(0, 5, b.data(), b.data());
  cache.store(1, 5, b.data(), b.data());
  std::vector<float> out(32);
  cache.load_k(0, 1, 1, 1, out.data());
  EXPECT_EQ(out[0], b[32]);  // head 1 of position 5 overwrote position 1
  std::vector<float> full(64);
  cache.load_k(1, 0, 1, 1, full.data());
  EXPECT_EQ(full, a);
  cache.advance(10);
  EXPECT_EQ(cache.oldest_available(0), 6);
  EXPECT_EQ(cache.oldest_available(1), 0);
}

TEST(KvCacheTest, MemoryDoesNotGrowWithContextOnSlidingLayers) {
  const Gemma4HParams hp = two_layer_hparams(4);
  const KvCache::Plan small = KvCache::plan(hp, KvCacheConfig{1000}), large = KvCache::plan(hp, KvCacheConfig{2000});
  EXPECT_EQ(small.sliding_bytes, large.sliding_bytes);
  EXPECT_EQ(large.full_bytes, 2 * small.full_bytes);
  // Default F16: 2 bytes per value.
  EXPECT_EQ(small.full_bytes, 1000 * 64 * 2 * 2);
}

TEST(KvCacheTest, EveryTypeStoresWhatARoundTripGives) {
  const Gemma4HParams hp = two_layer_hparams(4);
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0}) {
    KvCache cache(hp, KvCacheConfig{16, type, type});
    const auto k = row(64, 3), v = row(64, 4);
    cache.store(1, 7, k.data(), v.data());
    std::vector<float> got_k(64), got_v(64), want_k = k, want_v = v;
    round_trip_row(type, want_k.data(), 64);
    round_trip_row(type, want_v.data(), 64);
    cache.load_k(1, 0, 7, 1, got_k.data());
    cache.load_v(1, 0, 7, 1, got_v.data());
    EXPECT_EQ(got_k, want_k) << ggml_type_name(type);
    EXPECT_EQ(got_v, want_v) << ggml_type_name(type);
    EXPECT_EQ(cache.size_bytes(), KvCache::plan(hp, cache.config()).total()) << ggml_type_name(type);
  }
  EXPECT_EQ(kv_cache_type_from_name("q8_0"), GgmlType::Q8_0);
  EXPECT_THROW(kv_cache_type_from_name("q4_k"), Error);
  EXPECT_THROW(KvCache(hp, KvCacheConfig{16, GgmlType::Q6_K, GgmlType::F16}), Error);
}

// Head-major rows (kv_cache.h): every head of every position reads back as stored, in runs that
// wrap around a sliding ring, and after the cache is shrunk and grown (resize keeps positions).
TEST(KvCacheTest, EveryHeadReadsBackAcrossTheRingAndResizes) {
  Gemma4HParams hp = two_layer_hparams(4);  // sliding: 2 heads x 32, ring of 4 slots
  hp.layers[1] = LayerGeometry{false, 2, 32, 32, 1e6f, 32};  // full: 2 heads x 32
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
    KvCache cache(hp, KvCacheConfig{30, type, type});
    std::vector<std::vector<float>> ks, vs;  // what each position's rows read back as
    auto store = [&](int64_t pos) {
      ks.push_back(row(64, int(100 + pos)));
      vs.push_back(row(64, int(200 + pos)));
      for (int l = 0; l < 2; ++l) cache.store(l, pos, ks.back().data(), vs.back().data());
      round_trip_row(type, ks.back().data(), 64);
      round_trip_row(type, vs.back().data(), 64);
      cache.advance(1);
    };
    auto check = [&](const char* when) {
      for (int l = 0; l < 2; ++l) {
        // The sliding layer holds the last 4 positions (slots wrap), the full layer all of them.
        const int64_t first = l == 0 ? cache.n_past() - 4 : 0, n = cache.n_past() - first;
        for (int head = 0; head < 2; ++head) {
          std::vector<float> k(size_t(n * 32)), v(size_t(n * 32));
          cache.load_k(l, head, first, n, k.data());
          cache.load_v(l, head, first, n, v.data());
          for (int64_t i = 0; i < n; ++i)
            for (int d = 0; d < 32; ++d) {
              ASSERT_EQ(k[size_t(i * 32 + d)], ks[size_t(first + i)][size_t(head * 32 + d)])
                  << when << " " << ggml_type_name(type) << " layer " << l;
              ASSERT_EQ(v[size_t(i * 32 + d)], vs[size_t(first + i)][size_t(head * 32 + d)])
                  << when << " " << ggml_type_name(type) << " layer " << l;
            }
        }
      }
    };
    for (int64_t p = 0; p < 7; ++p) store(p);
    check("stored");
    cache.resize(9);  // the full layer's 30 slots shrink to 9
    check("shrunk");
    cache.resize(40);
    check("grown");
    for (int64_t p = 7; p < 23; ++p) store(p);
    check("stored after growing");
    EXPECT_EQ(cache.size_bytes(), KvCache::plan(hp, cache.config()).total());
  }
}

TEST(KvCacheTest, TruncateWithinTheRingOnly) {
  const Gemma4HParams hp = two_layer_hparams(4);
  KvCacheConfig config{100};
  config.ring_extra = 2;
  KvCache cache(hp, config);
  cache.advance(20);
  cache.truncate(17);  // rolled back 3 = ring_extra + 1: still has positions 14..16
  EXPECT_EQ(cache.n_past(), 17);
  cache.advance(3);
  EXPECT_THROW(cache.truncate(10), Error);
  EXPECT_THROW(cache.truncate(21), Error);
  cache.clear();
  EXPECT_EQ(cache.n_past(), 0);
  EXPECT_THROW(KvCache(hp, 0), Error);
}

}  // namespace
}  // namespace g4
