// kernels/cuda against the naive kernels (STYLE.md 9), on device buffers: every op row of
// every element-wise kind and every dtype the kernels are instantiated for, over contiguous,
// misaligned, transposed, padded, reversed (negative strides) and broadcast (stride 0)
// layouts, outputs compared over their whole buffer (gaps included, so a kernel writing
// outside its view fails); reductions, arg-reductions, argsort, softmax, matmul (cuBLAS and the
// integer kernel), gather / scatter_add, random numbers, copies and the caching allocator.
// Without a usable device (like this build machine) every kernel case warns "skipped: <why>"
// and passes; the device-free cases check the queries and the CudaError messages.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "tapeflow/kernels/cuda.hpp"
#include "tapeflow/kernels/naive.hpp"
#include "tapeflow/op_id.hpp"

namespace {

namespace cuda = tapeflow::kernels::cuda;
namespace naive = tapeflow::kernels::naive;
using tapeflow::OpId;
using tapeflow::OpKind;
using tapeflow::kernels::Layout;
using i64 = std::int64_t;
using Shape = std::vector<i64>;

bool have_device() {
  if (cuda::device_count() == 0) {
    WARN("skipped: " << cuda::device_status());
    return false;
  }
  cuda::set_device(0);
  return true;
}

template <class T>
constexpr bool kFloat = std::is_floating_point_v<T>;

template <class... Ts, class F>
void for_each_type(F&& f) {
  (f(Ts{}), ...);
}

// The ops of one kind (or two), in ops.def order.
std::vector<OpId> ops_of(OpKind k1, OpKind k2) {
  std::vector<OpId> ops;
  for (std::size_t i = 0; i < tapeflow::kNumOps; ++i) {
    if (tapeflow::kOpInfo[i].kind == k1 || tapeflow::kOpInfo[i].kind == k2) ops.push_back(static_cast<OpId>(i));
  }
  return ops;
}

// ---------------------------------------------------------------- host and device buffers

// An owning array of n values (std::vector<bool> has no bool*).
template <class T>
class Array {
 public:
  explicit Array(std::size_t n = 0) : p_(new T[std::max<std::size_t>(n, 1)]()), n_(n) {}
  Array(const Array& o) : Array(o.n_) { std::copy(o.p_.get(), o.p_.get() + o.n_, p_.get()); }
  Array& operator=(const Array& o) {
    Array t(o);
    std::swap(p_, t.p_);
    std::swap(n_, t.n_);
    return *this;
  }
  T* data() { return p_.get(); }
  const T* data() const { return p_.get(); }
  std::size_t size() const { return n_; }
  T& operator[](std::size_t i) { return p_[i]; }
  const T& operator[](std::size_t i) const { return p_[i]; }

 private:
  std::unique_ptr<T[]> p_;
  std::size_t n_;
};

// n values of T on device 0, from its caching allocator.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t n) : n_(n) { ptr_ = static_cast<T*>(cuda::allocate(0, n * sizeof(T), capacity_)); }
  explicit DeviceArray(const Array<T>& host) : DeviceArray(host.size()) {
    cuda::copy_to_device(ptr_, host.data(), n_ * sizeof(T));
  }
  ~DeviceArray() { cuda::deallocate(0, ptr_, capacity_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* data() { return ptr_; }
  Array<T> download() const {
    Array<T> out(n_);
    cuda::copy_to_host(out.data(), ptr_, n_ * sizeof(T));
    return out;
  }

 private:
  std::size_t n_;
  std::size_t capacity_ = 0;
  T* ptr_ = nullptr;
};

// ---------------------------------------------------------------- views

// How a view's strides are made from its shape.
enum class Kind {
  Contiguous,
  Offset,      // contiguous, starting one element into its buffer (misaligned for vector loads)
  Transposed,  // axes stored in reverse order
  SwapLast,    // the last two axes stored swapped (a transposed matrix)
  Padded,      // a gap after every element of the innermost axis (a slice with step 2)
  Reversed,    // every axis walked backwards (negative strides)
  Broadcast,   // stride 0 on even axes
  Scalar,      // stride 0 everywhere
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Contiguous: return "contiguous";
    case Kind::Offset: return "offset";
    case Kind::Transposed: return "transposed";
    case Kind::SwapLast: return "swap-last";
    case Kind::Padded: return "padded";
    case Kind::Reversed: return "reversed";
    case Kind::Broadcast: return "broadcast";
    case Kind::Scalar: return "scalar";
  }
  return "?";
}

std::string describe(const Layout& l) {
  std::ostringstream s;
  s << "[";
  for (int d = 0; d < l.rank; ++d) s << (d ? ", " : "") << l.shape[d];
  s << "] strides [";
  for (int d = 0; d < l.rank; ++d) s << (d ? ", " : "") << l.strides[d];
  s << "]";
  return s.str();
}

Layout contiguous(const Shape& shape) {
  return tapeflow::kernels::contiguous_layout(static_cast<int>(shape.size()), shape.data());
}

i64 numel(const Shape& shape) {
  i64 n = 1;
  for (i64 s : shape) n *= s;
  return n;
}

// Value ranges of the random inputs. Ties: floats on a grid of halves (many equal values).
struct Range {
  double lo = -3, hi = 3;
  bool ties = false;
};

template <class T>
T draw(std::mt19937_64& g, Range r) {
  if constexpr (std::is_same_v<T, bool>) {
    (void)r;
    return (g() & 1) != 0;
  } else if constexpr (kFloat<T>) {
    const double x = std::uniform_real_distribution<double>(r.lo, r.hi)(g);
    return static_cast<T>(r.ties ? std::round(x * 2) / 2 : x);
  } else {
    return static_cast<T>(std::uniform_int_distribution<i64>(static_cast<i64>(r.lo), static_cast<i64>(r.hi))(g));
  }
}

// A view over its own buffer of random values; ptr() is the first element, as kernels expect.
template <class T>
struct HostView {
  Array<T> buf;
  Layout l;
  i64 first = 0;
  T* ptr() { return buf.data() + first; }
  const T* ptr() const { return buf.data() + first; }
};

template <class T>
HostView<T> make_view(const Shape& shape, Kind kind, std::mt19937_64& g, Range range = {}) {
  const int rank = static_cast<int>(shape.size());
  HostView<T> v;
  v.l.rank = rank;
  // physical order of the axes, outermost first
  std::vector<int> order(shape.size());
  for (int d = 0; d < rank; ++d) order[static_cast<std::size_t>(d)] = d;
  if (kind == Kind::Transposed) std::reverse(order.begin(), order.end());
  if (kind == Kind::SwapLast && rank >= 2) std::swap(order[order.size() - 1], order[order.size() - 2]);
  i64 span = 1;  // elements spanned by the axes placed so far, innermost first
  for (int j = rank - 1; j >= 0; --j) {
    const int d = order[static_cast<std::size_t>(j)];
    const i64 n = shape[static_cast<std::size_t>(d)];
    const bool zero = kind == Kind::Scalar || (kind == Kind::Broadcast && d % 2 == 0);
    const i64 step = kind == Kind::Padded && j == rank - 1 ? 2 : 1;
    v.l.shape[d] = n;
    v.l.strides[d] = zero ? 0 : span * step;
    if (!zero) span *= n * step;
  }
  if (kind == Kind::Offset) v.first = 1;
  if (kind == Kind::Reversed && numel(shape) > 0) {
    for (int d = 0; d < rank; ++d) {
      v.first += (v.l.shape[d] - 1) * v.l.strides[d];
      v.l.strides[d] = -v.l.strides[d];
    }
  }
  v.buf = Array<T>(static_cast<std::size_t>(std::max<i64>(span, 1) + (kind == Kind::Offset ? 1 : 0)));
  for (std::size_t i = 0; i < v.buf.size(); ++i) v.buf[i] = draw<T>(g, range);
  return v;
}

// The same view on the device (the whole buffer, gaps included).
template <class T>
struct DeviceView {
  explicit DeviceView(const HostView<T>& h) : buf(h.buf), l(h.l), first(h.first) {}
  DeviceArray<T> buf;
  Layout l;
  i64 first;
  T* ptr() { return buf.data() + first; }
};

// ---------------------------------------------------------------- comparisons

struct Tol {
  double rtol = 0, atol = 0;
};
template <class T>
Tol tol() {
  if constexpr (std::is_same_v<T, float>) return {1e-5, 1e-6};
  else if constexpr (std::is_same_v<T, double>) return {1e-12, 1e-14};
  else return {};
}

template <class T>
bool close(T got, T want, Tol t) {
  if constexpr (kFloat<T>) {
    if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want);
    if (got == want) return true;  // infinities
    return std::fabs(double(got) - double(want)) <= t.atol + t.rtol * std::fabs(double(want));
  } else if constexpr (std::is_same_v<T, bool>) {
    return got == want;
  } else {
    const double d = static_cast<double>(got) - static_cast<double>(want);
    return got == want || std::fabs(d) <= t.atol;
  }
}

// Every element equal (within t for floats); one assertion per buffer.
template <class T>
void check_same(const Array<T>& got, const Array<T>& want, Tol t = tol<T>()) {
  REQUIRE(got.size() == want.size());
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!close(got[i], want[i], t) && bad++ == 0) first = i;
  }
  INFO(bad << " of " << got.size() << " differ; first at " << first << ": got "
            << (bad ? static_cast<double>(got[first]) : 0.0) << ", want "
            << (bad ? static_cast<double>(want[first]) : 0.0));
  CHECK(bad == 0);
}

// NaN at every `step`-th element of the buffer (floats only).
template <class T>
void inject_nan(HostView<T>& v, std::size_t step) {
  if constexpr (kFloat<T>) {
    for (std::size_t i = step / 2; i < v.buf.size(); i += step) v.buf[i] = std::numeric_limits<T>::quiet_NaN();
  }
}

template <class T>
Array<T> filled(std::size_t n, T value) {
  Array<T> a(n);
  std::fill(a.data(), a.data() + n, value);
  return a;
}

// ---------------------------------------------------------------- element-wise cases

// (output, a, b) layouts of one element-wise case.
struct Combo {
  Kind out, a, b;
};
constexpr Combo kCombos[] = {
    {Kind::Contiguous, Kind::Contiguous, Kind::Contiguous},  // the vector path
    {Kind::Contiguous, Kind::Offset, Kind::Contiguous},      // misaligned: the general path
    {Kind::Contiguous, Kind::Contiguous, Kind::Scalar},
    {Kind::Contiguous, Kind::Broadcast, Kind::Contiguous},
    {Kind::Padded, Kind::Transposed, Kind::Reversed},
    {Kind::Reversed, Kind::Scalar, Kind::Broadcast},
    {Kind::Transposed, Kind::Padded, Kind::Offset},
};
// 65539: vector loads and a tail
const Shape kShapes[] = {{4, 5, 6}, {3, 1, 7, 2}, {}, {2, 0, 3}, {65539}};

// Built with ThreadSanitizer (scripts/race_check.sh) or AddressSanitizer (CI's ASan stage)?
// Those builds look for races and memory errors, which depend on a kernel's launches, loops
// and memory accesses, not on the values; the emulator checks every device access against its
// allocation in every build, and the Release builds (the emulator's, a GPU's) run every case.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
constexpr bool kSanitizedBuild = true;
#else
constexpr bool kSanitizedBuild = false;
#endif
#else
constexpr bool kSanitizedBuild = false;
#endif

// In those builds the int32 and int64 instantiations of the value sweeps (unary, binary,
// compare, reduce, arg_reduce) return at once: their kernels are the templates that float and
// double instantiate, with elements of the same 4 and 8 bytes, so the same launches, vector
// widths and tails; every race or bad access they could show, float's and double's show.
template <class T>
constexpr bool skipped_when_sanitized() {
  return kSanitizedBuild && std::is_integral_v<T> && !std::is_same_v<T, bool>;
}

// Runs `body(shape, combo, g)` for every shape and combo, with the case in INFO; without
// `big`, not for the 65539-element shape.
template <class F>
void for_each_case(std::uint64_t seed, F&& body, bool big = true) {
  std::mt19937_64 g(seed);
  for (const Shape& shape : kShapes) {
    if (!big && contiguous(shape).size() > 65536) continue;
    for (const Combo& c : kCombos) {
      INFO("shape " << describe(contiguous(shape)) << ", out " << kind_name(c.out) << ", a " << kind_name(c.a)
                    << ", b " << kind_name(c.b));
      body(shape, c, g);
    }
  }
}

template <class T>
const char* dtype_name() {
  if constexpr (std::is_same_v<T, bool>) return "bool";
  else if constexpr (std::is_same_v<T, float>) return "float32";
  else if constexpr (std::is_same_v<T, double>) return "float64";
  else if constexpr (std::is_same_v<T, std::int32_t>) return "int32";
  else return "int64";
}

// Runs body(op, shape, combo, g) for every op of the kinds and every case.
template <class F>
void for_each_op_case(OpKind k1, OpKind k2, std::size_t min_ops, std::uint64_t seed, F&& body) {
  const auto ops = ops_of(k1, k2);
  REQUIRE(ops.size() >= min_ops);  // ops.def rows are not lost
  for (OpId op : ops) {
    INFO("op " << tapeflow::op_name(op));
    // Under the sanitizers (kSanitizedBuild) the 65539-element shape (grid-stride loops that run
    // several times, vector loads and a tail) runs for the first op of the kinds only: a race
    // or a bad access depends on a kernel's launch, loop and memory structure, which every op
    // of a kind shares (one template over the functor), not on the functor; every op at that
    // size was most of the race check's time. The Release builds run every op at every size.
    const bool big = !kSanitizedBuild || op == ops.front();
    for_each_case(
        seed, [&](const Shape& shape, const Combo& c, std::mt19937_64& g) { body(op, shape, c, g); }, big);
  }
}

bool float_only(OpId op) {
  return op == OpId::Exp || op == OpId::Log || op == OpId::Log1p || op == OpId::Expm1 || op == OpId::Erf ||
         op == OpId::Sin || op == OpId::Cos || op == OpId::Tan || op == OpId::Asin || op == OpId::Acos ||
         op == OpId::Atan || op == OpId::Sinh || op == OpId::Cosh || op == OpId::Asinh || op == OpId::Acosh ||
         op == OpId::Atanh || op == OpId::Sqrt || op == OpId::Tanh || op == OpId::Sigmoid || op == OpId::PowScalar ||
         op == OpId::Pow || op == OpId::Atan2;
}

// Inputs of a case: integers of float-only ops stay positive (the result converts back to
// the integer without undefined behaviour), floats cover negatives (NaN from log / sqrt / pow
// on both sides). asin, acos and atanh take (-1, 1) (integers: -1, 0, 1 for asin and acos, 0
// for atanh, whose +-1 is infinite), acosh values from 1.
template <class T>
Range input_range(OpId op) {
  if (op == OpId::Asin || op == OpId::Acos) return kFloat<T> ? Range{-0.99, 0.99} : Range{-1, 1};
  if (op == OpId::Atanh) return kFloat<T> ? Range{-0.99, 0.99} : Range{0, 0};
  if (op == OpId::Acosh) return {1, 5};
  if (!kFloat<T> && float_only(op)) return {1, 5};
  return kFloat<T> ? Range{-3, 3} : Range{-9, 9};
}
// Integers through float-only ops go through double math, whose last bit differs between
// the device's libm and the host's: a truncated result may differ by one.
template <class T>
Tol op_tol(OpId op) {
  if (!kFloat<T> && float_only(op)) return {0, 1};
  return tol<T>();
}

}  // namespace

TEST_CASE("cuda: device queries never throw and agree") {
  const int count = cuda::device_count();
  const std::string status = cuda::device_status();
  WARN(status);
  CHECK(count >= 0);
  CHECK(cuda::device_count() == count);
  if (count == 0) {
    CHECK(status.rfind("no CUDA device: ", 0) == 0);
  } else {
    CHECK(status.rfind("CUDA device 0 of " + std::to_string(count) + ": ", 0) == 0);
  }
}

TEST_CASE("cuda: calls on a missing device throw CudaError naming the call and file:line") {
  const int count = cuda::device_count();  // one past the last device
  const auto expect_error = [](const std::string& call, auto&& f) {
    try {
      f();
      FAIL(call << " did not throw");
    } catch (const cuda::CudaError& e) {
      const std::string what = e.what();
      INFO(what);
      CHECK(what.find(call) != std::string::npos);
      CHECK(what.find("kernels/cuda/src/device.cpp:") != std::string::npos);
      CHECK(e.code() != 0);
    }
  };
  std::size_t capacity = 0;
  expect_error("set_device", [&] { cuda::set_device(count); });
  expect_error("set_device", [&] { cuda::set_device(-1); });
  expect_error("allocate", [&] { cuda::allocate(count, 16, capacity); });
  expect_error("cache_stats", [&] { cuda::cache_stats(count); });
  expect_error("reset_peak", [&] { cuda::reset_peak(count); });
  expect_error("empty_cache", [&] { cuda::empty_cache(count); });
  if (count == 0) {
    expect_error("cudaGetDevice", [] { cuda::current_device(); });
    expect_error("cudaGetDevice", [] { cuda::synchronize(); });
  }
  cuda::deallocate(count, nullptr, 0);  // never throws
}

TEST_CASE("cuda: TF32 is off by default and follows set_allow_tf32") {
  CHECK_FALSE(cuda::allow_tf32());
  cuda::set_allow_tf32(true);
  CHECK(cuda::allow_tf32());
  cuda::set_allow_tf32(false);
  CHECK_FALSE(cuda::allow_tf32());
}

TEST_CASE("cuda: devices, streams, copies and synchronize") {
  if (!have_device()) return;
  CHECK(cuda::current_device() == 0);
  void* s = cuda::stream();
  CHECK(s != nullptr);
  CHECK(cuda::stream() == s);
  std::vector<double> host(1000);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = 0.5 * static_cast<double>(i) - 7;
  std::size_t cap_a = 0, cap_b = 0;
  void* a = cuda::allocate(0, host.size() * sizeof(double), cap_a);
  void* b = cuda::allocate(0, host.size() * sizeof(double), cap_b);
  cuda::copy_to_device(a, host.data(), host.size() * sizeof(double));
  cuda::copy_device_to_device(b, 0, a, 0, host.size() * sizeof(double));
  std::vector<double> back(host.size(), 0.0);
  cuda::copy_to_host(back.data(), b, back.size() * sizeof(double));
  CHECK(back == host);
  cuda::copy_to_device(a, nullptr, 0);  // nothing to do
  cuda::copy_to_host(nullptr, a, 0);
  CHECK_NOTHROW(cuda::synchronize());
  if (cuda::device_count() > 1) {  // across devices: queued on device 1's stream
    std::size_t cap_c = 0;
    void* c = cuda::allocate(1, host.size() * sizeof(double), cap_c);
    cuda::copy_device_to_device(c, 1, a, 0, host.size() * sizeof(double));
    CHECK(cuda::current_device() == 0);
    cuda::set_device(1);
    std::vector<double> other(host.size(), 0.0);
    cuda::copy_to_host(other.data(), c, other.size() * sizeof(double));
    CHECK(other == host);
    cuda::deallocate(1, c, cap_c);
    cuda::set_device(0);
  }
  cuda::deallocate(0, a, cap_a);
  cuda::deallocate(0, b, cap_b);
}

TEST_CASE("cuda: the caching allocator reuses buffers and counts bytes") {
  if (!have_device()) return;
  cuda::empty_cache(0);
  const cuda::CacheStats s0 = cuda::cache_stats(0);
  CHECK(s0.cached_bytes == 0);
  std::size_t cap = 0;
  void* p = cuda::allocate(0, 1000, cap);
  CHECK(p != nullptr);
  CHECK(cap == 1024);  // 512-byte classes below 1 MiB
  cuda::CacheStats s = cuda::cache_stats(0);
  CHECK(s.current_bytes == s0.current_bytes + cap);
  CHECK(s.live_buffers == s0.live_buffers + 1);
  CHECK(s.allocations == s0.allocations + 1);
  CHECK(s.peak_bytes >= s.current_bytes);
  cuda::deallocate(0, p, cap);
  s = cuda::cache_stats(0);
  CHECK(s.current_bytes == s0.current_bytes);
  CHECK(s.cached_bytes == cap);
  std::size_t cap2 = 0;
  void* q = cuda::allocate(0, 900, cap2);  // the same class: the cached buffer again
  CHECK(q == p);
  CHECK(cap2 == cap);
  CHECK(cuda::cache_stats(0).cache_hits == s0.cache_hits + 1);
  CHECK(cuda::cache_stats(0).cached_bytes == 0);
  std::size_t cap0 = 0;
  void* z = cuda::allocate(0, 0, cap0);  // 0 bytes: the smallest class, never nullptr
  CHECK(z != nullptr);
  CHECK(cap0 == 512);
  std::size_t cap_big = 0;
  const std::size_t big = (std::size_t(3) << 20) + 1;
  void* r = cuda::allocate(0, big, cap_big);
  CHECK(cap_big >= big);
  CHECK(cap_big <= big + big / 4);  // four classes per power of two
  CHECK(cuda::cache_stats(0).peak_bytes >= s0.current_bytes + cap + cap0 + cap_big);
  cuda::deallocate(0, r, cap_big);
  cuda::reset_peak(0);
  CHECK(cuda::cache_stats(0).peak_bytes == cuda::cache_stats(0).current_bytes);
  cuda::deallocate(0, q, cap2);
  cuda::deallocate(0, z, cap0);
  CHECK(cuda::cache_stats(0).cached_bytes == cap + cap0 + cap_big);
  cuda::empty_cache(0);
  s = cuda::cache_stats(0);
  CHECK(s.cached_bytes == 0);
  CHECK(s.current_bytes == s0.current_bytes);
  CHECK(s.live_buffers == s0.live_buffers);
}

TEST_CASE("cuda: the allocator is thread-safe and reports out of memory") {
  if (!have_device()) return;
  const cuda::CacheStats s0 = cuda::cache_stats(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      std::mt19937_64 g(static_cast<std::uint64_t>(t) + 1);
      std::vector<std::pair<void*, std::size_t>> held;
      for (int i = 0; i < 300; ++i) {
        std::size_t cap = 0;
        void* p = cuda::allocate(0, std::uniform_int_distribution<std::size_t>(1, 1 << 16)(g), cap);
        held.emplace_back(p, cap);
        if (held.size() > 8) {
          cuda::deallocate(0, held.front().first, held.front().second);
          held.erase(held.begin());
        }
      }
      for (auto& [p, cap] : held) cuda::deallocate(0, p, cap);
    });
  }
  for (auto& th : threads) th.join();
  const cuda::CacheStats s1 = cuda::cache_stats(0);
  CHECK(s1.live_buffers == s0.live_buffers);
  CHECK(s1.current_bytes == s0.current_bytes);
  CHECK(s1.allocations == s0.allocations + 4 * 300);
  // far more than any device: the cache is emptied, cudaMalloc fails again, CudaError
  std::size_t cap = 0;
  try {
    cuda::allocate(0, std::size_t(1) << 50, cap);
    FAIL("a 1 PiB allocation succeeded");
  } catch (const cuda::CudaError& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.rfind("cudaMalloc of ", 0) == 0);  // the front end adds the op: "allocate: cudaMalloc ..."
    CHECK(what.find("cudaErrorMemoryAllocation") != std::string::npos);
    CHECK(what.find("kernels/cuda/src/device.cpp:") != std::string::npos);
  }
  CHECK(cuda::cache_stats(0).cached_bytes == 0);
  void* p = cuda::allocate(0, 64, cap);  // the error is not sticky
  CHECK(p != nullptr);
  cuda::deallocate(0, p, cap);
  CHECK_NOTHROW(cuda::synchronize());
}

TEMPLATE_TEST_CASE("cuda: unary matches naive for every Unary row", "[cuda][unary]", float, double, std::int32_t,
                   std::int64_t) {
  using T = TestType;
  if (!have_device()) return;
  if (skipped_when_sanitized<T>()) return;
  for_each_op_case(OpKind::Unary, OpKind::Unary, 13, 11, [](OpId op, const Shape& shape, const Combo& c, auto& g) {
    const double p0 = op == OpId::PowScalar ? 2.5 : -1.0, p1 = 1.5;  // pow's exponent; clip's bounds
    const HostView<T> in = make_view<T>(shape, c.a, g, input_range<T>(op));
    HostView<T> want = make_view<T>(shape, c.out, g);
    DeviceView<T> d_in(in), d_out(want);
    naive::unary<T>(op, want.ptr(), want.l, in.ptr(), in.l, p0, p1);
    cuda::unary<T>(op, d_out.ptr(), d_out.l, d_in.ptr(), d_in.l, p0, p1);
    check_same(d_out.buf.download(), want.buf, op_tol<T>(op));
  });
}

TEST_CASE("cuda: unary special values match naive") {
  if (!have_device()) return;
  for_each_type<float, double>([](auto tag) {
    using T = decltype(tag);
    const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    const std::vector<T> values = {T(0),  T(-0.0), inf,   -inf,    nan,   T(1),   T(-1),  T(100), T(-100), T(1e-30),
                                   T(88), T(-88),  T(710), T(-745), T(20), T(-20), T(0.5), T(3),   T(-3)};
    Array<T> x(values.size());
    std::copy(values.begin(), values.end(), x.data());
    const Layout l = contiguous({static_cast<i64>(values.size())});
    DeviceArray<T> dx(x), dy(values.size());
    for (OpId op : ops_of(OpKind::Unary, OpKind::Unary)) {
      INFO("op " << tapeflow::op_name(op));
      Array<T> want(values.size());
      naive::unary<T>(op, want.data(), l, x.data(), l, 2.0, 3.0);
      cuda::unary<T>(op, dy.data(), l, dx.data(), l, 2.0, 3.0);
      check_same(dy.download(), want);
    }
  });
}

TEMPLATE_TEST_CASE("cuda: binary matches naive for every Binary row", "[cuda][binary]", float, double, std::int32_t,
                   std::int64_t) {
  using T = TestType;
  if (!have_device()) return;
  if (skipped_when_sanitized<T>()) return;
  for_each_op_case(OpKind::Binary, OpKind::Binary, 7, 12, [](OpId op, const Shape& shape, const Combo& c, auto& g) {
    const HostView<T> a = make_view<T>(shape, c.a, g, input_range<T>(op));
    const HostView<T> b = make_view<T>(shape, c.b, g, input_range<T>(op));  // integer div: zeros too
    HostView<T> want = make_view<T>(shape, c.out, g);
    DeviceView<T> da(a), db(b), d_out(want);
    naive::binary<T>(op, want.ptr(), want.l, a.ptr(), a.l, b.ptr(), b.l);
    cuda::binary<T>(op, d_out.ptr(), d_out.l, da.ptr(), da.l, db.ptr(), db.l);
    check_same(d_out.buf.download(), want.buf, op_tol<T>(op));
  });
}

TEST_CASE("cuda: integer div, floor_divide and mod by 0 and -1 (INT_MIN / -1) match naive", "[cuda][binary]") {
  if (!have_device()) return;
  for_each_type<std::int32_t, std::int64_t>([](auto tag) {
    using T = decltype(tag);
    const T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
    const std::vector<T> av = {lo, lo, hi, T(-7), T(7), T(-7), T(0), lo, T(5)};
    const std::vector<T> bv = {T(-1), T(0), T(-1), T(2), T(-2), T(0), T(-1), T(2), T(-1)};
    Array<T> a(av.size()), b(bv.size());
    std::copy(av.begin(), av.end(), a.data());
    std::copy(bv.begin(), bv.end(), b.data());
    const Layout l = contiguous({static_cast<i64>(av.size())});
    DeviceArray<T> da(a), db(b), dy(av.size());
    for (OpId op : {OpId::Div, OpId::FloorDiv, OpId::FloorMod}) {
      INFO("op " << tapeflow::op_name(op));
      Array<T> want(av.size());
      naive::binary<T>(op, want.data(), l, a.data(), l, b.data(), l);
      cuda::binary<T>(op, dy.data(), l, da.data(), l, db.data(), l);
      check_same(dy.download(), want);
      CHECK(want.data()[0] == (op == OpId::FloorMod ? T(0) : lo));  // INT_MIN / -1 wraps
    }
  });
}

TEMPLATE_TEST_CASE("cuda: compare and logic match naive for every row", "[cuda][compare]", bool, float, double,
                   std::int32_t, std::int64_t) {
  using T = TestType;
  if (!have_device()) return;
  if (skipped_when_sanitized<T>()) return;
  for_each_op_case(OpKind::Compare, OpKind::Logical, 9, 13, [](OpId op, const Shape& shape, const Combo& c, auto& g) {
    const Range ties{-2, 2, true};  // many equal pairs
    const HostView<T> a = make_view<T>(shape, c.a, g, ties);
    const HostView<T> b = op == OpId::LogicalNot ? a : make_view<T>(shape, c.b, g, ties);
    HostView<bool> want = make_view<bool>(shape, c.out, g);
    DeviceView<T> da(a), db(b);
    DeviceView<bool> d_out(want);
    naive::compare<T>(op, want.ptr(), want.l, a.ptr(), a.l, b.ptr(), b.l);
    cuda::compare<T>(op, d_out.ptr(), d_out.l, da.ptr(), da.l, db.ptr(), db.l);
    check_same(d_out.buf.download(), want.buf);
  });
}

// addc, the optimizers' fused update, is built without fused multiply-adds: the same bits.
TEMPLATE_TEST_CASE("cuda: addc matches naive bit for bit (multiply and divide, every layout)", "[cuda][addc]", float,
                   double) {
  using T = TestType;
  if (!have_device()) return;
  for (bool divide : {false, true}) {
    INFO((divide ? "addcdiv" : "addcmul"));
    for_each_case(divide ? 17 : 16, [&](const Shape& shape, const Combo& c, std::mt19937_64& g) {
      const HostView<T> a = make_view<T>(shape, c.a, g);
      const HostView<T> b = make_view<T>(shape, c.b, g, Range{0.5, 2.0});  // no division by zero
      HostView<T> want = make_view<T>(shape, c.out, g);
      DeviceView<T> da(a), db(b), d_out(want);
      const T value = draw<T>(g, {});
      naive::addc<T>(divide, want.ptr(), want.l, a.ptr(), a.l, b.ptr(), b.l, value);
      cuda::addc<T>(divide, d_out.ptr(), d_out.l, da.ptr(), da.l, db.ptr(), db.l, value);
      check_same(d_out.buf.download(), want.buf);
    });
  }
}

TEMPLATE_TEST_CASE("cuda: where, fill and copy from every dtype match naive", "[cuda][copy]", bool, float, double,
                   std::int32_t, std::int64_t) {
  using T = TestType;
  if (!have_device()) return;
  SECTION("where") {
    for_each_case(14, [](const Shape& shape, const Combo& c, std::mt19937_64& g) {
      const HostView<bool> cond = make_view<bool>(shape, c.b, g);
      const HostView<T> a = make_view<T>(shape, c.a, g), b = make_view<T>(shape, c.out, g);
      HostView<T> want = make_view<T>(shape, c.out, g);
      DeviceView<bool> d_cond(cond);
      DeviceView<T> da(a), db(b), d_out(want);
      naive::where<T>(want.ptr(), want.l, cond.ptr(), cond.l, a.ptr(), a.l, b.ptr(), b.l);
      cuda::where<T>(d_out.ptr(), d_out.l, d_cond.ptr(), d_cond.l, da.ptr(), da.l, db.ptr(), db.l);
      check_same(d_out.buf.download(), want.buf);
    });
  }
  SECTION("fill") {
    for_each_case(15, [](const Shape& shape, const Combo& c, std::mt19937_64& g) {
      for (const T value : {T(0), T(1), draw<T>(g, {})}) {  // 0 takes cudaMemsetAsync where contiguous
        HostView<T> want = make_view<T>(shape, c.out, g);
        DeviceView<T> d_out(want);
        naive::fill<T>(want.ptr(), want.l, value);
        cuda::fill<T>(d_out.ptr(), d_out.l, value);
        check_same(d_out.buf.download(), want.buf);
      }
    });
    if constexpr (kFloat<T>) {  // -0.0 has a bit set: never a memset of zeros
      DeviceArray<T> d(100);
      cuda::fill<T>(d.data(), contiguous({100}), T(-0.0));
      const Array<T> got = d.download();
      CHECK(std::all_of(got.data(), got.data() + 100, [](T x) { return x == 0 && std::signbit(x); }));
    }
  }
  SECTION("copy into every dtype") {
    for_each_type<bool, float, double, std::int32_t, std::int64_t>([](auto out_tag) {
      using TO = decltype(out_tag);
      INFO("copy " << dtype_name<T>() << " -> " << dtype_name<TO>());
      // under the sanitizers the big shape for T -> T only (see for_each_op_case)
      const bool big = !kSanitizedBuild || std::is_same_v<T, TO>;
      for_each_case(16, [](const Shape& shape, const Combo& c, std::mt19937_64& g) {
        // halves in [-3, 3]: zeros (false) among them, truncation toward zero for integers
        const HostView<T> in = make_view<T>(shape, c.a, g, Range{-3, 3, true});
        HostView<TO> want = make_view<TO>(shape, c.out, g);
        DeviceView<T> d_in(in);
        DeviceView<TO> d_out(want);
        naive::copy<TO, T>(want.ptr(), want.l, in.ptr(), in.l);
        cuda::copy<TO, T>(d_out.ptr(), d_out.l, d_in.ptr(), d_in.l);
        check_same(d_out.buf.download(), want.buf);
      }, big);
    });
  }
}

namespace {

// The out_l of reduce: the input's shape, stride 0 on reduced axes, contiguous over the rest.
Layout reduce_out_layout(const Shape& shape, const std::vector<int>& axes) {
  Layout l;
  l.rank = static_cast<int>(shape.size());
  i64 s = 1;
  for (int d = l.rank - 1; d >= 0; --d) {
    l.shape[d] = shape[static_cast<std::size_t>(d)];
    const bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
    l.strides[d] = reduced ? 0 : s;
    if (!reduced) s *= l.shape[d];
  }
  return l;
}

struct ReduceCase {
  Shape shape;
  std::vector<int> axes;
  Kind kind;
};
// Each path: a thread, a warp, a block (split or not) or a column per output; kept axes
// between reduced ones; size-0 reduced and kept axes; broadcast and reversed inputs.
const ReduceCase kReduceCases[] = {
    {{4, 5, 6}, {0}, Kind::Contiguous},      {{4, 5, 6}, {1}, Kind::Transposed},
    {{4, 5, 6}, {0, 2}, Kind::Reversed},     {{4, 5, 6}, {0, 1, 2}, Kind::Padded},
    {{4, 5, 6}, {}, Kind::Contiguous},       {{37, 5}, {1}, Kind::Contiguous},
    {{37, 50}, {1}, Kind::Contiguous},       {{7, 3000}, {1}, Kind::Contiguous},
    {{2, 100000}, {1}, Kind::Contiguous},    {{1000, 70}, {0}, Kind::Contiguous},
    {{5000, 300}, {0}, Kind::Contiguous},    {{3000, 40}, {0}, Kind::Transposed},
    {{64, 33, 3}, {0, 2}, Kind::Contiguous}, {{6, 40}, {0}, Kind::Broadcast},
    {{300, 2, 70}, {0}, Kind::Reversed},     {{200000}, {0}, Kind::Offset},
    {{4, 0, 3}, {1}, Kind::Contiguous},
    {{0, 5}, {1}, Kind::Contiguous},         {{3, 0}, {0}, Kind::Contiguous},
    {{}, {}, Kind::Contiguous},
};

template <class T>
void reduce_cases(bool with_nan) {
  std::mt19937_64 g(21);
  for (const ReduceCase& rc : kReduceCases) {
    HostView<T> in = make_view<T>(rc.shape, rc.kind, g);
    if (with_nan) inject_nan(in, 97);
    const Layout out_l = reduce_out_layout(rc.shape, rc.axes);
    i64 outputs = 1, len = 1;
    for (int d = 0; d < out_l.rank; ++d) (out_l.strides[d] == 0 ? len : outputs) *= out_l.shape[d];
    DeviceView<T> d_in(in);
    // float products over a third of the values ([-1, 1]): no overflow, whose onset moves with
    // the order of the factors (long products underflow to 0, within atol)
    HostView<T> in_prod = in;
    if constexpr (kFloat<T>)
      for (std::size_t i = 0; i < in_prod.buf.size(); ++i) in_prod.buf[i] /= 3;
    DeviceView<T> d_in_prod(in_prod);
    // under the sanitizers the big inputs for Sum only: Max, Min and Prod are the same kernel
    const bool big = in.l.size() > 65536;
    for (OpId op : {OpId::Sum, OpId::Max, OpId::Min, OpId::Prod}) {
      if (kSanitizedBuild && big && op != OpId::Sum) continue;
      INFO("op " << tapeflow::op_name(op) << " over " << describe(in.l) << " (" << kind_name(rc.kind) << "), "
                 << rc.axes.size() << " axes, out " << describe(out_l) << (with_nan ? ", with NaN" : ""));
      Array<T> want = filled<T>(static_cast<std::size_t>(outputs), T(7));
      DeviceArray<T> d_out(filled<T>(static_cast<std::size_t>(outputs), T(7)));
      const bool prod = op == OpId::Prod;
      naive::reduce<T>(op, want.data(), out_l, (prod ? in_prod : in).ptr(), in.l);
      cuda::reduce<T>(op, d_out.data(), out_l, (prod ? d_in_prod : d_in).ptr(), d_in.l);
      Tol t = tol<T>();
      if (kFloat<T> && op == OpId::Sum) t.atol += 4e-16 * 3 * static_cast<double>(len);  // summation order
      check_same(d_out.download(), want, t);
    }
  }
}

// A kernel along one axis (arg_reduce, softmax) of a view of `kind` with values in `range`.
struct AxisCase {
  Shape shape;
  int axis;
  Kind kind;
  Range range;
};
// a warp per row up to 1024 elements, a block beyond; ties: the first index wins
const AxisCase kArgCases[] = {
    {{50, 37}, 1, Kind::Contiguous, {-2, 2, true}}, {{50, 37}, 0, Kind::Transposed, {-2, 2, true}},
    {{4, 5000}, 1, Kind::Reversed, {-2, 2, true}},  {{3, 4, 5}, 1, Kind::Padded, {-2, 2, true}},
    {{6, 1}, 1, Kind::Contiguous, {-2, 2, true}},   {{0, 4}, 1, Kind::Contiguous, {-2, 2, true}},
    {{2000}, 0, Kind::Contiguous, {-2, 2, true}},   {{5, 7}, 0, Kind::Broadcast, {-2, 2, true}},
    {{9, 1500}, 1, Kind::Offset, {-2, 2, true}},
};
// argsort ranks rows of up to 64 by counting, and merges runs of 32 in longer ones: rows at
// and just past 64, one pass with a short right run (65, 97), lengths off a power of two,
// long rows with many ties (20000 of 101 values; not under the sanitizers) and a long strided axis
const AxisCase kSortCases[] = {
    {{20, 37}, 1, Kind::Contiguous, {-2, 2, true}}, {{20, 37}, 0, Kind::Transposed, {-2, 2, true}},
    {{3, 600}, 1, Kind::Reversed, {-2, 2, true}},   {{3, 4, 5}, 1, Kind::Padded, {-2, 2, true}},
    {{6, 1}, 1, Kind::Contiguous, {-2, 2, true}},   {{0, 4}, 1, Kind::Contiguous, {-2, 2, true}},
    {{1500}, 0, Kind::Contiguous, {-50, 50, true}}, {{5, 7}, 0, Kind::Broadcast, {-2, 2, true}},
    {{9, 150}, 1, Kind::Offset, {-2, 2, true}},     {{4, 64}, 1, Kind::Contiguous, {-2, 2, true}},
    {{4, 65}, 1, Kind::Contiguous, {-2, 2, true}},  {{97, 3}, 0, Kind::Transposed, {-2, 2, true}},
    {{2, 20000}, 1, Kind::Reversed, {-50, 50, true}}, {{1025, 2}, 0, Kind::Contiguous, {-1000, 1000, true}},
};
const AxisCase kSoftmaxCases[] = {
    {{37, 10}, 1, Kind::Contiguous, {}},  {{37, 10}, 0, Kind::Transposed, {}}, {{5, 3000}, 1, Kind::Reversed, {}},
    {{3000, 5}, 0, Kind::Contiguous, {}}, {{4, 6, 8}, 1, Kind::Padded, {}},    {{9}, 0, Kind::Offset, {}},
    {{1, 1}, 1, Kind::Contiguous, {}},    {{0, 5}, 1, Kind::Contiguous, {}},   {{6, 20}, 0, Kind::Broadcast, {}},
    {{16, 100}, 1, Kind::Contiguous, {-80, 80}},  // exp underflows to 0 for most: the max is subtracted first
};

}  // namespace

TEMPLATE_TEST_CASE("cuda: reduce matches naive (every path, NaN, size-0 axes)", "[cuda][reduce]", float, double,
                   std::int32_t, std::int64_t) {
  if (!have_device() || skipped_when_sanitized<TestType>()) return;
  reduce_cases<TestType>(false);
  // NaN changes values, not which thread touches what: not under the sanitizers
  if constexpr (kFloat<TestType>) {
    if (!kSanitizedBuild) reduce_cases<TestType>(true);
  }
}

TEMPLATE_TEST_CASE("cuda: arg_reduce matches naive (ties, NaN, every path)", "[cuda][arg_reduce]", float, double,
                   std::int32_t, std::int64_t) {
  using T = TestType;
  if (!have_device()) return;
  if (skipped_when_sanitized<T>()) return;
  std::mt19937_64 g(31);
  for (const bool with_nan : {false, true}) {
    if (with_nan && !kFloat<T>) continue;
    for (const AxisCase& c : kArgCases) {
      HostView<T> in = make_view<T>(c.shape, c.kind, g, c.range);
      if (with_nan) inject_nan(in, 41);
      const auto len = std::max<i64>(c.shape[static_cast<std::size_t>(c.axis)], 1);
      const auto rows = static_cast<std::size_t>(numel(c.shape) / len);
      DeviceView<T> d_in(in);
      for (OpId op : {OpId::ArgMax, OpId::ArgMin}) {
        INFO(tapeflow::op_name(op) << " along " << c.axis << " of " << describe(in.l) << (with_nan ? ", NaN" : ""));
        Array<i64> want = filled<i64>(rows, -7);
        DeviceArray<i64> d_out(filled<i64>(rows, -7));
        naive::arg_reduce<T>(op, want.data(), in.ptr(), in.l, c.axis);
        cuda::arg_reduce<T>(op, d_out.data(), d_in.ptr(), d_in.l, c.axis);
        check_same(d_out.download(), want);
      }
    }
  }
  if constexpr (kFloat<T>) {  // the first of equal values wins; a NaN wins over everything
    const T nan = std::numeric_limits<T>::quiet_NaN();
    const std::vector<T> values = {1, 3, 3, 2, 5, 5, nan, 5, 0, 0, 0, 0};
    Array<T> x(values.size());
    std::copy(values.begin(), values.end(), x.data());
    DeviceArray<T> dx(x);
    DeviceArray<i64> di(3);
    cuda::arg_reduce<T>(OpId::ArgMax, di.data(), dx.data(), contiguous({3, 4}), 1);
    Array<i64> got = di.download();
    CHECK(std::vector<i64>(got.data(), got.data() + 3) == std::vector<i64>{1, 2, 0});
    cuda::arg_reduce<T>(OpId::ArgMin, di.data(), dx.data(), contiguous({3, 4}), 1);
    got = di.download();
    CHECK(std::vector<i64>(got.data(), got.data() + 3) == std::vector<i64>{0, 2, 0});
  }
}

TEMPLATE_TEST_CASE("cuda: argsort matches naive (stable with ties, NaN, both directions)", "[cuda][argsort]", float,
                   double, std::int32_t, std::int64_t) {
  using T = TestType;
  if (!have_device()) return;
  std::mt19937_64 g(37);
  for (const bool with_nan : {false, true}) {
    if (with_nan && !kFloat<T>) continue;
    for (const AxisCase& c : kSortCases) {
      // the sanitizers run the rows of up to 1100 (every path: ranks, one merge pass, several);
      // the long rows' dozens of passes took most of the race check's time
      if (kSanitizedBuild && c.shape[static_cast<std::size_t>(c.axis)] > 1100) continue;
      HostView<T> in = make_view<T>(c.shape, c.kind, g, c.range);
      if (with_nan) inject_nan(in, 13);
      const auto n = static_cast<std::size_t>(numel(c.shape));
      DeviceView<T> d_in(in);
      for (const bool descending : {false, true}) {
        INFO("along " << c.axis << " of " << describe(in.l) << (descending ? ", descending" : "") << (with_nan ? ", NaN" : ""));
        Array<i64> want = filled<i64>(n, -7);
        DeviceArray<i64> d_out(filled<i64>(n, -7));
        naive::argsort<T>(want.data(), in.ptr(), in.l, c.axis, descending);
        cuda::argsort<T>(d_out.data(), d_in.ptr(), d_in.l, c.axis, descending);
        check_same(d_out.download(), want);
      }
    }
  }
}

TEMPLATE_TEST_CASE("cuda: softmax and log_softmax match naive along inner and outer axes", "[cuda][softmax]", float,
                   double) {
  using T = TestType;
  if (!have_device()) return;
  std::mt19937_64 g(41);
  for (const AxisCase& c : kSoftmaxCases) {
    const HostView<T> in = make_view<T>(c.shape, c.kind, g, c.range);
    DeviceView<T> d_in(in);
    const auto n = static_cast<std::size_t>(numel(c.shape));
    for (const bool log : {false, true}) {
      INFO((log ? "log_softmax" : "softmax") << " along " << c.axis << " of " << describe(in.l));
      Array<T> want = filled<T>(n, T(7));
      DeviceArray<T> d_out(filled<T>(n, T(7)));
      naive::softmax<T>(log, want.data(), in.ptr(), in.l, c.axis);
      cuda::softmax<T>(log, d_out.data(), d_in.ptr(), d_in.l, c.axis);
      check_same(d_out.download(), want);
    }
  }
}

namespace {

// One matmul operand [batch..., rows, cols]: stored with `kind` at the shape where broadcast
// batch axes have length 1, then those axes get stride 0.
template <class T>
HostView<T> matmul_operand(const Shape& batch, const std::vector<bool>& bcast, i64 rows, i64 cols, Kind kind,
                           std::mt19937_64& g, Range range) {
  Shape stored;
  for (std::size_t d = 0; d < batch.size(); ++d) stored.push_back(bcast[d] ? 1 : batch[d]);
  stored.push_back(rows);
  stored.push_back(cols);
  HostView<T> v = make_view<T>(stored, kind, g, range);
  for (std::size_t d = 0; d < batch.size(); ++d) {
    v.l.shape[d] = batch[d];
    if (bcast[d]) v.l.strides[d] = 0;
  }
  return v;
}

struct MatmulCase {
  Shape batch;
  std::vector<bool> a_bcast, b_bcast;
  i64 m, k, n;
  Kind a_kind, b_kind;
};
// 2-D with every transpose (cuBLAS op T), layouts cuBLAS cannot take (copied first),
// strided-batched, broadcast batches (one gemm per entry, or copied when there are many),
// vectors, k = 0 and empty outputs.
const MatmulCase kMatmulCases[] = {
    {{}, {}, {}, 33, 65, 17, Kind::Contiguous, Kind::Contiguous},
    {{}, {}, {}, 33, 65, 17, Kind::SwapLast, Kind::Contiguous},
    {{}, {}, {}, 33, 65, 17, Kind::Contiguous, Kind::SwapLast},
    {{}, {}, {}, 33, 65, 17, Kind::SwapLast, Kind::SwapLast},
    {{}, {}, {}, 33, 65, 17, Kind::Padded, Kind::Reversed},
    {{}, {}, {}, 33, 65, 17, Kind::Offset, Kind::Offset},
    {{}, {}, {}, 128, 256, 64, Kind::Contiguous, Kind::Contiguous},
    {{}, {}, {}, 1, 100, 1, Kind::Contiguous, Kind::SwapLast},
    {{}, {}, {}, 1, 70, 9, Kind::SwapLast, Kind::Contiguous},
    {{}, {}, {}, 9, 1, 5, Kind::Contiguous, Kind::Contiguous},
    {{2, 3}, {false, false}, {false, false}, 5, 4, 6, Kind::Contiguous, Kind::Contiguous},
    {{2, 3}, {false, false}, {true, false}, 5, 4, 6, Kind::SwapLast, Kind::Contiguous},
    {{2, 3}, {true, true}, {false, false}, 5, 4, 6, Kind::Contiguous, Kind::SwapLast},
    {{2, 3}, {false, false}, {false, false}, 5, 4, 6, Kind::Transposed, Kind::Reversed},
    {{5, 4}, {false, false}, {true, false}, 7, 8, 3, Kind::Contiguous, Kind::Contiguous},
    {{5, 4}, {false, true}, {true, false}, 7, 8, 3, Kind::Contiguous, Kind::SwapLast},
    {{}, {}, {}, 3, 0, 4, Kind::Contiguous, Kind::Contiguous},
    {{2}, {false}, {false}, 3, 0, 4, Kind::Contiguous, Kind::Contiguous},
    {{}, {}, {}, 0, 5, 4, Kind::Contiguous, Kind::Contiguous},
    {{}, {}, {}, 3, 5, 0, Kind::Contiguous, Kind::Contiguous},
    {{0}, {false}, {false}, 3, 5, 4, Kind::Contiguous, Kind::Contiguous},
};

template <class T>
void matmul_cases(Tol t_per_k) {
  std::mt19937_64 g(51);
  const Range range = kFloat<T> ? Range{-1, 1} : Range{-3, 3};
  for (const MatmulCase& mc : kMatmulCases) {
    const HostView<T> a = matmul_operand<T>(mc.batch, mc.a_bcast, mc.m, mc.k, mc.a_kind, g, range);
    const HostView<T> b = matmul_operand<T>(mc.batch, mc.b_bcast, mc.k, mc.n, mc.b_kind, g, range);
    INFO("a " << describe(a.l) << " (" << kind_name(mc.a_kind) << ") @ b " << describe(b.l) << " ("
              << kind_name(mc.b_kind) << ")");
    const auto n = static_cast<std::size_t>(numel(mc.batch) * mc.m * mc.n);
    Array<T> want = filled<T>(n, T(7));  // k = 0 must overwrite it with zeros
    DeviceArray<T> d_out(filled<T>(n, T(7)));
    DeviceView<T> da(a), db(b);
    naive::matmul<T>(want.data(), a.ptr(), a.l, b.ptr(), b.l);
    cuda::matmul<T>(d_out.data(), da.ptr(), da.l, db.ptr(), db.l);
    const double k = static_cast<double>(std::max<i64>(mc.k, 1));
    check_same(d_out.download(), want, Tol{t_per_k.rtol, t_per_k.atol * k});
  }
}

}  // namespace

TEST_CASE("cuda: matmul matches naive (cuBLAS exact float32, float64, integers)") {
  if (!have_device()) return;
  REQUIRE_FALSE(cuda::allow_tf32());
  matmul_cases<float>({1e-5, 2e-7});  // float32 sums of k products in any order: |error| <= k eps
  matmul_cases<double>({1e-12, 1e-15});
  matmul_cases<std::int32_t>({});
  matmul_cases<std::int64_t>({});
}

TEST_CASE("cuda: float32 matmul in TF32 mode is close, and exact again when turned off") {
  if (!have_device()) return;
  std::mt19937_64 g(61);
  const Shape shape = {64, 64};
  const HostView<float> a = make_view<float>(shape, Kind::Contiguous, g, {-1, 1});
  const HostView<float> b = make_view<float>(shape, Kind::SwapLast, g, {-1, 1});
  Array<float> want(64 * 64);
  naive::matmul<float>(want.data(), a.ptr(), a.l, b.ptr(), b.l);
  DeviceView<float> da(a), db(b);
  DeviceArray<float> d_out(64 * 64);
  cuda::set_allow_tf32(true);
  cuda::matmul<float>(d_out.data(), da.ptr(), da.l, db.ptr(), db.l);
  cuda::set_allow_tf32(false);
  check_same(d_out.download(), want, Tol{1e-2, 0.05});  // 10-bit mantissas: ~1e-3 per product
  cuda::matmul<float>(d_out.data(), da.ptr(), da.l, db.ptr(), db.l);
  check_same(d_out.download(), want, Tol{1e-5, 64 * 2e-7});
}

namespace {

// A gather / scatter_add case: `data` is the shape gathered from (scattered into), `index`
// that of the indices and of the output (source); the two differ only along `axis`.
struct IndexCase {
  Shape data, index;
  int axis;
  Kind data_kind, index_kind, other_kind;
};
const IndexCase kIndexCases[] = {
    {{4, 5}, {4, 8}, 1, Kind::Contiguous, Kind::Contiguous, Kind::Contiguous},
    {{4, 5}, {6, 5}, 0, Kind::Transposed, Kind::Transposed, Kind::Padded},
    {{3, 6}, {10, 6}, 0, Kind::Padded, Kind::Reversed, Kind::Transposed},
    {{3, 4, 5}, {3, 2, 5}, 1, Kind::Reversed, Kind::Contiguous, Kind::Reversed},
    {{2, 3, 4}, {2, 7, 4}, 1, Kind::Reversed, Kind::Transposed, Kind::Offset},
    {{4, 5}, {4, 9}, 1, Kind::Broadcast, Kind::Offset, Kind::Contiguous},  // data: stride 0 on axis 0
    {{3}, {20000}, 0, Kind::Contiguous, Kind::Contiguous, Kind::Contiguous},  // many equal indices
    {{4, 5}, {4, 0}, 1, Kind::Contiguous, Kind::Contiguous, Kind::Contiguous},
};

// Random indices in [0, data.shape[axis]), or with `outside` in [-3, len + 2]: the kernels give
// 0 for (gather) or drop (scatter_add) an index out of range, as the naive ones.
HostView<i64> index_view(const IndexCase& c, std::mt19937_64& g, bool outside = false) {
  const auto len = static_cast<double>(c.data[static_cast<std::size_t>(c.axis)]);
  return make_view<i64>(c.index, c.index_kind, g, outside ? Range{-3, len + 2} : Range{0, len - 1});
}

}  // namespace

TEMPLATE_TEST_CASE("cuda: gather matches naive", "[cuda][gather]", bool, float, double, std::int32_t,
                   std::int64_t) {
  using T = TestType;
  if (!have_device()) return;
  std::mt19937_64 g(71);
  for (const bool outside : {false, true})
  for (const IndexCase& c : kIndexCases) {
    const HostView<T> in = make_view<T>(c.data, c.data_kind, g);
    const HostView<i64> idx = index_view(c, g, outside);
    HostView<T> want = make_view<T>(c.index, c.other_kind, g);
    INFO("in " << describe(in.l) << " idx " << describe(idx.l) << " axis " << c.axis << (outside ? ", some outside" : ""));
    DeviceView<T> d_in(in), d_out(want);
    DeviceView<i64> d_idx(idx);
    naive::gather<T>(want.ptr(), want.l, in.ptr(), in.l, idx.ptr(), idx.l, c.axis);
    cuda::gather<T>(d_out.ptr(), d_out.l, d_in.ptr(), d_in.l, d_idx.ptr(), d_idx.l, c.axis);
    check_same(d_out.buf.download(), want.buf);
  }
}

TEMPLATE_TEST_CASE("cuda: scatter_add matches naive (duplicate indices accumulate)", "[cuda][scatter_add]", float,
                   double, std::int32_t, std::int64_t) {
  using T = TestType;
  if (!have_device()) return;
  std::mt19937_64 g(81);
  for (const bool outside : {false, true})
  for (const IndexCase& c : kIndexCases) {
    if (c.data_kind == Kind::Broadcast) continue;  // an output is never a broadcast view
    HostView<T> want = make_view<T>(c.data, c.data_kind, g);
    const HostView<T> src = make_view<T>(c.index, c.other_kind, g, kFloat<T> ? Range{-1, 1} : Range{-9, 9});
    const HostView<i64> idx = index_view(c, g, outside);
    INFO("out " << describe(want.l) << " src " << describe(src.l) << " axis " << c.axis << (outside ? ", some outside" : ""));
    DeviceView<T> d_out(want), d_src(src);
    DeviceView<i64> d_idx(idx);
    naive::scatter_add<T>(want.ptr(), want.l, src.ptr(), src.l, idx.ptr(), idx.l, c.axis);
    cuda::scatter_add<T>(d_out.ptr(), d_out.l, d_src.ptr(), d_src.l, d_idx.ptr(), d_idx.l, c.axis);
    Tol t = tol<T>();
    t.atol *= static_cast<double>(numel(c.index));  // atomic adds in any order
    check_same(d_out.buf.download(), want.buf, t);
  }
}

TEMPLATE_TEST_CASE("cuda: scatter_reduce max / min matches naive (duplicates by compare-and-swap, NaN)",
                   "[cuda][scatter_add]", float, double, std::int32_t, std::int64_t) {
  using T = TestType;
  if (!have_device()) return;
  std::mt19937_64 g(83);
  for (const OpId op : {OpId::Maximum, OpId::Minimum})
  for (const bool outside : {false, true})
  for (const IndexCase& c : kIndexCases) {
    if (c.data_kind == Kind::Broadcast) continue;  // an output is never a broadcast view
    HostView<T> want = make_view<T>(c.data, c.data_kind, g);
    HostView<T> src = make_view<T>(c.index, c.other_kind, g, kFloat<T> ? Range{-1, 1} : Range{-9, 9});
    if (outside) inject_nan(src, 7);  // a NaN result is NaN whichever thread wins
    const HostView<i64> idx = index_view(c, g, outside);
    INFO(tapeflow::op_name(op) << " out " << describe(want.l) << " src " << describe(src.l) << " axis " << c.axis
                               << (outside ? ", some outside, NaN" : ""));
    DeviceView<T> d_out(want), d_src(src);
    DeviceView<i64> d_idx(idx);
    naive::scatter_reduce<T>(op, want.ptr(), want.l, src.ptr(), src.l, idx.ptr(), idx.l, c.axis);
    cuda::scatter_reduce<T>(op, d_out.ptr(), d_out.l, d_src.ptr(), d_src.l, d_idx.ptr(), d_idx.l, c.axis);
    check_same(d_out.buf.download(), want.buf);  // a max or min is exact in any order
  }
}

namespace {

// Windows over an image [b, h, w, c] (im2col / col2im); oh and ow as TensorFlow's padding gives
// them, or fewer (rows and columns left unread).
struct WindowCase {
  Shape image;
  i64 kh, kw, stride, pad_top, pad_left, oh, ow;
  Kind image_kind, cols_kind;
  i64 dilation;
};
const WindowCase kWindowCases[] = {
    {{2, 6, 5, 3}, 3, 3, 1, 0, 0, 4, 3, Kind::Contiguous, Kind::Contiguous, 1},  // valid
    {{1, 7, 6, 2}, 3, 3, 2, 1, 1, 4, 3, Kind::Transposed, Kind::Padded, 1},      // same, stride 2
    {{3, 4, 4, 1}, 2, 2, 2, 0, 0, 2, 2, Kind::Reversed, Kind::Transposed, 1},    // max pooling
    {{2, 5, 7, 32}, 3, 2, 1, 1, 0, 5, 6, Kind::Padded, Kind::Reversed, 1},       // channels coalesced
    {{1, 9, 9, 4}, 1, 1, 3, 0, 0, 3, 3, Kind::Offset, Kind::Contiguous, 1},      // unread rows and columns
    {{2, 3, 3, 2}, 4, 4, 1, 2, 2, 2, 2, Kind::Broadcast, Kind::Broadcast, 1},    // windows past every edge
    {{0, 3, 3, 2}, 2, 2, 1, 0, 0, 2, 2, Kind::Contiguous, Kind::Contiguous, 1},  // empty batch
    {{2, 7, 6, 3}, 3, 3, 1, 2, 2, 7, 6, Kind::Contiguous, Kind::Padded, 2},      // dilated, same
    {{1, 9, 8, 2}, 2, 3, 2, 0, 1, 3, 3, Kind::Transposed, Kind::Contiguous, 3},  // dilated, strided
    {{1, 4, 5, 1}, 3, 2, 1, 3, 1, 2, 4, Kind::Offset, Kind::Reversed, 3},        // dilated past every edge
};

tapeflow::kernels::Window2d window_of(const WindowCase& c) {
  tapeflow::kernels::Window2d w;
  w.kh = c.kh;
  w.kw = c.kw;
  w.stride = c.stride;
  w.pad_top = c.pad_top;
  w.pad_left = c.pad_left;
  w.oh = c.oh;
  w.ow = c.ow;
  w.dilation = c.dilation;
  return w;
}

}  // namespace

TEMPLATE_TEST_CASE("cuda: im2col and col2im match naive (padding, strides, layouts)", "[cuda][im2col]", float,
                   double, std::int32_t, std::int64_t) {
  using T = TestType;
  if (!have_device()) return;
  std::mt19937_64 g(91);
  for (const WindowCase& c : kWindowCases) {
    const tapeflow::kernels::Window2d w = window_of(c);
    const Shape cols_shape{c.image[0], c.oh, c.ow, c.kh * c.kw, c.image[3]};
    const auto n_cols = static_cast<std::size_t>(numel(cols_shape)), n_image = static_cast<std::size_t>(numel(c.image));
    INFO("image " << describe(contiguous(c.image)) << " windows " << c.kh << "x" << c.kw << " stride " << c.stride << " dilation " << c.dilation
                  << " pad " << c.pad_top << ", " << c.pad_left);
    const HostView<T> image = make_view<T>(c.image, c.image_kind, g);
    Array<T> want_cols(n_cols);
    naive::im2col<T>(want_cols.data(), image.ptr(), image.l, w, T(-5));
    DeviceView<T> d_image(image);
    DeviceArray<T> d_cols(n_cols);
    cuda::im2col<T>(d_cols.data(), d_image.ptr(), d_image.l, w, T(-5));
    check_same(d_cols.download(), want_cols);

    const HostView<T> cols = make_view<T>(cols_shape, c.cols_kind, g);
    Array<T> want_image(n_image);
    naive::col2im<T>(want_image.data(), contiguous(c.image), cols.ptr(), cols.l, w);
    DeviceView<T> d_cols_in(cols);
    DeviceArray<T> d_out(n_image);
    cuda::col2im<T>(d_out.data(), contiguous(c.image), d_cols_in.ptr(), d_cols_in.l, w);
    check_same(d_out.download(), want_image, Tol{});  // the naive kernel's additions, in its order
  }
}

TEMPLATE_TEST_CASE("cuda: pool_select and pool_scatter match naive (ties, NaN, overlapping windows)",
                   "[cuda][pool]", float, double, std::int32_t, std::int64_t) {
  using T = TestType;
  if (!have_device()) return;
  std::mt19937_64 g(93);
  for (const WindowCase& c : kWindowCases) {
    if (c.dilation != 1) continue;  // pooling windows are never dilated
    const tapeflow::kernels::Window2d w = window_of(c);
    const Shape pooled{c.image[0], c.oh, c.ow, c.image[3]};
    const auto n_pooled = static_cast<std::size_t>(numel(pooled)), n_image = static_cast<std::size_t>(numel(c.image));
    INFO("image " << describe(contiguous(c.image)) << " windows " << c.kh << "x" << c.kw << " stride " << c.stride
                  << " pad " << c.pad_top << ", " << c.pad_left);
    HostView<T> x = make_view<T>(c.image, c.image_kind, g, Range{-2, 2, true});  // many ties
    inject_nan(x, 11);
    const HostView<T> v = make_view<T>(c.image, c.cols_kind, g);
    DeviceView<T> d_x(x), d_v(v);
    for (bool same : {true, false}) {
      INFO((same ? "v = x (max pooling)" : "v another view"));
      Array<T> want(n_pooled);
      naive::pool_select<T>(want.data(), x.ptr(), x.l, same ? x.ptr() : v.ptr(), same ? x.l : v.l, w);
      DeviceArray<T> d_out(n_pooled);
      cuda::pool_select<T>(d_out.data(), d_x.ptr(), d_x.l, same ? d_x.ptr() : d_v.ptr(), same ? d_x.l : d_v.l, w);
      check_same(d_out.download(), want);
    }
    const HostView<T> grad = make_view<T>(pooled, c.cols_kind, g);
    Array<T> want_dx(n_image);
    naive::pool_scatter<T>(want_dx.data(), x.ptr(), x.l, grad.ptr(), grad.l, w);
    DeviceView<T> d_grad(grad);
    DeviceArray<T> d_dx(n_image);
    cuda::pool_scatter<T>(d_dx.data(), d_x.ptr(), d_x.l, d_grad.ptr(), d_grad.l, w);
    check_same(d_dx.download(), want_dx, Tol{});  // the naive kernel's additions, in its order
  }
}

TEST_CASE("cuda: uniform and normal give the naive kernels' numbers for the same seed and offset") {
  if (!have_device()) return;
  const i64 n = 100003;
  struct Stream {
    std::uint64_t seed, offset;
  };
  // the second crosses 2^32 in the counter's low word
  for (const Stream st : {Stream{42, 1000}, Stream{7, 0xFFFFFFF0ull - 50000}}) {
    INFO("seed " << st.seed << " offset " << st.offset);
    for_each_type<float, double>([&](auto tag) {
      using T = decltype(tag);
      Array<T> want(static_cast<std::size_t>(n));
      DeviceArray<T> d(static_cast<std::size_t>(n));
      naive::uniform<T>(want.data(), n, st.seed, st.offset, -1, 2);
      cuda::uniform<T>(d.data(), n, st.seed, st.offset, -1, 2);
      Array<T> got = d.download();
      CHECK(std::memcmp(got.data(), want.data(), static_cast<std::size_t>(n) * sizeof(T)) == 0);  // bit for bit
      naive::normal<T>(want.data(), n, st.seed, st.offset, 0.5, 2);
      cuda::normal<T>(d.data(), n, st.seed, st.offset, 0.5, 2);
      got = d.download();
      // log and cos of the device's libm may differ from the host's in the last bit of a
      // double: float32 results are the same but for a rare rounding tie, float64 ones are
      // within a few ulps.
      std::size_t differ = 0;
      for (std::size_t i = 0; i < got.size(); ++i) differ += std::memcmp(&got[i], &want[i], sizeof(T)) != 0;
      if constexpr (std::is_same_v<T, float>) CHECK(differ <= 2);
      check_same(got, want, std::is_same_v<T, float> ? Tol{1e-6, 1e-6} : Tol{1e-14, 1e-14});
    });
  }
  DeviceArray<float> d(4);
  CHECK_NOTHROW(cuda::uniform<float>(d.data(), 0, 1, 0, 0, 1));  // n = 0 launches nothing
  CHECK_NOTHROW(cuda::normal<float>(d.data(), 0, 1, 0, 0, 1));
}

TEST_CASE("cuda: kernels on empty tensors launch nothing and do not throw") {
  if (!have_device()) return;
  DeviceArray<float> d(4);
  const Layout empty = contiguous({3, 0});
  CHECK_NOTHROW(cuda::unary<float>(OpId::Exp, d.data(), empty, d.data(), empty, 0, 0));
  CHECK_NOTHROW(cuda::binary<float>(OpId::Add, d.data(), empty, d.data(), empty, d.data(), empty));
  CHECK_NOTHROW(cuda::fill<float>(d.data(), empty, 1.f));
  CHECK_NOTHROW(cuda::copy<float, float>(d.data(), empty, d.data(), empty));
  CHECK_NOTHROW(cuda::synchronize());
}
