#pragma once
// Shared by the benchmark programs: timing (warm up, then the median of several runs, since
// the machine is shared and noisy), checks against the naive reference (a benchmark of a
// wrong result is worthless, so a mismatch aborts the program), results as key/value lines for
// the peer comparison, and a few facts about the process.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tapeflow::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Median seconds of `reps` runs of fn after `warmup` untimed runs.
template <class F>
double median_seconds(F&& fn, int reps = 7, int warmup = 2) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto start = Clock::now();
    fn();
    t.push_back(seconds_since(start));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Timing {
  double seconds = 0;  // median seconds per call
  int samples = 0;     // timed samples the median is taken over
  int inner = 1;       // calls per sample (short calls are batched so the clock can see them)
};

// Seconds per call of fn: one warm-up call, a second warm-up of a whole sample, then the median
// of samples. Calls shorter than min_sample_s are batched `inner` at a time; the number of
// samples (3 to max_samples) keeps one measurement near budget_s. A call that alone takes
// longer than budget_s is timed once more and not repeated (Timing::samples says so).
template <class F>
Timing measure(F&& fn, double budget_s = 0.3, double min_sample_s = 2e-3, int max_samples = 11) {
  auto start = Clock::now();
  fn();
  const double first = seconds_since(start);
  if (first >= budget_s) {
    start = Clock::now();
    fn();
    return {seconds_since(start), 1, 1};
  }
  const int inner = std::max(1, static_cast<int>(std::ceil(min_sample_s / std::max(first, 1e-9))));
  start = Clock::now();
  for (int i = 0; i < inner; ++i) fn();
  const double sample = seconds_since(start);
  const int samples = std::clamp(static_cast<int>(budget_s / std::max(sample, 1e-9)), 3, max_samples);
  std::vector<double> t;
  for (int s = 0; s < samples; ++s) {
    start = Clock::now();
    for (int i = 0; i < inner; ++i) fn();
    t.push_back(seconds_since(start) / inner);
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], samples, inner};
}

// How many threads of this process other than the caller are running (state R in
// /proc/self/task), or -1 where /proc cannot say. A pool's idle workers that spin (OpenMP's
// after a parallel region, OpenBLAS's after a threaded call) count as running.
inline int other_threads_running() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  const long self = syscall(SYS_gettid);
  int running = 0;
  while (const dirent* e = readdir(dir)) {
    const long tid = std::atol(e->d_name);
    if (tid <= 0 || tid == self) continue;
    std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const std::size_t close = stat.rfind(')');  // "tid (name) S ...": the state follows the name
    if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'R') ++running;
  }
  closedir(dir);
  return running;
}

// Waits until no other thread of this process runs (two polls agree), at most max_s; returns
// the seconds waited. On a machine with few cores a pool that spins after its work takes a core
// from the next measurement: libgomp spins ~10 ms after a parallel region, OpenBLAS's workers
// ~0.1 s after a threaded call (2^28 cycles), so an op timed right after its OpenMP or OpenBLAS
// limit ran at half its threads' speed. The caller busy-waits rather than sleeps: on the
// project's VMs (guest kernel booted with sched_vcpu_pack) a thread that slept wakes next to
// the pool's worker on one vCPU, and the next threaded calls ran 3x slower for tens of ms.
inline double settle(double max_s = 0.5) {
  const auto start = Clock::now();
  auto last_poll = start;
  int quiet = 0;
  while (quiet < 2 && seconds_since(start) < max_s) {
    if (seconds_since(last_poll) < 2e-4) continue;  // spin between polls
    last_poll = Clock::now();
    const int running = other_threads_running();
    if (running < 0) break;
    quiet = running == 0 ? quiet + 1 : 0;
  }
  return seconds_since(start);
}

// Seconds this process's other threads keep running after fn returns (up to max_s): how long
// a pool's idle workers spin before they sleep.
template <class F>
double idle_spin_after(F&& fn, double max_s = 1.0) {
  settle(max_s);
  fn();
  return settle(max_s);
}

// measure() for two functions at once, their samples interleaved (a, b, a, b, ...), so that a
// ratio of the two (an op against its limit) sees the same machine even when other processes
// come and go. Returns {a, b}. With settle_between, before each sample the program waits until
// the other side's idle threads have stopped spinning (settle()), then makes one untimed call,
// so that each side is timed with its own threads awake and the other's asleep.
template <class A, class B>
std::pair<Timing, Timing> measure_pair(A&& fa, B&& fb, double budget_s = 0.5, double min_sample_s = 2e-3,
                                       int max_samples = 11, bool settle_between = false) {
  auto calibrate = [&](auto& fn, double& first) {
    auto start = Clock::now();
    fn();
    first = seconds_since(start);
    return std::max(1, static_cast<int>(std::ceil(min_sample_s / std::max(first, 1e-9))));
  };
  double first_a = 0, first_b = 0;
  const int inner_a = calibrate(fa, first_a), inner_b = calibrate(fb, first_b);
  auto sample = [settle_between](auto& fn, int inner) {
    if (settle_between) {
      settle();
      fn();
    }
    const auto start = Clock::now();
    for (int i = 0; i < inner; ++i) fn();
    return seconds_since(start) / inner;
  };
  const double one = sample(fa, inner_a) * inner_a + sample(fb, inner_b) * inner_b;  // warm-up
  const int samples = std::clamp(static_cast<int>(budget_s / std::max(one, 1e-9)), 3, max_samples);
  std::vector<double> ta, tb;
  for (int s = 0; s < samples; ++s) {
    ta.push_back(sample(fa, inner_a));
    tb.push_back(sample(fb, inner_b));
  }
  std::sort(ta.begin(), ta.end());
  std::sort(tb.begin(), tb.end());
  return {{ta[ta.size() / 2], samples, inner_a}, {tb[tb.size() / 2], samples, inner_b}};
}

// Zeroes the process's peak resident set size (VmHWM), so that it measures what follows.
inline void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

// A result that does not match the reference: the program reports it and exits non-zero.
struct Mismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Element-wise |got - ref| <= atol + rtol * |ref| (rtol = atol = 0: bit-exact), NaNs equal.
template <class T>
void check_close(const std::string& what, const T* got, const T* ref, std::int64_t n, double rtol = 0,
                 double atol = 0, const char* reference = "the naive reference") {
  for (std::int64_t i = 0; i < n; ++i) {
    const double g = got[i], r = ref[i];
    if (std::isnan(g) && std::isnan(r)) continue;
    if (!(std::abs(g - r) <= atol + rtol * std::abs(r)))
      throw Mismatch(fmt::format("{}: result differs from {} at element {} of {}: {} vs {} (rtol {}, atol {})",
                                 what, reference, i, n, g, r, rtol, atol));
  }
}

// Key/value lines (key, value, unit; tab-separated) appended to a file: the input of the peer
// comparison (benchmarks/peers/compare.py) and of the chart. Keys are shared with the peers.
class Results {
 public:
  explicit Results(std::string path = {}) : path_(std::move(path)) {}
  void add(const std::string& key, double value, const std::string& unit) const {
    if (path_.empty()) return;
    std::ofstream f(path_, std::ios::app);
    f << key << '\t' << fmt::format("{:.6g}", value) << '\t' << unit << '\n';
  }

 private:
  std::string path_;
};

// "--tsv FILE" from the command line, or "" (results are then only printed).
inline std::string tsv_arg(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--tsv") return argv[i + 1];
  return {};
}
inline bool has_flag(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i < argc; ++i)
    if (argv[i] == flag) return true;
  return false;
}

// A /proc/self/status field in kB ("VmHWM": peak resident set size), or -1.
inline double proc_status_kb(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::atof(line.c_str() + field.size() + 1);
  return -1;
}

// 1.5 us, 250 us, 12.3 ms, 1.20 s
inline std::string human_seconds(double s) {
  if (s < 1e-3) return fmt::format("{:.3g} us", s * 1e6);
  if (s < 1) return fmt::format("{:.3g} ms", s * 1e3);
  return fmt::format("{:.3g} s", s);
}

}  // namespace tapeflow::bench
