// KV cache geometry: full layers keep every position, sliding layers a ring of the window.
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/kv_cache.h"

namespace g4 {
namespace {

Gemma4HParams two_layer_hparams(int window) {
  Gemma4HParams hp;
  hp.n_embd = 16;
  hp.n_layer = 2;
  hp.n_head = 2;
  hp.sliding_window = window;
  hp.layers = {LayerGeometry{true, 2, 8, 8, 1e4f, 32}, LayerGeometry{false, 1, 16, 16, 1e6f, 32}};
  return hp;
}

TEST(KvCacheTest, SlidingLayersUseARingFullLayersDoNot) {
  const Gemma4HParams hp = two_layer_hparams(4);
  KvCache cache(hp, 100);
  // sliding: 4 slots of 2*8 floats; full: 100 slots of 16 floats; K and V each.
  EXPECT_EQ(cache.size_bytes(), int64_t(2 * (4 * 16 + 100 * 16) * sizeof(float)));
  EXPECT_EQ(cache.size_bytes(), KvCache::planned_bytes(hp, 100));
  EXPECT_EQ(cache.k_row(0, 1), cache.k_row(0, 5));  // same ring slot
  EXPECT_NE(cache.k_row(1, 1), cache.k_row(1, 5));
  cache.advance(10);
  EXPECT_EQ(cache.oldest_available(0), 6);
  EXPECT_EQ(cache.oldest_available(1), 0);
}

TEST(KvCacheTest, MemoryDoesNotGrowWithContextOnSlidingLayers) {
  const Gemma4HParams hp = two_layer_hparams(4);
  const int64_t small = KvCache::planned_bytes(hp, 1000), large = KvCache::planned_bytes(hp, 2000);
  EXPECT_EQ(large - small, int64_t(2 * 1000 * 16 * sizeof(float)));  // only the full layer grows
}

TEST(KvCacheTest, TruncateWithinTheRingOnly) {
  const Gemma4HParams hp = two_layer_hparams(4);
  KvCache cache(hp, 100, /*ring_extra=*/2);
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
