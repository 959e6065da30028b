// Tapes are per thread: two threads training two models at once get what they get one
// after the other, and a thread's ops never reach another thread's tape.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "tapeflow/autodiff.hpp"

using namespace tapeflow;

namespace {

struct Trained {
  std::vector<float> w, b;
  std::vector<float> losses;
};

// Linear regression y = x @ w_true + b_true + noise, x [32, 3], fitted by 50 steps of SGD on
// the mean squared error, each step with its own GradientTape.
Trained train(std::uint64_t seed) {
  Generator gen(seed);
  const Tensor x = normal({32, 3}, gen);
  const Tensor w_true = normal({3, 1}, gen, 0, 2);
  const float b_true = static_cast<float>(seed) * 0.5f - 1.0f;
  const Tensor y = matmul(x, w_true) + b_true + normal({32, 1}, gen, 0, 0.05);

  Variable w(zeros({3, 1}), "w"), b(zeros({1}), "b");
  Trained out;
  const float lr = 0.1f;
  for (int step = 0; step < 50; ++step) {
    GradientTape tape;
    const Tensor pred = matmul(x, w) + b;
    const Tensor loss = mean(square(pred - y));
    const auto grads = tape.gradient(loss, std::vector<Tensor>{w, b});
    w.assign_sub(grads[0] * lr);
    b.assign_sub(grads[1] * lr);
    out.losses.push_back(loss.item<float>());
  }
  out.w = w.to_vector<float>();
  out.b = b.to_vector<float>();
  return out;
}

// Bitwise equal, or within 1e-6 (a kernel may split a reduction differently under load).
bool same(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i] || std::abs(a[i] - b[i]) <= 1e-6f)) return false;
  return true;
}

}  // namespace

TEST_CASE("threads: two models trained at once equal the same two trained one after the other", "[tape][threads]") {
  const Trained seq1 = train(1), seq2 = train(2);
  // the trainings learned something, and differ
  CHECK(seq1.losses.back() < 0.05f * seq1.losses.front());
  CHECK(seq2.losses.back() < 0.05f * seq2.losses.front());
  CHECK_FALSE(same(seq1.w, seq2.w));

  for (int round = 0; round < 3; ++round) {
    Trained par1, par2;
    // both threads start training together, so their tapes are alive at the same time
    std::atomic<int> arrived{0};
    auto start_together = [&] {
      arrived.fetch_add(1);
      while (arrived.load() < 2) std::this_thread::yield();
    };
    std::thread t1([&] {
      start_together();
      par1 = train(1);
    });
    std::thread t2([&] {
      start_together();
      par2 = train(2);
    });
    t1.join();
    t2.join();
    INFO("round " << round);
    CHECK(same(par1.w, seq1.w));
    CHECK(same(par1.b, seq1.b));
    CHECK(same(par1.losses, seq1.losses));
    CHECK(same(par2.w, seq2.w));
    CHECK(same(par2.b, seq2.b));
    CHECK(same(par2.losses, seq2.losses));
  }
}

TEST_CASE("threads: another thread's ops are not recorded on this thread's tape", "[tape][threads]") {
  const Tensor x = tensor({1.0, 2.0});
  GradientTape tape;
  tape.watch(x);
  Tensor from_other;
  std::size_t other_thread_ops = 99;
  std::thread worker([&] {
    GradientTape own;
    own.watch(x);
    from_other = x * x;
    other_thread_ops = own.recorded_ops().size();
  });
  worker.join();
  CHECK(other_thread_ops == 1);
  CHECK(tape.recorded_ops().empty());
  CHECK_FALSE(tape.gradient(from_other, x).defined());
}

TEST_CASE("threads: a tape on another thread does not record this thread's ops", "[tape][threads]") {
  // the worker holds its tape open while this thread computes
  const Tensor x = tensor({3.0});
  std::size_t worker_ops = 99;
  bool ready = false, done = false;
  std::mutex m;
  std::condition_variable cv;
  std::thread worker([&] {
    GradientTape tape;
    tape.watch(x);
    {
      std::unique_lock<std::mutex> lock(m);
      ready = true;
      cv.notify_all();
      cv.wait(lock, [&] { return done; });
    }
    worker_ops = tape.recorded_ops().size();
  });
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return ready; });
  }
  const Tensor y = exp(x) * x;  // on this thread, with no tape of its own
  CHECK(y.defined());
  {
    std::lock_guard<std::mutex> lock(m);
    done = true;
  }
  cv.notify_all();
  worker.join();
  CHECK(worker_ops == 0);
}
