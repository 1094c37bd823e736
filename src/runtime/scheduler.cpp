#include "runtime/scheduler.h"

#include <algorithm>
#include <cstring>

#include "model/model.h"
#include "text/tokenizer.h"

namespace g4 {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// A position's identity for prefix matching: the token id, or (top bit set) a hash of a soft
// token's embedding row, so media positions match only when their embeddings are identical.
constexpr uint64_t kSoftKeyBit = uint64_t(1) << 63;

uint64_t hash_row(const float* row, int64_t n) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  const auto* bytes = reinterpret_cast<const unsigned char*>(row);
  for (int64_t i = 0; i < n * int64_t(sizeof(float)); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  return h;
}

std::vector<uint64_t> position_keys(const Prompt& prompt, int64_t n_embd) {
  std::vector<uint64_t> keys;
  keys.reserve(prompt.size());
  int64_t soft = 0;
  for (int32_t t : prompt.tokens) {
    if (t == kSoftToken) {
      keys.push_back(hash_row(prompt.soft_embeddings.data() + soft++ * n_embd, n_embd) | kSoftKeyBit);
    } else {
      keys.push_back(uint64_t(uint32_t(t)));
    }
  }
  return keys;
}

int64_t common_prefix(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return int64_t(i);
}

const std::vector<double>& ttft_bounds() {
  static const std::vector<double> bounds = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return bounds;
}

}  // namespace

// A request waiting for admission.
struct Scheduler::Pending {
  GenerationRequest request;
  std::shared_ptr<SequenceHandle> handle;
  std::vector<uint64_t> keys;  // position keys of the prompt
  int64_t max_new = 0;         // new tokens allowed (already clamped to the sequence limit)
  Clock::time_point submitted;
};

// A request being served: its cache, where it is in its prompt, its sampler and output state.
struct Scheduler::Sequence {
  Sequence(std::unique_ptr<Pending> p, std::vector<int32_t> suppressed, const Tokenizer* tokenizer)
      : pending(std::move(p)), sampler(pending->request.sampling, std::move(suppressed)) {
    if (tokenizer) decoder = std::make_unique<StreamingDecoder>(*tokenizer, /*render_special=*/true);
  }

  const Prompt& prompt() const { return pending->request.prompt; }
  int64_t prompt_size() const { return int64_t(pending->request.prompt.size()); }
  bool prefilling() const { return prompt_done < prompt_size(); }
  void emit(SequenceEvent&& e) {
    try {
      pending->request.on_event(std::move(e));
    } catch (...) {
      // A sink must not stop the worker; the request's client is gone or broken.
    }
  }

  std::unique_ptr<Pending> pending;
  std::unique_ptr<KvCache> cache;
  int64_t prompt_done = 0;  // prompt positions in the cache
  int64_t soft_done = 0;    // soft-token positions among them
  Sampler sampler;
  std::vector<int32_t> history;     // text tokens of the prompt and the output (penalties)
  std::vector<int32_t> fed_tokens;  // generated tokens stored in the cache
  int32_t pending_token = -1;       // sampled, to be fed at the next step
  std::unique_ptr<StreamingDecoder> decoder;
  std::string held;                 // decoded text that may be the start of a stop string
  GenerationUsage usage;
  bool done = false;
};

// A finished sequence's cache, kept for a later request that continues it.
struct Scheduler::CachedPrefix {
  std::unique_ptr<KvCache> cache;
  std::vector<uint64_t> keys;  // one per position the cache holds
};

void SequenceHandle::cancel() {
  cancelled_.store(true);
  std::lock_guard<std::mutex> lock(wakeup_->mutex);
  wakeup_->cv.notify_all();
}

Scheduler::Scheduler(const Gemma4Model& model, ThreadPool& pool, SchedulerConfig config, MatmulMode mode)
    : model_(model),
      config_(std::move(config)),
      forward_(std::make_unique<ForwardPass>(model, pool, mode)),
      wakeup_(std::make_shared<SequenceHandle::Wakeup>()) {
  if (config_.kv_budget_tokens < 2) g4::fail("the KV budget (--ctx-size) must hold at least 2 positions");
  if (config_.max_active < 1) g4::fail("--parallel must be at least 1");
  if (config_.max_queue < 0) g4::fail("the queue size must not be negative");
  if (config_.step_tokens < 1) g4::fail("the step token budget must be at least 1");
  if (config_.default_max_tokens < 1) g4::fail("the default max tokens must be at least 1");
  if (config_.max_cached_sequences <= 0) config_.max_cached_sequences = config_.max_active;
  // Checks the cache types now rather than at the first request.
  KvCache probe(model.hp, KvCacheConfig{1, config_.cache.type_k, config_.cache.type_v, config_.cache.ring_extra});
  metrics_.kv_budget_tokens = config_.kv_budget_tokens;
  metrics_.ttft_bounds = ttft_bounds();
  metrics_.ttft_counts.assign(metrics_.ttft_bounds.size() + 1, 0);
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  std::lock_guard<std::mutex> lock(wakeup_->mutex);
  if (worker_.joinable() || stopping_) return;
  worker_ = std::thread([this] { worker_loop(); });
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(wakeup_->mutex);
    if (stopped_) return;
    stopping_ = true;
    wakeup_->cv.notify_all();
  }
  if (worker_.joinable()) worker_.join();
  std::deque<std::unique_ptr<Pending>> queued;
  {
    std::lock_guard<std::mutex> lock(wakeup_->mutex);
    queued.swap(queue_);
    stopped_ = true;
  }
  const std::string why = "the server is shutting down";
  for (auto& p : queued) {
    --in_flight_;
    SequenceEvent e;
    e.kind = SequenceEventKind::kError;
    e.error = why;
    p->request.on_event(std::move(e));
  }
  for (auto& seq : active_) fail(*seq, why);
  active_.clear();
  cached_.clear();
  update_memory_metrics();
}

void Scheduler::worker_loop() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(wakeup_->mutex);
      if (stopping_) return;
    }
    if (step()) continue;
    std::unique_lock<std::mutex> lock(wakeup_->mutex);
    // Bounded wait: also re-checks queued requests that could not be admitted yet.
    wakeup_->cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping_ || !queue_.empty(); });
  }
}

int64_t Scheduler::sequence_limit() const {
  return config_.max_sequence_tokens > 0 ? std::min(config_.max_sequence_tokens, config_.kv_budget_tokens)
                                         : config_.kv_budget_tokens;
}

std::shared_ptr<SequenceHandle> Scheduler::submit(GenerationRequest request) {
  using Reason = SchedulerRejection::Reason;
  auto reject = [&](Reason reason, const std::string& what) {
    {
      std::lock_guard<std::mutex> lock(metrics_mutex_);
      ++metrics_.requests_rejected;
    }
    return SchedulerRejection(reason, what);
  };
  if (!request.on_event) throw reject(Reason::kInvalid, "a request needs an event sink");
  const Prompt& prompt = request.prompt;
  const int64_t n = int64_t(prompt.size());
  if (n == 0) throw reject(Reason::kInvalid, "the prompt is empty");
  int64_t n_soft = 0;
  for (int32_t t : prompt.tokens) {
    if (t == kSoftToken) {
      ++n_soft;
    } else if (t < 0 || t >= model_.hp.n_vocab) {
      throw reject(Reason::kInvalid, cat("token id ", t, " is outside the vocabulary (0..", model_.hp.n_vocab - 1, ")"));
    }
  }
  if (int64_t(prompt.soft_embeddings.size()) != n_soft * model_.hp.n_embd)
    throw reject(Reason::kInvalid, "the prompt's soft embeddings do not match its soft-token positions");
  if (!prompt.block_ids.empty() && int64_t(prompt.block_ids.size()) != n)
    throw reject(Reason::kInvalid, "the prompt's block ids do not match its positions");
  const int64_t limit = sequence_limit();
  if (n >= limit) {
    SchedulerRejection r = reject(Reason::kPromptTooLong,
                                  cat("the prompt has ", n, " tokens but a sequence holds at most ", limit,
                                      " (prompt and generated tokens): shorten the prompt or raise --ctx-size"));
    r.prompt_tokens = n;
    r.limit = limit;
    throw r;
  }
  try {
    Sampler check(request.sampling, {});
  } catch (const Error& e) {
    throw reject(Reason::kInvalid, e.what());
  }
  for (const auto& [id, bias] : request.logit_bias)
    if (id < 0 || id >= model_.hp.n_vocab)
      throw reject(Reason::kInvalid, cat("logit_bias names token ", id, ", outside the vocabulary"));

  auto pending = std::make_unique<Pending>();
  const int64_t wanted = request.max_tokens >= 0 ? request.max_tokens : config_.default_max_tokens;
  pending->max_new = std::min(wanted, limit - n);
  pending->keys = position_keys(prompt, model_.hp.n_embd);
  pending->submitted = Clock::now();
  pending->request = std::move(request);
  auto handle = std::shared_ptr<SequenceHandle>(new SequenceHandle(next_id_++, wakeup_));
  pending->handle = handle;
  {
    std::lock_guard<std::mutex> lock(wakeup_->mutex);
    if (stopping_) throw reject(Reason::kStopped, "the server is shutting down");
    if (in_flight_.load() >= int64_t(config_.max_active) + config_.max_queue)
      throw reject(Reason::kQueueFull, cat("all ", config_.max_active, " sequences are busy and ", config_.max_queue,
                                           " requests are waiting"));
    ++in_flight_;
    queue_.push_back(std::move(pending));
    std::lock_guard<std::mutex> metrics_lock(metrics_mutex_);
    ++metrics_.requests_submitted;
    metrics_.queue_depth = int64_t(queue_.size());
    metrics_.prompt_tokens += n;
  }
  wakeup_->cv.notify_all();
  return handle;
}

int64_t Scheduler::reserved_tokens() const {
  int64_t total = 0;
  for (const auto& seq : active_)
    if (seq->cache) total += seq->cache->n_ctx();
  return total;
}

int64_t Scheduler::cached_tokens() const {
  int64_t total = 0;
  for (const CachedPrefix& c : cached_) total += c.cache->n_ctx();
  return total;
}

void Scheduler::drop_cancelled() {
  std::vector<std::unique_ptr<Pending>> dropped;
  {
    std::lock_guard<std::mutex> lock(wakeup_->mutex);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if ((*it)->handle->cancelled()) {
        dropped.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    std::lock_guard<std::mutex> metrics_lock(metrics_mutex_);
    metrics_.queue_depth = int64_t(queue_.size());
  }
  for (auto& p : dropped) {
    --in_flight_;
    SequenceEvent e;
    e.kind = SequenceEventKind::kDone;
    e.finish = FinishReason::kCancelled;
    e.step = step_;
    e.usage.prompt_tokens = int64_t(p->request.prompt.size());
    e.usage.total_seconds = seconds_between(p->submitted, Clock::now());
    p->request.on_event(std::move(e));
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    ++metrics_.requests_cancelled;
  }
  for (auto& seq : active_)
    if (!seq->done && seq->pending->handle->cancelled()) finish(*seq, FinishReason::kCancelled);
  std::erase_if(active_, [](const std::unique_ptr<Sequence>& s) { return s->done; });
}

void Scheduler::admit() {
  for (;;) {
    if (int(active_.size()) >= config_.max_active) return;
    // Only this thread removes queue entries, and a deque keeps its elements in place when
    // others append: the front can be admitted (caches allocated) without holding the lock.
    std::unique_ptr<Pending>* front;
    {
      std::lock_guard<std::mutex> lock(wakeup_->mutex);
      if (queue_.empty()) return;
      front = &queue_.front();
    }
    if (!admit_one(*front)) return;  // first come, first served: the rest waits too
    std::lock_guard<std::mutex> lock(wakeup_->mutex);
    queue_.pop_front();
    std::lock_guard<std::mutex> metrics_lock(metrics_mutex_);
    metrics_.queue_depth = int64_t(queue_.size());
  }
}

// Makes room for the request in `slot` and moves it to the active sequences; false (leaving it
// queued) when it does not fit yet.
bool Scheduler::admit_one(std::unique_ptr<Pending>& slot) {
  const Prompt& prompt = slot->request.prompt;
  const int64_t n = int64_t(prompt.size());
  const int64_t reserve = n + slot->max_new;

  // The kept cache sharing the longest prefix with this prompt: at least one position is left to
  // evaluate (for the logits), the cut is never inside an image block, and the sliding ring can
  // roll back to it.
  auto best = cached_.end();
  int64_t best_len = 0;
  if (config_.prefix_cache) {
    for (auto it = cached_.begin(); it != cached_.end(); ++it) {
      int64_t len = std::min(common_prefix(it->keys, slot->keys), n - 1);
      len = prompt_cut_at_or_before(prompt, len);
      if (len > best_len && it->cache->can_truncate(len)) {
        best = it;
        best_len = len;
      }
    }
  }
  const int64_t best_size = best != cached_.end() ? best->cache->n_ctx() : 0;
  const int64_t kept = cached_tokens();
  const int64_t free = config_.kv_budget_tokens - reserved_tokens() - kept;
  const int64_t need = reserve - best_size;
  if (need > free + (kept - best_size)) return false;
  for (int64_t available = free; need > available;) {  // least recently used first
    auto victim = std::prev(cached_.end());
    if (victim == best) victim = std::prev(victim);
    available += victim->cache->n_ctx();
    cached_.erase(victim);
  }

  auto seq = std::make_unique<Sequence>(std::move(slot), model_.suppressed_tokens, model_.tokenizer.get());
  Sequence& s = *seq;
  if (best != cached_.end()) {
    s.cache = std::move(best->cache);
    cached_.erase(best);
    s.cache->truncate(best_len);
    s.cache->resize(reserve);
    s.prompt_done = best_len;
    for (int64_t i = 0; i < best_len; ++i) s.soft_done += prompt.tokens[size_t(i)] == kSoftToken;
  } else {
    KvCacheConfig cache_config = config_.cache;
    cache_config.n_ctx = reserve;
    s.cache = std::make_unique<KvCache>(model_.hp, cache_config);
  }
  for (int32_t t : prompt.tokens)
    if (t != kSoftToken) s.history.push_back(t);
  s.usage.prompt_tokens = n;
  s.usage.cached_tokens = best_len;
  s.usage.queue_seconds = seconds_between(s.pending->submitted, Clock::now());
  {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    metrics_.prompt_tokens_reused += best_len;
  }
  active_.push_back(std::move(seq));
  return true;
}

bool Scheduler::step() {
  drop_cancelled();
  admit();
  update_memory_metrics();
  if (active_.empty()) return false;
  ++step_;

  // The batch: every decoding sequence's last token, then prompt chunks (shortest remaining
  // prompt first, so short requests start generating at once) from what is left of the budget.
  std::vector<SequenceInput> inputs;
  std::vector<Sequence*> owners;
  int64_t rows_left = config_.step_tokens, decode_rows = 0, prefill_rows = 0;
  for (auto& seq : active_) {
    if (seq->prefilling()) continue;
    SequenceInput in;
    in.cache = seq->cache.get();
    in.tokens = {seq->pending_token};
    in.output_rows = {0};
    inputs.push_back(std::move(in));
    owners.push_back(seq.get());
    --rows_left;
    ++decode_rows;
  }
  std::vector<Sequence*> prefilling;
  for (auto& seq : active_)
    if (seq->prefilling()) prefilling.push_back(seq.get());
  std::stable_sort(prefilling.begin(), prefilling.end(), [](const Sequence* a, const Sequence* b) {
    return a->prompt_size() - a->prompt_done < b->prompt_size() - b->prompt_done;
  });
  bool placed = false;
  for (Sequence* seq : prefilling) {
    if (rows_left <= 0 && placed) break;
    // The first chunk of a step may exceed the budget (an image block is never split): progress.
    const int64_t allowance = std::max<int64_t>(1, rows_left);
    const int64_t start = seq->prompt_done;
    const int64_t end = prompt_chunk_end(seq->prompt(), start, allowance);
    if (end - start > allowance && placed) continue;
    SequenceInput in = prompt_chunk_input(seq->prompt(), start, end, seq->soft_done, model_.hp.n_embd, *seq->cache);
    if (end == seq->prompt_size()) in.output_rows = {int32_t(end - start - 1)};
    rows_left -= end - start;
    prefill_rows += end - start;
    placed = true;
    inputs.push_back(std::move(in));
    owners.push_back(seq);
  }

  const auto t0 = Clock::now();
  try {
    forward_->run(inputs, logits_);
  } catch (const std::exception& e) {
    for (Sequence* seq : owners) fail(*seq, cat("the forward pass failed: ", e.what()));
    std::erase_if(active_, [](const std::unique_ptr<Sequence>& s) { return s->done; });
    update_memory_metrics();
    return true;
  }
  const double dt = seconds_between(t0, Clock::now());
  {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    const double rows = double(decode_rows + prefill_rows);
    metrics_.decode_seconds += dt * double(decode_rows) / rows;
    metrics_.prefill_seconds += dt * double(prefill_rows) / rows;
    metrics_.prompt_tokens_evaluated += prefill_rows;
    ++metrics_.steps;
  }

  // Bookkeeping, then sampling from each output row (in input order).
  const int64_t n_vocab = model_.hp.n_vocab;
  int64_t row = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Sequence& seq = *owners[i];
    if (seq.prefilling()) {
      seq.prompt_done += int64_t(inputs[i].tokens.size());
      for (int32_t t : inputs[i].tokens) seq.soft_done += t == kSoftToken;
    } else {
      seq.fed_tokens.push_back(seq.pending_token);
      seq.pending_token = -1;
    }
    if (!inputs[i].output_rows.empty()) {
      on_logits(seq, std::span<float>(logits_.data() + row * n_vocab, size_t(n_vocab)));
      ++row;
    }
  }
  std::erase_if(active_, [](const std::unique_ptr<Sequence>& s) { return s->done; });
  update_memory_metrics();
  return true;
}

void Scheduler::on_logits(Sequence& seq, std::span<float> logits) {
  const GenerationRequest& req = seq.pending->request;
  const auto now = Clock::now();
  if (seq.usage.completion_tokens == 0) {
    seq.usage.first_token_seconds = seconds_between(seq.pending->submitted, now);
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    const auto& bounds = metrics_.ttft_bounds;
    const size_t bucket = size_t(std::lower_bound(bounds.begin(), bounds.end(), seq.usage.first_token_seconds) -
                                 bounds.begin());
    ++metrics_.ttft_counts[bucket];
    metrics_.ttft_sum += seq.usage.first_token_seconds;
    ++metrics_.ttft_count;
  }
  for (const auto& [id, bias] : req.logit_bias) logits[size_t(id)] += bias;
  SequenceEvent event;
  int32_t token;
  if (req.top_logprobs >= 0) {
    TokenLogprobs lp;
    token = seq.sampler.sample(logits, seq.history, lp, req.top_logprobs);
    event.logprobs = std::move(lp);
  } else {
    token = seq.sampler.sample(logits, seq.history);
  }
  if (model_.is_end_of_generation(token)) {
    finish(seq, FinishReason::kStop);
    return;
  }
  ++seq.usage.completion_tokens;
  seq.history.push_back(token);
  {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    ++metrics_.generated_tokens;
  }
  bool stopped = false;
  event.kind = SequenceEventKind::kToken;
  event.token = token;
  event.text = release_text(seq, seq.decoder ? seq.decoder->push(token) : std::string(), stopped);
  event.step = step_;
  seq.emit(std::move(event));
  if (stopped) {
    finish(seq, FinishReason::kStop);
  } else if (seq.usage.completion_tokens >= seq.pending->max_new) {
    finish(seq, FinishReason::kLength);
  } else {
    seq.pending_token = token;
  }
}

// Appends a decoded piece and returns the text that can be shown: everything up to a stop string
// (then `stopped` is set and the rest is dropped), less a tail that could still become one.
std::string Scheduler::release_text(Sequence& seq, const std::string& piece, bool& stopped) {
  seq.held += piece;
  const std::vector<std::string>& stops = seq.pending->request.stop;
  size_t first = std::string::npos;
  for (const std::string& s : stops)
    if (!s.empty()) first = std::min(first, seq.held.find(s));
  std::string out;
  if (first != std::string::npos) {
    out = seq.held.substr(0, first);
    seq.held.clear();
    stopped = true;
    return out;
  }
  size_t keep = 0;
  for (const std::string& s : stops) {
    for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), seq.held.size()); k > keep; --k) {
      if (seq.held.compare(seq.held.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  out = seq.held.substr(0, seq.held.size() - keep);
  seq.held.erase(0, seq.held.size() - keep);
  return out;
}

void Scheduler::finish(Sequence& seq, FinishReason reason) {
  SequenceEvent event;
  event.kind = SequenceEventKind::kDone;
  event.finish = reason;
  event.step = step_;
  if (reason != FinishReason::kCancelled) {
    bool stopped = false;
    const std::string rest = seq.decoder ? seq.decoder->flush() : std::string();
    event.text = release_text(seq, rest, stopped);
    if (!stopped) event.text += seq.held;
    seq.held.clear();
  }
  seq.usage.total_seconds = seconds_between(seq.pending->submitted, Clock::now());
  event.usage = seq.usage;
  seq.done = true;
  --in_flight_;
  {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    ++(reason == FinishReason::kCancelled ? metrics_.requests_cancelled : metrics_.requests_finished);
  }
  seq.emit(std::move(event));  // after the counters: a client woken by it sees them
  if (reason != FinishReason::kCancelled && config_.prefix_cache) keep_prefix(seq);
  seq.cache.reset();
}

void Scheduler::fail(Sequence& seq, const std::string& error) {
  SequenceEvent event;
  event.kind = SequenceEventKind::kError;
  event.error = error;
  event.step = step_;
  seq.done = true;
  --in_flight_;
  seq.cache.reset();
  {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    ++metrics_.requests_failed;
  }
  seq.emit(std::move(event));
}

// Keeps a finished sequence's cache, shrunk to what it holds, for a request that continues it.
void Scheduler::keep_prefix(Sequence& seq) {
  if (!seq.cache || seq.cache->n_past() == 0) return;
  CachedPrefix kept;
  kept.keys.assign(seq.pending->keys.begin(), seq.pending->keys.begin() + seq.prompt_done);
  for (int32_t t : seq.fed_tokens) kept.keys.push_back(uint64_t(uint32_t(t)));
  if (int64_t(kept.keys.size()) != seq.cache->n_past()) return;  // cannot describe it: drop it
  seq.cache->resize(seq.cache->n_past());
  kept.cache = std::move(seq.cache);
  cached_.push_front(std::move(kept));
  while (int(cached_.size()) > config_.max_cached_sequences) cached_.pop_back();
}

void Scheduler::update_memory_metrics() {
  int64_t bytes = 0;
  for (const auto& seq : active_)
    if (seq->cache) bytes += seq->cache->size_bytes();
  for (const CachedPrefix& c : cached_) bytes += c.cache->size_bytes();
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  metrics_.active = int64_t(active_.size());
  metrics_.cached_sequences = int64_t(cached_.size());
  metrics_.kv_reserved_tokens = reserved_tokens();
  metrics_.kv_cached_tokens = cached_tokens();
  metrics_.kv_bytes = bytes;
}

SchedulerMetrics Scheduler::metrics() const {
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  return metrics_;
}

}  // namespace g4
