#pragma once
// What the Keras samples (mnist_keras, convnet) share: their command line (numbers in order,
// and --device), the epoch timer and the summary lines on memory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tapeflow/tapeflow.hpp"

namespace samples {

// VmHWM of /proc/self/status: the peak resident set size, in MiB.
inline double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // the value is in kB
  }
  return 0;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Records the wall time of each epoch. On a CUDA device it waits for the epoch's queued work
// first, so that an epoch is charged with its own kernels.
class EpochTimer : public tapeflow::callbacks::Callback {
 public:
  explicit EpochTimer(tapeflow::Device device = tapeflow::Device::cpu()) : device_(device) {}
  std::vector<double> seconds;
  void on_epoch_begin(int, const tapeflow::Logs&) override { start_ = std::chrono::steady_clock::now(); }
  void on_epoch_end(int, const tapeflow::Logs&) override {
    if (device_.is_cuda()) tapeflow::cuda::synchronize(device_);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  tapeflow::Device device_;
  std::chrono::steady_clock::time_point start_;
};

// The command line: numbers in order, and "--device cpu|cuda|cuda:N" anywhere (default cpu).
struct Args {
  std::vector<std::string> positional;
  tapeflow::Device device = tapeflow::Device::cpu();
  // The i-th positional argument as a number, or `fallback` when there is none.
  long long number(std::size_t i, long long fallback) const {
    return i < positional.size() ? std::atoll(positional[i].c_str()) : fallback;
  }
};

// "cpu", "cuda" (cuda:0) or "cuda:N"; false for anything else.
inline bool parse_device(const std::string& s, tapeflow::Device& device) {
  if (s == "cpu") return device = tapeflow::Device::cpu(), true;
  if (s == "cuda") return device = tapeflow::Device::cuda(0), true;
  const std::string digits = s.rfind("cuda:", 0) == 0 ? s.substr(5) : "";
  if (digits.empty() || digits.size() > 4 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  device = tapeflow::Device::cuda(std::atoi(digits.c_str()));
  return true;
}

// Fills `args`; on a malformed command line prints `usage` and returns false.
inline bool parse_args(int argc, char** argv, const char* usage, Args& args) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    std::string value;
    if (a == "--device" && i + 1 < argc) {
      value = argv[++i];
    } else if (a.rfind("--device=", 0) == 0) {
      value = a.substr(9);
    } else if (a.rfind("-", 0) == 0) {
      std::fprintf(stderr, "usage: %s\n", usage);
      return false;
    } else {
      args.positional.push_back(a);
      continue;
    }
    if (!parse_device(value, args.device)) {
      std::fprintf(stderr, "unknown device '%s' (cpu, cuda or cuda:N)\nusage: %s\n", value.c_str(), usage);
      return false;
    }
  }
  return true;
}

// The first line on a CUDA device: which GPU, or why there is none (nothing on the CPU, whose
// output stays as it was).
inline void print_device_status(tapeflow::Device device) {
  if (!device.is_cuda()) return;
  std::printf("device %s: %s\n", device.str().c_str(), tapeflow::cuda::status().c_str());
  std::fflush(stdout);  // before an error message on stderr, in a log of both
}

// The last lines: the peak resident memory, and on a CUDA device the peak of its allocator.
inline void print_peak_memory(tapeflow::Device device) {
  std::printf("peak RSS: %.0f MiB\n", peak_rss_mib());
  if (device.is_cuda())
    std::printf("peak %s memory: %.0f MiB\n", device.str().c_str(),
                static_cast<double>(tapeflow::memory_stats(device).peak_bytes) / (1024.0 * 1024.0));
}

}  // namespace samples
