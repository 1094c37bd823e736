// Continuous batching: many generation requests served by one forward pass per step.
//
// One worker thread steps every active sequence together. Per step, each decoding sequence adds
// its last sampled token, and sequences still reading their prompt get chunks of it from the
// step's token budget (shortest remaining prompt first), so a long prompt is prefilled over
// several steps while the others keep decoding. The weights are read once per step for everyone:
// that is where the throughput of serving many clients comes from. A sequence's logits do not
// depend on what shares the pass or how its prompt is chunked (ForwardPass guarantees it), so a
// greedy request returns exactly what it returns alone.
//
// Memory: ONE budget of KV positions (--ctx-size) shared by all sequences, not a context split
// between slots. A request reserves prompt + max new tokens when it is admitted; requests that do
// not fit wait in the queue (first come, first served) until others finish. --parallel caps how
// many run at once.
//
// Prefix reuse: a finished sequence's cache stays (shrunk to what it holds, least recently used
// first out, within the same budget); a new request whose prompt starts with the same positions
// (a multi-turn chat sending its history again) takes it over and evaluates only the rest. Media
// positions match when their embeddings are identical. When the sliding-window ring cannot roll
// back to the shared prefix (KvCacheConfig::ring_extra), the request starts from a fresh cache.
//
// Events (tokens with their text, the end) are delivered through each request's sink on the
// worker thread. Cancelling a request (a client that went away) frees its sequence and memory at
// the next step.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "model/kv_cache.h"
#include "ops/matmul.h"
#include "runtime/generate.h"
#include "runtime/prompt.h"
#include "runtime/sampler.h"

namespace g4 {

struct Gemma4Model;
class ForwardPass;
class ThreadPool;

struct SchedulerConfig {
  int64_t kv_budget_tokens = 16384;  // KV positions shared by every sequence (--ctx-size)
  int max_active = 4;                // sequences generating at once (--parallel)
  int max_queue = 64;                // requests waiting beyond max_active; more are rejected
  int64_t step_tokens = 512;         // rows per forward pass: decode tokens + prompt chunks
  int64_t default_max_tokens = 2048; // new tokens of a request that does not say
  int64_t max_sequence_tokens = 0;   // most positions of one sequence (> 0: e.g. the trained context)
  KvCacheConfig cache;               // KV types and ring_extra (n_ctx is set per sequence)
  bool prefix_cache = true;          // keep finished sequences for prefix reuse
  int max_cached_sequences = 0;      // finished caches kept at most (0: max_active)
};

struct GenerationUsage {
  int64_t prompt_tokens = 0;      // positions of the prompt
  int64_t cached_tokens = 0;      // of which taken over from an earlier sequence (not evaluated)
  int64_t completion_tokens = 0;  // tokens sampled (not counting an end-of-generation token)
  double queue_seconds = 0;       // submit -> admitted
  double first_token_seconds = 0; // submit -> first token sampled
  double total_seconds = 0;       // submit -> done
};

enum class SequenceEventKind { kToken, kDone, kError };

struct SequenceEvent {
  SequenceEventKind kind = SequenceEventKind::kToken;
  int32_t token = -1;            // kToken: the sampled token
  std::string text;              // text released (held back while it may start a stop string)
  std::optional<TokenLogprobs> logprobs;  // kToken, when asked for
  FinishReason finish = FinishReason::kStop;  // kDone
  GenerationUsage usage;         // kDone
  std::string error;             // kError: what went wrong (the request is over)
  int64_t step = 0;              // the scheduler step that produced the event
};

// Called on the worker thread for every event of one request; keep it short (queue the event).
using SequenceEventSink = std::function<void(SequenceEvent&&)>;

struct GenerationRequest {
  Prompt prompt;
  SamplingParams sampling;
  int64_t max_tokens = -1;         // < 0: SchedulerConfig::default_max_tokens
  std::vector<std::string> stop;   // generation stops before the first of these strings
  int top_logprobs = -1;           // < 0: no logprobs; else the chosen token's and this many more
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logits before sampling
  SequenceEventSink on_event;
};

// Why submit() refused a request.
class SchedulerRejection : public Error {
 public:
  enum class Reason { kPromptTooLong, kQueueFull, kStopped, kInvalid };
  SchedulerRejection(Reason reason, const std::string& what) : Error(what), reason(reason) {}
  Reason reason;
  int64_t prompt_tokens = 0;
  int64_t limit = 0;
};

// Shared between the scheduler and the client of one request.
class SequenceHandle {
 public:
  uint64_t id() const { return id_; }
  // Stops the request: the worker frees its sequence and memory at its next step (a queued request
  // is dropped). Its sink then gets a kDone with FinishReason::kCancelled. Thread-safe.
  void cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Scheduler;
  struct Wakeup {
    std::mutex mutex;
    std::condition_variable cv;
  };
  SequenceHandle(uint64_t id, std::shared_ptr<Wakeup> wakeup) : id_(id), wakeup_(std::move(wakeup)) {}
  uint64_t id_;
  std::shared_ptr<Wakeup> wakeup_;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerMetrics {
  int64_t requests_submitted = 0, requests_finished = 0, requests_cancelled = 0, requests_failed = 0;
  int64_t requests_rejected = 0;
  int64_t queue_depth = 0, active = 0, cached_sequences = 0;
  int64_t prompt_tokens = 0, prompt_tokens_evaluated = 0, prompt_tokens_reused = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;  // forward time, split by rows
  int64_t steps = 0;
  int64_t kv_budget_tokens = 0, kv_reserved_tokens = 0, kv_cached_tokens = 0;
  int64_t kv_bytes = 0;  // allocated by active and kept caches
  // Time to first token (seconds): cumulative counts per upper bound, Prometheus style.
  std::vector<double> ttft_bounds;
  std::vector<int64_t> ttft_counts;  // ttft_bounds.size() + 1 (the last is +Inf)
  double ttft_sum = 0;
  int64_t ttft_count = 0;
};

class Scheduler {
 public:
  Scheduler(const Gemma4Model& model, ThreadPool& pool, SchedulerConfig config,
            MatmulMode mode = MatmulMode::kFast);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Starts the worker thread (without it, call step() yourself).
  void start();
  // Stops the worker; requests still queued or running get a kError event.
  void stop();

  // Queues a request. Throws SchedulerRejection when the prompt cannot fit one sequence
  // (kPromptTooLong, with prompt_tokens and limit), the queue is full, the scheduler is stopped,
  // or the request is malformed (token ids outside the vocabulary, no sink).
  std::shared_ptr<SequenceHandle> submit(GenerationRequest request);

  // One step: drops cancelled requests, admits what fits, runs one forward pass over every active
  // sequence and delivers the events. Returns false when there was nothing to run.
  bool step();

  // The most positions one sequence may hold (prompt + generated).
  int64_t sequence_limit() const;
  SchedulerMetrics metrics() const;
  const SchedulerConfig& config() const { return config_; }

 private:
  struct Pending;
  struct Sequence;
  struct CachedPrefix;
  using Clock = std::chrono::steady_clock;

  void worker_loop();
  void drop_cancelled();
  void admit();
  bool admit_one(std::unique_ptr<Pending>& slot);
  void finish(Sequence& seq, FinishReason reason);
  void fail(Sequence& seq, const std::string& error);
  void on_logits(Sequence& seq, std::span<float> logits);
  std::string release_text(Sequence& seq, const std::string& piece, bool& stopped);
  void keep_prefix(Sequence& seq);
  int64_t reserved_tokens() const;
  int64_t cached_tokens() const;
  void update_memory_metrics();

  const Gemma4Model& model_;
  SchedulerConfig config_;
  std::unique_ptr<ForwardPass> forward_;

  // Shared with submitters.
  std::shared_ptr<SequenceHandle::Wakeup> wakeup_;  // guards queue_ and stopping_
  std::deque<std::unique_ptr<Pending>> queue_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int64_t> in_flight_{0};  // queued + active requests

  // Worker-only state.
  std::vector<std::unique_ptr<Sequence>> active_;
  std::list<CachedPrefix> cached_;  // most recently used first
  int64_t step_ = 0;
  std::vector<float> logits_;
  std::thread worker_;

  mutable std::mutex metrics_mutex_;
  SchedulerMetrics metrics_;
};

}  // namespace g4
