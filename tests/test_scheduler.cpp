// The continuous-batching scheduler without HTTP: determinism under batching, chunked prefill
// interleaving, the shared KV budget and the queue, cancellation, prefix reuse, stop strings,
// logprobs. A tiny random model (window 8, so prompts cross the sliding window) keeps it fast.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "core/thread_pool.h"
#include "model/model.h"
#include "model/random_model.h"
#include "multimodal/projector.h"
#include "runtime/generate.h"
#include "runtime/scheduler.h"
#include "test_util.h"

namespace g4 {
namespace {

std::vector<int32_t> random_ids(int n, int n_vocab, uint64_t seed) {
  std::vector<int32_t> ids = {2};  // <bos>
  uint64_t s = seed;
  while (int(ids.size()) < n) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    ids.push_back(int32_t((s >> 33) % uint64_t(n_vocab - 300)) + 300);  // ordinary tokens
  }
  return ids;
}

SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

// Collects one request's events; wait() blocks until it is over.
struct Collector {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<SequenceEvent> events;
  bool over = false;

  static std::shared_ptr<Collector> make() { return std::make_shared<Collector>(); }
  static SequenceEventSink sink(const std::shared_ptr<Collector>& c) {
    return [c](SequenceEvent&& e) {
      std::lock_guard<std::mutex> lock(c->mutex);
      if (e.kind != SequenceEventKind::kToken) c->over = true;
      c->events.push_back(std::move(e));
      c->cv.notify_all();
    };
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::minutes(5), [&] { return over; })) << "request never ended";
  }
  std::vector<int32_t> tokens() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<int32_t> out;
    for (const auto& e : events)
      if (e.kind == SequenceEventKind::kToken) out.push_back(e.token);
    return out;
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mutex);
    std::string out;
    for (const auto& e : events) out += e.text;
    return out;
  }
  const SequenceEvent& last() {
    std::lock_guard<std::mutex> lock(mutex);
    return events.back();
  }
  // Step of the first token event (-1 when none).
  int64_t first_token_step() {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& e : events)
      if (e.kind == SequenceEventKind::kToken) return e.step;
    return -1;
  }
};

class SchedulerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    pool_ = new ThreadPool(2);
    RandomModelSpec spec;  // tiny: window 8
    const std::string path = (*dir_ / "model.gguf").string();
    write_random_gemma4(spec, path, *pool_);
    model_ = Gemma4Model::load(path).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete pool_;
    delete dir_;
  }

  static SchedulerConfig config(int64_t budget = 4096, int parallel = 4, int64_t step_tokens = 512) {
    SchedulerConfig c;
    c.kv_budget_tokens = budget;
    c.max_active = parallel;
    c.step_tokens = step_tokens;
    return c;
  }

  // What the single-sequence loop generates for `prompt`, alone.
  static std::vector<int32_t> alone(const Prompt& prompt, int64_t max_tokens,
                                    const SamplingParams& params = greedy()) {
    ForwardPass forward(*model_, *pool_);
    KvCache cache(model_->hp, KvCacheConfig{int64_t(prompt.size()) + max_tokens});
    Sampler sampler(params, model_->suppressed_tokens);
    return generate(*model_, forward, cache, prompt, sampler, max_tokens).tokens;
  }

  static GenerationRequest request(const Prompt& prompt, int64_t max_tokens, const std::shared_ptr<Collector>& c,
                                   const SamplingParams& params = greedy()) {
    GenerationRequest r;
    r.prompt = prompt;
    r.sampling = params;
    r.max_tokens = max_tokens;
    r.on_event = Collector::sink(c);
    return r;
  }

  // Keeps a request going to its length limit (the random model may pick an end token).
  static GenerationRequest endless(GenerationRequest r) {
    for (int32_t id : model_->end_of_generation) r.logit_bias.emplace_back(id, -1e30f);
    return r;
  }

  static int n_vocab() { return model_->n_vocab(); }

  static inline test::TempDir* dir_ = nullptr;
  static inline ThreadPool* pool_ = nullptr;
  static inline Gemma4Model* model_ = nullptr;
};

TEST_F(SchedulerTest, SixteenConcurrentGreedyRequestsMatchEachAlone) {
  std::vector<Prompt> prompts;
  for (int i = 0; i < 16; ++i) prompts.push_back(Prompt::from_tokens(random_ids(5 + 7 * i, n_vocab(), 100 + i)));
  const int64_t max_tokens = 10;
  std::vector<std::vector<int32_t>> expected;
  for (const Prompt& p : prompts) expected.push_back(alone(p, max_tokens));

  // All 16 at once through the worker thread, prompts chunked (step budget 24 rows), and again
  // with fewer slots than requests (the rest queue).
  for (int parallel : {16, 5}) {
    Scheduler scheduler(*model_, *pool_, config(4096, parallel, 24));
    scheduler.start();
    std::vector<std::shared_ptr<Collector>> collectors;
    std::vector<std::thread> clients;
    for (size_t i = 0; i < prompts.size(); ++i) collectors.push_back(Collector::make());
    for (size_t i = 0; i < prompts.size(); ++i)
      clients.emplace_back([&, i] { scheduler.submit(request(prompts[i], max_tokens, collectors[i])); });
    for (auto& t : clients) t.join();
    for (size_t i = 0; i < prompts.size(); ++i) {
      collectors[i]->wait();
      EXPECT_EQ(collectors[i]->tokens(), expected[i]) << "request " << i << ", parallel " << parallel;
      EXPECT_NE(collectors[i]->last().kind, SequenceEventKind::kError);
    }
    const SchedulerMetrics m = scheduler.metrics();
    EXPECT_EQ(m.requests_finished, 16);
    EXPECT_LE(m.kv_reserved_tokens + m.kv_cached_tokens, m.kv_budget_tokens);
  }
}

TEST_F(SchedulerTest, SeededSamplingIsReproducibleUnderBatching) {
  SamplingParams hot;
  hot.temperature = 1.5f;
  hot.top_k = 0;
  hot.top_p = 1.0f;
  hot.seed = 1234;
  const Prompt a = Prompt::from_tokens(random_ids(20, n_vocab(), 1));
  const Prompt b = Prompt::from_tokens(random_ids(33, n_vocab(), 2));
  const std::vector<int32_t> expected = alone(a, 12, hot);
  Scheduler scheduler(*model_, *pool_, config(4096, 4, 7));
  auto ca = Collector::make(), cb = Collector::make();
  scheduler.submit(request(b, 20, cb, hot));
  scheduler.submit(request(a, 12, ca, hot));
  while (scheduler.step()) {
  }
  EXPECT_EQ(ca->tokens(), expected);
}

TEST_F(SchedulerTest, LongPromptIsChunkedWhileShortRequestsKeepDecoding) {
  const int64_t step_tokens = 16;
  Scheduler scheduler(*model_, *pool_, config(4096, 4, step_tokens));
  auto long_c = Collector::make();
  const Prompt long_prompt = Prompt::from_tokens(random_ids(400, n_vocab(), 7));
  scheduler.submit(request(long_prompt, 4, long_c));
  ASSERT_TRUE(scheduler.step());  // the long prompt has started
  std::vector<std::shared_ptr<Collector>> shorts;
  for (int i = 0; i < 2; ++i) {
    shorts.push_back(Collector::make());
    scheduler.submit(request(Prompt::from_tokens(random_ids(6, n_vocab(), 20 + i)), 8, shorts.back()));
  }
  while (scheduler.step()) {
  }
  // The short requests got their first token in the step after they came, and one token per
  // step after that, while the long prompt was still being read.
  const int64_t long_first = long_c->first_token_step();
  ASSERT_GT(long_first, 0);
  EXPECT_GE(long_first, 400 / step_tokens) << "the long prompt cannot be read faster than the budget";
  for (auto& c : shorts) {
    EXPECT_EQ(c->first_token_step(), 2);
    std::vector<int64_t> steps;
    for (const auto& e : c->events)
      if (e.kind == SequenceEventKind::kToken) steps.push_back(e.step);
    for (size_t i = 1; i < steps.size(); ++i) EXPECT_EQ(steps[i], steps[i - 1] + 1) << "a decode step was skipped";
    EXPECT_LT(c->last().step, long_first) << "short requests finished before the long prompt's first token";
  }
  const SchedulerMetrics m = scheduler.metrics();
  EXPECT_EQ(m.prompt_tokens_evaluated, 400 + 6 + 6);
  // Same tokens as alone, chunked or not.
  EXPECT_EQ(long_c->tokens(), alone(long_prompt, 4));
}

TEST_F(SchedulerTest, ImageBlocksAreNeverSplitAcrossSteps) {
  // A prompt with two bidirectional blocks of soft tokens (random embeddings).
  Prompt prompt = Prompt::from_tokens(random_ids(5, n_vocab(), 3));
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int block = 0; block < 2; ++block) {
    SoftTokens soft{11, int(model_->hp.n_embd), {}};
    for (int64_t i = 0; i < int64_t(soft.count) * soft.dim; ++i) soft.values.push_back(normal(rng));
    prompt.append_soft(soft, /*bidirectional_block=*/true);
    const std::vector<int32_t> text = random_ids(4, n_vocab(), 9 + block);
    prompt.append_tokens(std::span<const int32_t>(text).subspan(1));
  }
  // The chunk rule: a cut inside a block moves back to its start; a block at the start is whole.
  EXPECT_EQ(prompt_cut_at_or_before(prompt, 10), 5);
  EXPECT_EQ(prompt_cut_at_or_before(prompt, 5), 5);
  EXPECT_EQ(prompt_cut_at_or_before(prompt, 16), 16);
  EXPECT_EQ(prompt_chunk_end(prompt, 0, 8), 5);
  EXPECT_EQ(prompt_chunk_end(prompt, 5, 4), 16);
  EXPECT_EQ(prompt_chunk_end(prompt, 16, 100), int64_t(prompt.size()));

  const std::vector<int32_t> expected = alone(prompt, 6);
  Scheduler scheduler(*model_, *pool_, config(4096, 4, 4));  // step budget smaller than a block
  auto c = Collector::make(), other = Collector::make();
  scheduler.submit(request(Prompt::from_tokens(random_ids(9, n_vocab(), 4)), 30, other));
  scheduler.submit(request(prompt, 6, c));
  while (scheduler.step()) {
  }
  EXPECT_EQ(c->tokens(), expected);
}

TEST_F(SchedulerTest, SharedBudgetQueuesRequestsThatDoNotFit) {
  // Budget 100 positions: each request reserves 30 + 40 = 70, so the second waits for the first.
  SchedulerConfig cfg = config(100, 4, 512);
  cfg.prefix_cache = false;
  Scheduler scheduler(*model_, *pool_, cfg);
  auto a = Collector::make(), b = Collector::make();
  scheduler.submit(request(Prompt::from_tokens(random_ids(30, n_vocab(), 1)), 40, a));
  scheduler.submit(request(Prompt::from_tokens(random_ids(30, n_vocab(), 2)), 40, b));
  while (scheduler.step()) {
    const SchedulerMetrics m = scheduler.metrics();
    EXPECT_LE(m.kv_reserved_tokens, 100);
    EXPECT_LE(m.active, 1);
  }
  ASSERT_EQ(a->last().kind, SequenceEventKind::kDone);
  ASSERT_EQ(b->last().kind, SequenceEventKind::kDone);
  EXPECT_GT(b->first_token_step(), a->last().step);
  EXPECT_GT(b->last().usage.queue_seconds, 0.0);

  // A prompt that cannot fit one sequence is refused with both numbers.
  try {
    scheduler.submit(request(Prompt::from_tokens(random_ids(100, n_vocab(), 3)), 1, Collector::make()));
    FAIL() << "a prompt as long as the budget was accepted";
  } catch (const SchedulerRejection& r) {
    EXPECT_EQ(r.reason, SchedulerRejection::Reason::kPromptTooLong);
    EXPECT_EQ(r.prompt_tokens, 100);
    EXPECT_EQ(r.limit, 100);
    EXPECT_NE(std::string(r.what()).find("100"), std::string::npos);
  }
  // max_tokens beyond the budget is clamped: finish reason "length" at the limit.
  auto c = Collector::make();
  scheduler.submit(endless(request(Prompt::from_tokens(random_ids(90, n_vocab(), 4)), 1000, c)));
  while (scheduler.step()) {
  }
  EXPECT_EQ(c->last().finish, FinishReason::kLength);
  EXPECT_EQ(c->last().usage.completion_tokens, 10);
}

TEST_F(SchedulerTest, FullQueueIsRefused) {
  SchedulerConfig cfg = config(4096, 1, 512);
  cfg.max_queue = 1;  // one running, one waiting
  Scheduler scheduler(*model_, *pool_, cfg);
  const Prompt p = Prompt::from_tokens(random_ids(8, n_vocab(), 1));
  scheduler.submit(request(p, 2, Collector::make()));
  scheduler.submit(request(p, 2, Collector::make()));
  try {
    scheduler.submit(request(p, 2, Collector::make()));
    FAIL() << "a third request was queued";
  } catch (const SchedulerRejection& r) {
    EXPECT_EQ(r.reason, SchedulerRejection::Reason::kQueueFull);
  }
  EXPECT_EQ(scheduler.metrics().queue_depth, 2);
  EXPECT_EQ(scheduler.metrics().requests_rejected, 1);
}

TEST_F(SchedulerTest, CancellationFreesTheSequenceAndItsMemory) {
  SchedulerConfig cfg = config(2048, 2, 512);
  Scheduler scheduler(*model_, *pool_, cfg);
  EXPECT_EQ(scheduler.metrics().kv_bytes, 0);
  auto running = Collector::make(), queued = Collector::make(), blocker = Collector::make();
  auto h1 = scheduler.submit(endless(request(Prompt::from_tokens(random_ids(20, n_vocab(), 1)), 1000, running)));
  auto h2 = scheduler.submit(endless(request(Prompt::from_tokens(random_ids(20, n_vocab(), 2)), 1000, blocker)));
  auto h3 = scheduler.submit(endless(request(Prompt::from_tokens(random_ids(20, n_vocab(), 3)), 1000, queued)));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(scheduler.step());
  SchedulerMetrics m = scheduler.metrics();
  EXPECT_EQ(m.active, 2);
  EXPECT_EQ(m.queue_depth, 1);
  EXPECT_GT(m.kv_bytes, 0);
  const int64_t two_sequences = m.kv_bytes;

  h3->cancel();  // queued
  h1->cancel();  // running
  ASSERT_TRUE(scheduler.step());
  m = scheduler.metrics();
  EXPECT_EQ(m.active, 1);
  EXPECT_EQ(m.queue_depth, 0);
  EXPECT_EQ(m.requests_cancelled, 2);
  EXPECT_LT(m.kv_bytes, two_sequences);
  EXPECT_EQ(running->last().kind, SequenceEventKind::kDone);
  EXPECT_EQ(running->last().finish, FinishReason::kCancelled);
  EXPECT_EQ(queued->last().finish, FinishReason::kCancelled);
  EXPECT_TRUE(queued->tokens().empty());

  h2->cancel();
  EXPECT_FALSE(scheduler.step());
  m = scheduler.metrics();
  EXPECT_EQ(m.active, 0);
  EXPECT_EQ(m.kv_bytes, 0) << "cancelled sequences are not kept for reuse";
  EXPECT_EQ(m.kv_reserved_tokens, 0);
}

TEST_F(SchedulerTest, PrefixReuseEvaluatesOnlyTheNewTokens) {
  SchedulerConfig cfg = config(4096, 2, 512);
  cfg.cache.ring_extra = 32;  // lets the sliding ring roll back a little
  Scheduler scheduler(*model_, *pool_, cfg);
  const std::vector<int32_t> first = random_ids(30, n_vocab(), 11);
  auto c1 = Collector::make();
  scheduler.submit(request(Prompt::from_tokens(first), 6, c1));
  while (scheduler.step()) {
  }
  const std::vector<int32_t> reply = c1->tokens();
  ASSERT_FALSE(reply.empty());
  EXPECT_EQ(scheduler.metrics().cached_sequences, 1);

  // The next turn: the history as generated plus a new message.
  std::vector<int32_t> second = first;
  second.insert(second.end(), reply.begin(), reply.end());
  const std::vector<int32_t> message = random_ids(12, n_vocab(), 12);
  second.insert(second.end(), message.begin() + 1, message.end());
  const int64_t evaluated_before = scheduler.metrics().prompt_tokens_evaluated;
  auto c2 = Collector::make();
  scheduler.submit(request(Prompt::from_tokens(second), 6, c2));
  while (scheduler.step()) {
  }
  // The cache held the first prompt and every reply token it was fed (all but a last one
  // stopped by the length limit).
  const int64_t held = int64_t(first.size() + reply.size()) - (c1->last().finish == FinishReason::kLength ? 1 : 0);
  EXPECT_EQ(c2->last().usage.cached_tokens, held);
  EXPECT_EQ(scheduler.metrics().prompt_tokens_evaluated - evaluated_before, int64_t(second.size()) - held);
  EXPECT_EQ(c2->tokens(), alone(Prompt::from_tokens(second), 6)) << "reuse changed the result";

  // An edit far back (the ring cannot roll back that far): a fresh cache, same result as alone.
  std::vector<int32_t> edited = second;
  edited[5] = edited[5] == 400 ? 401 : 400;
  auto c3 = Collector::make();
  scheduler.submit(request(Prompt::from_tokens(edited), 6, c3));
  while (scheduler.step()) {
  }
  EXPECT_EQ(c3->last().usage.cached_tokens, 0);
  EXPECT_EQ(c3->tokens(), alone(Prompt::from_tokens(edited), 6));

  // A roll-back within the ring: the last message replaced by another one of the same length.
  std::vector<int32_t> retry = second;
  retry.back() = retry.back() == 400 ? 401 : 400;
  auto c4 = Collector::make();
  scheduler.submit(request(Prompt::from_tokens(retry), 4, c4));
  while (scheduler.step()) {
  }
  EXPECT_EQ(c4->last().usage.cached_tokens, int64_t(retry.size()) - 1);
  EXPECT_EQ(c4->tokens(), alone(Prompt::from_tokens(retry), 4));
}

TEST_F(SchedulerTest, KeptCachesAreEvictedWhenTheBudgetIsNeeded) {
  SchedulerConfig cfg = config(120, 2, 512);
  Scheduler scheduler(*model_, *pool_, cfg);
  auto a = Collector::make();
  scheduler.submit(request(Prompt::from_tokens(random_ids(40, n_vocab(), 1)), 5, a));
  while (scheduler.step()) {
  }
  EXPECT_EQ(scheduler.metrics().cached_sequences, 1);
  EXPECT_GT(scheduler.metrics().kv_cached_tokens, 0);
  // Needs 60 + 50 = 110 of 120: the kept cache (about 44) must go.
  auto b = Collector::make();
  scheduler.submit(request(Prompt::from_tokens(random_ids(60, n_vocab(), 2)), 50, b));
  while (scheduler.step()) {
    const SchedulerMetrics m = scheduler.metrics();
    EXPECT_LE(m.kv_reserved_tokens + m.kv_cached_tokens, 120);
  }
  EXPECT_EQ(b->last().kind, SequenceEventKind::kDone);
}

TEST_F(SchedulerTest, StopStringsEndTheOutputBeforeTheMatch) {
  const Prompt prompt = Prompt::from_tokens(random_ids(12, n_vocab(), 31));
  Scheduler scheduler(*model_, *pool_, config());
  auto free_run = Collector::make();
  scheduler.submit(request(prompt, 12, free_run));
  while (scheduler.step()) {
  }
  const std::string text = free_run->text();
  ASSERT_GT(text.size(), 8u);
  // A stop string from the middle of that text (spanning tokens, most likely).
  const std::string stop = text.substr(text.size() / 2, 3);
  const std::string expected = text.substr(0, text.find(stop));
  auto stopped = Collector::make();
  GenerationRequest r = request(prompt, 12, stopped);
  r.stop = {"never appears in this text \x01", stop};
  scheduler.submit(std::move(r));
  while (scheduler.step()) {
  }
  EXPECT_EQ(stopped->text(), expected);
  EXPECT_EQ(stopped->last().finish, FinishReason::kStop);
}

TEST_F(SchedulerTest, LogprobsDescribeTheChosenTokenAndTheMostLikelyOnes) {
  Scheduler scheduler(*model_, *pool_, config());
  auto c = Collector::make();
  GenerationRequest r = request(Prompt::from_tokens(random_ids(10, n_vocab(), 41)), 5, c);
  r.top_logprobs = 3;
  scheduler.submit(std::move(r));
  while (scheduler.step()) {
  }
  int seen = 0;
  for (const auto& e : c->events) {
    if (e.kind != SequenceEventKind::kToken) continue;
    ASSERT_TRUE(e.logprobs.has_value());
    const TokenLogprobs& lp = *e.logprobs;
    ASSERT_EQ(lp.top.size(), 3u);
    EXPECT_EQ(lp.token, e.token);
    EXPECT_EQ(lp.top[0].first, e.token) << "greedy picks the most likely token";
    EXPECT_FLOAT_EQ(lp.top[0].second, lp.logprob);
    EXPECT_LE(lp.logprob, 0.0f);
    EXPECT_GE(lp.top[0].second, lp.top[1].second);
    EXPECT_GE(lp.top[1].second, lp.top[2].second);
    double mass = 0;
    for (const auto& [id, l] : lp.top) mass += std::exp(double(l));
    EXPECT_LE(mass, 1.0 + 1e-5);
    ++seen;
  }
  EXPECT_GT(seen, 0);
}

TEST_F(SchedulerTest, MalformedRequestsAreRefused) {
  Scheduler scheduler(*model_, *pool_, config());
  auto expect_invalid = [&](GenerationRequest r) {
    try {
      scheduler.submit(std::move(r));
      ADD_FAILURE() << "accepted";
    } catch (const SchedulerRejection& e) {
      EXPECT_EQ(e.reason, SchedulerRejection::Reason::kInvalid) << e.what();
    }
  };
  auto c = Collector::make();
  expect_invalid(request(Prompt{}, 4, c));
  expect_invalid(request(Prompt::from_tokens(std::vector<int32_t>{2, n_vocab()}), 4, c));
  GenerationRequest no_sink = request(Prompt::from_tokens(std::vector<int32_t>{2, 300}), 4, c);
  no_sink.on_event = nullptr;
  expect_invalid(std::move(no_sink));
  SamplingParams bad;
  bad.top_p = 0.0f;
  expect_invalid(request(Prompt::from_tokens(std::vector<int32_t>{2, 300}), 4, c, bad));
}

TEST_F(SchedulerTest, StopFailsWhatIsLeft) {
  auto scheduler = std::make_unique<Scheduler>(*model_, *pool_, config(4096, 1, 512));
  auto a = Collector::make(), b = Collector::make();
  scheduler->submit(request(Prompt::from_tokens(random_ids(10, n_vocab(), 1)), 1000, a));
  scheduler->submit(request(Prompt::from_tokens(random_ids(10, n_vocab(), 2)), 1000, b));
  ASSERT_TRUE(scheduler->step());
  scheduler.reset();
  EXPECT_EQ(a->last().kind, SequenceEventKind::kError);
  EXPECT_EQ(b->last().kind, SequenceEventKind::kError);
}

}  // namespace
}  // namespace g4
