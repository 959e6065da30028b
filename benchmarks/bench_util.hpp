#pragma once
// Timing helpers: warm up, then the median of several runs (the machine is shared and noisy).
#include <algorithm>
#include <chrono>
#include <vector>

namespace tapeflow::bench {

// Median seconds of `reps` runs of fn after `warmup` untimed runs.
template <class F>
double median_seconds(F&& fn, int reps = 7, int warmup = 2) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace tapeflow::bench
