// The CPU kernels against the naive oracle (STYLE.md 9): every element-wise op row of
// ops.def, every dtype it takes, random shapes of rank 0..4 (size-0 and size-1 axes
// included) over contiguous, permuted, padded, negative-stride and broadcast layouts, with
// strided outputs. Outputs are compared over their whole buffer, so a kernel that writes
// outside its view fails too.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "tapeflow/kernels/cpu.hpp"
#include "tapeflow/kernels/naive.hpp"
#include "tapeflow/op_id.hpp"
// functors.hpp's CompareFn<LogicalNot> leaves its second parameter unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "tapeflow/kernels/functors.hpp"
#include "../kernels/cpu/thread_pool.hpp"
#pragma GCC diagnostic pop

namespace {

namespace kn = tapeflow::kernels;
using tapeflow::OpId;
using tapeflow::OpKind;
using i64 = std::int64_t;
using Shape = std::vector<i64>;

std::mt19937_64& rng() {
  static std::mt19937_64 g(20240611);
  return g;
}
i64 rand_int(i64 lo, i64 hi) {  // [lo, hi]
  return std::uniform_int_distribution<i64>(lo, hi)(rng());
}
double rand_real(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng()); }
bool coin(double p = 0.5) { return rand_real(0, 1) < p; }

// The ops of the given kinds, in ops.def order.
std::vector<OpId> ops_of(std::initializer_list<OpKind> kinds) {
  std::vector<OpId> ops;
  for (std::size_t i = 0; i < tapeflow::kNumOps; ++i) {
    const OpKind k = tapeflow::kOpInfo[i].kind;
    if (std::find(kinds.begin(), kinds.end(), k) != kinds.end()) ops.push_back(static_cast<OpId>(i));
  }
  return ops;
}

template <class T>
constexpr bool kFloat = std::is_floating_point_v<T>;

// Value domains of the random inputs. Unit: inside (-1, 1) (asin, acos, atanh; integers 0,
// whose atanh stays finite); FromOne: acosh's [1, 5].
enum class Domain { Signed, Positive, Small, Bool, Unit, FromOne };

template <class T>
T random_value(Domain d) {
  if constexpr (std::is_same_v<T, bool>) {
    (void)d;
    return coin();
  } else if constexpr (kFloat<T>) {
    switch (d) {
      case Domain::Positive: return static_cast<T>(rand_real(0.05, 4.0));
      case Domain::Small: return static_cast<T>(rand_int(-3, 3) * 0.5);  // many ties
      case Domain::Bool: return static_cast<T>(rand_int(0, 1));
      case Domain::Unit: return static_cast<T>(rand_real(-0.99, 0.99));
      case Domain::FromOne: return static_cast<T>(rand_real(1.0, 5.0));
      default: return static_cast<T>(rand_real(-4.0, 4.0));
    }
  } else {
    switch (d) {
      case Domain::Positive: return static_cast<T>(rand_int(1, 5));
      case Domain::Small: return static_cast<T>(rand_int(-3, 3));
      case Domain::Bool: return static_cast<T>(rand_int(0, 1));
      case Domain::Unit: return T(0);
      case Domain::FromOne: return static_cast<T>(rand_int(1, 5));
      default: return static_cast<T>(rand_int(-9, 9));
    }
  }
}

// Which kinds of strides a random layout may use.
struct Opts {
  bool permute = true;    // axes stored in another order (transposed views)
  bool pad = true;        // gaps between elements (slices with a step)
  bool negative = true;   // reversed axes: the data pointer is the last element along them
  bool broadcast = false; // stride 0 on some axes
};

// A plain owning array (std::vector<bool> has no bool* data()).
template <class T>
struct Buffer {
  std::unique_ptr<T[]> p;
  std::size_t n = 0;
  Buffer() = default;
  Buffer(const Buffer& o) : p(o.n ? new T[o.n] : nullptr), n(o.n) { std::copy(o.begin(), o.end(), begin()); }
  Buffer& operator=(const Buffer& o) {
    Buffer t(o);
    std::swap(p, t.p);
    std::swap(n, t.n);
    return *this;
  }
  void resize(std::size_t size) {
    Buffer t;
    t.p.reset(size ? new T[size]() : nullptr);
    t.n = size;
    std::copy(begin(), begin() + std::min(n, size), t.begin());
    *this = t;
  }
  T* data() { return p.get(); }
  const T* data() const { return p.get(); }
  std::size_t size() const { return n; }
  bool empty() const { return n == 0; }
  T* begin() { return p.get(); }
  T* end() { return p.get() + n; }
  const T* begin() const { return p.get(); }
  const T* end() const { return p.get() + n; }
  T& operator[](std::size_t i) { return p[i]; }
  const T& operator[](std::size_t i) const { return p[i]; }
};

// A view with its own buffer: data() points at the first element, like the kernels expect.
template <class T>
struct View {
  Buffer<T> buf;
  kn::Layout l;
  i64 base = 0;
  T* data() { return buf.data() + base; }
  const T* data() const { return buf.data() + base; }
};

std::string describe(const kn::Layout& l) {
  std::ostringstream s;
  s << "shape [";
  for (int d = 0; d < l.rank; ++d) s << (d ? ", " : "") << l.shape[d];
  s << "] strides [";
  for (int d = 0; d < l.rank; ++d) s << (d ? ", " : "") << l.strides[d];
  s << "]";
  return s.str();
}

kn::Layout contiguous(const Shape& shape) {
  return kn::contiguous_layout(static_cast<int>(shape.size()), shape.data());
}

template <class T>
View<T> make_view(const Shape& shape, Opts o, Domain dom = Domain::Signed) {
  const int rank = static_cast<int>(shape.size());
  View<T> v;
  v.l.rank = rank;
  i64 total = 1;
  for (i64 s : shape) total *= s;
  std::vector<int> perm(static_cast<std::size_t>(rank));
  std::iota(perm.begin(), perm.end(), 0);
  if (o.permute && coin()) std::shuffle(perm.begin(), perm.end(), rng());
  i64 acc = 1;  // physical elements inside the axes placed so far (innermost first)
  for (int j = rank - 1; j >= 0; --j) {
    const int d = perm[static_cast<std::size_t>(j)];
    const bool bcast = o.broadcast && coin(0.3);
    const i64 step = o.pad && coin(0.3) ? 2 : 1;
    v.l.shape[d] = shape[static_cast<std::size_t>(d)];
    v.l.strides[d] = bcast ? 0 : acc * step;
    if (!bcast) acc *= shape[static_cast<std::size_t>(d)] * step;
  }
  if (total == 0) acc = 0;
  for (int d = 0; d < rank && total > 0; ++d) {
    if (o.negative && v.l.strides[d] != 0 && coin(0.25)) {
      v.base += (v.l.shape[d] - 1) * v.l.strides[d];
      v.l.strides[d] = -v.l.strides[d];
    }
  }
  v.buf.resize(static_cast<std::size_t>(acc));
  for (auto&& x : v.buf) x = random_value<T>(dom);
  return v;
}

// An output layout: any strides but broadcast; its gaps hold random values too.
template <class T>
View<T> make_out(const Shape& shape) {
  Opts o;
  o.permute = coin(0.3);
  o.pad = coin(0.3);
  o.negative = coin(0.3);
  return make_view<T>(shape, o);
}

// A random layout policy for inputs: a third contiguous, the rest any mixture.
Opts random_opts(bool allow_broadcast) {
  Opts o;
  if (coin(0.33)) {
    o.permute = o.pad = o.negative = false;
    return o;
  }
  o.permute = coin();
  o.pad = coin();
  o.negative = coin();
  o.broadcast = allow_broadcast && coin();
  return o;
}

Shape random_shape(int min_rank = 0, int max_rank = 4, bool allow_zero = true) {
  static const i64 dims[] = {1, 1, 2, 3, 4, 5, 7, 8, 13, 17, 33};
  const int rank = static_cast<int>(rand_int(min_rank, max_rank));
  Shape s(static_cast<std::size_t>(rank));
  for (auto& d : s) d = dims[rand_int(0, 10)];
  if (allow_zero && rank > 0 && coin(0.08)) s[static_cast<std::size_t>(rand_int(0, rank - 1))] = 0;
  i64 total = 1;  // keep the naive loops quick
  for (i64 d : s) total *= d;
  while (total > 20000) {
    auto it = std::max_element(s.begin(), s.end());
    total /= *it;
    *it = (*it + 1) / 2;
    total *= *it;
  }
  return s;
}

template <class T>
bool close(T got, T want, double rtol, double atol) {
  if constexpr (kFloat<T>) {
    if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want);
    if (got == want) return true;  // infinities
    return std::fabs(double(got) - double(want)) <= atol + rtol * std::fabs(double(want));
  } else {
    (void)rtol;
    (void)atol;
    return got == want;
  }
}

template <class T>
double as_double(T x) {
  return static_cast<double>(x);
}

// Every element of got equals want (within tolerance for floats); one assertion per buffer.
template <class C>
void check_same(const C& got, const C& want, double rtol = 0, double atol = 0) {
  REQUIRE(got.size() == want.size());
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!close(got[i], want[i], rtol, atol)) {
      if (bad++ == 0) first = i;
    }
  }
  INFO(bad << " mismatches; first at " << first << ": got " << (bad ? as_double(got[first]) : 0.0)
            << ", want " << (bad ? as_double(want[first]) : 0.0));
  CHECK(bad == 0);
}

template <class T>
double tol_r() {
  if constexpr (std::is_same_v<T, float>) return 1e-5;
  else if constexpr (std::is_same_v<T, double>) return 1e-12;
  else return 0;
}
template <class T>
double tol_a() {
  if constexpr (std::is_same_v<T, float>) return 1e-6;
  else if constexpr (std::is_same_v<T, double>) return 1e-14;
  else return 0;
}

bool transcendental(OpId op) {
  return op == OpId::Exp || op == OpId::Log || op == OpId::Log1p || op == OpId::Expm1 || op == OpId::Erf || op == OpId::Sqrt || op == OpId::Tanh ||
         op == OpId::Sigmoid || op == OpId::PowScalar;
}

// Restores the CPU kernels' thread count at scope exit.
struct ThreadGuard {
  int saved = kn::cpu::num_threads();
  ~ThreadGuard() { kn::cpu::set_num_threads(saved); }
};

// Restores the CPU kernels' instruction set at scope exit.
struct IsaGuard {
  std::string saved = kn::cpu::isa().substr(0, kn::cpu::isa().find(' '));
  ~IsaGuard() { kn::cpu::set_isa(saved); }
};

// f() once per instruction set this CPU runs (kernels/cpu/simd_math.hpp).
template <class F>
void for_each_isa(F&& f) {
  IsaGuard guard;
  for (const std::string& key : kn::cpu::isas()) {
    INFO("instruction set " << key);
    REQUIRE(kn::cpu::set_isa(key));
    f();
  }
}

template <class... Ts, class F>
void for_each_type(F&& f) {
  (f(Ts{}), ...);
}

// ---- element-wise ----------------------------------------------------------------------

// Under the sanitizers (CI's ASan+UBSan stage) the element-wise sweeps draw a third of their
// random cases, and run their big inputs (threaded, with SIMD tails) and the short-row tiles for
// the first op of a table only (and pow, which has its own float32 path): every loop, layout kind,
// instruction set and dtype is still reached there, under the sanitizers. The loops are one
// template per kind of op, so a bad access depends on the loop, not on the op's functor; the
// Release and emulator stages run every case.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizedBuild = true;
#else
constexpr bool kSanitizedBuild = false;
#endif
constexpr int kElementwiseTrials = kSanitizedBuild ? 10 : 30;
bool every_case(OpId op, const std::vector<OpId>& table) {
  return !kSanitizedBuild || op == table.front() || op == OpId::Pow;
}

template <class T>
void unary_case(OpId op, const Shape& shape, Opts in_opts) {
  double p0 = 0, p1 = 0;
  if (op == OpId::PowScalar) p0 = kFloat<T> ? (coin() ? 2.0 : (coin() ? 3.0 : 0.5)) : 2.0;
  if (op == OpId::Clip || op == OpId::ClipMask) {
    p0 = -1.0;
    p1 = kFloat<T> ? 1.5 : 2.0;
  }
  // integer inputs of transcendental ops stay where the result converts back without UB (tan,
  // atan, sinh, cosh and asinh of -9..9 do; the inverse functions keep to their domains)
  Domain dom = transcendental(op) && (op != OpId::Tanh || !kFloat<T>) && op != OpId::Sigmoid
                   ? Domain::Positive
                   : Domain::Signed;
  if (op == OpId::Asin || op == OpId::Acos || op == OpId::Atanh) dom = Domain::Unit;
  if (op == OpId::Acosh) dom = Domain::FromOne;
  View<T> in = make_view<T>(shape, in_opts, dom);
  View<T> out = make_out<T>(shape);
  View<T> ref = out;
  kn::cpu::unary<T>(op, out.data(), out.l, in.data(), in.l, p0, p1);
  kn::naive::unary<T>(op, ref.data(), ref.l, in.data(), in.l, p0, p1);
  INFO("op " << tapeflow::op_name(op) << " in " << describe(in.l) << " out " << describe(out.l));
  check_same(out.buf, ref.buf, tol_r<T>(), tol_a<T>());
}

TEMPLATE_TEST_CASE("cpu unary matches naive for every Unary row", "[kernels][unary]", float, double,
                   std::int32_t, std::int64_t) {
  const auto ops = ops_of({OpKind::Unary});
  REQUIRE(ops.size() >= 13);
  for_each_isa([&] {
    for (OpId op : ops) {
      for (int trial = 0; trial < kElementwiseTrials; ++trial)
        unary_case<TestType>(op, random_shape(), random_opts(true));
      // contiguous and big enough to run threaded, with a length that leaves a SIMD tail
      if (every_case(op, ops)) unary_case<TestType>(op, {300007}, Opts{false, false, false, false});
    }
  });
}

TEMPLATE_TEST_CASE("cpu unary special values match naive", "[kernels][unary]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> x = {T(0), T(-0.0), inf, -inf, nan, T(1), T(-1), T(100), T(-100), T(1e-30), T(-1e-30),
                      T(88), T(-88), T(710), T(-745), T(20), T(-20), T(0.5), T(3), T(-3),
                      std::numeric_limits<T>::max(), std::numeric_limits<T>::lowest(), T(1e30), T(-1e30),
                      T(6.5), T(-6.5), T(-0.999), T(-1.5), std::numeric_limits<T>::denorm_min(),
                      // where xsimd's exp overflowed early: 88.5f, 709.5
                      T(88.5), T(88.7), T(709.5), T(709.7)};
  const Shape shape = {static_cast<i64>(x.size())};
  const kn::Layout l = contiguous(shape);
  for_each_isa([&] {
    for (OpId op : ops_of({OpKind::Unary})) {
      std::vector<T> got(x.size()), want(x.size());
      kn::cpu::unary<T>(op, got.data(), l, x.data(), l, 2.0, 3.0);
      kn::naive::unary<T>(op, want.data(), l, x.data(), l, 2.0, 3.0);
      INFO("op " << tapeflow::op_name(op));
      check_same(got, want, tol_r<T>(), std::is_same_v<T, float> ? 1e-37 : 1e-300);
    }
  });
}

TEST_CASE("cpu: the instruction sets on offer, chosen and refused", "[kernels][isa]") {
  const std::vector<std::string> keys = kn::cpu::isas();
  REQUIRE(!keys.empty());
  CHECK(keys.back() == "baseline");  // best first; the build's own flags run everywhere
  IsaGuard guard;
  for (const std::string& key : keys) {
    REQUIRE(kn::cpu::set_isa(key));
    CHECK(kn::cpu::isa().rfind(key + " (", 0) == 0);
  }
  const std::string before = kn::cpu::isa();
  CHECK_FALSE(kn::cpu::set_isa("sse9"));
  CHECK_FALSE(kn::cpu::set_isa(""));
  CHECK(kn::cpu::isa() == before);
}

// Every instruction set's exp, log, sqrt, tanh, sigmoid, expm1, log1p and erf against the baseline's, within
// a few units in the last place (they differ by FMA contractions only).
TEMPLATE_TEST_CASE("cpu: every instruction set agrees with the baseline", "[kernels][isa]", float, double) {
  using T = TestType;
  std::mt19937 rng(5);
  std::uniform_real_distribution<T> dist(T(-40), T(40));
  std::vector<T> x(4099);
  for (auto& v : x) v = dist(rng);
  const kn::Layout l = contiguous({static_cast<i64>(x.size())});
  IsaGuard guard;
  for (OpId op : {OpId::Exp, OpId::Log, OpId::Sqrt, OpId::Tanh, OpId::Sigmoid, OpId::Expm1, OpId::Log1p, OpId::Erf}) {
    std::vector<T> in = x;
    if (op == OpId::Log || op == OpId::Sqrt || op == OpId::Log1p)
      for (auto& v : in) v = std::abs(v) + T(1e-3);
    REQUIRE(kn::cpu::set_isa("baseline"));
    std::vector<T> base(in.size());
    kn::cpu::unary<T>(op, base.data(), l, in.data(), l, 0, 0);
    for (const std::string& key : kn::cpu::isas()) {
      REQUIRE(kn::cpu::set_isa(key));
      std::vector<T> got(in.size());
      kn::cpu::unary<T>(op, got.data(), l, in.data(), l, 0, 0);
      INFO("op " << tapeflow::op_name(op) << " on " << key);
      check_same(got, base, 8 * std::numeric_limits<T>::epsilon(), 4 * std::numeric_limits<T>::min());
    }
  }
}

// float32 pow goes through exp(b log a) in double (kernels/cpu/simd_math.hpp), except where a
// or b is special. r is libm's powf(a, b): NaN, infinities and zeros (with their sign) must be
// the same, anything else within one ulp.
bool pow_close(float r, float x) {
  if (std::isnan(r) || std::isnan(x)) return std::isnan(r) && std::isnan(x);
  if (r == 0 || x == 0 || std::isinf(r) || std::isinf(x)) return r == x && std::signbit(r) == std::signbit(x);
  if (std::signbit(r) != std::signbit(x)) return false;
  std::int32_t ir, ix;
  std::memcpy(&ir, &r, 4);
  std::memcpy(&ix, &x, 4);
  return std::abs(static_cast<std::int64_t>(ir) - ix) <= 1;
}

TEST_CASE("cpu float32 pow: libm's special cases, one ulp elsewhere", "[kernels][binary][pow]") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> as = {0.0f, -0.0f, std::numeric_limits<float>::denorm_min(), 1e-30f, 0.5f, 1.0f, 2.0f,
                                 10.0f, 1e30f, std::numeric_limits<float>::max(), inf, -inf, nan, -1.0f,
                                 -2.0f, -8.0f, -0.5f};
  const std::vector<float> bs = {0.0f, -0.0f, 1.0f, -1.0f, 2.0f, 3.0f, -3.0f, 0.5f, -0.5f, 2.5f, 1e10f, -1e10f,
                                 100.0f, -100.0f, 1.5e-8f, inf, -inf, nan};
  const i64 na = static_cast<i64>(as.size()), nb = static_cast<i64>(bs.size());
  for_each_isa([&] {
    // every pair, with a along the rows (b broadcast down them) and then along the columns
    for (bool a_inner : {false, true}) {
      const i64 rows = a_inner ? nb : na, cols = a_inner ? na : nb;
      const Shape shape = {rows, cols};
      const kn::Layout out_l = contiguous(shape);
      kn::Layout a_l = out_l, b_l = out_l;
      a_l.strides[0] = a_inner ? 0 : 1;
      a_l.strides[1] = a_inner ? 1 : 0;
      b_l.strides[0] = a_inner ? 1 : 0;
      b_l.strides[1] = a_inner ? 0 : 1;
      std::vector<float> out(static_cast<std::size_t>(rows * cols), -7.0f);
      kn::cpu::binary<float>(OpId::Pow, out.data(), out_l, as.data(), a_l, bs.data(), b_l);
      for (i64 r = 0; r < rows; ++r) {
        for (i64 c = 0; c < cols; ++c) {
          const float a = as[static_cast<std::size_t>(a_inner ? c : r)];
          const float b = bs[static_cast<std::size_t>(a_inner ? r : c)];
          const float x = out[static_cast<std::size_t>(r * cols + c)];
          INFO("pow(" << a << ", " << b << ") = " << x << ", powf gives " << std::pow(a, b));
          REQUIRE(pow_close(std::pow(a, b), x));
        }
      }
    }
    // pow_scalar with each exponent, the same values of a dense and in a run with a tail
    const Shape shape = {na};
    const kn::Layout l = contiguous(shape);
    for (float b : bs) {
      std::vector<float> out(as.size(), -7.0f);
      kn::cpu::unary<float>(OpId::PowScalar, out.data(), l, as.data(), l, static_cast<double>(b), 0);
      for (std::size_t i = 0; i < as.size(); ++i) {
        INFO("pow_scalar(" << as[i] << ", " << b << ") = " << out[i]);
        REQUIRE(pow_close(std::pow(as[i], b), out[i]));
      }
    }
    // many random values, big enough to be streamed and split between threads
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> da(0.0f, 50.0f), db(-12.0f, 12.0f);
    const i64 n = (i64(1) << 19) + 3;
    std::vector<float> a(static_cast<std::size_t>(n)), b(a.size()), out(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = da(rng);
      b[i] = db(rng);
    }
    const Shape big = {n};
    const kn::Layout bl = contiguous(big);
    kn::cpu::binary<float>(OpId::Pow, out.data(), bl, a.data(), bl, b.data(), bl);
    i64 off = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const float r = std::pow(a[i], b[i]);
      INFO("pow(" << a[i] << ", " << b[i] << ") = " << out[i] << ", powf gives " << r);
      REQUIRE(pow_close(r, out[i]));
      off += r != out[i];
    }
    CHECK(off < n / 1000);  // one ulp apart only where the result is near a rounding boundary
  });
}

TEST_CASE("cpu unary works in place", "[kernels][unary]") {
  View<float> x = make_view<float>({5, 7, 9}, Opts{true, true, true, false});
  View<float> y = x;
  kn::cpu::unary<float>(OpId::Relu, x.data(), x.l, x.data(), x.l, 0, 0);
  kn::naive::unary<float>(OpId::Relu, y.data(), y.l, y.data(), y.l, 0, 0);
  check_same(x.buf, y.buf);
}

// Integer division's edges, worked by hand: x / 0 and x // 0 give 0, x % 0 gives 0, and
// INT_MIN / -1 and INT_MIN // -1 wrap to INT_MIN (remainder 0) instead of trapping; the CPU
// kernel and the naive one both.
TEMPLATE_TEST_CASE("integer div, floor_divide and mod: zero and INT_MIN / -1 never trap", "[kernels][binary]",
                   std::int32_t, std::int64_t) {
  using T = TestType;
  const T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
  const std::vector<T> a = {lo, lo, hi, T(-7), T(7), T(-7), T(0), lo, T(5)};
  const std::vector<T> b = {T(-1), T(0), T(-1), T(2), T(-2), T(0), T(-1), T(2), T(-1)};
  const std::vector<T> div = {lo, T(0), T(-hi), T(-3), T(-3), T(0), T(0), T(lo / 2), T(-5)};
  const std::vector<T> floor_div = {lo, T(0), T(-hi), T(-4), T(-4), T(0), T(0), T(lo / 2), T(-5)};
  const std::vector<T> mod = {T(0), T(0), T(0), T(1), T(-1), T(0), T(0), T(0), T(0)};
  const kn::Layout l = contiguous({static_cast<i64>(a.size())});
  for (const auto& [op, want] : {std::pair{OpId::Div, div}, std::pair{OpId::FloorDiv, floor_div},
                                 std::pair{OpId::FloorMod, mod}}) {
    INFO("op " << tapeflow::op_name(op));
    std::vector<T> got(a.size()), naive(a.size());
    kn::cpu::binary<T>(op, got.data(), l, a.data(), l, b.data(), l);
    kn::naive::binary<T>(op, naive.data(), l, a.data(), l, b.data(), l);
    CHECK(got == want);
    CHECK(naive == want);
  }
}

template <class T>
void binary_case(OpId op, const Shape& shape) {
  const Domain da = op == OpId::Pow ? Domain::Positive : Domain::Signed;
  View<T> a = make_view<T>(shape, random_opts(true), da);
  View<T> b = make_view<T>(shape, random_opts(true), op == OpId::Pow ? Domain::Small : Domain::Signed);
  if (op == OpId::Div && kFloat<T>)  // keep quotients finite (integer division by 0 gives 0)
    for (auto& v : b.buf) v = v == T(0) ? T(1) : v;
  View<T> out = make_out<T>(shape);
  View<T> ref = out;
  kn::cpu::binary<T>(op, out.data(), out.l, a.data(), a.l, b.data(), b.l);
  kn::naive::binary<T>(op, ref.data(), ref.l, a.data(), a.l, b.data(), b.l);
  INFO("op " << tapeflow::op_name(op) << " a " << describe(a.l) << " b " << describe(b.l) << " out "
             << describe(out.l));
  check_same(out.buf, ref.buf, tol_r<T>(), tol_a<T>());
}

TEMPLATE_TEST_CASE("cpu binary matches naive for every Binary row", "[kernels][binary]", float, double,
                   std::int32_t, std::int64_t) {
  const auto ops = ops_of({OpKind::Binary});
  REQUIRE(ops.size() >= 7);
  for (OpId op : ops) {
    for (int trial = 0; trial < kElementwiseTrials; ++trial) binary_case<TestType>(op, random_shape());
    if (every_case(op, ops)) binary_case<TestType>(op, {517, 613});  // threaded
  }
}

TEST_CASE("cpu binary: scalar and row broadcasts, NaN in maximum/minimum", "[kernels][binary]") {
  const Shape shape = {64, 1000};
  View<float> a = make_view<float>(shape, Opts{false, false, false, false});
  a.buf[5] = std::numeric_limits<float>::quiet_NaN();
  View<float> row;  // [1000] broadcast over the rows
  row.l = contiguous(shape);
  row.l.strides[0] = 0;
  row.buf.resize(1000);
  for (auto& v : row.buf) v = random_value<float>(Domain::Signed);
  row.buf[7] = std::numeric_limits<float>::quiet_NaN();
  View<float> scalar;
  scalar.l = contiguous(shape);
  scalar.l.strides[0] = scalar.l.strides[1] = 0;
  scalar.buf.resize(1);
  scalar.buf[0] = 0.25f;
  for (OpId op : ops_of({OpKind::Binary})) {
    for (int order = 0; order < 4; ++order) {
      const View<float>& x = order % 2 ? row : scalar;
      std::vector<float> got(64000), want(64000);
      const kn::Layout l = contiguous(shape);
      if (order < 2) {
        kn::cpu::binary<float>(op, got.data(), l, a.data(), a.l, x.data(), x.l);
        kn::naive::binary<float>(op, want.data(), l, a.data(), a.l, x.data(), x.l);
      } else {
        kn::cpu::binary<float>(op, got.data(), l, x.data(), x.l, a.data(), a.l);
        kn::naive::binary<float>(op, want.data(), l, x.data(), x.l, a.data(), a.l);
      }
      INFO("op " << tapeflow::op_name(op) << " order " << order);
      check_same(got, want, 1e-6, 1e-7);
    }
  }
}

// [rows, n] inputs of one kind: dense, one repeated row (strides [0, 1]: a bias), one value
// per row ([s, 0] with s = 1, 3 or -1: a column, a strided column, rows in reverse).
enum class RowKind { kDense, kRow, kColumn, kColumnStrided, kColumnReversed };

template <class T>
View<T> row_kind_view(RowKind k, i64 rows, i64 n, Domain dom) {
  View<T> v;
  v.l.rank = 2;
  v.l.shape[0] = rows;
  v.l.shape[1] = n;
  i64 size = rows * n;
  if (k == RowKind::kDense) {
    v.l.strides[0] = n;
    v.l.strides[1] = 1;
  } else if (k == RowKind::kRow) {
    v.l.strides[0] = 0;
    v.l.strides[1] = 1;
    size = n;
  } else {
    const i64 s = k == RowKind::kColumnStrided ? 3 : 1;
    v.l.strides[0] = k == RowKind::kColumnReversed ? -1 : s;
    v.l.strides[1] = 0;
    size = rows > 0 ? (rows - 1) * s + 1 : 0;
    if (k == RowKind::kColumnReversed && rows > 0) v.base = rows - 1;
  }
  v.buf.resize(static_cast<std::size_t>(size));
  for (auto&& x : v.buf) x = random_value<T>(dom);
  return v;
}

// Short rows take a tiled flat loop (cpu_kernels.cpp's binary_short_rows): the same values,
// bit for bit, as the naive loops, for every op, row length around the tile and thread split.
TEMPLATE_TEST_CASE("cpu binary on short rows with a repeated row or a value per row matches naive",
                   "[kernels][binary]", float, double, std::int32_t) {
  using T = TestType;
  ThreadGuard threads;
  const RowKind kinds[] = {RowKind::kDense, RowKind::kRow, RowKind::kColumn, RowKind::kColumnStrided,
                           RowKind::kColumnReversed};
  const std::pair<i64, i64> sizes[] = {{2, 1},  {37, 3},  {37, 16}, {5, 33},  {37, 64},
                                       {9, 255}, {4, 256}, {3000, 32}, {0, 16}, {16, 0}};
  const auto ops = ops_of({OpKind::Binary});
  for (OpId op : ops) {
    if (!every_case(op, ops)) continue;
    const Domain da = op == OpId::Pow ? Domain::Positive : Domain::Signed;
    const Domain db = op == OpId::Pow ? Domain::Small : Domain::Signed;
    for (const auto& [rows, n] : sizes) {
      for (RowKind ka : kinds) {
        for (RowKind kb : kinds) {
          View<T> a = row_kind_view<T>(ka, rows, n, da), b = row_kind_view<T>(kb, rows, n, db);
          if (op == OpId::Div && kFloat<T>)
            for (auto& v : b.buf) v = v == T(0) ? T(1) : v;
          const kn::Layout l = contiguous({rows, n});
          for (int nt : {1, 2}) {
            kn::cpu::set_num_threads(nt);
            std::vector<T> got(static_cast<std::size_t>(rows * n)), want(got.size());
            kn::cpu::binary<T>(op, got.data(), l, a.data(), a.l, b.data(), b.l);
            kn::naive::binary<T>(op, want.data(), l, a.data(), a.l, b.data(), b.l);
            INFO("op " << tapeflow::op_name(op) << " a " << describe(a.l) << " b " << describe(b.l) << ", "
                       << nt << " threads");
            // float32 pow is vectorised as exp(b log a) in double: one ulp from powf at most
            if (op == OpId::Pow && std::is_same_v<T, float>) check_same(got, want, 2e-7, 0);
            else check_same(got, want);
          }
        }
      }
    }
  }
}

// addc, the optimizers' fused update (out = out + value * (a * b) or value * (a / b)), on
// any layout of the three and broadcast inputs: bit for bit the naive loop's values.
TEMPLATE_TEST_CASE("cpu addc matches naive bit for bit", "[kernels][addc]", float, double) {
  using T = TestType;
  ThreadGuard threads;
  for (bool divide : {false, true}) {
    for (int trial = 0; trial < 60; ++trial) {
      const Shape shape = trial == 0 ? Shape{517, 613} : random_shape();  // the first one threaded
      View<T> a = make_view<T>(shape, random_opts(true));
      View<T> b = make_view<T>(shape, random_opts(true));
      for (auto& v : b.buf) v = v == T(0) ? T(1) : v;
      View<T> out = make_out<T>(shape);
      View<T> ref = out;
      const T value = random_value<T>(Domain::Signed);
      kn::cpu::set_num_threads(trial % 2 + 1);
      kn::cpu::addc<T>(divide, out.data(), out.l, a.data(), a.l, b.data(), b.l, value);
      kn::naive::addc<T>(divide, ref.data(), ref.l, a.data(), a.l, b.data(), b.l, value);
      INFO((divide ? "addcdiv" : "addcmul") << " a " << describe(a.l) << " b " << describe(b.l) << " out "
                                            << describe(out.l));
      check_same(out.buf, ref.buf);
    }
  }
}

template <class T>
void compare_case(OpId op, const Shape& shape) {
  View<T> a = make_view<T>(shape, random_opts(true), Domain::Small);
  View<T> b = make_view<T>(shape, random_opts(true), Domain::Small);
  if constexpr (kFloat<T>) {
    if (!a.buf.empty() && coin()) a.buf[static_cast<std::size_t>(rand_int(0, i64(a.buf.size()) - 1))] = std::nan("");
  }
  const bool unary_op = op == OpId::LogicalNot;
  View<bool> out = make_out<bool>(shape);
  View<bool> ref = out;
  const T* bp = unary_op ? a.data() : b.data();
  const kn::Layout& bl = unary_op ? a.l : b.l;
  kn::cpu::compare<T>(op, out.data(), out.l, a.data(), a.l, bp, bl);
  kn::naive::compare<T>(op, ref.data(), ref.l, a.data(), a.l, bp, bl);
  INFO("op " << tapeflow::op_name(op) << " a " << describe(a.l) << " b " << describe(bl));
  check_same(out.buf, ref.buf);
}

TEMPLATE_TEST_CASE("cpu compare matches naive for every Compare and Logical row", "[kernels][compare]",
                   bool, std::int32_t, std::int64_t, float, double) {
  const auto ops = ops_of({OpKind::Compare, OpKind::Logical});
  REQUIRE(ops.size() >= 9);
  for (OpId op : ops) {
    for (int trial = 0; trial < 25; ++trial) compare_case<TestType>(op, random_shape());
    compare_case<TestType>(op, {300, 1001});
  }
}

TEST_CASE("compare results are right on known values", "[kernels][compare]") {
  const std::vector<float> a = {1, 2, 3, std::nanf("")}, b = {2, 2, 2, 2};
  const kn::Layout l = contiguous({4});
  bool out[4];
  kn::cpu::compare<float>(OpId::Less, out, l, a.data(), l, b.data(), l);
  CHECK((out[0] && !out[1] && !out[2] && !out[3]));
  kn::cpu::compare<float>(OpId::NotEqual, out, l, a.data(), l, b.data(), l);
  CHECK((out[0] && !out[1] && out[2] && out[3]));
  const bool p[4] = {true, true, false, false}, q[4] = {true, false, true, false};
  kn::cpu::compare<bool>(OpId::LogicalAnd, out, l, p, l, q, l);
  CHECK((out[0] && !out[1] && !out[2] && !out[3]));
  kn::cpu::compare<bool>(OpId::LogicalOr, out, l, p, l, q, l);
  CHECK((out[0] && out[1] && out[2] && !out[3]));
  kn::cpu::compare<bool>(OpId::LogicalNot, out, l, p, l, p, l);
  CHECK((!out[0] && !out[1] && out[2] && out[3]));
}

TEMPLATE_TEST_CASE("cpu where and fill match naive", "[kernels][where]", bool, std::int32_t,
                   std::int64_t, float, double) {
  using T = TestType;
  for (int trial = 0; trial < 40; ++trial) {
    const Shape shape = trial == 0 ? Shape{400, 700} : random_shape();
    View<bool> c = make_view<bool>(shape, random_opts(true));
    View<T> a = make_view<T>(shape, random_opts(true));
    View<T> b = make_view<T>(shape, random_opts(true));
    View<T> out = make_out<T>(shape);
    View<T> ref = out;
    kn::cpu::where<T>(out.data(), out.l, c.data(), c.l, a.data(), a.l, b.data(), b.l);
    kn::naive::where<T>(ref.data(), ref.l, c.data(), c.l, a.data(), a.l, b.data(), b.l);
    INFO("where out " << describe(out.l));
    check_same(out.buf, ref.buf);
    // dense cond and one operand, the other one value broadcast (where(keep, x, 0.0)), both ways
    View<bool> cd = make_view<bool>(shape, Opts{false, false, false, false});
    View<T> dense = make_view<T>(shape, Opts{false, false, false, false});
    View<T> one = make_view<T>(Shape{1}, Opts{false, false, false, false});
    one.l.rank = static_cast<int>(shape.size());
    for (int d = 0; d < one.l.rank; ++d) {
      one.l.shape[d] = shape[static_cast<std::size_t>(d)];
      one.l.strides[d] = 0;
    }
    View<T> dense_out = make_out<T>(shape);
    for (bool scalar_second : {true, false}) {
      const View<T>& u = scalar_second ? dense : one;
      const View<T>& v = scalar_second ? one : dense;
      View<T> got = dense_out, want = dense_out;
      kn::cpu::where<T>(got.data(), got.l, cd.data(), cd.l, u.data(), u.l, v.data(), v.l);
      kn::naive::where<T>(want.data(), want.l, cd.data(), cd.l, u.data(), u.l, v.data(), v.l);
      INFO("where with a broadcast " << (scalar_second ? "second" : "first") << " operand, out "
                                     << describe(got.l));
      check_same(got.buf, want.buf);
    }
    const T value = random_value<T>(Domain::Signed);
    kn::cpu::fill<T>(out.data(), out.l, value);
    kn::naive::fill<T>(ref.data(), ref.l, value);
    check_same(out.buf, ref.buf);
  }
}

TEST_CASE("cpu copy matches naive for all 25 dtype pairs", "[kernels][copy]") {
  for_each_type<bool, std::int32_t, std::int64_t, float, double>([](auto to) {
    for_each_type<bool, std::int32_t, std::int64_t, float, double>([](auto ti) {
      using TO = decltype(to);
      using TI = decltype(ti);
      for (int trial = 0; trial < 25; ++trial) {
        const Shape shape = trial == 0 ? Shape{600, 501} : random_shape();
        View<TI> in = make_view<TI>(shape, random_opts(true), coin() ? Domain::Small : Domain::Signed);
        View<TO> out = make_out<TO>(shape);
        View<TO> ref = out;
        kn::cpu::copy<TO, TI>(out.data(), out.l, in.data(), in.l);
        kn::naive::copy<TO, TI>(ref.data(), ref.l, in.data(), in.l);
        INFO("copy " << sizeof(TI) << "-byte -> " << sizeof(TO) << "-byte, in " << describe(in.l)
                     << " out " << describe(out.l));
        check_same(out.buf, ref.buf);
      }
    });
  });
}

TEST_CASE("thread pool: every task of every job runs once, as the task count changes between jobs",
          "[kernels][threads]") {
  // A worker a job does not need used to read the next job's task and count late (run() does
  // not wait for it), run that job's task, then run it again on seeing its generation: a task
  // ran twice and another never, or run() waited forever. It takes 3 or more task counts > 2.
  std::vector<std::atomic<int>> count(8);
  long wrong = 0;
  for (int job = 0; job < 5000; ++job) {
    const int n = job % 2 ? 8 : 2 + (job / 2) % 6;
    for (auto& c : count) c.store(0);
    kn::cpu::detail::parallel_for(n, [&](int c) { count[static_cast<std::size_t>(c)].fetch_add(1); });
    for (int c = 0; c < 8; ++c) wrong += count[static_cast<std::size_t>(c)].load() != (c < n ? 1 : 0);
  }
  CHECK(wrong == 0);
}

TEST_CASE("cpu copy of big permuted views (tiled transposes), threaded", "[kernels][copy]") {
  ThreadGuard guard;
  const Shape shape = {6, 301, 203};
  const kn::Layout src = contiguous(shape);
  const int perms[][3] = {{0, 2, 1}, {2, 0, 1}, {1, 2, 0}, {2, 1, 0}};
  std::vector<double> in(static_cast<std::size_t>(src.size()));
  for (auto& v : in) v = random_value<double>(Domain::Signed);
  for (const auto& perm : perms) {
    kn::Layout view;  // in viewed with its axes permuted
    view.rank = 3;
    Shape out_shape(3);
    for (int d = 0; d < 3; ++d) {
      view.shape[d] = src.shape[perm[d]];
      view.strides[d] = src.strides[perm[d]];
      out_shape[static_cast<std::size_t>(d)] = view.shape[d];
    }
    const kn::Layout out_l = contiguous(out_shape);
    for (int threads : {1, 2}) {
      kn::cpu::set_num_threads(threads);
      std::vector<float> got(in.size()), want(in.size());
      kn::cpu::copy<float, double>(got.data(), out_l, in.data(), view);
      kn::naive::copy<float, double>(want.data(), out_l, in.data(), view);
      INFO("perm " << perm[0] << perm[1] << perm[2] << " threads " << threads);
      check_same(got, want);
    }
  }
}

TEST_CASE("copy casts like static_cast", "[kernels][copy]") {
  const std::vector<float> x = {-2.5f, -0.0f, 0.0f, 0.25f, 3.75f};
  const kn::Layout l = contiguous({5});
  std::int32_t i[5];
  bool b[5];
  kn::cpu::copy<std::int32_t, float>(i, l, x.data(), l);
  kn::cpu::copy<bool, float>(b, l, x.data(), l);
  CHECK(std::vector<std::int32_t>(i, i + 5) == std::vector<std::int32_t>{-2, 0, 0, 0, 3});
  CHECK((b[0] && !b[1] && !b[2] && b[3] && b[4]));
}

// ---- reductions ------------------------------------------------------------------------

// out_l for reducing `in_shape` over the axes in mask: the contiguous kept shape, stride 0
// on the reduced axes. Returns the output's element count.
i64 reduce_layout(const Shape& in_shape, unsigned mask, kn::Layout& out_l) {
  const int rank = static_cast<int>(in_shape.size());
  out_l.rank = rank;
  i64 s = 1;
  for (int d = rank - 1; d >= 0; --d) {
    out_l.shape[d] = in_shape[static_cast<std::size_t>(d)];
    if (mask >> d & 1u) {
      out_l.strides[d] = 0;
    } else {
      out_l.strides[d] = s;
      s *= in_shape[static_cast<std::size_t>(d)];
    }
  }
  return s;
}

template <class T>
void reduce_case(OpId op, const View<T>& in_, unsigned mask, double rtol) {
  // float products of the inputs over [-1, 1] (a quarter of them): no overflow, whose onset
  // moves with the order of the factors; results under 1e-30 (1e-290) count as 0
  View<T> in = in_;
  if (op == OpId::Prod && kFloat<T>)
    for (T& v : in.buf) v /= 4;
  kn::Layout out_l;
  const i64 n = reduce_layout(Shape(in.l.shape, in.l.shape + in.l.rank), mask, out_l);
  i64 reduced = 1;
  for (int d = 0; d < in.l.rank; ++d)
    if (mask >> d & 1u) reduced *= in.l.shape[d];
  std::vector<T> got(static_cast<std::size_t>(n), T(7)), want(static_cast<std::size_t>(n), T(9));
  kn::cpu::reduce<T>(op, got.data(), out_l, in.data(), in.l);
  kn::naive::reduce<T>(op, want.data(), out_l, in.data(), in.l);
  INFO("op " << tapeflow::op_name(op) << " in " << describe(in.l) << " axes mask " << mask);
  // float sums: the oracle accumulates in double; allow for the kernel's float partials
  const bool prod = op == OpId::Prod && kFloat<T>;
  const double atol = op == OpId::Sum && kFloat<T> ? rtol * 4.0 * double(reduced)
                      : prod                      ? (std::is_same_v<T, float> ? 1e-30 : 1e-290)
                                                  : 0.0;
  check_same(got, want, op == OpId::Sum || prod ? rtol : 0.0, atol);
}

TEMPLATE_TEST_CASE("cpu reduce matches naive over every subset of axes", "[kernels][reduce]", float,
                   double, std::int32_t, std::int64_t) {
  using T = TestType;
  for (OpId op : {OpId::Sum, OpId::Max, OpId::Min, OpId::Prod}) {
    for (int trial = 0; trial < 12; ++trial) {
      const Shape shape = random_shape(3, 3);
      const View<T> in = make_view<T>(shape, random_opts(true));
      for (unsigned mask = 0; mask < 8; ++mask) reduce_case<T>(op, in, mask, tol_r<T>());
    }
    for (int trial = 0; trial < 40; ++trial) {  // other ranks, random subsets
      const Shape shape = random_shape(0, 4);
      const View<T> in = make_view<T>(shape, random_opts(true));
      const unsigned mask = static_cast<unsigned>(rand_int(0, (1 << shape.size()) - 1));
      reduce_case<T>(op, in, mask, tol_r<T>());
    }
  }
}

TEST_CASE("reduce of an empty axis gives the identity", "[kernels][reduce]") {
  const Shape shape = {3, 0};
  const kn::Layout in_l = contiguous(shape);
  kn::Layout out_l;
  reduce_layout(shape, 2u, out_l);
  for (OpId op : {OpId::Sum, OpId::Max, OpId::Min, OpId::Prod}) {
    float out[3] = {5, 5, 5};
    kn::cpu::reduce<float>(op, out, out_l, nullptr, in_l);
    const float want = op == OpId::Sum    ? 0.0f
                       : op == OpId::Prod ? 1.0f
                       : op == OpId::Max  ? -std::numeric_limits<float>::infinity()
                                          : std::numeric_limits<float>::infinity();
    CHECK((out[0] == want && out[1] == want && out[2] == want));
  }
}

TEST_CASE("reduce max/min propagate NaN", "[kernels][reduce]") {
  for (i64 n : {5, 64, 100000}) {
    std::vector<float> x(static_cast<std::size_t>(n));
    for (auto& v : x) v = random_value<float>(Domain::Signed);
    x[static_cast<std::size_t>(n / 2)] = std::nanf("");
    const kn::Layout in_l = contiguous({n});
    kn::Layout out_l;
    reduce_layout({n}, 1u, out_l);
    for (OpId op : {OpId::Max, OpId::Min, OpId::Sum, OpId::Prod}) {
      float got = 0;
      kn::cpu::reduce<float>(op, &got, out_l, x.data(), in_l);
      CHECK(std::isnan(got));
    }
  }
}

TEMPLATE_TEST_CASE("cpu reduce matches naive with NaN anywhere", "[kernels][reduce]", float, double) {
  using T = TestType;
  for (int trial = 0; trial < 30; ++trial) {
    const Shape shape = trial == 0 ? Shape{300, 41} : random_shape(1, 3, false);
    View<T> in = make_view<T>(shape, random_opts(true));
    for (int j = 0; j < 3 && !in.buf.empty(); ++j)
      in.buf[static_cast<std::size_t>(rand_int(0, i64(in.buf.size()) - 1))] = std::numeric_limits<T>::quiet_NaN();
    for (unsigned mask = 0; mask < (1u << shape.size()); ++mask)
      for (OpId op : {OpId::Sum, OpId::Max, OpId::Min, OpId::Prod}) reduce_case<T>(op, in, mask, tol_r<T>());
  }
}

TEST_CASE("cpu reduce on 1M-element inputs, threaded and not", "[kernels][reduce][large]") {
  ThreadGuard guard;
  // {1027, 1031}: rows that split unevenly between threads and blocks, and leave a remainder
  // after the float32 sum's four-rows-at-a-time passes
  const std::vector<Shape> shapes = {{1 << 20},      {1024, 1024},  {4, 1 << 18}, {1 << 18, 4},
                                     {16, 256, 256}, {3, 349525}, {1027, 1031}};
  for (const Shape& shape : shapes) {
    View<float> in = make_view<float>(shape, Opts{false, false, false, false});
    for (float& v : in.buf) v = static_cast<float>(rand_real(0, 1));
    const unsigned masks = 1u << shape.size();
    for (unsigned mask = 1; mask < masks; ++mask) {
      for (int threads : {1, 2}) {
        kn::cpu::set_num_threads(threads);
        for (OpId op : {OpId::Sum, OpId::Max, OpId::Min, OpId::Prod}) {
          kn::Layout out_l;
          const i64 n = reduce_layout(shape, mask, out_l);
          std::vector<float> got(static_cast<std::size_t>(n)), want(static_cast<std::size_t>(n));
          kn::cpu::reduce<float>(op, got.data(), out_l, in.data(), in.l);
          kn::naive::reduce<float>(op, want.data(), out_l, in.data(), in.l);
          INFO("op " << tapeflow::op_name(op) << " in " << describe(in.l) << " mask " << mask
                     << " threads " << threads);
          check_same(got, want, 2e-6, op == OpId::Prod ? 1e-30 : 0.0);  // long products underflow to 0
        }
      }
    }
  }
  // a transposed view: the reduced axis is the contiguous one, or not
  View<float> t = make_view<float>({1024, 1024}, Opts{false, false, false, false});
  std::swap(t.l.strides[0], t.l.strides[1]);
  for (unsigned mask : {1u, 2u, 3u}) reduce_case<float>(OpId::Sum, t, mask, 1e-5);
}

TEST_CASE("float32 sum of 16M elements stays accurate", "[kernels][reduce][large]") {
  const i64 n = i64(1) << 24;
  std::vector<float> x(static_cast<std::size_t>(n));
  double exact = 0;
  std::mt19937 g(7);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (auto& v : x) {
    v = u(g);
    exact += v;
  }
  const kn::Layout in_l = contiguous({n});
  kn::Layout out_l;
  reduce_layout({n}, 1u, out_l);
  float got = 0;
  kn::cpu::reduce<float>(OpId::Sum, &got, out_l, x.data(), in_l);
  CHECK(std::fabs(got - exact) <= 1e-6 * exact);
  // the same data as [4096, 4096] summed over axis 0 (rows into the output row)
  const Shape shape = {4096, 4096};
  kn::Layout out2;
  reduce_layout(shape, 1u, out2);
  std::vector<float> cols(4096);
  kn::cpu::reduce<float>(OpId::Sum, cols.data(), out2, x.data(), contiguous(shape));
  double total = 0;
  for (float c : cols) total += c;
  CHECK(std::fabs(total - exact) <= 1e-6 * exact);
}

// ---- arg reductions --------------------------------------------------------------------

TEMPLATE_TEST_CASE("cpu arg_reduce matches naive, ties and NaN included", "[kernels][arg_reduce]", float,
                   double, std::int32_t, std::int64_t) {
  using T = TestType;
  for (OpId op : {OpId::ArgMax, OpId::ArgMin}) {
    for (int trial = 0; trial < 60; ++trial) {
      Shape shape = trial < 2 ? Shape{700, 900} : random_shape(1, 4);
      int axis = static_cast<int>(rand_int(0, i64(shape.size()) - 1));
      if (shape[static_cast<std::size_t>(axis)] == 0) shape[static_cast<std::size_t>(axis)] = 3;
      if (trial == 1) shape = {5000, 64};
      if (trial == 2) {  // down the rows of more columns than one block of arg_columns
        shape = {3, 2500};
        axis = 0;
      }
      View<T> in = make_view<T>(shape, random_opts(true), Domain::Small);
      if constexpr (kFloat<T>) {
        if (coin(0.3) && !in.buf.empty())
          for (int j = 0; j < 3; ++j) in.buf[static_cast<std::size_t>(rand_int(0, i64(in.buf.size()) - 1))] = std::nan("");
      }
      i64 n = 1;
      for (std::size_t d = 0; d < shape.size(); ++d)
        if (int(d) != axis) n *= shape[d];
      std::vector<i64> got(static_cast<std::size_t>(n), -1), want(static_cast<std::size_t>(n), -2);
      kn::cpu::arg_reduce<T>(op, got.data(), in.data(), in.l, axis);
      kn::naive::arg_reduce<T>(op, want.data(), in.data(), in.l, axis);
      INFO("op " << tapeflow::op_name(op) << " in " << describe(in.l) << " axis " << axis);
      check_same(got, want);
    }
  }
}

TEST_CASE("arg_reduce picks the first extreme and NaN wins", "[kernels][arg_reduce]") {
  const float nan = std::nanf("");
  // [2, 4]: along axis 1
  const std::vector<float> x = {1, 3, 3, 0, 2, nan, 5, nan};
  const kn::Layout l = contiguous({2, 4});
  i64 out[4];
  kn::cpu::arg_reduce<float>(OpId::ArgMax, out, x.data(), l, 1);
  CHECK((out[0] == 1 && out[1] == 1));
  kn::cpu::arg_reduce<float>(OpId::ArgMin, out, x.data(), l, 1);
  CHECK((out[0] == 3 && out[1] == 1));
  kn::cpu::arg_reduce<float>(OpId::ArgMax, out, x.data(), l, 0);
  CHECK((out[0] == 1 && out[1] == 1 && out[2] == 1 && out[3] == 1));
  kn::naive::arg_reduce<float>(OpId::ArgMax, out, x.data(), l, 0);
  CHECK((out[0] == 1 && out[1] == 1 && out[2] == 1 && out[3] == 1));
}

// ---- argsort ---------------------------------------------------------------------------

TEMPLATE_TEST_CASE("cpu argsort matches naive: stable, ties and NaN, every layout, threads", "[kernels][argsort]",
                   float, double, std::int32_t, std::int64_t) {
  using T = TestType;
  for (int trial = 0; trial < 40; ++trial) {
    Shape shape = random_shape(1, 4);
    int axis = static_cast<int>(rand_int(0, i64(shape.size()) - 1));
    if (trial < 2) {  // rows cut over the pool's threads (n log n work above kParallelMin)
      shape = trial == 0 ? Shape{512, 200} : Shape{200, 512};
      axis = 1 - trial;
    }
    View<T> in = make_view<T>(shape, random_opts(true), Domain::Small);
    if constexpr (kFloat<T>) {
      if (coin(0.5) && !in.buf.empty())
        for (int j = 0; j < 5; ++j) in.buf[static_cast<std::size_t>(rand_int(0, i64(in.buf.size()) - 1))] = std::nan("");
    }
    i64 n = 1;
    for (i64 d : shape) n *= d;
    for (bool descending : {false, true}) {
      std::vector<i64> got(static_cast<std::size_t>(n), -1), want(static_cast<std::size_t>(n), -2);
      kn::cpu::argsort<T>(got.data(), in.data(), in.l, axis, descending);
      kn::naive::argsort<T>(want.data(), in.data(), in.l, axis, descending);
      INFO("in " << describe(in.l) << " axis " << axis << (descending ? " descending" : ""));
      check_same(got, want);
    }
  }
}

TEST_CASE("argsort: stable both ways, NaN largest", "[kernels][argsort]") {
  const float nan = std::nanf("");
  // [2, 4]: along axis 1, and along axis 0 (columns)
  const std::vector<float> x = {1, nan, 1, 0, 2, 2, nan, -1};
  const kn::Layout l = contiguous({2, 4});
  for (bool naive : {false, true}) {
    INFO((naive ? "naive" : "cpu"));
    auto run = [&](int axis, bool descending) {
      std::vector<i64> out(8, -1);
      if (naive) kn::naive::argsort<float>(out.data(), x.data(), l, axis, descending);
      else kn::cpu::argsort<float>(out.data(), x.data(), l, axis, descending);
      return out;
    };
    CHECK(run(1, false) == std::vector<i64>{3, 0, 2, 1, 3, 0, 1, 2});
    CHECK(run(1, true) == std::vector<i64>{1, 0, 2, 3, 2, 0, 1, 3});
    CHECK(run(0, false) == std::vector<i64>{0, 1, 0, 1, 1, 0, 1, 0});
    CHECK(run(0, true) == std::vector<i64>{1, 0, 1, 0, 0, 1, 0, 1});
  }
}

// ---- matmul ----------------------------------------------------------------------------

// A matrix operand [batch..., rows, cols]: random matrix strides (transposed, padded,
// negative, or broadcast rows/cols), batch axes stride 0 where bcast[d].
template <class T>
View<T> make_matrix(const Shape& batch, i64 rows, i64 cols, const std::vector<bool>& bcast) {
  Shape shape = batch;
  shape.push_back(rows);
  shape.push_back(cols);
  Opts o;
  o.broadcast = false;
  View<T> v = make_view<T>(shape, o, Domain::Small);
  for (std::size_t d = 0; d < batch.size(); ++d)
    if (bcast[d]) v.l.strides[d] = 0;
  if (coin(0.1) && v.l.rank >= 2) v.l.strides[v.l.rank - 1 - int(rand_int(0, 1))] = 0;  // a broadcast matrix axis
  for (auto& x : v.buf) x = random_value<T>(Domain::Signed);
  return v;
}

template <class T>
void matmul_case(const Shape& batch, i64 m, i64 k, i64 n, std::vector<bool> a_b, std::vector<bool> b_b) {
  const View<T> a = make_matrix<T>(batch, m, k, a_b);
  const View<T> b = make_matrix<T>(batch, k, n, b_b);
  i64 out_n = m * n;
  for (i64 d : batch) out_n *= d;
  std::vector<T> got(static_cast<std::size_t>(out_n), T(3)), want(static_cast<std::size_t>(out_n), T(4));
  kn::cpu::matmul<T>(got.data(), a.data(), a.l, b.data(), b.l);
  kn::naive::matmul<T>(want.data(), a.data(), a.l, b.data(), b.l);
  INFO("a " << describe(a.l) << " b " << describe(b.l));
  const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  check_same(got, want, rtol, rtol * 20.0 * double(k));
}

TEMPLATE_TEST_CASE("cpu matmul matches naive: transposed, strided, broadcast batches", "[kernels][matmul]",
                   float, double, std::int32_t, std::int64_t) {
  using T = TestType;
  static const i64 dims[] = {0, 1, 1, 2, 3, 5, 8, 16, 33, 70};
  for (int trial = 0; trial < 150; ++trial) {
    const int nb = static_cast<int>(rand_int(0, 2));
    Shape batch(static_cast<std::size_t>(nb));
    std::vector<bool> a_b(static_cast<std::size_t>(nb)), b_b(static_cast<std::size_t>(nb));
    for (int d = 0; d < nb; ++d) {
      batch[static_cast<std::size_t>(d)] = rand_int(1, 4);
      a_b[static_cast<std::size_t>(d)] = coin(0.3);
      b_b[static_cast<std::size_t>(d)] = coin(0.3);
    }
    if (nb > 0 && coin(0.05)) batch[0] = 0;
    matmul_case<T>(batch, dims[rand_int(0, 9)], dims[rand_int(0, 9)], dims[rand_int(0, 9)], a_b, b_b);
  }
  // b shared by the whole batch (one gemm over batch * m rows), and big enough for threads
  matmul_case<T>({4, 3}, 17, 33, 9, {false, false}, {true, true});
  matmul_case<T>({2}, 130, 257, 96, {false}, {false});
  matmul_case<T>({64}, 8, 8, 8, {false}, {false});
  // many small gemms: split over threads, OpenBLAS on one thread each
  ThreadGuard guard;
  kn::cpu::set_num_threads(2);
  matmul_case<T>({300}, 16, 24, 16, {false}, {false});
  matmul_case<T>({20, 15}, 16, 24, 16, {false, true}, {true, false});
}

TEST_CASE("matmul computes a known product", "[kernels][matmul]") {
  const std::vector<double> a = {1, 2, 3, 4, 5, 6};  // [2, 3]
  const std::vector<double> b = {1, 0, 0, 1, 1, 1};  // [3, 2]
  const Shape sa = {2, 3}, sb = {3, 2};
  std::vector<double> c(4);
  kn::cpu::matmul<double>(c.data(), a.data(), contiguous(sa), b.data(), contiguous(sb));
  CHECK(c == std::vector<double>{4, 5, 10, 11});
  // a^T as a view: [3, 2] with strides (1, 3)
  kn::Layout at = contiguous({3, 2});
  at.strides[0] = 1;
  at.strides[1] = 3;
  kn::Layout bt = contiguous({2, 3});  // b viewed as [2, 3] with strides (1, 2)
  bt.strides[0] = 1;
  bt.strides[1] = 2;
  std::vector<double> d(9), e(9);
  kn::cpu::matmul<double>(d.data(), a.data(), at, b.data(), bt);
  kn::naive::matmul<double>(e.data(), a.data(), at, b.data(), bt);
  CHECK(d == e);
  CHECK(d[0] == 1 + 4 * 0);  // a^T[0] = (1, 4), b^T[:, 0] = (1, 0)
}

// ---- gather / scatter_add --------------------------------------------------------------

// out_of_range: about a quarter of the indices lie outside [0, len) (gather gives 0 there,
// scatter_add drops them: kernel_api.inc).
template <class T>
void gather_scatter_case(bool scatter, bool out_of_range = false, OpId combine = OpId::Add) {
  Shape shape = random_shape(1, 3);  // S, the index shape
  const int axis = static_cast<int>(rand_int(0, i64(shape.size()) - 1));
  const i64 len = rand_int(1, 6);  // the source (gather) or destination (scatter) length
  Shape other = shape;
  other[static_cast<std::size_t>(axis)] = len;
  View<i64> idx = make_view<i64>(shape, random_opts(true));
  for (auto& v : idx.buf) {
    v = rand_int(0, len - 1);
    if (out_of_range && rand_int(0, 3) == 0) v = coin() ? -rand_int(1, 1000) : len + rand_int(0, 1000);
  }
  if (!scatter) {
    View<T> in = make_view<T>(other, random_opts(true));
    View<T> out = make_out<T>(shape);
    View<T> ref = out;
    kn::cpu::gather<T>(out.data(), out.l, in.data(), in.l, idx.data(), idx.l, axis);
    kn::naive::gather<T>(ref.data(), ref.l, in.data(), in.l, idx.data(), idx.l, axis);
    INFO("gather in " << describe(in.l) << " idx " << describe(idx.l) << " axis " << axis);
    check_same(out.buf, ref.buf);
  } else {
    if constexpr (!std::is_same_v<T, bool>) {
      View<T> src = make_view<T>(shape, random_opts(true));  // integer values: sums exact in any order
      View<T> out = make_out<T>(other);
      View<T> ref = out;
      if (combine == OpId::Add) kn::cpu::scatter_add<T>(out.data(), out.l, src.data(), src.l, idx.data(), idx.l, axis);
      else kn::cpu::scatter_reduce<T>(combine, out.data(), out.l, src.data(), src.l, idx.data(), idx.l, axis);
      kn::naive::scatter_reduce<T>(combine, ref.data(), ref.l, src.data(), src.l, idx.data(), idx.l, axis);
      INFO("scatter " << tapeflow::op_name(combine) << " out " << describe(out.l) << " idx " << describe(idx.l)
                      << " axis " << axis);
      check_same(out.buf, ref.buf);
    }
  }
}

TEMPLATE_TEST_CASE("cpu gather matches naive", "[kernels][gather]", bool, std::int32_t, std::int64_t, float,
                   double) {
  for (int trial = 0; trial < 60; ++trial) gather_scatter_case<TestType>(false);
}

// A batch's take of whole rows (one index per row, broadcast along it): the rows are copied
// as runs. Rows of any stride (padded, reversed), repeated indices, against naive.
TEMPLATE_TEST_CASE("cpu gather of whole rows (take along axis 0) matches naive", "[kernels][gather]", bool, float,
                   double, std::int64_t) {
  using T = TestType;
  const i64 rows = 50, cols = 37, batch = 23;
  for (i64 row_step : {cols, cols + 5, -cols}) {
    Buffer<T> buf;  // (std::vector<bool> has no data())
    buf.resize(static_cast<std::size_t>(rows * (cols + 5)));
    for (auto& v : buf) v = random_value<T>(Domain::Signed);
    kn::Layout in_l;
    in_l.rank = 2;
    in_l.shape[0] = rows;
    in_l.shape[1] = cols;
    in_l.strides[0] = row_step;
    in_l.strides[1] = 1;
    const T* first = buf.data() + (row_step < 0 ? (rows - 1) * cols : 0);
    std::vector<i64> idx(static_cast<std::size_t>(batch));
    for (auto& v : idx) v = rand_int(0, rows - 1);
    idx[1] = idx[0];  // a repeated row
    kn::Layout idx_l = contiguous({batch, cols});
    idx_l.strides[0] = 1;
    idx_l.strides[1] = 0;  // one index per output row
    const kn::Layout out_l = contiguous({batch, cols});
    Buffer<T> got, want;
    got.resize(static_cast<std::size_t>(batch * cols));
    want.resize(got.size());
    kn::cpu::gather<T>(got.data(), out_l, first, in_l, idx.data(), idx_l, 0);
    kn::naive::gather<T>(want.data(), out_l, first, in_l, idx.data(), idx_l, 0);
    INFO("row step " << row_step);
    check_same(got, want);
  }
}

TEMPLATE_TEST_CASE("cpu scatter_add matches naive, duplicates accumulate", "[kernels][scatter]",
                   std::int32_t, std::int64_t, float, double) {
  for (int trial = 0; trial < 60; ++trial) gather_scatter_case<TestType>(true);
  // every source element to index 0: out[0] += 1 + 2 + 3
  const std::vector<TestType> src = {1, 2, 3};
  const std::vector<i64> idx = {0, 0, 0};
  std::vector<TestType> out = {10, 20};
  kn::cpu::scatter_add<TestType>(out.data(), contiguous({2}), src.data(), contiguous({3}), idx.data(),
                                 contiguous({3}), 0);
  CHECK((out[0] == TestType(16) && out[1] == TestType(20)));
}

TEMPLATE_TEST_CASE("cpu scatter_reduce (maximum, minimum) matches naive, out of range dropped", "[kernels][scatter]",
                   std::int32_t, std::int64_t, float, double) {
  using T = TestType;
  for (OpId op : {OpId::Maximum, OpId::Minimum})
    for (int trial = 0; trial < 30; ++trial) gather_scatter_case<T>(true, trial % 3 == 0, op);
  // [1, 7, 3] at [1, 1, 5] into [4, 2]: index 5 is dropped; max keeps 4 and 7, min 4 and 1
  const std::vector<T> src = {1, 7, 3};
  const std::vector<i64> idx = {1, 1, 5};
  std::vector<T> hi = {4, 2}, lo = {4, 2};
  kn::cpu::scatter_reduce<T>(OpId::Maximum, hi.data(), contiguous({2}), src.data(), contiguous({3}), idx.data(),
                             contiguous({3}), 0);
  kn::cpu::scatter_reduce<T>(OpId::Minimum, lo.data(), contiguous({2}), src.data(), contiguous({3}), idx.data(),
                             contiguous({3}), 0);
  CHECK(hi == std::vector<T>{4, 7});
  CHECK(lo == std::vector<T>{4, 1});
  if constexpr (std::is_floating_point_v<T>) {  // NaN propagates, as maximum's
    const std::vector<T> nan_src = {std::numeric_limits<T>::quiet_NaN(), 0};
    std::vector<T> y = {4, 2};
    kn::cpu::scatter_reduce<T>(OpId::Maximum, y.data(), contiguous({2}), nan_src.data(), contiguous({2}), idx.data(),
                               contiguous({2}), 0);
    CHECK(y[0] == T(4));
    CHECK(std::isnan(y[1]));
  }
  CHECK_THROWS_AS(kn::cpu::scatter_reduce<T>(OpId::Mul, hi.data(), contiguous({2}), src.data(), contiguous({3}),
                                             idx.data(), contiguous({3}), 0),
                  std::invalid_argument);
}

// The core checks the indices users give; the ones it trusts (a tape's, argsort's) skip that
// check, so the kernels themselves never go outside their tensors.
TEMPLATE_TEST_CASE("cpu gather gives 0 and scatter_add drops an index out of range, as naive", "[kernels][gather]",
                   std::int32_t, float, double) {
  using T = TestType;
  for (int trial = 0; trial < 30; ++trial) {
    gather_scatter_case<T>(false, true);
    gather_scatter_case<T>(true, true);
  }
  // worked by hand: in [10, 20, 30] at [2, -1, 3, 0] -> [30, 0, 0, 10]
  const std::vector<T> in = {10, 20, 30};
  const std::vector<i64> at = {2, -1, 3, 0};
  std::vector<T> got(4), want(4);
  kn::cpu::gather<T>(got.data(), contiguous({4}), in.data(), contiguous({3}), at.data(), contiguous({4}), 0);
  kn::naive::gather<T>(want.data(), contiguous({4}), in.data(), contiguous({3}), at.data(), contiguous({4}), 0);
  CHECK(got == std::vector<T>{30, 0, 0, 10});
  CHECK(want == got);
  // whole rows (one index per row, the copied-run path): rows 1, 7 (outside), 0 of [2, 3]
  const std::vector<T> m = {1, 2, 3, 4, 5, 6};
  const std::vector<i64> rows = {1, 7, 0};
  kn::Layout idx_l = contiguous({3, 3});
  idx_l.strides[0] = 1;
  idx_l.strides[1] = 0;  // one index per output row
  std::vector<T> r(9), rn(9);
  kn::cpu::gather<T>(r.data(), contiguous({3, 3}), m.data(), contiguous({2, 3}), rows.data(), idx_l, 0);
  kn::naive::gather<T>(rn.data(), contiguous({3, 3}), m.data(), contiguous({2, 3}), rows.data(), idx_l, 0);
  CHECK(r == std::vector<T>{4, 5, 6, 0, 0, 0, 1, 2, 3});
  CHECK(rn == r);
  // scatter_add of [1, 2, 3] at [1, 5, -1] into [0, 0]: only the 1 lands
  const std::vector<T> src = {1, 2, 3};
  const std::vector<i64> to = {1, 5, -1};
  std::vector<T> out = {0, 0}, ref = {0, 0};
  kn::cpu::scatter_add<T>(out.data(), contiguous({2}), src.data(), contiguous({3}), to.data(), contiguous({3}), 0);
  kn::naive::scatter_add<T>(ref.data(), contiguous({2}), src.data(), contiguous({3}), to.data(), contiguous({3}), 0);
  CHECK(out == std::vector<T>{0, 1});
  CHECK(ref == out);
}

// ---- im2col / col2im ---------------------------------------------------------------------

// Random windows over [b, h, w, c]: any kernel size, stride, dilation (when `dilated`; the
// pooling kernels take none) and padding before and after (the windows may hang over every
// edge, or leave rows and columns unread).
kn::Window2d random_window(i64 h, i64 w, bool dilated = false) {
  kn::Window2d win;
  win.kh = rand_int(1, 4);
  win.kw = rand_int(1, 4);
  win.stride = rand_int(1, 3);
  win.dilation = dilated ? rand_int(1, 3) : 1;
  const i64 span_h = (win.kh - 1) * win.dilation + 1, span_w = (win.kw - 1) * win.dilation + 1;
  win.pad_top = rand_int(0, span_h - 1);
  win.pad_left = rand_int(0, span_w - 1);
  const i64 rows = h + win.pad_top + rand_int(0, span_h - 1) - span_h;
  const i64 cols = w + win.pad_left + rand_int(0, span_w - 1) - span_w;
  win.oh = rows < 0 ? 0 : rows / win.stride + 1;
  win.ow = cols < 0 ? 0 : cols / win.stride + 1;
  return win;
}

template <class T>
void im2col_case(const Shape& image, const kn::Window2d& win) {
  const Shape cols_shape{image[0], win.oh, win.ow, win.kh * win.kw, image[3]};
  INFO("image [" << image[0] << ", " << image[1] << ", " << image[2] << ", " << image[3] << "] windows " << win.kh
                 << "x" << win.kw << " stride " << win.stride << " dilation " << win.dilation << " pad "
                 << win.pad_top << ", " << win.pad_left << " -> " << win.oh << "x" << win.ow);
  i64 n_cols = 1, n_image = 1;
  for (i64 d : cols_shape) n_cols *= d;
  for (i64 d : image) n_image *= d;
  const T fill = static_cast<T>(-7);
  {
    View<T> in = make_view<T>(image, random_opts(true));
    Buffer<T> out, ref;  // every element written: start from values the kernels never produce
    out.resize(static_cast<std::size_t>(n_cols));
    for (auto& v : out) v = static_cast<T>(99);
    ref = out;
    kn::cpu::im2col<T>(out.data(), in.data(), in.l, win, fill);
    kn::naive::im2col<T>(ref.data(), in.data(), in.l, win, fill);
    INFO("im2col in " << describe(in.l));
    check_same(out, ref);
  }
  {
    View<T> in = make_view<T>(cols_shape, random_opts(true));
    Buffer<T> out, ref;
    out.resize(static_cast<std::size_t>(n_image));
    for (auto& v : out) v = static_cast<T>(99);
    ref = out;
    const kn::Layout out_l = contiguous(image);
    kn::cpu::col2im<T>(out.data(), out_l, in.data(), in.l, win);
    kn::naive::col2im<T>(ref.data(), out_l, in.data(), in.l, win);
    INFO("col2im in " << describe(in.l));
    check_same(out, ref);  // the same additions in the same order: equal to the last bit
  }
}

template <class T>
void pool_case(const Shape& image, const kn::Window2d& win, Domain dom) {
  INFO("image [" << image[0] << ", " << image[1] << ", " << image[2] << ", " << image[3] << "] windows " << win.kh
                 << "x" << win.kw << " stride " << win.stride << " pad " << win.pad_top << ", " << win.pad_left
                 << " -> " << win.oh << "x" << win.ow);
  const Shape pooled{image[0], win.oh, win.ow, image[3]};
  i64 n_pooled = 1, n_image = 1;
  for (i64 d : pooled) n_pooled *= d;
  for (i64 d : image) n_image *= d;
  View<T> x = make_view<T>(image, random_opts(true), dom);
  if constexpr (kFloat<T>) {
    if (coin(0.3)) {
      for (std::size_t k = 0; k < x.buf.size(); k += 7) x.buf[k] = std::numeric_limits<T>::quiet_NaN();
    }
  }
  View<T> other = make_view<T>(image, random_opts(true));
  const bool same = coin();  // max pooling: v is x itself
  const T* vp = same ? x.data() : other.data();
  const kn::Layout& vl = same ? x.l : other.l;
  {
    Buffer<T> out, ref;
    out.resize(static_cast<std::size_t>(n_pooled));
    for (auto& e : out) e = static_cast<T>(99);
    ref = out;
    kn::cpu::pool_select<T>(out.data(), x.data(), x.l, vp, vl, win);
    kn::naive::pool_select<T>(ref.data(), x.data(), x.l, vp, vl, win);
    INFO("pool_select x " << describe(x.l) << (same ? " v = x" : " v ") << describe(vl));
    check_same(out, ref);
  }
  {
    const View<T> g = make_view<T>(pooled, random_opts(true));
    Buffer<T> out, ref;
    out.resize(static_cast<std::size_t>(n_image));
    for (auto& e : out) e = static_cast<T>(99);
    ref = out;
    kn::cpu::pool_scatter<T>(out.data(), x.data(), x.l, g.data(), g.l, win);
    kn::naive::pool_scatter<T>(ref.data(), x.data(), x.l, g.data(), g.l, win);
    INFO("pool_scatter x " << describe(x.l) << " g " << describe(g.l));
    check_same(out, ref);  // the same additions in the same order
  }
}

TEMPLATE_TEST_CASE("cpu pool_select and pool_scatter match naive: ties, NaN, any window and layout",
                   "[kernels][pool]", std::int32_t, std::int64_t, float, double) {
  static const i64 channels[] = {1, 2, 3, 5, 70};  // 70: more than one block of channels
  for (int trial = 0; trial < 80; ++trial) {
    const Shape image{rand_int(1, 3), rand_int(1, 9), rand_int(1, 9), channels[rand_int(0, 4)]};
    pool_case<TestType>(image, random_window(image[1], image[2]), coin() ? Domain::Small : Domain::Signed);
  }
  kn::Window2d win;
  win.kh = win.kw = 3;
  win.oh = win.ow = 2;
  pool_case<TestType>({0, 4, 4, 2}, win, Domain::Small);
  pool_case<TestType>({2, 4, 4, 0}, win, Domain::Small);
}

TEST_CASE("cpu pool_select and pool_scatter split over threads match naive", "[kernels][pool][threads]") {
  ThreadGuard guard;
  for (int threads : {1, 2, 3}) {
    kn::cpu::set_num_threads(threads);
    kn::Window2d win;
    win.kh = win.kw = win.stride = 2;
    win.oh = win.ow = 13;  // the convnet's first pooling
    pool_case<float>({16, 26, 26, 32}, win, Domain::Small);
    win.kh = win.kw = 3;
    win.stride = 1;
    win.pad_top = win.pad_left = 1;
    win.oh = win.ow = 20;  // overlapping windows: a pixel can be selected by several
    pool_case<double>({5, 20, 20, 9}, win, Domain::Small);
  }
}

TEST_CASE("pool_select and pool_scatter on known values: the first maximum wins", "[kernels][pool]") {
  // [1, 2, 4, 1]: windows {1 5 | 5 0} and {2 2 | 7 7}: firsts at (0, 1) and (1, 2)
  const std::vector<float> x = {1, 5, 2, 2, 5, 0, 7, 7};
  kn::Window2d win;
  win.kh = win.kw = win.stride = 2;
  win.oh = 1;
  win.ow = 2;
  std::vector<float> y(2);
  kn::cpu::pool_select<float>(y.data(), x.data(), contiguous({1, 2, 4, 1}), x.data(), contiguous({1, 2, 4, 1}), win);
  CHECK(y == std::vector<float>{5, 7});
  const std::vector<float> g = {10, 20};
  std::vector<float> dx(8, -1.0f);
  kn::cpu::pool_scatter<float>(dx.data(), x.data(), contiguous({1, 2, 4, 1}), g.data(), contiguous({1, 1, 2, 1}), win);
  CHECK(dx == std::vector<float>{0, 10, 0, 0, 0, 0, 20, 0});
  // NaN wins over every number, the first NaN over later ones
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> xn = {1, 9, nan, 3, nan, 8, 4, nan};
  kn::cpu::pool_scatter<float>(dx.data(), xn.data(), contiguous({1, 2, 4, 1}), g.data(), contiguous({1, 1, 2, 1}),
                               win);
  CHECK(dx == std::vector<float>{0, 0, 20, 0, 10, 0, 0, 0});
}

TEMPLATE_TEST_CASE("cpu im2col and col2im match naive: any window, stride, padding and layout",
                   "[kernels][im2col]", std::int32_t, std::int64_t, float, double) {
  static const i64 channels[] = {1, 2, 3, 5, 32};
  for (int trial = 0; trial < 80; ++trial) {
    const Shape image{rand_int(1, 3), rand_int(1, 9), rand_int(1, 9), channels[rand_int(0, 4)]};
    im2col_case<TestType>(image, random_window(image[1], image[2], true));
  }
  // size-0 batch and channels, and windows that read no pixel at all
  kn::Window2d win;
  win.kh = win.kw = 3;
  win.oh = win.ow = 2;
  im2col_case<TestType>({0, 4, 4, 2}, win);
  im2col_case<TestType>({2, 4, 4, 0}, win);
  win.kh = win.kw = 1;
  win.stride = 3;
  win.pad_top = win.pad_left = 0;
  win.oh = win.ow = 2;
  im2col_case<TestType>({1, 5, 5, 2}, win);  // rows and columns 1, 2 and 4 never read: col2im gives 0
}

TEST_CASE("cpu im2col and col2im split over threads match naive", "[kernels][im2col][threads]") {
  ThreadGuard guard;
  for (int threads : {1, 2, 3}) {
    kn::cpu::set_num_threads(threads);
    kn::Window2d win;
    win.kh = win.kw = 3;
    win.pad_top = win.pad_left = 1;
    win.oh = win.ow = 30;  // same padding on [30, 30]
    im2col_case<float>({8, 30, 30, 32}, win);
    im2col_case<float>({8, 30, 30, 1}, win);  // a first layer's few channels (the short copies)
    im2col_case<std::int32_t>({8, 30, 30, 3}, win);
    win.kh = win.kw = 2;
    win.stride = 2;
    win.pad_top = win.pad_left = 0;
    win.oh = win.ow = 15;  // max pooling's windows
    im2col_case<double>({9, 30, 30, 17}, win);
    win.kh = win.kw = 3;
    win.stride = 1;
    win.dilation = 2;
    win.pad_top = win.pad_left = 2;
    win.oh = win.ow = 30;  // a dilated convolution, same padding
    im2col_case<float>({8, 30, 30, 3}, win);
    im2col_case<float>({4, 30, 30, 32}, win);
  }
}

TEST_CASE("im2col and col2im on known values", "[kernels][im2col]") {
  // [1, 3, 3, 1] image 1..9, 2x2 windows, stride 1, no padding: windows
  // {1 2 4 5} {2 3 5 6} {4 5 7 8} {5 6 8 9}
  const std::vector<float> img = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  kn::Window2d win;
  win.kh = win.kw = 2;
  win.oh = win.ow = 2;
  std::vector<float> cols(16);
  kn::cpu::im2col<float>(cols.data(), img.data(), contiguous({1, 3, 3, 1}), win, 0.0f);
  CHECK(cols == std::vector<float>{1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9});
  // col2im of all-ones windows counts how many windows read each pixel
  const std::vector<float> ones(16, 1.0f);
  std::vector<float> counts(9, -1.0f);
  kn::cpu::col2im<float>(counts.data(), contiguous({1, 3, 3, 1}), ones.data(), contiguous({1, 2, 2, 4, 1}), win);
  CHECK(counts == std::vector<float>{1, 2, 1, 2, 4, 2, 1, 2, 1});
  // padding 1 before, stride 2: window (0, 0) covers rows -1..0 and columns -1..0
  win.stride = 2;
  win.pad_top = win.pad_left = 1;
  std::vector<float> padded(16);
  kn::cpu::im2col<float>(padded.data(), img.data(), contiguous({1, 3, 3, 1}), win, -1.0f);
  CHECK(padded == std::vector<float>{-1, -1, -1, 1, -1, -1, 2, 3, -1, 4, -1, 7, 5, 6, 8, 9});
}

// ---- random ----------------------------------------------------------------------------

template <class T>
double mean_of(const std::vector<T>& x) {
  double s = 0;
  for (T v : x) s += v;
  return s / double(x.size());
}
template <class T>
double std_of(const std::vector<T>& x) {
  const double m = mean_of(x);
  double s = 0;
  for (T v : x) s += (v - m) * (v - m);
  return std::sqrt(s / double(x.size()));
}

TEMPLATE_TEST_CASE("uniform and normal: cpu equals naive, any split, right moments", "[kernels][random]",
                   float, double) {
  using T = TestType;
  ThreadGuard guard;
  const i64 n = 1 << 20;
  const std::uint64_t seed = 0x1234abcdULL, offset = 77;
  std::vector<T> u_cpu(n), u_naive(n), u_part(1000), n_cpu(n), n_naive(n);
  kn::cpu::uniform<T>(u_cpu.data(), n, seed, offset, -1.0, 3.0);
  kn::naive::uniform<T>(u_naive.data(), n, seed, offset, -1.0, 3.0);
  CHECK(std::memcmp(u_cpu.data(), u_naive.data(), sizeof(T) * std::size_t(n)) == 0);
  kn::cpu::uniform<T>(u_part.data(), 1000, seed, offset + 5000, -1.0, 3.0);
  CHECK(std::equal(u_part.begin(), u_part.end(), u_cpu.begin() + 5000));
  CHECK(*std::min_element(u_cpu.begin(), u_cpu.end()) >= T(-1));
  CHECK(*std::max_element(u_cpu.begin(), u_cpu.end()) < T(3));
  CHECK(mean_of(u_cpu) == Approx(1.0).margin(0.01));
  CHECK(std_of(u_cpu) == Approx(4.0 / std::sqrt(12.0)).epsilon(0.01));

  kn::cpu::set_num_threads(1);
  kn::cpu::normal<T>(n_cpu.data(), n, seed, offset, 2.0, 0.5);
  kn::naive::normal<T>(n_naive.data(), n, seed, offset, 2.0, 0.5);
  CHECK(std::memcmp(n_cpu.data(), n_naive.data(), sizeof(T) * std::size_t(n)) == 0);
  kn::cpu::set_num_threads(2);
  std::vector<T> n_threaded(n);
  kn::cpu::normal<T>(n_threaded.data(), n, seed, offset, 2.0, 0.5);
  CHECK(n_threaded == n_cpu);
  CHECK(mean_of(n_cpu) == Approx(2.0).margin(0.005));
  CHECK(std_of(n_cpu) == Approx(0.5).epsilon(0.01));

  std::vector<T> other(1000);
  kn::cpu::normal<T>(other.data(), 1000, seed + 1, offset, 2.0, 0.5);
  CHECK_FALSE(std::equal(other.begin(), other.end(), n_cpu.begin()));
  kn::cpu::uniform<T>(other.data(), 0, seed, offset, 0.0, 1.0);  // n = 0 writes nothing
  kn::cpu::uniform<T>(other.data(), 10, seed, offset, 2.0, 2.0);
  CHECK(std::all_of(other.begin(), other.begin() + 10, [](T v) { return v == T(2); }));
}

TEST_CASE("uniform float32 never returns high", "[kernels][random]") {
  // In [1, 2), low + (high - low) * u rounds to 2.0f when u = 1 - 2^-24: find such a counter
  // (about one in 2^24) and draw it.
  std::uint64_t counter = 0;
  const std::uint64_t seed = 99;
  while ((kn::philox4x32_10(counter, seed).v[0] >> 8) != 0xFFFFFFu) ++counter;
  float want = 0;
  kn::naive::uniform<float>(&want, 1, seed, counter, 1.0, 2.0);
  CHECK(want == std::nextafter(2.0f, 1.0f));
  for_each_isa([&] {
    float got[3] = {0, 0, 0};  // the counter first, then in the middle of a batch
    kn::cpu::uniform<float>(got, 1, seed, counter, 1.0, 2.0);
    kn::cpu::uniform<float>(got + 1, 2, seed, counter - 1, 1.0, 2.0);
    CHECK(got[0] == want);
    CHECK(got[2] == want);
  });
}

TEMPLATE_TEST_CASE("uniform: batched Philox on every instruction set equals uniform_at bit for bit",
                   "[kernels][random]", float, double) {
  // simd_math.hpp draws a batch of counters at once: starts and lengths off the batch width,
  // a counter whose low word wraps inside a batch, one-sided, empty and reversed ranges, and
  // both thread counts, each element against the scalar formula the naive and CUDA kernels use.
  using T = TestType;
  ThreadGuard threads;
  const std::uint64_t seed = 0xfeedbeef12345678ULL;
  struct Trial {
    std::uint64_t offset;
    i64 n;
    double low, high;
  };
  const Trial trials[] = {{0, 1, 0.0, 1.0},
                          {3, 37, -1.0, 1.0},
                          {(std::uint64_t(1) << 32) - 13, 61, -0.05, 0.05},
                          {(std::uint64_t(7) << 32) - 1, 2, 1.0, 2.0},
                          {~std::uint64_t(0) - 20, 21, 0.0, 1.0},  // the last counters
                          {1000, 300007, 1.0, 2.0},
                          {5, 33, 2.0, 2.0},
                          {9, 45, 3.0, -3.0},
                          {11, 17, 3.0, 3.0000001}};
  for_each_isa([&] {
    for (int nt : {1, 2}) {
      kn::cpu::set_num_threads(nt);
      for (const Trial& t : trials) {
        INFO("offset " << t.offset << ", n " << t.n << ", [" << t.low << ", " << t.high << "), threads " << nt);
        std::vector<T> got(std::size_t(t.n) + 1, T(-99));
        kn::cpu::uniform<T>(got.data(), t.n, seed, t.offset, t.low, t.high);
        i64 wrong = 0;
        for (i64 i = 0; i < t.n; ++i) {
          const T want = kn::uniform_at<T>(seed, t.offset + std::uint64_t(i), t.low, t.high);
          wrong += std::memcmp(&got[std::size_t(i)], &want, sizeof(T)) != 0;
        }
        CHECK(wrong == 0);
        CHECK(got[std::size_t(t.n)] == T(-99));  // nothing written past n
      }
    }
  });
}

// ---- threads ---------------------------------------------------------------------------

TEST_CASE("num_threads defaults to the cores and is settable", "[kernels][threads]") {
  ThreadGuard guard;
  kn::cpu::set_num_threads(0);
  const int hw = kn::cpu::num_threads();
  CHECK(hw >= 1);
  kn::cpu::set_num_threads(1);
  CHECK(kn::cpu::num_threads() == 1);
  kn::cpu::set_num_threads(1000);
  CHECK(kn::cpu::num_threads() == hw);
  // the threaded and the serial element-wise paths give identical bits
  View<float> x = make_view<float>({1 << 20}, Opts{false, false, false, false});
  std::vector<float> one(x.buf.size()), all(x.buf.size());
  kn::cpu::set_num_threads(1);
  kn::cpu::unary<float>(OpId::Tanh, one.data(), x.l, x.data(), x.l, 0, 0);
  kn::cpu::set_num_threads(hw);
  kn::cpu::unary<float>(OpId::Tanh, all.data(), x.l, x.data(), x.l, 0, 0);
  CHECK(one == all);
}

}  // namespace

// The CPU kernels' thread pool: many short parallel jobs back to back, with the thread count
// changing between them, must neither hang nor lose work (a lost wake-up once hung it).
TEST_CASE("cpu: thread pool survives many short jobs and thread-count changes", "[cpu][threads]") {
  namespace cpu = tapeflow::kernels::cpu;
  const std::int64_t n = std::int64_t(1) << 18;  // just at the size that goes parallel
  std::vector<float> x(static_cast<std::size_t>(n), -1.0f), y(static_cast<std::size_t>(n), 0.0f);
  for (std::int64_t i = 0; i < n; i += 3) x[static_cast<std::size_t>(i)] = 2.0f;
  const auto l = tapeflow::kernels::contiguous_layout(1, &n);
  const int before = cpu::num_threads();
  for (int rep = 0; rep < 400; ++rep) {
    cpu::set_num_threads(rep % 3 == 0 ? 1 : 2);
    std::fill(y.begin(), y.end(), 7.0f);
    cpu::unary<float>(tapeflow::OpId::Relu, y.data(), l, x.data(), l, 0, 0);
    REQUIRE(y[0] == 2.0f);
    REQUIRE(y[1] == 0.0f);
    REQUIRE(y[static_cast<std::size_t>(n - 1)] == (((n - 1) % 3 == 0) ? 2.0f : 0.0f));
  }
  cpu::set_num_threads(before);
}

// softmax / log_softmax: the CPU rows path against the naive loops, on contiguous rows,
// offset rows (a sliced view), rows in reverse order (a negative stride: the next row, which
// long rows prefetch, lies before this one) and a strided axis (the naive path itself).
TEST_CASE("cpu: softmax and log_softmax match naive", "[cpu][softmax]") {
  namespace cpu = tapeflow::kernels::cpu;
  namespace naive = tapeflow::kernels::naive;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-30.0f, 30.0f);
  for (std::int64_t rows : {1, 3, 300}) {
    for (std::int64_t cols : {1, 5, 17, 256, 1000}) {
      for (bool reversed : {false, true}) {
        // a [rows, cols + 3] buffer viewed as [rows, cols] starting at column 2
        std::vector<float> buf(static_cast<std::size_t>(rows * (cols + 3)));
        for (auto& v : buf) v = dist(rng);
        tapeflow::kernels::Layout l;
        l.rank = 2;
        l.shape[0] = rows;
        l.shape[1] = cols;
        l.strides[0] = reversed ? -(cols + 3) : cols + 3;
        l.strides[1] = 1;
        const float* first = buf.data() + 2 + (reversed ? (rows - 1) * (cols + 3) : 0);
        for_each_isa([&] {
          for (bool log : {false, true}) {
            for (int axis : {0, 1}) {
              INFO((log ? "log_softmax" : "softmax") << " [" << rows << ", " << cols << "] axis " << axis
                                                     << (reversed ? " reversed" : ""));
              std::vector<float> got(static_cast<std::size_t>(rows * cols)), want(got.size());
              cpu::softmax<float>(log, got.data(), first, l, axis);
              naive::softmax<float>(log, want.data(), first, l, axis);
              for (std::size_t i = 0; i < got.size(); ++i)
                REQUIRE(got[i] == Approx(want[i]).epsilon(1e-5).margin(1e-6));
            }
          }
        });
      }
    }
  }
}

// Rows holding -inf, inf and NaN, in a SIMD body and in a tail, on every instruction set:
// -inf entries get probability 0 (log: -inf); a row with inf or NaN, or only -inf, is NaN.
TEST_CASE("cpu: softmax and log_softmax of rows with infinities and NaN match naive", "[cpu][softmax]") {
  namespace cpu = tapeflow::kernels::cpu;
  namespace naive = tapeflow::kernels::naive;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (std::int64_t cols : {3, 37}) {
    for (std::int64_t at : {std::int64_t(0), cols / 2, cols - 1}) {
      std::vector<std::vector<float>> rows;
      for (float special : {-inf, inf, nan}) {
        std::vector<float> row(static_cast<std::size_t>(cols));
        for (std::int64_t j = 0; j < cols; ++j) row[static_cast<std::size_t>(j)] = 0.25f * float(j % 7) - 1.0f;
        row[static_cast<std::size_t>(at)] = special;
        rows.push_back(row);
      }
      rows.emplace_back(static_cast<std::size_t>(cols), -inf);
      for (const auto& row : rows) {
        const kn::Layout l = contiguous({1, cols});
        for_each_isa([&] {
          for (bool log : {false, true}) {
            std::vector<float> got(row.size()), want(row.size());
            cpu::softmax<float>(log, got.data(), row.data(), l, 1);
            naive::softmax<float>(log, want.data(), row.data(), l, 1);
            INFO((log ? "log_softmax" : "softmax") << " of " << cols << " with a special value at " << at);
            check_same(got, want, 1e-5, 1e-6);
          }
        });
      }
    }
  }
}

// ---- integer wrap-around and saturating conversions ---------------------------------------

TEMPLATE_TEST_CASE("integer arithmetic wraps around in every kernel, cpu equal to naive", "[kernels][integer][overflow]",
                   std::int32_t, std::int64_t) {
  using T = TestType;
  using U = std::make_unsigned_t<T>;
  constexpr T kMax = std::numeric_limits<T>::max(), kMin = std::numeric_limits<T>::min();
  // the functors on the edges, against the unsigned arithmetic they are defined by
  CHECK(kn::BinaryFn<OpId::Add>{}(kMax, T(1)) == kMin);
  CHECK(kn::BinaryFn<OpId::Sub>{}(kMin, T(1)) == kMax);
  CHECK(kn::BinaryFn<OpId::Mul>{}(kMax, kMax) == T(1));
  CHECK(kn::BinaryFn<OpId::Mul>{}(kMin, T(-1)) == kMin);
  CHECK(kn::UnaryFn<OpId::Neg>{}(kMin, 0, 0) == kMin);
  CHECK(kn::UnaryFn<OpId::Abs>{}(kMin, 0, 0) == kMin);
  CHECK(kn::UnaryFn<OpId::Abs>{}(T(-7), 0, 0) == T(7));
  // random values over the whole range: cpu (contiguous, broadcast, strided) == naive == unsigned math
  std::uniform_int_distribution<T> any(kMin, kMax);
  for (OpId op : {OpId::Add, OpId::Sub, OpId::Mul}) {
    for (int trial = 0; trial < 20; ++trial) {
      const Shape shape = trial == 0 ? Shape{70000} : random_shape(1, 3, false);
      View<T> a = make_view<T>(shape, random_opts(true)), b = make_view<T>(shape, random_opts(true));
      for (auto&& x : a.buf) x = any(rng());
      for (auto&& x : b.buf) x = any(rng());
      View<T> out = make_out<T>(shape);
      View<T> ref = out;
      kn::cpu::binary<T>(op, out.data(), out.l, a.data(), a.l, b.data(), b.l);
      kn::naive::binary<T>(op, ref.data(), ref.l, a.data(), a.l, b.data(), b.l);
      INFO(tapeflow::op_name(op) << " a " << describe(a.l) << " b " << describe(b.l));
      check_same(out.buf, ref.buf);
    }
  }
  // sums over the whole range: cpu (every reduction path, threads) == naive == the unsigned sum
  {
    ThreadGuard guard;
    for (int threads : {1, 2}) {
      kn::cpu::set_num_threads(threads);
      std::vector<T> x(300000);
      U total = 0;
      for (auto& v : x) {
        v = any(rng());
        total = U(total + U(v));
      }
      T got = 0, want = 0;
      const kn::Layout in = contiguous({300000});
      kn::Layout out_l = contiguous({300000});
      out_l.strides[0] = 0;
      kn::cpu::reduce<T>(OpId::Sum, &got, out_l, x.data(), in);
      kn::naive::reduce<T>(OpId::Sum, &want, out_l, x.data(), in);
      CHECK(got == T(total));
      CHECK(want == T(total));
      // columns of [600, 500] folded over axis 0, and a broadcast (stride-0) input
      const kn::Layout m = contiguous({600, 500});
      kn::Layout cols = contiguous({600, 500});
      cols.strides[0] = 0;
      std::vector<T> gc(500), wc(500);
      kn::cpu::reduce<T>(OpId::Sum, gc.data(), cols, x.data(), m);
      kn::naive::reduce<T>(OpId::Sum, wc.data(), cols, x.data(), m);
      CHECK(gc == wc);
      kn::Layout bcast = contiguous({300000});
      bcast.strides[0] = 0;
      const T v = kMax;
      kn::cpu::reduce<T>(OpId::Sum, &got, out_l, &v, bcast);
      CHECK(got == T(U(U(kMax) * U(300000))));
    }
  }
  // matmul and scatter_add with products and sums past the range
  for (int trial = 0; trial < 10; ++trial) {
    const i64 m = rand_int(1, 9), k = rand_int(1, 40), n = rand_int(1, 9);
    std::vector<T> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
    for (auto& v : a) v = any(rng());
    for (auto& v : b) v = any(rng());
    std::vector<T> got(static_cast<std::size_t>(m * n)), want(got.size());
    kn::cpu::matmul<T>(got.data(), a.data(), contiguous({m, k}), b.data(), contiguous({k, n}));
    kn::naive::matmul<T>(want.data(), a.data(), contiguous({m, k}), b.data(), contiguous({k, n}));
    CHECK(got == want);
    U c00 = 0;
    for (i64 p = 0; p < k; ++p) c00 = U(c00 + U(U(a[static_cast<std::size_t>(p)]) * U(b[static_cast<std::size_t>(p * n)])));
    CHECK(got[0] == T(c00));
  }
  const std::vector<T> src = {kMax, kMax, T(3)};
  const std::vector<i64> idx = {0, 0, 1};
  std::vector<T> out = {T(1), kMax}, ref = out;
  kn::cpu::scatter_add<T>(out.data(), contiguous({2}), src.data(), contiguous({3}), idx.data(), contiguous({3}), 0);
  kn::naive::scatter_add<T>(ref.data(), contiguous({2}), src.data(), contiguous({3}), idx.data(), contiguous({3}), 0);
  CHECK(out == std::vector<T>{T(U(U(1) + U(kMax) + U(kMax))), T(U(U(kMax) + U(3)))});
  CHECK(ref == out);
}

TEST_CASE("copy: float -> int saturates with NaN -> 0 on every path, cpu equal to naive", "[kernels][copy][saturate]") {
  // every float -> integer pair, values straddling the target's range, over random layouts
  for_each_type<std::int32_t, std::int64_t>([](auto to) {
    for_each_type<float, double>([](auto ti) {
      using TO = decltype(to);
      using TI = decltype(ti);
      const TI lo = static_cast<TI>(std::numeric_limits<TO>::min());
      const TI specials[] = {std::numeric_limits<TI>::quiet_NaN(), std::numeric_limits<TI>::infinity(),
                             -std::numeric_limits<TI>::infinity(), lo, -lo, lo * TI(2), -lo * TI(2),
                             std::nextafter(-lo, TI(0)), std::nextafter(lo, TI(0)), TI(-2.5), TI(2.5), TI(0)};
      for (int trial = 0; trial < 25; ++trial) {
        const Shape shape = trial == 0 ? Shape{600, 501} : random_shape();
        View<TI> in = make_view<TI>(shape, random_opts(true));
        for (auto&& x : in.buf) x = coin(0.2) ? specials[rand_int(0, 11)] : static_cast<TI>(rand_real(-1e6, 1e6));
        View<TO> out = make_out<TO>(shape);
        View<TO> ref = out;
        kn::cpu::copy<TO, TI>(out.data(), out.l, in.data(), in.l);
        kn::naive::copy<TO, TI>(ref.data(), ref.l, in.data(), in.l);
        INFO("copy " << sizeof(TI) << "-byte float -> " << sizeof(TO) << "-byte int, in " << describe(in.l));
        check_same(out.buf, ref.buf);
      }
      // the values themselves
      constexpr TO kMax = std::numeric_limits<TO>::max(), kMin = std::numeric_limits<TO>::min();
      const TO want[] = {0, kMax, kMin, kMin, kMax, kMin, kMax, static_cast<TO>(std::nextafter(-lo, TI(0))),
                         static_cast<TO>(std::nextafter(lo, TI(0))), TO(-2), TO(2), TO(0)};
      TO got[12];
      kn::cpu::copy<TO, TI>(got, contiguous({12}), specials, contiguous({12}));
      CHECK(std::vector<TO>(got, got + 12) == std::vector<TO>(want, want + 12));
      for (int i = 0; i < 12; ++i) CHECK(kn::convert<TO>(specials[i]) == want[i]);
    });
  });
}
