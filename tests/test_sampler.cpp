// Sampling: greedy, top-k, top-p, min-p, temperature, penalties, suppression, seeds.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "runtime/sampler.h"

namespace g4 {
namespace {

SamplingParams greedy_params() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

TEST(SamplerTest, GreedyTakesArgmaxWithTiesToLowestId) {
  Sampler s(greedy_params(), {});
  std::vector<float> logits = {0.5f, 3.0f, 3.0f, -1.0f};
  EXPECT_EQ(s.sample(logits, {}), 1);
}

TEST(SamplerTest, SuppressedTokensAreNeverPicked) {
  Sampler s(greedy_params(), {1, 2});
  std::vector<float> logits = {0.5f, 3.0f, 3.0f, -1.0f};
  EXPECT_EQ(s.sample(logits, {}), 0);
  SamplingParams hot;
  hot.temperature = 5.0f;
  hot.top_k = 0;
  hot.top_p = 1.0f;
  Sampler s2(hot, {1, 2});
  for (int i = 0; i < 200; ++i) {
    std::vector<float> l = {0.5f, 3.0f, 3.0f, -1.0f};
    const int32_t t = s2.sample(l, {});
    EXPECT_TRUE(t == 0 || t == 3);
  }
}

TEST(SamplerTest, TopKOneIsGreedyAndTopKLimitsTheSupport) {
  SamplingParams p;
  p.top_k = 1;
  p.top_p = 1.0f;
  p.temperature = 2.0f;
  Sampler s(p, {});
  for (int i = 0; i < 50; ++i) {
    std::vector<float> l = {1.0f, 2.0f, 0.0f, 1.9f};
    EXPECT_EQ(s.sample(l, {}), 1);
  }
  p.top_k = 2;
  Sampler s2(p, {});
  std::map<int32_t, int> seen;
  for (int i = 0; i < 500; ++i) {
    std::vector<float> l = {1.0f, 2.0f, 0.0f, 1.9f};
    ++seen[s2.sample(l, {})];
  }
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_GT(seen[1], 0);
  EXPECT_GT(seen[3], 0);
}

TEST(SamplerTest, TopPKeepsTheSmallestNucleus) {
  // probabilities ~ 0.6, 0.3, 0.1 at temperature 1: top_p 0.8 keeps the first two.
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 0.8f;
  Sampler s(p, {});
  std::map<int32_t, int> seen;
  for (int i = 0; i < 2000; ++i) {
    std::vector<float> l = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
    ++seen[s.sample(l, {})];
  }
  EXPECT_EQ(seen.count(2), 0u);
  // Renormalized 2:1 between the two kept tokens (binomial sd ~ 21 at n = 2000).
  EXPECT_NEAR(seen[0] / 2000.0, 2.0 / 3.0, 0.05);
}

TEST(SamplerTest, MinPDropsUnlikelyTokens) {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.2f;  // keeps p >= 0.2 * 0.6 = 0.12: drops the 0.1 token
  Sampler s(p, {});
  for (int i = 0; i < 1000; ++i) {
    std::vector<float> l = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
    EXPECT_NE(s.sample(l, {}), 2);
  }
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedDifferent) {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.seed = 42;
  auto run = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p, {});
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
      std::vector<float> l(50, 0.0f);
      out.push_back(s.sample(l, {}));
    }
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(SamplerTest, TemperatureFollowsSoftmax) {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.temperature = 0.5f;
  Sampler s(p, {});
  int hits = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = {0.0f, 0.5f};
    hits += s.sample(l, {}) == 1;
  }
  const double expected = 1.0 / (1.0 + std::exp(-1.0));  // softmax of {0, 1}
  EXPECT_NEAR(hits / double(n), expected, 0.03);
}

TEST(SamplerTest, PenaltiesDiscourageRepeats) {
  SamplingParams p = greedy_params();
  p.presence_penalty = 1.5f;
  Sampler s(p, {});
  std::vector<float> l = {2.0f, 1.0f};
  const std::vector<int32_t> history = {0};
  EXPECT_EQ(s.sample(l, history), 1);
  p = greedy_params();
  p.frequency_penalty = 0.4f;
  Sampler s2(p, {});
  l = {2.0f, 1.0f};
  const std::vector<int32_t> three = {0, 0, 0};
  EXPECT_EQ(s2.sample(l, three), 1);  // 2 - 3 * 0.4 = 0.8 < 1
  p = greedy_params();
  p.repeat_penalty = 2.5f;
  Sampler s3(p, {});
  l = {2.0f, 1.0f};
  EXPECT_EQ(s3.sample(l, history), 1);  // 2 / 2.5 = 0.8
  p.penalty_last_n = 1;
  Sampler s4(p, {});
  l = {2.0f, 1.0f};
  const std::vector<int32_t> old = {0, 1};  // only the last token (1) is penalized
  EXPECT_EQ(s4.sample(l, old), 0);
}

TEST(SamplerTest, InvalidParametersAreRejected) {
  SamplingParams p;
  p.top_p = 0.0f;
  EXPECT_THROW(Sampler(p, {}), Error);
  p = SamplingParams{};
  p.min_p = 2.0f;
  EXPECT_THROW(Sampler(p, {}), Error);
  p = SamplingParams{};
  p.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler(p, {}), Error);
}

}  // namespace
}  // namespace g4
