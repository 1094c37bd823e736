// The element-wise ops and the thread pool against straightforward double-precision math.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/ops.h"
#include "random_data.h"

namespace g4 {
namespace {

using test::gaussian;

TEST(OpsTest, DotMatchesDoubleOnOddSizes) {
  for (int64_t n : {1, 7, 8, 9, 31, 256, 1001}) {
    const auto a = gaussian(n, 1), b = gaussian(n, 2);
    double ref = 0;
    for (int64_t i = 0; i < n; ++i) ref += double(a[size_t(i)]) * b[size_t(i)];
    EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref, 1e-5 * std::sqrt(double(n)) + 1e-6) << n;
  }
}

TEST(OpsTest, RmsNormWithAndWithoutWeight) {
  for (const int64_t n : {1, 8, 37, 3840}) {  // the sum runs in 8 partial sums and a tail
    const auto x = gaussian(n, 3, 5.0f), w = gaussian(n, 4);
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double scale = 1.0 / std::sqrt(ss / double(n) + 1e-6);
    std::vector<float> y(static_cast<size_t>(n)), y_noweight(static_cast<size_t>(n));
    rms_norm(x.data(), w.data(), y.data(), n, 1e-6f);
    rms_norm(x.data(), nullptr, y_noweight.data(), n, 1e-6f);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(y[size_t(i)], x[size_t(i)] * scale * w[size_t(i)], 1e-5) << n;
      EXPECT_NEAR(y_noweight[size_t(i)], x[size_t(i)] * scale, 1e-5) << n;
    }
    // In place gives the same result.
    std::vector<float> z = x;
    rms_norm(z.data(), w.data(), z.data(), n, 1e-6f);
    EXPECT_EQ(z, y) << n;
  }
}

TEST(OpsTest, GeluIsTheTanhApproximation) {
  for (double x : {-6.0, -2.5, -1.0, -0.1, 0.0, 0.3, 1.0, 2.0, 7.5}) {
    const double ref = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    EXPECT_NEAR(gelu_tanh(float(x)), ref, 2e-6 * std::max(1.0, std::abs(x))) << x;
  }
  // Distinguishes the erf flavour (they differ most, by 4.7e-4, around |x| = 2.7).
  const double erf_gelu = 0.5 * 2.7 * (1 + std::erf(2.7 / std::sqrt(2.0)));
  EXPECT_GT(std::abs(gelu_tanh(2.7f) - erf_gelu), 3e-4);
}

TEST(OpsTest, SoftcapAndSoftmax) {
  std::vector<float> x = {-100.0f, -30.0f, 0.0f, 1.0f, 29.0f, 500.0f};
  std::vector<float> y = x;
  softcap_inplace(y.data(), int64_t(y.size()), 30.0f);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], 30.0 * std::tanh(x[i] / 30.0), 1e-5);
  std::vector<float> s = {1.0f, 2.0f, 3.0f, -1000.0f};
  softmax_inplace(s.data(), 4);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(s[0], std::exp(1.0) / z, 1e-7);
  EXPECT_NEAR(s[2], std::exp(3.0) / z, 1e-7);
  EXPECT_EQ(s[3], 0.0f);
}

TEST(OpsTest, RopeNeoxRotatesPairsHalfApart) {
  const int n_rot = 8, head_dim = 12;  // dims 8..11 pass through
  std::vector<float> cs(n_rot);
  const int64_t pos = 5;
  rope_angles(pos, n_rot, 10000.0f, nullptr, cs.data());
  auto x = gaussian(head_dim, 7);
  auto y = x;
  rope_neox_inplace(y.data(), cs.data(), n_rot);
  for (int i = 0; i < n_rot / 2; ++i) {
    const double angle = pos * std::pow(10000.0, -2.0 * i / n_rot);
    EXPECT_NEAR(y[size_t(i)], x[size_t(i)] * std::cos(angle) - x[size_t(i + 4)] * std::sin(angle), 1e-6);
    EXPECT_NEAR(y[size_t(i + 4)], x[size_t(i + 4)] * std::cos(angle) + x[size_t(i)] * std::sin(angle), 1e-6);
  }
  for (int i = n_rot; i < head_dim; ++i) EXPECT_EQ(y[size_t(i)], x[size_t(i)]);
}

TEST(OpsTest, RopeFactorsFreezePairsAndAnglesStayAccurateFarOut) {
  // Proportional RoPE: a factor of 1e30 leaves a pair unrotated (spec §2.5).
  const int n_rot = 8;
  const float factors[4] = {1.0f, 1.0f, 1e30f, 1e30f};
  std::vector<float> cs(n_rot);
  rope_angles(262143, n_rot, 1e6f, factors, cs.data());
  EXPECT_NEAR(cs[2 * 2], 1.0f, 1e-7);
  EXPECT_NEAR(cs[2 * 2 + 1], 0.0f, 1e-7);
  // Pair 0 at position 262143: angle 262143 rad, computed in double.
  EXPECT_NEAR(cs[0], std::cos(262143.0), 1e-6);
  EXPECT_NEAR(cs[1], std::sin(262143.0), 1e-6);
  // Denominator is the full rotary dimension (2i / n_rot), not the rotated share.
  EXPECT_NEAR(cs[2], std::cos(262143.0 * std::pow(1e6, -2.0 / 8)), 1e-5);
}

TEST(ThreadPoolTest, CoversEveryIndexOnceAndPropagatesErrors) {
  ThreadPool pool(4);
  for (int64_t n : {1, 3, 4, 5, 1000}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    pool.parallel_for(n, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
  EXPECT_THROW(pool.parallel_for(100, 1,
                                 [&](int64_t b, int64_t, int) {
                                   if (b > 0) fail("boom");
                                 }),
               Error);
  // Still usable after an error.
  std::atomic<int64_t> sum{0};
  pool.parallel_for(10, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 45);
}


TEST(ThreadPoolTest, ManyShortJobsInARowEachRunOnce) {
  // Decode issues thousands of tiny jobs back to back: every one must see every index exactly once
  // (a worker that missed or repeated a generation would break the sums).
  ThreadPool pool(3);
  std::vector<int64_t> partial(3 * 16, 0);  // one cache line per thread
  int64_t expected = 0;
  for (int job = 0; job < 3000; ++job) {
    const int64_t n = 1 + job % 7;
    pool.parallel_for(n, 1, [&](int64_t b, int64_t e, int t) {
      for (int64_t i = b; i < e; ++i) partial[size_t(t) * 16] += i + job;
    });
    for (int64_t i = 0; i < n; ++i) expected += i + job;
  }
  EXPECT_EQ(partial[0] + partial[16] + partial[32], expected);
}

TEST(ThreadPoolTest, WakesSleepingWorkersAndRethrowsFromEveryShare) {
  ThreadPool pool(2);
  for (int round = 0; round < 3; ++round) {
    // Long enough for the workers to stop polling and sleep.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::atomic<int> calls{0};
    pool.parallel_for(2, 1, [&](int64_t, int64_t, int) { calls++; });
    EXPECT_EQ(calls.load(), 2);
  }
  // The caller's own share (index 0) and a worker's share both propagate.
  for (int failing : {0, 1}) {
    EXPECT_THROW(pool.parallel_for(2, 1,
                                   [&](int64_t, int64_t, int t) {
                                     if (t == failing) fail("share ", t);
                                   }),
                 Error);
  }
  // A slow worker: the caller stops polling and sleeps until it is done.
  std::atomic<int> done{0};
  pool.parallel_for(2, 1, [&](int64_t, int64_t, int t) {
    if (t == 1) std::this_thread::sleep_for(std::chrono::milliseconds(3));
    done++;
  });
  EXPECT_EQ(done.load(), 2);
}

TEST(ThreadPoolTest, ParallelChunksCoverEveryItemOnceWithinTheChunkBounds) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 5, 64, 1000, 4097})
      for (auto [min_chunk, max_chunk] : {std::pair<int64_t, int64_t>{1, 1}, {1, 64}, {7, 64},
                                          {100, 1000}, {5, 2}}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int64_t> too_big{0};
        pool.parallel_chunks(n, min_chunk, max_chunk, [&](int64_t b, int64_t e, int t) {
          EXPECT_LT(b, e);
          EXPECT_LT(t, threads);
          if (e - b > std::max(min_chunk, max_chunk)) too_big++;
          for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
        });
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[size_t(i)].load(), 1)
              << threads << " threads, n=" << n << " [" << min_chunk << ", " << max_chunk
              << "], item " << i;
        EXPECT_EQ(too_big.load(), 0);
      }
  }
}

TEST(ThreadPoolTest, ParallelChunksStreamEachShareInOrderAndRebalance) {
  // One thread: its share is everything, taken front to back in chunks of half of what is left.
  ThreadPool one(1);
  std::vector<std::pair<int64_t, int64_t>> chunks;
  one.parallel_chunks(100, 2, 16, [&](int64_t b, int64_t e, int) { chunks.emplace_back(b, e); });
  int64_t at = 0;
  for (auto [b, e] : chunks) {
    EXPECT_EQ(b, at);
    EXPECT_EQ(e - b, std::min<int64_t>(100 - b, std::clamp<int64_t>((100 - b) / 2, 2, 16)))
        << "chunk at " << b;
    at = e;
  }
  EXPECT_EQ(at, 100);
  // A thread that is slow (as if it lost its core): the other takes over most of its share, and
  // still every item runs once.
  ThreadPool two(2);
  std::vector<std::atomic<int>> hits(200);
  std::atomic<int64_t> by_slow{0};
  two.parallel_chunks(200, 1, 4, [&](int64_t b, int64_t e, int t) {
    if (t == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      by_slow += e - b;
    }
    for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  EXPECT_LT(by_slow.load(), 50) << "the fast thread did not take over the slow one's share";
  // Errors propagate as from parallel_for, and the pool stays usable.
  EXPECT_THROW(two.parallel_chunks(100, 1, 8,
                                   [&](int64_t b, int64_t, int) {
                                     if (b >= 50) fail("boom");
                                   }),
               Error);
  std::atomic<int64_t> sum{0};
  two.parallel_chunks(10, 1, 3, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 45);
}

TEST(ThreadPoolTest, SingleThreadAndSmallRangesRunInline) {
  ThreadPool one(1);
  EXPECT_EQ(one.size(), 1);
  int64_t covered = 0;
  one.parallel_for(10, 1, [&](int64_t b, int64_t e, int t) {
    EXPECT_EQ(t, 0);
    covered += e - b;
  });
  EXPECT_EQ(covered, 10);
  ThreadPool four(4);
  four.parallel_for(8, 8, [&](int64_t b, int64_t e, int t) {  // one grain: the caller alone
    EXPECT_EQ(t, 0);
    EXPECT_EQ(e - b, 8);
  });
}

}  // namespace
}  // namespace g4
