// One persistent pool of worker threads. Ops split their work with parallel_for; no thread is
// created per op. The calling thread takes part in the work, so a pool of n threads starts n-1.
//
// Decoding one token runs ~10 parallel ops per layer, each only tens of microseconds long, so the
// hand-off must cost far less than a condition-variable wake-up (~5-50 us): a new job is announced
// by bumping an atomic generation counter, which idle workers poll for a short while (~100 us)
// before they fall asleep on a condition variable; the caller likewise polls for the workers to
// finish before sleeping. Nothing spins while the pool is idle.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace g4 {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads <= 0: one per hardware thread
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) on disjoint ranges covering [0, n), split into contiguous
  // chunks of at least `grain` items, one chunk per thread. Blocks until all are done. The first
  // exception thrown by fn is rethrown here. Not reentrant: fn must not call parallel_for on the
  // same pool, and only one thread may call it at a time.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);

  // Calls fn(begin, end, thread_index) on disjoint chunks covering [0, n) exactly once. Each
  // thread owns a contiguous share and takes its chunks from the front of it in order, so one
  // thread's chunks follow one another in memory: a single stream that the hardware prefetcher
  // keeps up with. A chunk is half of what is left of the share, clamped to [min_chunk,
  // max_chunk], so the shares end in small chunks. A thread whose share is done takes the back
  // half of the largest share left (again and again), so a thread that lost its core for a
  // while does not hold up the others. The same contract as parallel_for otherwise.
  void parallel_chunks(int64_t n, int64_t min_chunk, int64_t max_chunk,
                       const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void worker_loop(int index);
  void run_share(int index);
  void finish_share();

  // Each hot atomic on its own cache line, so polling one does not slow writes to the other.
  struct alignas(64) PaddedCounter {
    std::atomic<uint64_t> value{0};
  };

  int n_threads_;
  std::vector<std::thread> workers_;

  // The current job, written by the caller before it bumps generation_.
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_parts_ = 0;

  PaddedCounter generation_;  // bumped once per job (and once to stop)
  PaddedCounter pending_;     // workers still running the current job
  bool stop_ = false;         // set before the final generation bump

  // Sleeping side: workers that stopped polling wait on wake_; a caller that stopped polling
  // waits on done_. The counts tell the other side whether a notify is needed.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};

  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace g4
