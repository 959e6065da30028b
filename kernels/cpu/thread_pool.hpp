#pragma once
// The CPU kernels' worker threads. Not OpenMP: libgomp's idle threads spin for ~300k
// iterations after every parallel region, and its wait policy can only be set by an
// environment variable read before main. On this project's 2-core, shared machines that spin
// made the MLP epoch 10x slower (a descheduled worker is waited for by a spinning one).
// Here idle workers spin briefly, then sleep on a condition variable.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace tapeflow::kernels::cpu::detail {

class ThreadPool {
 public:
  static ThreadPool& instance() {
    static ThreadPool* pool = new ThreadPool();  // never destroyed: workers may outlive statics
    return *pool;
  }

  // Runs f(c) for c in [0, n): c = 0 on the calling thread, the rest on workers; returns when
  // all are done. Falls back to running everything on the caller when the pool is busy
  // (another thread's op, or a nested call from inside a task).
  template <class F>
  void run(int n, const F& f) {
    if (n <= 1 || n > kMaxTasks || t_inside || !busy_.try_lock()) {
      for (int c = 0; c < n; ++c) f(c);
      return;
    }
    std::lock_guard<std::mutex> own(busy_, std::adopt_lock);
    ensure_workers(n - 1);
    task_ = [](const void* ctx, int c) { (*static_cast<const F*>(ctx))(c); };
    ctx_ = &f;
    remaining_.store(n - 1, std::memory_order_relaxed);
    {
      // the job's word: a new sequence number and its task count, so that a worker learns
      // whether it is needed from the word alone. One that is not needed never reads task_ or
      // ctx_ (the next job may be writing them: run() does not wait for it); one that is needed
      // is waited for, so they stay this job's until it has read them.
      std::lock_guard<std::mutex> lock(mutex_);
      const std::uint64_t sequence = (generation_.load(std::memory_order_relaxed) >> kCountBits) + 1;
      generation_.store(sequence << kCountBits | static_cast<std::uint64_t>(n), std::memory_order_release);
    }
    wake_.notify_all();
    t_inside = true;
    f(0);
    t_inside = false;
    wait_done();
  }

 private:
  ThreadPool() = default;

  void ensure_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      const int index = static_cast<int>(workers_.size()) + 1;
      // the generation the worker has seen is taken now: the job about to be posted is new to it
      const std::uint64_t seen = generation_.load(std::memory_order_acquire);
      workers_.emplace_back([this, index, seen] { work(index, seen); });
      workers_.back().detach();
    }
  }

  void work(int index, std::uint64_t seen) {
    t_inside = true;
    for (;;) {
      // a short spin catches back-to-back ops without a sleep/wake round trip
      std::uint64_t g = seen;
      for (int spin = 0; spin < 4000 && g == seen; ++spin) {
        pause();
        g = generation_.load(std::memory_order_acquire);
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return (g = generation_.load(std::memory_order_acquire)) != seen; });
      }
      seen = g;
      if (index < static_cast<int>(g & kCountMask)) {
        task_(ctx_, index);
        if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          std::lock_guard<std::mutex> lock(mutex_);
          done_.notify_one();
        }
      }
    }
  }

  void wait_done() {
    for (int spin = 0; spin < 4000; ++spin) {
      if (remaining_.load(std::memory_order_acquire) == 0) return;
      pause();
    }
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return remaining_.load(std::memory_order_acquire) == 0; });
  }

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  static constexpr int kCountBits = 16;
  static constexpr std::uint64_t kCountMask = (std::uint64_t(1) << kCountBits) - 1;
  static constexpr int kMaxTasks = static_cast<int>(kCountMask);

  std::mutex busy_;  // held by the thread whose op uses the pool
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::atomic<std::uint64_t> generation_{0};  // the current job: sequence << kCountBits | tasks
  std::atomic<int> remaining_{0};
  void (*task_)(const void*, int) = nullptr;
  const void* ctx_ = nullptr;
  std::vector<std::thread> workers_;
  static thread_local bool t_inside;
};

inline thread_local bool ThreadPool::t_inside = false;

// Runs f(c) for c in [0, n) on the pool.
template <class F>
void parallel_for(int n, const F& f) {
  ThreadPool::instance().run(n, f);
}

}  // namespace tapeflow::kernels::cpu::detail
