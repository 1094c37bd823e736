#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace g4 {
namespace {

// How long a worker polls for the next job, and the caller for the workers, before sleeping:
// longer than the gaps between the parallel ops of a decode step (a few microseconds of
// single-row work), far shorter than anything a user would notice as idle CPU use. The first few
// microseconds spin on the CPU; after that each poll yields, so that when there are more threads
// than free cores the thread being waited for gets to run.
constexpr std::chrono::microseconds kPollTime{100};
constexpr std::chrono::microseconds kSpinTime{5};

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls `done` for up to kPollTime; true when it became true.
template <class Pred>
bool poll(Pred done) {
  const auto start = std::chrono::steady_clock::now();
  bool spinning = true;
  for (int i = 1;; ++i) {
    if (done()) return true;
    if (spinning) {
      cpu_relax();
      if (i % 16 != 0) continue;
    } else {
      std::this_thread::yield();
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    if (waited > kPollTime) return done();
    spinning = waited < kSpinTime;
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_ = true;
  generation_.value.fetch_add(1);  // publishes stop_
  {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::run_share(int index) {
  if (index >= job_parts_) return;
  const int64_t begin = job_n_ * index / job_parts_;
  const int64_t end = job_n_ * (index + 1) / job_parts_;
  try {
    if (begin < end) (*job_)(begin, end, index);
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

// Sequentially consistent operations on both sides of each sleep (generation_ vs
// sleeping_workers_, pending_ vs caller_sleeping_): whichever side acts second sees the other, so
// either the sleeper re-checks and does not sleep, or the waker notifies under the mutex.
void ThreadPool::finish_share() {
  if (pending_.value.fetch_sub(1) == 1 && caller_sleeping_.load()) {
    std::lock_guard<std::mutex> lock(mutex_);
    done_.notify_one();
  }
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const auto new_job = [&] { return generation_.value.load(std::memory_order_acquire) != seen; };
    if (!poll(new_job)) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleeping_workers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.value.load() != seen; });
      sleeping_workers_.fetch_sub(1);
    }
    seen = generation_.value.load(std::memory_order_acquire);
    if (stop_) return;
    run_share(index);
    finish_share();
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int parts = int(std::min<int64_t>(n_threads_, (n + grain - 1) / grain));
  if (parts <= 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_parts_ = parts;
  error_ = nullptr;
  pending_.value.store(uint64_t(n_threads_ - 1), std::memory_order_relaxed);
  generation_.value.fetch_add(1);  // publishes the job (a release, and more)
  if (sleeping_workers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_share(0);
  const auto all_done = [&] { return pending_.value.load(std::memory_order_acquire) == 0; };
  if (!poll(all_done)) {
    std::unique_lock<std::mutex> lock(mutex_);
    caller_sleeping_.store(true);
    done_.wait(lock, [&] { return pending_.value.load() == 0; });
    caller_sleeping_.store(false);
  }
  job_ = nullptr;
  if (error_) {
    std::exception_ptr error = error_;
    error_ = nullptr;
    std::rethrow_exception(error);
  }
}

namespace {

// A share [begin, end) in one word, so that its owner (taking chunks from the front) and a thief
// (taking the back half) agree through one compare-and-swap. On its own cache line: the owner
// updates it once per chunk.
struct alignas(64) Share {
  std::atomic<uint64_t> packed{0};

  static uint64_t pack(int64_t begin, int64_t end) { return uint64_t(begin) << 32 | uint64_t(end); }
  static int64_t begin_of(uint64_t v) { return int64_t(v >> 32); }
  static int64_t end_of(uint64_t v) { return int64_t(v & 0xFFFFFFFFu); }
  static int64_t size_of(uint64_t v) { return end_of(v) - begin_of(v); }
};

// Moves the back half of the largest share left into `mine`; false when every share is empty.
bool steal_half(std::vector<Share>& shares, Share& mine) {
  for (;;) {
    Share* victim = nullptr;
    int64_t most = 0;
    for (Share& s : shares) {
      const int64_t left = Share::size_of(s.packed.load(std::memory_order_relaxed));
      if (left > most) most = left, victim = &s;
    }
    if (!victim) return false;
    uint64_t v = victim->packed.load(std::memory_order_relaxed);
    const int64_t begin = Share::begin_of(v), end = Share::end_of(v);
    if (begin >= end) continue;  // emptied meanwhile: look again
    const int64_t cut = begin + (end - begin) / 2;  // the owner keeps [begin, cut)
    if (victim->packed.compare_exchange_weak(v, Share::pack(begin, cut),
                                             std::memory_order_relaxed)) {
      mine.packed.store(Share::pack(cut, end), std::memory_order_relaxed);
      return true;
    }
  }
}

}  // namespace

void ThreadPool::parallel_chunks(int64_t n, int64_t min_chunk, int64_t max_chunk,
                                 const std::function<void(int64_t, int64_t, int)>& fn) {
  min_chunk = std::max<int64_t>(1, min_chunk);
  max_chunk = std::max(min_chunk, max_chunk);
  constexpr int64_t kMaxItems = int64_t(1) << 31;  // a share's ends are packed in 32 bits
  for (int64_t base = 0; base < n; base += kMaxItems) {
    const int64_t count = std::min(kMaxItems, n - base);
    const int parts = int(std::min<int64_t>(n_threads_, (count + min_chunk - 1) / min_chunk));
    std::vector<Share> shares(static_cast<size_t>(parts));
    for (int i = 0; i < parts; ++i)
      shares[size_t(i)].packed.store(Share::pack(count * i / parts, count * (i + 1) / parts));
    parallel_for(parts, 1, [&](int64_t, int64_t, int thread) {
      Share& mine = shares[size_t(thread)];
      for (;;) {
        uint64_t v = mine.packed.load(std::memory_order_relaxed);
        const int64_t begin = Share::begin_of(v), end = Share::end_of(v);
        if (begin >= end) {
          if (!steal_half(shares, mine)) return;
          continue;
        }
        const int64_t stop = begin + std::clamp((end - begin) / 2, min_chunk, max_chunk);
        const int64_t chunk_end = std::min(end, stop);
        if (mine.packed.compare_exchange_weak(v, Share::pack(chunk_end, end),
                                              std::memory_order_relaxed))
          fn(base + begin, base + chunk_end, thread);
      }
    });
  }
}

}  // namespace g4
