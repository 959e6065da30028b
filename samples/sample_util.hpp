#pragma once
// What the samples share: their command line (counts in order, and --device in the Keras
// samples mnist_keras and convnet), the epoch timer and the summary lines on memory.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
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
  std::vector<double> waits;  // cuda::host_waits() per epoch (fit's own, not this callback's)
  void on_epoch_begin(int, const tapeflow::Logs&) override {
    waits_at_start_ = tapeflow::cuda::host_waits();
    start_ = std::chrono::steady_clock::now();
  }
  void on_epoch_end(int, const tapeflow::Logs&) override {
    waits.push_back(static_cast<double>(tapeflow::cuda::host_waits() - waits_at_start_));
    if (device_.is_cuda()) tapeflow::cuda::synchronize(device_);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  tapeflow::Device device_;
  std::chrono::steady_clock::time_point start_;
  std::uint64_t waits_at_start_ = 0;
};

// A positional argument: a count from 1 to `max`, `fallback` when it is not given.
struct Count {
  const char* name;
  long long fallback;
  long long max;
};

// The command line: counts in order, and "--device cpu|cuda|cuda:N" anywhere (default cpu).
struct Args {
  std::vector<long long> counts;  // one per Count, in order
  tapeflow::Device device = tapeflow::Device::cpu();
};

// The whole of `s` in decimal digits, from 1 to `max`; false for anything else ("", "abc",
// "3x", "+3", " 3", "0", a value past `max` or past long long).
inline bool parse_count(const std::string& s, long long max, long long& out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), nullptr, 10);
  if (errno == ERANGE || v < 1 || v > max) return false;
  out = v;
  return true;
}

// "cpu", "cuda" (cuda:0) or "cuda:N"; false for anything else.
inline bool parse_device(const std::string& s, tapeflow::Device& device) {
  if (s == "cpu") return device = tapeflow::Device::cpu(), true;
  if (s == "cuda") return device = tapeflow::Device::cuda(0), true;
  const std::string digits = s.rfind("cuda:", 0) == 0 ? s.substr(5) : "";
  if (digits.empty() || digits.size() > 4 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  device = tapeflow::Device::cuda(std::atoi(digits.c_str()));
  return true;
}

// Fills `args`; on a malformed command line (a bad count or device, an unknown option, an
// argument too many) prints what is wrong and `usage` to stderr and returns false: exit with 2.
inline bool parse_args(int argc, char** argv, const char* usage, const std::vector<Count>& counts, Args& args,
                       bool device_option = true) {
  args.counts.clear();
  for (const Count& c : counts) args.counts.push_back(c.fallback);
  std::size_t given = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    std::string value;
    if (device_option && a == "--device" && i + 1 < argc) {
      value = argv[++i];
    } else if (device_option && a.rfind("--device=", 0) == 0) {
      value = a.substr(9);
    } else if (a.rfind("-", 0) == 0 && !(a.size() > 1 && a[1] >= '0' && a[1] <= '9')) {  // "-1": a bad count
      std::fprintf(stderr, "unknown option '%s'\nusage: %s\n", a.c_str(), usage);
      return false;
    } else if (given == counts.size()) {
      std::fprintf(stderr, "unexpected argument '%s'\nusage: %s\n", a.c_str(), usage);
      return false;
    } else {
      const Count& c = counts[given];
      if (!parse_count(a, c.max, args.counts[given])) {
        const std::string range = c.max == LLONG_MAX ? "of at least 1" : "from 1 to " + std::to_string(c.max);
        std::fprintf(stderr, "%s must be a whole number %s, not '%s'\nusage: %s\n", c.name, range.c_str(), a.c_str(),
                     usage);
        return false;
      }
      ++given;
      continue;
    }
    if (!parse_device(value, args.device)) {
      std::fprintf(stderr, "unknown device '%s' (cpu, cuda or cuda:N)\nusage: %s\n", value.c_str(), usage);
      return false;
    }
  }
  return true;
}

// The first line on a CUDA device: which GPU (nothing on the CPU, whose output stays as it
// was). False, after a message on stderr naming `program`, the device and the number of
// devices (and why there is none), when the device does not exist: exit with 1.
inline bool print_device_status(const char* program, tapeflow::Device device) {
  if (!device.is_cuda()) return true;
  const int count = tapeflow::cuda::device_count();
  if (device.index >= count) {
    std::fprintf(stderr, "%s: device %s is not available: %d CUDA device(s)%s%s\n", program, device.str().c_str(),
                 count, count == 0 ? "; " : "", count == 0 ? tapeflow::cuda::status().c_str() : "");
    return false;
  }
  // cuda::status() describes device 0 only; of another device, say which one it is
  if (device.index == 0)
    std::printf("device %s: %s\n", device.str().c_str(), tapeflow::cuda::status().c_str());
  else
    std::printf("device %s: CUDA device %d of %d\n", device.str().c_str(), device.index, count);
  std::fflush(stdout);  // before an error message on stderr, in a log of both
  return true;
}

// The last lines: the peak resident memory, and on a CUDA device the peak of its allocator.
inline void print_peak_memory(tapeflow::Device device) {
  std::printf("peak RSS: %.0f MiB\n", peak_rss_mib());
  if (device.is_cuda())
    std::printf("peak %s memory: %.0f MiB\n", device.str().c_str(),
                static_cast<double>(tapeflow::memory_stats(device).peak_bytes) / (1024.0 * 1024.0));
}

}  // namespace samples
