// Everything else of the core: matmul/dot/tensordot against the naive kernel and double
// loops; creation; seeded random numbers; concat/stack/split; one_hot; take_along_axis,
// gather, scatter_add (and their IndexMode against NumPy, golden/index_mode_golden.hpp), slice_scatter; astype for every pair; clone vs contiguous;
// item/to_vector; the caching allocator's statistics; einsum against NumPy (golden/einsum_golden.hpp);
// and the error messages.
#include "golden/einsum_golden.hpp"
#include "golden/index_mode_golden.hpp"
#include "golden/nd_index_golden.hpp"
#include "golden/prod_golden.hpp"
#include "test_helpers.hpp"

using namespace tapeflow;
using namespace th;
using Catch::Contains;
using Catch::Equals;

namespace {

bool shares(const Tensor& a, const Tensor& b) { return a.storage().get() == b.storage().get(); }

Tensor iota(const Shape& s, DType dt = kFloat64) {
  std::vector<double> v(static_cast<std::size_t>(count(s)));
  std::iota(v.begin(), v.end(), 0.0);
  return from_values(v, s, dt);
}

// naive::matmul with NumPy's rules: 1-D operands promoted (and the axis removed after),
// batch axes broadcast. Both operands converted to dtype first.
Tensor naive_matmul(const Tensor& a_in, const Tensor& b_in, DType dtype) {
  Tensor a = naive_cast(a_in, dtype), b = naive_cast(b_in, dtype);
  const bool av = a.rank() == 1, bv = b.rank() == 1;
  if (av) a = Tensor(a.storage(), {1, a.dim(0)}, {0, 1}, 0, dtype);
  if (bv) b = Tensor(b.storage(), {b.dim(0), 1}, {1, 0}, 0, dtype);
  const std::int64_t m = a.dim(-2), k = a.dim(-1), n = b.dim(-1);
  const Shape batch = broadcast(Shape(a.shape().begin(), a.shape().end() - 2), Shape(b.shape().begin(), b.shape().end() - 2));
  Shape af = batch, bf = batch, of = batch;
  af.insert(af.end(), {m, k});
  bf.insert(bf.end(), {k, n});
  of.insert(of.end(), {m, n});
  Tensor out = zeros(of, dtype);
  if (out.size() > 0 && k > 0) {
    visit_dtype(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (!std::is_same_v<T, bool>)
        naive::matmul<T>(out.data<T>(), a.data<T>(), layout_as(a, af), b.data<T>(), layout_as(b, bf));
    });
  }
  Shape s = batch;
  if (!av) s.push_back(m);
  if (!bv) s.push_back(n);
  return Tensor(out.storage(), s, contiguous_strides(s), 0, dtype);
}

// NumPy's tensordot in double: sum over the paired axes, output = a's free axes then b's.
std::pair<Shape, std::vector<double>> tensordot_oracle(const Tensor& a, const Tensor& b,
                                                       const std::vector<std::int64_t>& ax,
                                                       const std::vector<std::int64_t>& bx) {
  const auto av = values(a), bv = values(b);
  const Shape as = a.shape(), bs = b.shape();
  const Shape ast = contiguous_strides(as), bst = contiguous_strides(bs);
  std::vector<std::int64_t> afree, bfree;
  for (std::int64_t i = 0; i < a.rank(); ++i)
    if (std::find(ax.begin(), ax.end(), i) == ax.end()) afree.push_back(i);
  for (std::int64_t i = 0; i < b.rank(); ++i)
    if (std::find(bx.begin(), bx.end(), i) == bx.end()) bfree.push_back(i);
  Shape out_shape, ks;
  for (auto i : afree) out_shape.push_back(as[i]);
  for (auto i : bfree) out_shape.push_back(bs[i]);
  for (auto i : ax) ks.push_back(as[i]);
  std::vector<double> out;
  for (std::int64_t f = 0; f < count(out_shape); ++f) {
    const auto oi = unravel(f, out_shape);
    double acc = 0;
    for (std::int64_t g = 0; g < count(ks); ++g) {
      const auto ki = unravel(g, ks);
      std::int64_t ao = 0, bo = 0;
      for (std::size_t j = 0; j < afree.size(); ++j) ao += oi[j] * ast[afree[j]];
      for (std::size_t j = 0; j < bfree.size(); ++j) bo += oi[afree.size() + j] * bst[bfree[j]];
      for (std::size_t j = 0; j < ax.size(); ++j) {
        ao += ki[j] * ast[ax[j]];
        bo += ki[j] * bst[bx[j]];
      }
      acc += av[static_cast<std::size_t>(ao)] * bv[static_cast<std::size_t>(bo)];
    }
    out.push_back(acc);
  }
  return {out_shape, out};
}

Tol mm_tol(DType d) { return d == kFloat32 ? Tol{1e-5, 1e-4} : default_tol(d); }

}  // namespace

// =================================================================== matmul

TEST_CASE("matmul: hand-worked values for 1-D and 2-D operands", "[matmul]") {
  const Tensor a = tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  const Tensor b = tensor({7.f, 8.f, 9.f, 10.f, 11.f, 12.f}, {3, 2});
  check_values(matmul(a, b), {2, 2}, {58, 64, 139, 154});
  check_values(matmul(tensor({1.f, 2.f, 3.f}), tensor({4.f, 5.f, 6.f})), {}, {32});     // [3] @ [3] -> []
  check_values(matmul(tensor({1.f, 1.f}), a), {3}, {5, 7, 9});                          // [2] @ [2, 3] -> [3]
  check_values(matmul(a, tensor({1.f, 0.f, -1.f})), {2}, {-2, -2});                     // [2, 3] @ [3] -> [2]
  check_values(matmul(a.transpose(), a), {3, 3}, {17, 22, 27, 22, 29, 36, 27, 36, 45});  // a^T a
  check_values(matmul(tensor({1, 2, 3, 4}, {2, 2}), tensor({5, 6, 7, 8}, {2, 2})), {2, 2}, {19, 22, 43, 50});
  CHECK(matmul(tensor({1, 2, 3, 4}, {2, 2}), tensor({5, 6, 7, 8}, {2, 2})).dtype() == kInt32);
  CHECK(matmul(tensor({1, 2}), tensor({1.0, 2.0})).dtype() == kFloat64);
  // a zero-length inner axis gives zeros; zero-length outer axes give empty results
  check_values(matmul(zeros({2, 0}), zeros({0, 3})), {2, 3}, {0, 0, 0, 0, 0, 0});
  CHECK(matmul(zeros({0, 4}), zeros({4, 3})).shape() == Shape{0, 3});
  CHECK(matmul(zeros({5, 0, 4}), zeros({4, 3})).shape() == Shape{5, 0, 3});
}

TEST_CASE("matmul: random shapes, batch broadcasting, views and dtypes match the naive kernel", "[matmul][naive]") {
  std::mt19937 rng(3001);
  for (DType dt : kNumericDTypes) {
    for (int trial = 0; trial < 40; ++trial) {
      const std::int64_t m = rand_int(rng, 1, 7), k = rand_int(rng, 1, 9), n = rand_int(rng, 1, 7);
      // batch shapes of rank 0..2 that broadcast
      Shape ba, bb;
      const auto br = rand_int(rng, 0, 2);
      for (std::int64_t i = 0; i < br; ++i) {
        const auto d = rand_int(rng, 1, 3);
        ba.push_back(rand_int(rng, 0, 2) == 0 ? 1 : d);
        bb.push_back(rand_int(rng, 0, 2) == 0 ? 1 : d);
      }
      if (rand_int(rng, 0, 2) == 0 && !bb.empty()) bb.erase(bb.begin());
      Shape sa = ba, sb = bb;
      sa.insert(sa.end(), {m, k});
      sb.insert(sb.end(), {k, n});
      const int vec = static_cast<int>(rand_int(rng, 0, 5));  // 0: a is 1-D, 1: b is 1-D, 2: both
      if (vec == 0 || vec == 2) sa = {k};
      if (vec == 1 || vec == 2) sb = {k};
      const Make ma = kAllMakes[rand_int(rng, 0, 5)], mb = kAllMakes[rand_int(rng, 0, 5)];
      const Tensor a = make_input(sa, dt, rng, ma), b = make_input(sb, dt, rng, mb);
      INFO(dtype_name(dt) << " " << str(sa) << " (" << make_name(ma) << ") @ " << str(sb) << " (" << make_name(mb) << ")");
      check_close(matmul(a, b), naive_matmul(a, b, dt), mm_tol(dt));
    }
  }
  // mixed dtypes promote
  const Tensor i = make_input({3, 4}, kInt32, rng, Make::Contiguous), f = make_input({4, 2}, kFloat32, rng, Make::Transposed);
  check_close(matmul(i, f), naive_matmul(i, f, kFloat32), mm_tol(kFloat32));
  check_close(matmul(f.transpose(), i.transpose()), naive_matmul(f.transpose(), i.transpose(), kFloat32), mm_tol(kFloat32));
}

TEST_CASE("matmul: BLAS-sized operands, transposed and strided views, broadcast batches", "[matmul][naive][blas]") {
  std::mt19937 rng(3002);
  for (DType dt : kFloatDTypes) {
    // [96, 200] @ [200, 40]: plain, both transposed (BLAS transpose flags), strided (a copy)
    const Tensor a = make_input({96, 200}, dt, rng, Make::Contiguous, -1, 1);
    const Tensor b = make_input({200, 40}, dt, rng, Make::Contiguous, -1, 1);
    const Tensor at = make_input({200, 96}, dt, rng, Make::Contiguous, -1, 1).transpose();
    const Tensor bt = make_input({40, 200}, dt, rng, Make::Contiguous, -1, 1).transpose();
    const Tensor as = make_input({96, 200}, dt, rng, Make::Strided, -1, 1);
    const Tensor br = make_input({200, 40}, dt, rng, Make::Reversed, -1, 1);
    INFO(dtype_name(dt));
    check_close(matmul(a, b), naive_matmul(a, b, dt), mm_tol(dt));
    check_close(matmul(at, b), naive_matmul(at, b, dt), mm_tol(dt));
    check_close(matmul(a, bt), naive_matmul(a, bt, dt), mm_tol(dt));
    check_close(matmul(at, bt), naive_matmul(at, bt, dt), mm_tol(dt));
    check_close(matmul(as, br), naive_matmul(as, br, dt), mm_tol(dt));
    // a column slice of a contiguous matrix (leading dimension larger than the width)
    const Tensor wide = make_input({96, 256}, dt, rng, Make::Contiguous, -1, 1)(all, Slice(10, 210));
    check_close(matmul(wide, b), naive_matmul(wide, b, dt), mm_tol(dt));
    // batched with broadcast batch axes: [3, 1, 20, 30] @ [4, 30, 10] -> [3, 4, 20, 10]
    const Tensor x = make_input({3, 1, 20, 30}, dt, rng, Make::Contiguous);
    const Tensor y = make_input({4, 30, 10}, dt, rng, Make::Permuted);
    const Tensor z = matmul(x, y);
    CHECK(z.shape() == Shape{3, 4, 20, 10});
    check_close(z, naive_matmul(x, y, dt), mm_tol(dt));
    // a broadcast (stride-0) matrix operand
    const Tensor w = make_input({30, 10}, dt, rng, Make::Contiguous).broadcast_to({4, 30, 10});
    check_close(matmul(x, w), naive_matmul(x, w, dt), mm_tol(dt));
  }
  // the book's dense layer: [128, 784] @ [784, 10]
  const Tensor images = make_input({128, 784}, kFloat32, rng, Make::Contiguous, 0, 1);
  const Tensor weights = make_input({784, 10}, kFloat32, rng, Make::Contiguous, -0.1, 0.1);
  check_close(matmul(images, weights), naive_matmul(images, weights, kFloat32), {1e-4, 1e-4});
}

TEST_CASE("matmul: errors give the exact message", "[matmul][errors]") {
  CHECK_THROWS_AS(matmul(zeros({128, 784}), zeros({512, 10})), ShapeError);
  CHECK_THROWS_WITH(matmul(zeros({128, 784}), zeros({512, 10})),
                    Equals("matmul: inner dimensions differ: [128, 784] @ [512, 10] (784 vs 512)"));
  CHECK_THROWS_WITH(matmul(zeros({3}), zeros({4})), Equals("matmul: inner dimensions differ: [3] @ [4] (3 vs 4)"));
  CHECK_THROWS_WITH(matmul(zeros({2, 3, 4}), zeros({5, 2})), Contains("(4 vs 5)"));
  CHECK_THROWS_AS(matmul(zeros({2, 3, 4}), zeros({3, 4, 5})), ShapeError);
  CHECK_THROWS_WITH(matmul(zeros({2, 3, 4}), zeros({3, 4, 5})),
                    Contains("matmul") && Contains("[2, 3, 4]") && Contains("[3, 4, 5]"));
  CHECK_THROWS_AS(matmul(scalar(1.f), zeros({2})), ShapeError);
  CHECK_THROWS_WITH(matmul(scalar(1.f), zeros({2})), Contains("matmul") && Contains("[]") && Contains("[2]"));
  CHECK_THROWS_AS(matmul(zeros({2, 2}, kBool), zeros({2, 2}, kBool)), DTypeError);
  CHECK_THROWS_WITH(matmul(zeros({2, 2}, kBool), zeros({2, 2}, kBool)), Contains("matmul") && Contains("bool"));
}

TEST_CASE("dot and tensordot match double loops", "[matmul][dot][tensordot]") {
  std::mt19937 rng(3003);
  // dot: 1-D . 1-D, 2-D, scalar, N-D . 2-D, N-D . 1-D, 2-D . N-D
  check_values(dot(tensor({1.0, 2.0, 3.0}), tensor({4.0, 5.0, 6.0})), {}, {32});
  check_values(dot(scalar(2.f), tensor({1.f, 2.f})), {2}, {2, 4});
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{4}, {4}}, {{3, 4}, {4, 5}}, {{3, 4}, {4}}, {{4}, {4, 2}}, {{2, 3, 4}, {4, 5}}, {{2, 3, 4}, {4}}, {{2, 3}, {4, 3, 5}}, {{2, 2, 3}, {2, 3, 2}}};
  for (const auto& [sa, sb] : cases) {
    INFO("dot " << str(sa) << " . " << str(sb));
    const Tensor a = make_input(sa, kFloat64, rng, Make::Transposed), b = make_input(sb, kFloat64, rng, Make::Reversed);
    // NumPy's dot sums over a's last axis and b's second-to-last (its only axis when 1-D)
    const auto [os, ov] = tensordot_oracle(a, b, {a.rank() - 1}, {b.rank() >= 2 ? b.rank() - 2 : 0});
    check_values(dot(a, b), os, ov, {1e-12, 1e-12});
  }
  // tensordot with axis lists and with n
  const Tensor a = make_input({3, 4, 5}, kFloat64, rng, Make::Permuted);
  const Tensor b = make_input({4, 5, 6}, kFloat64, rng, Make::Strided);
  {
    const auto [os, ov] = tensordot_oracle(a, b, {1, 2}, {0, 1});
    check_values(tensordot(a, b, 2), os, ov, {1e-12, 1e-12});
    check_values(tensordot(a, b, {1, 2}, {0, 1}), os, ov, {1e-12, 1e-12});
    CHECK(os == Shape{3, 6});
  }
  {
    const Tensor c = make_input({5, 4, 3}, kFloat64, rng, Make::Contiguous);
    const auto [os, ov] = tensordot_oracle(a, c, {0, 2}, {2, 0});
    check_values(tensordot(a, c, {0, 2}, {2, 0}), os, ov, {1e-12, 1e-12});
    check_values(tensordot(a, c, {-3, -1}, {-1, 0}), os, ov, {1e-12, 1e-12});
    CHECK(os == Shape{4, 4});
  }
  {
    const auto [os, ov] = tensordot_oracle(a, b, {}, {});  // n = 0: the outer product
    check_values(tensordot(a, b, 0), os, ov, {1e-12, 1e-12});
    CHECK(os == Shape{3, 4, 5, 4, 5, 6});
  }
  CHECK_THROWS_AS(tensordot(a, b, {0}, {0}), ShapeError);
  CHECK_THROWS_WITH(tensordot(a, b, {0}, {0}), Contains("tensordot") && Contains("[3, 4, 5]") && Contains("[4, 5, 6]"));
  CHECK_THROWS_AS(tensordot(a, b, {0, 1}, {0}), ValueError);
  CHECK_THROWS_AS(tensordot(a, b, 4), ValueError);
  CHECK_THROWS_AS(dot(zeros({2, 3}), zeros({2, 3})), ShapeError);
}

// =================================================================== creation

TEST_CASE("creation: zeros, ones, full, empty and the *_like forms", "[creation]") {
  const Tensor z = zeros({2, 3});
  CHECK(z.dtype() == kFloat32);
  CHECK(z.is_contiguous());
  check_values(z, {2, 3}, {0, 0, 0, 0, 0, 0});
  check_values(ones({2}, kInt64), {2}, {1, 1});
  CHECK(ones({2}, kInt64).dtype() == kInt64);
  check_values(full({2, 2}, 7.5), {2, 2}, {7.5, 7.5, 7.5, 7.5});
  check_values(full({3}, 2, kInt32), {3}, {2, 2, 2});
  check_values(full({2}, 1, kBool), {2}, {1, 1});
  CHECK(full({}, 4.0, kFloat64).rank() == 0);
  CHECK(zeros({0, 3}).size() == 0);
  CHECK(empty({4, 0}).shape() == Shape{4, 0});
  check_values(scalar(2.5), {}, {2.5});
  CHECK(scalar(2.5).dtype() == kFloat32);
  CHECK(scalar(3, kInt64).item<std::int64_t>() == 3);
  CHECK_FALSE(scalar(2.5).is_weak());
  const Tensor v = iota({3, 2}, kInt32).transpose();
  const Tensor zl = zeros_like(v), ol = ones_like(v), fl = full_like(v, 9);
  for (const Tensor& t : {zl, ol, fl}) {
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.dtype() == kInt32);
    CHECK(t.is_contiguous());
    CHECK_FALSE(shares(t, v));
  }
  check_values(zl, {2, 3}, {0, 0, 0, 0, 0, 0});
  check_values(ol, {2, 3}, {1, 1, 1, 1, 1, 1});
  check_values(fl, {2, 3}, {9, 9, 9, 9, 9, 9});
  CHECK_THROWS_AS(zeros({2, -1}), ValueError);
  CHECK_THROWS_WITH(empty({-3}), Contains("negative") && Contains("[-3]"));
}

TEST_CASE("creation: shapes whose byte count overflows raise", "[creation][errors][edge]") {
  // 2^62 float32 elements: the byte count (2^64) wraps to 0 in size_t. It must raise, not
  // make a tensor over a tiny buffer (zeros({1 << 62}) then writes into it and crashes).
  CHECK_THROWS_AS(empty({std::int64_t(1) << 62}), Error);
  CHECK_THROWS_AS(empty({std::int64_t(1) << 61}, kFloat64), Error);
}

TEST_CASE("creation: more bytes than the machine's memory and swap raise ValueError before allocating",
          "[creation][errors][edge]") {
  // 2^62 bytes: no machine has them; asked for, the sanitizers' allocator would abort
  CHECK_THROWS_AS(empty({std::int64_t(1) << 60}), ValueError);
  CHECK_THROWS_WITH(empty({std::int64_t(1) << 60}), Contains("empty: out of memory for 4611686018427387904 bytes"));
  CHECK_THROWS_AS(zeros({std::int64_t(1) << 30, std::int64_t(1) << 30}, kInt32), ValueError);
  CHECK_THROWS_WITH(zeros({std::int64_t(1) << 30, std::int64_t(1) << 30}, kInt32), Contains("zeros: out of memory"));
}

TEST_CASE("creation: shapes whose element count overflows raise", "[creation][errors][overflow]") {
  const std::int64_t big = std::int64_t(1) << 32;
  CHECK_THROWS_AS(empty({big, big}), Error);  // 2^64 elements
}

TEST_CASE("creation: tensor from values", "[creation]") {
  const Tensor t = tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.dtype() == kFloat32);
  check_values(t, {2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(tensor({1, 2}).dtype() == kInt32);
  CHECK(tensor<std::int64_t>({1, 2}).dtype() == kInt64);
  CHECK(tensor({1.0}).dtype() == kFloat64);
  CHECK(tensor({true}).dtype() == kBool);
  const std::vector<double> vals = {1.5, -2.7, 0.2};
  const Tensor i = tensor(vals, {3}, kInt32);  // converted like static_cast (toward zero)
  CHECK(i.dtype() == kInt32);
  check_values(i, {3}, {1, -2, 0});
  check_values(tensor(std::vector<float>{4.f}, {}), {}, {4});
  check_values(tensor(std::vector<float>{}, {0, 2}), {0, 2}, {});
  CHECK_THROWS_AS(tensor({1.f, 2.f, 3.f, 4.f, 5.f}, {2, 3}), ValueError);
  CHECK_THROWS_WITH(tensor({1.f, 2.f, 3.f, 4.f, 5.f}, {2, 3}),
                    Contains("tensor: 5 values do not fill shape [2, 3] (6 elements)"));
  CHECK_THROWS_AS(tensor(std::vector<float>{1.f}, {-1}), ValueError);
}

TEST_CASE("creation: arange, linspace and eye (NumPy's values)", "[creation]") {
  const Tensor a = arange(5);
  CHECK(a.dtype() == kInt64);
  check_values(a, {5}, {0, 1, 2, 3, 4});
  CHECK(arange(5, kInt32).dtype() == kInt32);
  check_values(arange(2, 10, 3), {3}, {2, 5, 8});
  CHECK(arange(2, 10, 3).dtype() == kFloat32);
  check_values(arange(10, 0, -3), {4}, {10, 7, 4, 1});
  check_values(arange(0.5, 3, 1, kFloat64), {3}, {0.5, 1.5, 2.5});
  CHECK(arange(0, 1, 0.1).size() == 10);
  CHECK(arange(0, -3).size() == 0);
  CHECK(arange(0).size() == 0);
  check_values(arange(-1, 1, 0.5, kFloat64), {4}, {-1, -0.5, 0, 0.5});
  CHECK_THROWS_AS(arange(1, 2, 0), ValueError);
  CHECK_THROWS_WITH(arange(1, 2, 0), Contains("arange") && Contains("zero"));

  check_values(linspace(0, 1, 5), {5}, {0, 0.25, 0.5, 0.75, 1});
  check_values(linspace(1, 0, 3, kFloat64), {3}, {1, 0.5, 0});
  check_values(linspace(2, 3, 1), {1}, {2});
  check_values(linspace(0, 1, 0), {0}, {});
  check_values(linspace(0, 10, 5, kInt32), {5}, {0, 2, 5, 7, 10});
  CHECK(linspace(0, 1, 7, kFloat64).to_vector<double>().back() == 1.0);  // the end point exactly
  CHECK_THROWS_AS(linspace(0, 1, -1), ValueError);

  check_values(eye(3), {3, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  check_values(eye(2, 3), {2, 3}, {1, 0, 0, 0, 1, 0});
  check_values(eye(3, 2), {3, 2}, {1, 0, 0, 1, 0, 0});
  CHECK(eye(2, -1, kInt32).dtype() == kInt32);
  CHECK(eye(0).shape() == Shape{0, 0});
  CHECK_THROWS_AS(eye(-1), ValueError);
}

// =================================================================== random numbers

TEST_CASE("random: uniform and normal are reproducible for a seed and match the naive kernels", "[random]") {
  Generator g1(42), g2(42), g3(43);
  const Tensor u1 = uniform({1000}, g1), u2 = uniform({1000}, g2), u3 = uniform({1000}, g3);
  CHECK(values(u1) == values(u2));
  CHECK(values(u1) != values(u3));
  CHECK(g1.offset() == 1000);
  const Tensor u1b = uniform({1000}, g1);  // a second draw continues the stream
  CHECK(values(u1b) != values(u1));
  // the same stream whatever the shape
  Generator g4(42);
  CHECK(values(uniform({10, 100}, g4)) == values(u1));
  g4.manual_seed(42);
  CHECK(values(uniform({1000}, g4)) == values(u1));
  CHECK(g4.offset() == 1000);

  // against the naive kernels at the same (seed, offset)
  for (DType dt : kFloatDTypes) {
    Generator g(7);
    g.advance(123);
    const Tensor u = uniform({257}, g, -2, 3, dt);
    const Tensor n = normal({257}, g, 1, 2, dt);
    CHECK(u.dtype() == dt);
    Tensor eu = empty({257}, dt), en = empty({257}, dt);
    visit_dtype(dt, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_floating_point_v<T>) {
        naive::uniform<T>(eu.data<T>(), 257, 7, 123, -2, 3);
        naive::normal<T>(en.data<T>(), 257, 7, 123 + 257, 1, 2);
      }
    });
    INFO(dtype_name(dt));
    check_close(u, eu, {0, 0});
    check_close(n, en);
  }
  Generator gn1(5), gn2(5);
  CHECK(values(normal({100}, gn1)) == values(normal({100}, gn2)));
}

TEST_CASE("random: uniform and normal refuse non-finite parameters and low > high (PyTorch)", "[random][errors]") {
  Generator gen(3);
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(uniform({4}, gen, 3.0, 1.0), Contains("uniform") && Contains("low=3") && Contains("high=1"));
  CHECK_THROWS_AS(uniform({4}, gen, nan, 1.0), ValueError);
  CHECK_THROWS_AS(uniform({4}, gen, -inf, inf), ValueError);
  CHECK_THROWS_AS(uniform({4}, gen, -std::numeric_limits<double>::max(), std::numeric_limits<double>::max()),
                  ValueError);  // the span overflows
  CHECK_THROWS_WITH(normal({4}, gen, 3.0, nan), Contains("normal") && Contains("stddev=nan"));
  CHECK_THROWS_AS(normal({4}, gen, inf, 1.0), ValueError);
  CHECK_THROWS_AS(normal({4}, gen, 0.0, -1.0), ValueError);
  const Tensor same = uniform({3}, gen, 2.0, 2.0, kFloat64);  // low == high: that value
  CHECK(values(same) == std::vector<double>{2, 2, 2});
}

TEST_CASE("random: uniform and normal have the right range, mean and std", "[random][stats]") {
  Generator g(2024);
  const std::int64_t n = 100000;
  for (DType dt : kFloatDTypes) {
    INFO(dtype_name(dt));
    const auto u = values(uniform({n}, g, 2, 5, dt));
    double lo = 1e9, hi = -1e9, s = 0, s2 = 0;
    for (double x : u) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      s += x;
      s2 += x * x;
    }
    const double mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
    CHECK(lo >= 2);
    CHECK(hi < 5);
    CHECK(lo < 2.01);
    CHECK(hi > 4.99);
    CHECK(mean == Approx(3.5).margin(0.02));
    CHECK(sd == Approx(3 / std::sqrt(12.0)).margin(0.01));
    const auto z = values(normal({n}, g, 1, 2, dt));
    s = s2 = 0;
    std::int64_t within1 = 0;
    for (double x : z) {
      s += x;
      s2 += x * x;
      within1 += std::abs(x - 1) < 2;
    }
    const double zm = s / n, zsd = std::sqrt(s2 / n - zm * zm);
    CHECK(zm == Approx(1).margin(0.03));
    CHECK(zsd == Approx(2).margin(0.03));
    CHECK(static_cast<double>(within1) / n == Approx(0.6827).margin(0.01));
  }
  CHECK_THROWS_AS(uniform({2}, g, 0, 1, kInt32), DTypeError);
  CHECK_THROWS_WITH(uniform({2}, g, 0, 1, kInt32), Contains("uniform") && Contains("int32"));
  CHECK_THROWS_AS(normal({2}, g, 0, -1), ValueError);
  CHECK(uniform({0}, g).size() == 0);
}

// =================================================================== concat, stack, split

TEST_CASE("concat: hand-worked values, promotion, views and zero-size parts", "[concat]") {
  const Tensor a = tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  const Tensor b = tensor({7.f, 8.f, 9.f}, {1, 3});
  check_values(concat({a, b}), {3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  check_values(concat({a, tensor({0.f, -1.f}, {2, 1})}, 1), {2, 4}, {1, 2, 3, 0, 4, 5, 6, -1});
  check_values(concat({a, tensor({0.f, -1.f}, {2, 1})}, -1), {2, 4}, {1, 2, 3, 0, 4, 5, 6, -1});
  check_values(concat({a.transpose(), a.transpose()(Slice(none, none, -1))}, 1), {3, 4},
               {1, 4, 3, 6, 2, 5, 2, 5, 3, 6, 1, 4});
  check_values(concat({zeros({0, 3}), b, zeros({0, 3})}), {1, 3}, {7, 8, 9});
  const Tensor mixed = concat({tensor({1, 2}), tensor({0.5f})});
  CHECK(mixed.dtype() == kFloat32);
  check_values(mixed, {3}, {1, 2, 0.5});
  check_values(concat({tensor({true}), tensor({false, true})}), {3}, {1, 0, 1});
  const Tensor one = concat({a});
  check_values(one, {2, 3}, {1, 2, 3, 4, 5, 6});
}

TEST_CASE("concat: random parts along every axis equal the pieces", "[concat][split]") {
  std::mt19937 rng(3004);
  for (int trial = 0; trial < 40; ++trial) {
    const Shape s = random_shape(rng, 1, 4);
    const auto axis = rand_int(rng, 0, static_cast<std::int64_t>(s.size()) - 1);
    std::vector<Tensor> parts;
    std::vector<std::int64_t> sizes;
    const auto nparts = rand_int(rng, 1, 4);
    for (std::int64_t p = 0; p < nparts; ++p) {
      Shape ps = s;
      ps[static_cast<std::size_t>(axis)] = rand_int(rng, 0, 3);
      sizes.push_back(ps[static_cast<std::size_t>(axis)]);
      parts.push_back(make_input(ps, kFloat32, rng, kAllMakes[rand_int(rng, 0, 5)]));
    }
    INFO("shape " << str(s) << " axis " << axis << " sizes " << str(sizes));
    const Tensor c = concat(parts, axis);
    const auto back = split(c, sizes, axis);
    REQUIRE(back.size() == parts.size());
    for (std::size_t p = 0; p < parts.size(); ++p) {
      CHECK(str(back[p].shape()) == str(parts[p].shape()));
      CHECK(values(back[p]) == values(parts[p]));
      CHECK(shares(back[p], c));
    }
  }
}

TEST_CASE("stack and split", "[concat][stack][split]") {
  const Tensor a = tensor({1.f, 2.f}), b = tensor({3.f, 4.f});
  check_values(stack({a, b}), {2, 2}, {1, 2, 3, 4});
  check_values(stack({a, b}, 1), {2, 2}, {1, 3, 2, 4});
  check_values(stack({a, b}, -1), {2, 2}, {1, 3, 2, 4});
  check_values(stack({scalar(1.f), scalar(2.f)}), {2}, {1, 2});
  CHECK(stack({zeros({2, 3}), zeros({2, 3}), zeros({2, 3})}, 1).shape() == Shape{2, 3, 3});
  CHECK_THROWS_AS(stack({a, tensor({1.f, 2.f, 3.f})}), ShapeError);
  CHECK_THROWS_WITH(stack({a, tensor({1.f, 2.f, 3.f})}), Contains("stack") && Contains("[2]") && Contains("[3]"));
  CHECK_THROWS_AS(stack({}), ValueError);
  CHECK_THROWS_AS(stack({a, b}, 2), IndexError);

  const Tensor x = iota({6, 2});
  const auto parts = split(x, 3);
  REQUIRE(parts.size() == 3);
  check_values(parts[1], {2, 2}, {4, 5, 6, 7});
  for (const auto& p : parts) CHECK(shares(p, x));
  const auto cols = split(x, 2, 1);
  check_values(cols[1], {6, 1}, {1, 3, 5, 7, 9, 11});
  const auto sized = split(x, std::vector<std::int64_t>{1, 0, 5});
  REQUIRE(sized.size() == 3);
  CHECK(sized[0].shape() == Shape{1, 2});
  CHECK(sized[1].shape() == Shape{0, 2});
  check_values(sized[2](0), {2}, {2, 3});
  CHECK_THROWS_AS(split(iota({5}), 2), ShapeError);
  CHECK_THROWS_WITH(split(iota({5}), 2), Contains("split") && Contains("[5]"));
  CHECK_THROWS_AS(split(iota({5}), std::vector<std::int64_t>{2, 2}), ShapeError);
  CHECK_THROWS_WITH(split(iota({5}), std::vector<std::int64_t>{2, 2}), Contains("split") && Contains("[5]"));
  CHECK_THROWS_AS(split(iota({5}), std::vector<std::int64_t>{6, -1}), ValueError);
  CHECK_THROWS_AS(split(iota({5}), 1, 1), IndexError);
}

TEST_CASE("concat: errors name the shapes", "[concat][errors]") {
  CHECK_THROWS_AS(concat({zeros({2, 3}), zeros({2, 4})}), ShapeError);
  CHECK_THROWS_WITH(concat({zeros({2, 3}), zeros({2, 4})}), Contains("concat") && Contains("[2, 3]") && Contains("[2, 4]"));
  CHECK_THROWS_AS(concat({zeros({2, 3}), zeros({3})}), ShapeError);
  CHECK_THROWS_WITH(concat({zeros({2, 3}), zeros({3})}), Contains("concat") && Contains("[2, 3]") && Contains("[3]"));
  CHECK_THROWS_AS(concat({}), ValueError);
  CHECK_THROWS_AS(concat({scalar(1.f), scalar(2.f)}), ShapeError);
  CHECK_THROWS_AS(concat({zeros({2}), zeros({2})}, 1), IndexError);
}

// =================================================================== one_hot, take_along_axis, gather, scatter_add, slice_scatter

TEST_CASE("one_hot: rows of 0/1; out-of-range indices give a zero row", "[one_hot]") {
  const Tensor h = one_hot(tensor({0, 2, -1, 3}), 3);
  CHECK(h.dtype() == kFloat32);
  check_values(h, {4, 3}, {1, 0, 0,  //
                           0, 0, 1,  //
                           0, 0, 0,  //
                           0, 0, 0});
  const Tensor h2 = one_hot(tensor<std::int64_t>({1, 0, 2, 1}, {2, 2}), 3, kInt32);
  CHECK(h2.dtype() == kInt32);
  check_values(h2, {2, 2, 3}, {0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0});
  CHECK(one_hot(tensor({1, 2}), 0).shape() == Shape{2, 0});
  CHECK(one_hot(scalar(1, kInt64), 2).shape() == Shape{2});
  CHECK_THROWS_AS(one_hot(tensor({1.f}), 3), DTypeError);
  CHECK_THROWS_WITH(one_hot(tensor({1.f}), 3), Contains("one_hot") && Contains("float32"));
  CHECK_THROWS_AS(one_hot(tensor({1}), -1), ValueError);
}

TEST_CASE("take_along_axis: hand-worked values (NumPy's examples)", "[gather]") {
  const Tensor x = tensor({10, 30, 20, 60, 40, 50}, {2, 3});
  // NumPy: np.take_along_axis(a, np.argsort(a, axis=1), axis=1)
  check_values(take_along_axis(x, tensor<std::int64_t>({0, 2, 1, 1, 2, 0}, {2, 3}), 1), {2, 3},
               {10, 20, 30, 40, 50, 60});
  // with argmax keepdims
  check_values(take_along_axis(x, argmax(x, 1, true), 1), {2, 1}, {30, 60});
  check_values(take_along_axis(x, tensor({1, 0, 0}, {1, 3}), 0), {1, 3}, {60, 30, 20});
  // indices broadcast along the other axes: [1, 2] against [2, 3] along axis 1 -> [2, 2]
  check_values(take_along_axis(x, tensor({2, 0}, {1, 2}), 1), {2, 2}, {20, 10, 50, 60});
  CHECK(take_along_axis(x, zeros({2, 0}, kInt64), 1).shape() == Shape{2, 0});
  check_values(gather(tensor({0.1f, 0.9f, 0.7f, 0.3f, 0.5f, 0.5f}, {3, 2}), tensor({1, 0, 1})), {3}, {0.9, 0.7, 0.5});
  check_values(gather(x, tensor<std::int64_t>({2, 0})), {2}, {20, 60});
}

TEST_CASE("take_along_axis: random shapes and broadcasting match the naive kernel", "[gather][naive]") {
  std::mt19937 rng(3005);
  for (int trial = 0; trial < 80; ++trial) {
    const Shape xs = random_shape(rng, 1, 4, false);
    const int axis = static_cast<int>(rand_int(rng, 0, static_cast<std::int64_t>(xs.size()) - 1));
    Shape is = xs;
    for (std::size_t d = 0; d < is.size(); ++d)
      if (rand_int(rng, 0, 3) == 0) is[d] = 1;
    is[static_cast<std::size_t>(axis)] = rand_int(rng, 0, 4);
    const DType dt = kAllDTypes[rand_int(rng, 0, 4)];
    const DType it = rand_int(rng, 0, 1) ? kInt32 : kInt64;
    const Tensor x = make_input(xs, dt, rng, kAllMakes[rand_int(rng, 0, 5)]);
    const Tensor idx = make_input(is, it, rng, kAllMakes[rand_int(rng, 0, 5)], 0, static_cast<double>(xs[axis] - 1));
    INFO("x " << dtype_name(dt) << " " << str(xs) << " indices " << str(is) << " axis " << axis);
    Shape out_shape = broadcast(xs, is);
    out_shape[static_cast<std::size_t>(axis)] = is[static_cast<std::size_t>(axis)];
    Shape src_shape = out_shape;
    src_shape[static_cast<std::size_t>(axis)] = xs[static_cast<std::size_t>(axis)];
    const Tensor idx64 = naive_cast(idx, kInt64);
    Tensor expected = empty(out_shape, dt);
    if (expected.size() > 0) {
      visit_dtype(dt, [&](auto tag) {
        using T = typename decltype(tag)::type;
        naive::gather<T>(expected.data<T>(), layout_of(expected), x.data<T>(), layout_as(x, src_shape),
                         idx64.data<std::int64_t>(), layout_as(idx64, out_shape), axis);
      });
    }
    check_close(take_along_axis(x, idx, axis), expected);
    check_close(take_along_axis(x, idx, axis - static_cast<int>(xs.size())), expected);
  }
}

TEST_CASE("take_along_axis and gather: errors", "[gather][errors]") {
  const Tensor x = zeros({2, 3});
  CHECK_THROWS_AS(take_along_axis(x, tensor({0, 5}, {2, 1}), 1), IndexError);
  CHECK_THROWS_WITH(take_along_axis(x, tensor({0, 5}, {2, 1}), 1),
                    Contains("take_along_axis: index 5 is out of bounds for axis 1 with size 3"));
  CHECK_THROWS_AS(take_along_axis(x, tensor({2}, {1, 1}), 0), IndexError);
  CHECK_THROWS_WITH(take_along_axis(x, tensor({2}, {1, 1}), 0), Contains("index 2") && Contains("size 2"));
  CHECK_THROWS_AS(take_along_axis(x, tensor({0, 1}), 1), ShapeError);
  CHECK_THROWS_WITH(take_along_axis(x, tensor({0, 1}), 1), Contains("take_along_axis") && Contains("[2, 3]") &&
                                                              Contains("[2]"));
  CHECK_THROWS_AS(take_along_axis(x, zeros({2, 1}), 1), DTypeError);
  CHECK_THROWS_AS(take_along_axis(x, tensor({0, 0, 0}, {3, 1}), 1), ShapeError);
  CHECK_THROWS_AS(take_along_axis(x, tensor({0, 0}, {2, 1}), 2), IndexError);
  CHECK_THROWS_AS(gather(x, tensor({0, 3})), IndexError);
  CHECK_THROWS_WITH(gather(x, tensor({0, 3})), Contains("index 3"));
  CHECK_THROWS_AS(gather(x, tensor({0, 1}, {1, 2})), ShapeError);
}

TEST_CASE("scatter_add: duplicates accumulate; the base is not modified", "[scatter_add]") {
  const Tensor base = zeros({5});
  const Tensor r = scatter_add(base, tensor({0, 1, 1, 4}), tensor({1.f, 2.f, 3.f, 4.f}), 0);
  check_values(r, {5}, {1, 5, 0, 0, 4});
  check_values(base, {5}, {0, 0, 0, 0, 0});
  CHECK_FALSE(shares(r, base));
  const Tensor b2 = ones({2, 3}, kInt32);
  check_values(scatter_add(b2, tensor({0, 0, 2, 1}, {2, 2}), tensor({1, 2, 3, 4}, {2, 2}), 1), {2, 3},
               {4, 1, 1, 1, 5, 4});
  // src broadcasts against the indices
  check_values(scatter_add(zeros({3}, kFloat64), tensor({2, 2, 0}), tensor({0.5}), 0), {3}, {0.5, 0, 1});
  // the inverse of take_along_axis for a permutation
  const Tensor x = tensor({10.f, 20.f, 30.f});
  const Tensor perm = tensor({2, 0, 1});
  check_values(scatter_add(zeros({3}), perm, take_along_axis(x, perm, 0), 0), {3}, {10, 20, 30});
}

TEST_CASE("scatter_add: random shapes match the naive kernel", "[scatter_add][naive]") {
  std::mt19937 rng(3006);
  for (int trial = 0; trial < 60; ++trial) {
    const Shape bs = random_shape(rng, 1, 3, false);
    const int axis = static_cast<int>(rand_int(rng, 0, static_cast<std::int64_t>(bs.size()) - 1));
    Shape is = bs;
    is[static_cast<std::size_t>(axis)] = rand_int(rng, 0, 6);  // more than the base: duplicates
    const DType dt = kNumericDTypes[rand_int(rng, 0, 3)];
    const Tensor base = make_input(bs, dt, rng, kAllMakes[rand_int(rng, 0, 5)]);
    const Tensor idx = make_input(is, kInt64, rng, kAllMakes[rand_int(rng, 0, 5)], 0, static_cast<double>(bs[axis] - 1));
    const Tensor src = make_input(is, dt, rng, kAllMakes[rand_int(rng, 0, 5)]);
    INFO(dtype_name(dt) << " base " << str(bs) << " indices " << str(is) << " axis " << axis);
    Tensor expected = naive_cast(base, dt);
    if (src.size() > 0) {
      Layout ol = layout_of(expected);
      for (int d = 0; d < ol.rank; ++d)
        if (d != axis) ol.shape[d] = is[static_cast<std::size_t>(d)];
      visit_dtype(dt, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (!std::is_same_v<T, bool>)
          naive::scatter_add<T>(expected.data<T>(), ol, src.data<T>(), layout_of(src), idx.data<std::int64_t>(),
                                layout_of(idx), axis);
      });
    }
    check_close(scatter_add(base, idx, src, axis), expected, {1e-6, 1e-6});
  }
}

TEST_CASE("scatter_add: errors", "[scatter_add][errors]") {
  const Tensor base = zeros({2, 3});
  CHECK_THROWS_AS(scatter_add(base, tensor({0, 3, 1, 2}, {2, 2}), ones({2, 2}), 1), IndexError);
  CHECK_THROWS_WITH(scatter_add(base, tensor({0, 3, 1, 2}, {2, 2}), ones({2, 2}), 1),
                    Contains("scatter_add: index 3 is out of bounds for axis 1 with size 3"));
  CHECK_THROWS_AS(scatter_add(base, tensor({0, 1}, {1, 2}), ones({1, 2}), 1), ShapeError);  // [1, 2] vs base rows 2
  CHECK_THROWS_AS(scatter_add(zeros({2}, kBool), tensor({0}), tensor({true}), 0), DTypeError);
  CHECK_THROWS_AS(scatter_add(base, zeros({2, 1}), ones({2, 1}), 1), DTypeError);
}

TEST_CASE("slice_scatter: zeros with the values at a strided slice", "[slice_scatter]") {
  check_values(slice_scatter(tensor({1.f, 2.f}), {5}, {1}, {2}), {5}, {0, 1, 0, 2, 0});
  check_values(slice_scatter(tensor({1.f, 2.f}), {5}, {4}, {-2}), {5}, {0, 0, 2, 0, 1});
  check_values(slice_scatter(tensor({1, 2, 3, 4}, {2, 2}), {3, 4}, {1, 0}, {1, 3}), {3, 4},
               {0, 0, 0, 0, 1, 0, 0, 2, 3, 0, 0, 4});
  CHECK(slice_scatter(zeros({0}), {3}, {0}, {1}).shape() == Shape{3});
  // the inverse of slicing: x[1::2] scattered back
  const Tensor x = iota({6});
  check_values(slice_scatter(x(Slice(1, none, 2)), {6}, {1}, {2}), {6}, {0, 1, 0, 3, 0, 5});
  CHECK_THROWS_AS(slice_scatter(tensor({1.f, 2.f}), {3}, {2}, {1}), IndexError);
  CHECK_THROWS_WITH(slice_scatter(tensor({1.f, 2.f}), {3}, {2}, {1}), Contains("slice_scatter") && Contains("[2]") &&
                                                                          Contains("[3]"));
  CHECK_THROWS_AS(slice_scatter(tensor({1.f, 2.f}), {3, 3}, {0}, {1}), ShapeError);
}

// =================================================================== astype, clone, contiguous, item, to_vector

// Six values of dtype `from` to convert: negative, zero, fractional where the dtype has them.
static std::vector<double> cast_samples(DType from) {
  if (from == kBool) return {1, 0, 1, 1, 0, 0};
  if (is_integral(from)) return {-3, -1, 0, 1, 2, 7};
  return {-2.7, -1.0, 0.0, 0.5, 1.0, 3.9};
}

TEST_CASE("astype: every pair of dtypes converts like static_cast (floats truncate toward zero)", "[astype]") {
  for (DType from : kAllDTypes) {
    // a reversed, transposed view of the values
    const Tensor base = from_values(cast_samples(from), {3, 2}, from);
    const Tensor x = base(Slice(none, none, -1)).transpose();  // [2, 3]
    const auto xv = values(x);
    for (DType to : kAllDTypes) {
      INFO(dtype_name(from) << " -> " << dtype_name(to));
      const Tensor y = x.astype(to);
      CHECK(y.dtype() == to);
      CHECK(y.shape() == Shape{2, 3});
      std::vector<double> expected;
      for (double v : xv) {
        visit_dtype(to, [&](auto tt) {
          using TO = typename decltype(tt)::type;
          visit_dtype(from, [&](auto tf) {
            using TI = typename decltype(tf)::type;
            expected.push_back(static_cast<double>(static_cast<TO>(static_cast<TI>(v))));
          });
        });
      }
      check_values(y, {2, 3}, expected, {0, 0});
      check_values(x.to(to), {2, 3}, expected, {0, 0});
      if (to != from) CHECK_FALSE(shares(y, x));
    }
  }
  check_values(tensor({-2.7f, 2.7f, 0.5f}).astype(kBool), {3}, {1, 1, 1});
  check_values(tensor({-2.7f, 2.7f}).astype(kInt32), {2}, {-2, 2});
}

TEST_CASE("astype and full of one element (converted on the host, no kernel) match the kernel path", "[astype]") {
  for (DType from : kAllDTypes) {
    const Tensor x = from_values(cast_samples(from), {3, 2}, from).transpose();  // [2, 3], strided
    for (DType to : kAllDTypes) {
      INFO(dtype_name(from) << " -> " << dtype_name(to));
      const auto whole = values(x.astype(to));  // six elements: the kernel's conversion
      for (std::int64_t i = 0; i < 2; ++i) {
        for (std::int64_t j = 0; j < 3; ++j) {
          const Tensor e = x(i, j);  // rank 0, at an offset in x's storage
          const Tensor one = x(Slice(i, i + 1), Slice(j, j + 1));  // [1, 1]
          CHECK(e.astype(to).dtype() == to);
          check_values(e.astype(to), {}, {whole[static_cast<std::size_t>(i * 3 + j)]}, {0, 0});
          check_values(one.astype(to), {1, 1}, {whole[static_cast<std::size_t>(i * 3 + j)]}, {0, 0});
        }
      }
    }
  }
  // full of one element converts as the kernel's fill does (static_cast of the double)
  for (DType dt : kAllDTypes) {
    INFO(dtype_name(dt));
    for (double v : {-2.7, 0.0, 3.9}) {
      check_values(full({}, v, dt), {}, {values(full({2}, v, dt))[0]}, {0, 0});
      check_values(full({1, 1}, v, dt), {1, 1}, {values(full({2}, v, dt))[1]}, {0, 0});
    }
  }
}

TEST_CASE("clone always copies; contiguous copies only when needed", "[copy]") {
  const Tensor x = iota({3, 4});
  const Tensor c = x.contiguous();
  CHECK(shares(c, x));
  Tensor k = x.clone();
  CHECK_FALSE(shares(k, x));
  CHECK(values(k) == values(x));
  k.assign(0.0);
  CHECK(values(x)[5] == 5.0);  // the original is untouched
  const Tensor t = x.transpose();
  const Tensor tc = t.contiguous();
  CHECK_FALSE(shares(tc, t));
  CHECK(tc.is_contiguous());
  CHECK(values(tc) == values(t));
  CHECK(tc.storage()->nbytes() >= 12 * sizeof(double));
  const Tensor s = x(Slice(1, 3), Slice(none, none, 2));
  const Tensor sc = s.clone();
  CHECK(sc.is_contiguous());
  CHECK(sc.storage()->nbytes() == 4 * sizeof(double));  // a clone of a view holds only the view
  check_values(sc, {2, 2}, {4, 6, 8, 10});
  // a size-1 axis may have any stride and still be contiguous
  CHECK(x(Slice(1, 2)).is_contiguous());
  CHECK(shares(x(Slice(1, 2)).contiguous(), x));
  CHECK(scalar(1.f).is_contiguous());
  CHECK(zeros({0, 3}).clone().shape() == Shape{0, 3});
}

TEST_CASE("copies of large views (tiled and threaded paths) match the naive copy", "[copy][astype][naive][large]") {
  std::mt19937 rng(3007);
  for (Make how : {Make::Transposed, Make::Strided, Make::Reversed, Make::Permuted, Make::Broadcast}) {
    const Tensor x = make_input({3, 300, 333}, kFloat32, rng, how);
    INFO(make_name(how));
    const Tensor c = x.contiguous();
    CHECK(c.is_contiguous());
    check_close(c, naive_cast(x, kFloat32), {0, 0});
    check_close(x.clone(), naive_cast(x, kFloat32), {0, 0});
    for (DType to : kAllDTypes) check_close(x.astype(to), naive_cast(x, to), {0, 0});
    CHECK(x.to_vector<float>() == c.to_vector<float>());
    CHECK(values(x.reshape({-1})) == values(c));
  }
}

TEST_CASE("item and to_vector", "[item]") {
  CHECK(tensor({2.5f}, {1, 1, 1}).item<float>() == 2.5f);
  CHECK(scalar(2.7f).item<std::int64_t>() == 2);
  CHECK(scalar(3, kInt32).item<double>() == 3.0);
  CHECK(tensor({true}).item<bool>());
  CHECK(iota({3, 4})(2, 1).item<double>() == 9.0);
  CHECK_THROWS_AS(tensor({1.f, 2.f}).item<float>(), ValueError);
  CHECK_THROWS_WITH(tensor({1.f, 2.f}).item<float>(), Contains("item") && Contains("2 elements") && Contains("[2]"));
  CHECK_THROWS_AS(zeros({0}).item<float>(), ValueError);
  const Tensor t = iota({2, 3}).transpose();
  CHECK(t.to_vector<double>() == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK(t.to_vector<int>() == std::vector<int>{0, 3, 1, 4, 2, 5});
  CHECK(tensor({0.f, 2.f}).to_vector<bool>() == std::vector<bool>{false, true});
  CHECK(zeros({0, 2}).to_vector<float>().empty());
  CHECK(tensor({1.5f, -1.5f})(Slice(none, none, -1)).to_vector<std::int32_t>() == std::vector<std::int32_t>{-1, 1});
  CHECK_THROWS_AS(zeros({2}).data<double>(), DTypeError);
  CHECK(zeros({2}).data<float>() != nullptr);
}

// =================================================================== the caching allocator

TEST_CASE("memory_stats: freed buffers are reused; current and peak bytes", "[allocator]") {
  empty_cache();
  const std::size_t mb4 = std::size_t(4) << 20;
  const MemoryStats s0 = memory_stats();
  CHECK(s0.cached_bytes == 0);
  reset_peak_memory();
  {
    Tensor t = empty({1 << 20});  // 1M float32: 4 MB
    const MemoryStats s1 = memory_stats();
    CHECK(s1.allocations == s0.allocations + 1);
    CHECK(s1.cache_hits == s0.cache_hits);  // the cache was empty: a fresh buffer
    CHECK(s1.current_bytes >= s0.current_bytes + mb4);
    CHECK(s1.live_buffers == s0.live_buffers + 1);
    CHECK(s1.peak_bytes >= s1.current_bytes);
  }
  const MemoryStats s2 = memory_stats();
  CHECK(s2.current_bytes == s0.current_bytes);
  CHECK(s2.live_buffers == s0.live_buffers);
  CHECK(s2.cached_bytes >= mb4);
  CHECK(s2.peak_bytes >= s0.current_bytes + mb4);
  {
    Tensor t = empty({1 << 20});
    const MemoryStats s3 = memory_stats();
    CHECK(s3.cache_hits == s2.cache_hits + 1);  // the second is served from the cache
    CHECK(s3.allocations == s2.allocations + 1);
    CHECK(s3.cached_bytes == s2.cached_bytes - (s3.current_bytes - s2.current_bytes));
    // two at once: the peak sees both
    Tensor u = zeros({1 << 20});
    CHECK(memory_stats().current_bytes >= s0.current_bytes + 2 * mb4);
    CHECK(memory_stats().peak_bytes >= s0.current_bytes + 2 * mb4);
  }
  reset_peak_memory();
  CHECK(memory_stats().peak_bytes == memory_stats().current_bytes);
  empty_cache();
  CHECK(memory_stats().cached_bytes == 0);
  // a view holds the storage alive; the buffer returns when the last handle goes
  const std::size_t live = memory_stats().live_buffers;
  Tensor view;
  {
    Tensor big = zeros({1000});
    view = big(Slice(10, 20));
  }
  CHECK(memory_stats().live_buffers == live + 1);
  view = Tensor();
  CHECK(memory_stats().live_buffers == live);
}

// ------------------------------------------------------------------ the observer hook

namespace {
// What a framework embedding the engine might install: every op's name, inputs and outputs.
struct OpLog : OpObserver {
  struct Entry {
    std::string name;
    std::vector<std::uint64_t> inputs;
    std::vector<Shape> output_shapes;
    OpAttrs attrs;
  };
  std::vector<Entry> entries;
  void record(OpId op, TensorList inputs, TensorList outputs, const OpAttrs& attrs) override {
    Entry e{op_name(op), {}, {}, attrs};
    for (const Tensor& t : inputs) e.inputs.push_back(t.id());
    for (std::size_t i = 0; i < outputs.size(); ++i) e.output_shapes.push_back(outputs[i].shape());
    entries.push_back(std::move(e));
  }
};
}  // namespace

TEST_CASE("observer: an installed OpObserver sees each op with its inputs, outputs and attrs", "[observer]") {
  const Tensor a = ones({2, 3}), b = ones({2, 3}), c = ones({1, 3});
  OpLog log;
  OpObserver* previous = set_current_observer(&log);
  Tensor s, cat;
  {
    s = sum(a + b, {1});
    cat = concat({a, b, c}, 0);
    NoRecording off;
    (void)relu(a);  // not seen
  }
  set_current_observer(previous);
  (void)relu(a);  // not seen either: the observer is gone
  REQUIRE(log.entries.size() == 3);
  CHECK(log.entries[0].name == "add");
  CHECK(log.entries[0].inputs == std::vector<std::uint64_t>{a.id(), b.id()});
  CHECK(log.entries[0].output_shapes == std::vector<Shape>{{2, 3}});
  CHECK(log.entries[1].name == "sum");
  CHECK(log.entries[1].attrs.axes == std::vector<std::int64_t>{1});
  CHECK(log.entries[1].output_shapes == std::vector<Shape>{s.shape()});
  CHECK(log.entries[2].name == "concat");  // a vector of inputs, passed as a view
  CHECK(log.entries[2].inputs == std::vector<std::uint64_t>{a.id(), b.id(), c.id()});
  CHECK(log.entries[2].output_shapes == std::vector<Shape>{{5, 3}});
  CHECK(cat.shape() == Shape{5, 3});
}

// =================================================================== overflow, saturation and absurd arguments

TEST_CASE("matmul: integer products and sums wrap around as NumPy's (no UB)", "[matmul][integer][overflow]") {
  // np.array([[65537, 3]], np.int32) @ np.array([[65537], [5]], np.int32) -> [[131088]]
  const Tensor a = tensor<std::int32_t>({65537, 3}, {1, 2});
  const Tensor b = tensor<std::int32_t>({65537, 5}, {2, 1});
  CHECK(matmul(a, b).to_vector<std::int32_t>() == std::vector<std::int32_t>{131088});
  // 2^20 * 2^20 + 2^20 * 2^20 = 2^41 = 0 (mod 2^32)
  const Tensor p = full({1, 2}, 0x1p20, kInt32), q = full({2, 1}, 0x1p20, kInt32);
  CHECK(matmul(p, q).to_vector<std::int32_t>() == std::vector<std::int32_t>{0});
  // int64: (2^62 + 1) * 4 + 1 * 3 = 2^64 + 7 = 7 (mod 2^64); strided (transposed) operand too
  const Tensor c = tensor<std::int64_t>({(std::int64_t(1) << 62) + 1, 1}, {1, 2});
  const Tensor d = tensor<std::int64_t>({4, 3}, {1, 2}).transpose();
  CHECK(matmul(c, d).to_vector<std::int64_t>() == std::vector<std::int64_t>{7});
}

TEST_CASE("astype: float -> int saturates, NaN -> 0 (CUDA's conversion), on every path", "[astype][saturate]") {
  constexpr std::int32_t kMax32 = std::numeric_limits<std::int32_t>::max();
  constexpr std::int32_t kMin32 = std::numeric_limits<std::int32_t>::min();
  constexpr std::int64_t kMax64 = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin64 = std::numeric_limits<std::int64_t>::min();
  const std::vector<double> v = {NAN, INFINITY, -INFINITY, 3e9, -3e9, 2.7, -2.7, 1e19, -1e19, 2147483647.9, -2147483648.9};
  const std::vector<std::int32_t> want32 = {0, kMax32, kMin32, kMax32, kMin32, 2, -2, kMax32, kMin32, kMax32, kMin32};
  const std::vector<std::int64_t> want64 = {0, kMax64, kMin64, 3000000000, -3000000000, 2, -2, kMax64, kMin64,
                                            2147483647, -2147483648};
  for (DType from : kFloatDTypes) {
    INFO(dtype_name(from));
    const Tensor x = tensor(v, {static_cast<std::int64_t>(v.size())}, from);
    if (from == kFloat32) {  // float32 rounds 2147483647.9 to 2^31 (saturates) and -2147483648.9 to -2^31
      CHECK(x.astype(kInt32).to_vector<std::int32_t>() == want32);
      CHECK(x.astype(kInt64).to_vector<std::int64_t>()[9] == 2147483648);
    } else {
      CHECK(x.astype(kInt32).to_vector<std::int32_t>() == want32);
      CHECK(x.astype(kInt64).to_vector<std::int64_t>() == want64);
    }
    // reversed (strided) and broadcast views, one element (converted on the host), to_vector
    const auto rev = x(Slice(none, none, -1)).astype(kInt32).to_vector<std::int32_t>();
    CHECK(std::vector<std::int32_t>(rev.rbegin(), rev.rend()) == want32);
    CHECK(x(Slice(0, 1)).broadcast_to({3}).astype(kInt32).to_vector<std::int32_t>() == std::vector<std::int32_t>(3, 0));
    for (std::size_t i = 0; i < v.size(); ++i) {
      CHECK(x(static_cast<std::int64_t>(i)).astype(kInt32).item<std::int32_t>() == want32[i]);
      CHECK(x(static_cast<std::int64_t>(i)).item<std::int32_t>() == want32[i]);
    }
    CHECK(x.to_vector<std::int32_t>() == want32);
  }
  // large (threaded, vector blocks): a NaN and an overflow in the middle of in-range values
  std::vector<float> big(300000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i) - 150000.5f;
  big[4097] = NAN;
  big[200001] = 1e10f;
  big[200002] = -1e10f;
  const auto got = tensor(big, {static_cast<std::int64_t>(big.size())}).astype(kInt32).to_vector<std::int32_t>();
  CHECK(got[0] == -150000);
  CHECK(got[4096] == -145904);
  CHECK(got[4097] == 0);
  CHECK(got[4098] == -145902);
  CHECK(got[200001] == kMax32);
  CHECK(got[200002] == kMin32);
  CHECK(got[200003] == 50002);
  CHECK(got[299999] == 149998);
  // full, arange and linspace into integers saturate the same way
  CHECK(full({2}, 1e10, kInt32).to_vector<std::int32_t>() == std::vector<std::int32_t>{kMax32, kMax32});
  CHECK(full({}, -1e10, kInt32).item<std::int32_t>() == kMin32);
  CHECK(full({3}, NAN, kInt64).to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 0, 0});
  CHECK(arange(0, 3e9, 1e9, kInt32).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{0, 1000000000, 2000000000});
  CHECK(arange(1e9, 4e9, 1e9, kInt32).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{1000000000, 2000000000, kMax32});
  CHECK(linspace(0, 1e10, 2, kInt32).to_vector<std::int32_t>() == std::vector<std::int32_t>{0, kMax32});
}

TEST_CASE("arange and one_hot: counts beyond int64, NaN and infinite bounds raise ValueError naming the op",
          "[creation][one_hot][errors][overflow]") {
  CHECK_THROWS_AS(arange(0, INFINITY), ValueError);
  CHECK_THROWS_WITH(arange(0, INFINITY), Contains("arange: start 0, stop inf, step 1") &&
                                             Contains("more than an int64 can count"));
  CHECK_THROWS_WITH(arange(0, 1e30), Contains("arange: start 0, stop 1e+30, step 1 give 1e+30 elements"));
  CHECK_THROWS_WITH(arange(0, 5, NAN), Contains("arange: start 0, stop 5, step nan give no element count"));
  CHECK_THROWS_WITH(arange(NAN, 5), Contains("arange:") && Contains("no element count"));
  CHECK_THROWS_WITH(arange(-INFINITY, INFINITY), Contains("arange:"));
  CHECK(arange(INFINITY, 0).size() == 0);  // counts below zero are empty, as NumPy's
  // a count that fits int64 but no machine's memory (2^62 bytes) raises before allocating
  CHECK_THROWS_AS(arange(0, 1e18), ValueError);
  CHECK_THROWS_WITH(arange(0, 1e18), Contains("arange: start 0, stop 1e+18, step 1 give 1000000000000000000 elements "
                                              "of float32, more than this machine's"));
  CHECK_THROWS_AS(arange(0, 0x1p62, 1, kFloat64), ValueError);
  CHECK_THROWS_WITH(arange(0, 0x1p62, 1, kFloat64), Contains("arange:") && Contains("bytes"));

  const Tensor idx = tensor<std::int64_t>({1}, {1});
  CHECK_THROWS_AS(one_hot(idx, std::numeric_limits<std::int64_t>::max()), ValueError);
  CHECK_THROWS_WITH(one_hot(idx, std::numeric_limits<std::int64_t>::max()),
                    Contains("one_hot: depth 9223372036854775807 for indices of shape [1]"));
  CHECK_THROWS_WITH(one_hot(zeros({1 << 20}, kInt64), std::int64_t(1) << 50), Contains("one_hot:") &&
                                                                               Contains("[1048576]"));
  // rank-16 indices would give a rank-17 result
  CHECK_THROWS_AS(one_hot(zeros(Shape(16, 1), kInt64), 2), ShapeError);
  CHECK_THROWS_WITH(one_hot(zeros(Shape(16, 1), kInt64), 2), Contains("one_hot:") && Contains("rank 17"));
}

TEST_CASE("eye: a negative column count other than the default -1 raises", "[creation][errors]") {
  CHECK_THROWS_AS(eye(2, -5), ValueError);
  CHECK_THROWS_WITH(eye(2, -5), Contains("eye: number of columns must be non-negative") && Contains("-5"));
  CHECK(eye(2, -1).shape() == Shape{2, 2});
  CHECK(eye(2, 0).shape() == Shape{2, 0});
  CHECK_THROWS_AS(eye(std::int64_t(1) << 32), ValueError);
  CHECK_THROWS_WITH(eye(std::int64_t(1) << 32), Contains("eye: shape [4294967296, 4294967296] has more elements"));
}

TEST_CASE("split and slice_scatter: sizes and steps that overflow raise instead of wrapping", "[split][slice_scatter][overflow]") {
  const Tensor a = iota({8});
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  CHECK_THROWS_AS(split(a, std::vector<std::int64_t>{kMax, kMax, 8}), ShapeError);
  CHECK_THROWS_WITH(split(a, std::vector<std::int64_t>{kMax, kMax, 8}),
                    Contains("split: sizes [9223372036854775807, 9223372036854775807, 8] add up to more than an int64 "
                             "holds, but axis 0 of [8] has size 8"));
  CHECK_THROWS_AS(split(a, std::vector<std::int64_t>{kMax, 1}), ShapeError);

  CHECK_THROWS_AS(slice_scatter(ones({3}), {5}, {0}, {kMax}), IndexError);
  CHECK_THROWS_WITH(slice_scatter(ones({3}), {5}, {0}, {kMax}), Contains("slice_scatter: values [3] do not fit a slice "
                                                                         "of [5] at axis 0"));
  CHECK_THROWS_AS(slice_scatter(ones({3}), {5}, {4}, {std::numeric_limits<std::int64_t>::min()}), IndexError);
  CHECK_THROWS_AS(slice_scatter(ones({2}), {5}, {kMax}, {1}), IndexError);
  // one element: the step is never used, whatever it is
  check_values(slice_scatter(ones({1, 1}), {2, 3}, {1, 2}, {kMax, kMax}), {2, 3}, {0, 0, 0, 0, 0, 1});
}

TEST_CASE("scatter_add: float values into an integer base raise (as add_ and np.add.at)", "[scatter_add][errors]") {
  const Tensor base = zeros({3}, kInt32);
  const Tensor idx = tensor<std::int64_t>({1, 1}, {2});
  CHECK_THROWS_AS(scatter_add(base, idx, tensor({0.6f, 0.6f}), 0), DTypeError);
  CHECK_THROWS_WITH(scatter_add(base, idx, tensor({0.6f, 0.6f}), 0),
                    Contains("scatter_add: cannot scatter float32 values [2] into a int32 base [3]"));
  CHECK_THROWS_AS(scatter_add(base, idx, 0.5, 0), DTypeError);
  // integers and bools into an integer base, and anything into a float base, are fine
  CHECK(scatter_add(base, idx, tensor<std::int64_t>({2, 3}, {2}), 0).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{0, 5, 0});
  CHECK(scatter_add(base, idx, tensor({true, true}), 0).to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 2, 0});
  check_values(scatter_add(zeros({3}), idx, tensor({1, 2}), 0), {3}, {0, 3, 0});
  // integer sums wrap as add does
  CHECK(scatter_add(tensor<std::int32_t>({2147483647}, {1}), tensor<std::int64_t>({0}, {1}), tensor({1}), 0)
            .to_vector<std::int32_t>() == std::vector<std::int32_t>{std::numeric_limits<std::int32_t>::min()});
}

TEST_CASE("take and gather: errors name the op the user called", "[gather][errors]") {
  const Tensor a = zeros({3, 4});
  CHECK_THROWS_AS(gather(a, tensor<std::int64_t>({0, 1}, {2})), ShapeError);
  CHECK_THROWS_WITH(gather(a, tensor<std::int64_t>({0, 1}, {2})),
                    Contains("gather: labels [2] do not match the values [3, 4] (size 2 vs 3 at axis 0)"));
  CHECK_THROWS_WITH(gather(a, tensor<std::int64_t>({0, 4, 1}, {3})),
                    Contains("gather: index 4 is out of bounds for axis 1 with size 4"));
  CHECK_THROWS_WITH(gather(a, tensor({0.f, 1.f, 1.f})), Contains("gather: indices must be int32 or int64"));
  CHECK_THROWS_WITH(take(a, tensor<std::int64_t>({3}, {1})), Contains("take: index 3 is out of bounds for axis 0"));
  CHECK_THROWS_WITH(take(a, tensor<std::int64_t>({-1}, {1})), Contains("take: index -1"));
  // labels of size 1 still broadcast, as take_along_axis's indices do
  check_values(gather(iota({3, 4}), tensor<std::int64_t>({2}, {1})), {3}, {2, 6, 10});
}

// =================================================================== NumPy's composites (numpy_ops.cpp)

TEST_CASE("tile and repeat: NumPy's results, reps shorter or longer than the rank, zero counts", "[tile][repeat]") {
  const Tensor a = tensor({1.0, 2.0, 3.0, 4.0}, {2, 2});
  check_values(tile(a, {2}), {2, 4}, {1, 2, 1, 2, 3, 4, 3, 4});  // np.tile(a, 2)
  check_values(tile(a, {2, 1}), {4, 2}, {1, 2, 3, 4, 1, 2, 3, 4});
  check_values(tile(tensor({1.0, 2.0, 3.0}), {2, 2}), {2, 6}, {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3});
  check_values(tile(a, {1, 1, 2}), {1, 2, 4}, {1, 2, 1, 2, 3, 4, 3, 4});
  check_values(tile(a, {0, 1}), {0, 2}, {});
  check_values(tile(a, {}), {2, 2}, {1, 2, 3, 4});
  CHECK(tile(tensor<std::int32_t>({1, 2}, {2}), {2}).dtype() == kInt32);
  check_values(repeat(a, 2, 0), {4, 2}, {1, 2, 1, 2, 3, 4, 3, 4});
  check_values(repeat(a, 2, -1), {2, 4}, {1, 1, 2, 2, 3, 3, 4, 4});
  check_values(repeat(a, 2), {8}, {1, 1, 2, 2, 3, 3, 4, 4});  // flattened, as np.repeat(a, 2)
  check_values(repeat(a.transpose(), 2), {8}, {1, 1, 3, 3, 2, 2, 4, 4});
  check_values(repeat(a, 0, 1), {2, 0}, {});
  check_values(repeat(scalar(5.0), 3), {3}, {5, 5, 5});
  CHECK_THROWS_AS(tile(a, {2, -1}), ValueError);
  CHECK_THROWS_WITH(tile(a, {2, -1}), Contains("tile: every repetition must be >= 0, got -1 (shape [2, 2])"));
  CHECK_THROWS_WITH(repeat(a, -2, 0), Contains("repeat: repeats must be >= 0, got -2 (shape [2, 2])"));
  CHECK_THROWS_AS(repeat(a, 2, 2), IndexError);
  CHECK_THROWS_WITH(repeat(a, 2, 2), Contains("repeat: axis 2 is out of range for a tensor of rank 2"));
}

TEST_CASE("pad and flip: NumPy's constant padding and reversal", "[pad][flip]") {
  check_values(pad(tensor({1.0, 2.0, 3.0}), {{2, 3}}), {8}, {0, 0, 1, 2, 3, 0, 0, 0});
  const Tensor a = tensor({1.0, 2.0, 3.0, 4.0}, {2, 2});
  check_values(pad(a, {{1, 0}, {0, 1}}, 9), {3, 3}, {9, 9, 9, 1, 2, 9, 3, 4, 9});
  check_values(pad(a, {{1, 1}}, -1), {4, 4}, {-1, -1, -1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1, -1, -1, -1});
  check_values(pad(a, {{0, 0}, {0, 0}}), {2, 2}, {1, 2, 3, 4});
  const Tensor i = pad(tensor<std::int32_t>({7}, {1}), {{1, 0}}, 2.9);  // the constant converted to int32, as NumPy
  CHECK(i.dtype() == kInt32);
  check_values(i, {2}, {2, 7});
  CHECK_THROWS_AS(pad(a, {{1, 1}, {1, 1}, {0, 0}}), ValueError);
  CHECK_THROWS_WITH(pad(a, {{1, 1}, {1, 1}, {0, 0}}),
                    Contains("pad: pad_width has 3 (before, after) pairs for shape [2, 2]; needs 2 or 1"));
  CHECK_THROWS_WITH(pad(a, {{1, -1}}), Contains("pad: pad widths must be >= 0, got (1, -1) for shape [2, 2]"));

  const Tensor b = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  check_values(flip(b), {2, 3}, {6, 5, 4, 3, 2, 1});
  check_values(flip(b, {1}), {2, 3}, {3, 2, 1, 6, 5, 4});
  check_values(flip(b, {-2}), {2, 3}, {4, 5, 6, 1, 2, 3});
  CHECK(flip(b).storage().get() == b.storage().get());  // a view
  check_values(flip(scalar(2.0)), {}, {2});
  CHECK_THROWS_WITH(flip(b, {1, -1}), Contains("flip: repeated axis in [1, -1]"));
  CHECK_THROWS_WITH(flip(b, {2}), Contains("flip: axis 2 is out of range for a tensor of rank 2"));
}

TEST_CASE("tril and triu: diagonals k, batches, bool", "[tril][triu]") {
  const Tensor a = iota({3, 4}) + 1.0;
  check_values(tril(a), {3, 4}, {1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0});
  check_values(tril(a, -1), {3, 4}, {0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0});
  check_values(tril(a, 1), {3, 4}, {1, 2, 0, 0, 5, 6, 7, 0, 9, 10, 11, 12});
  check_values(triu(a), {3, 4}, {1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12});
  check_values(triu(a, 1), {3, 4}, {0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12});
  check_values(triu(a, -5), {3, 4}, values(a));
  check_values(tril(iota({2, 2, 2}, kInt32)), {2, 2, 2}, {0, 0, 2, 3, 4, 0, 6, 7});
  const Tensor t = triu(ones({2, 2}, kBool));
  CHECK(t.dtype() == kBool);
  check_values(t, {2, 2}, {1, 1, 0, 1});
  CHECK_THROWS_AS(tril(tensor({1.0, 2.0})), ShapeError);
  CHECK_THROWS_WITH(tril(tensor({1.0, 2.0})), Contains("tril: needs at least 2 dimensions, got shape [2]"));
  CHECK_THROWS_WITH(triu(scalar(1.0)), Contains("triu: needs at least 2 dimensions, got shape []"));
}

TEST_CASE("reduce_any, reduce_all, isnan, isinf, isfinite: NumPy's truth and tests", "[any][all][isnan]") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const Tensor a = tensor({0.0, 0.0, 1.0, 0.0, 0.0, 0.0}, {2, 3});
  const Tensor any1 = reduce_any(a, {1});
  CHECK(any1.dtype() == kBool);
  check_values(any1, {2}, {1, 0});
  check_values(reduce_any(a, {0}, true), {1, 3}, {0, 0, 1});
  check_values(reduce_any(a), {}, {1});
  const Tensor b = tensor({1.0, 2.0, nan, 1.0, 0.0, 1.0}, {2, 3});  // NaN is true
  check_values(reduce_all(b, {1}), {2}, {1, 0});
  check_values(reduce_all(b), {}, {0});
  check_values(reduce_all(tensor<std::int64_t>({3, -1}, {2})), {}, {1});
  check_values(reduce_any(tensor({false, true})), {}, {1});
  check_values(reduce_all(zeros({2, 0}), {1}), {2}, {1, 1});  // empty: all true, any false
  check_values(reduce_any(zeros({2, 0}), {1}), {2}, {0, 0});
  CHECK_THROWS_WITH(reduce_any(a, {2}), Contains("reduce_any: axis 2 is out of range for a tensor of rank 2"));
  CHECK_THROWS_WITH(reduce_all(a, {0, 0}), Contains("reduce_all: repeated axis in [0, 0]"));

  const Tensor x = tensor({1.0, nan, inf, -inf, -0.0}, {5}, kFloat64);
  check_values(isnan(x), {5}, {0, 1, 0, 0, 0});
  check_values(isinf(x), {5}, {0, 0, 1, 1, 0});
  check_values(isfinite(x), {5}, {1, 0, 0, 0, 1});
  check_values(isinf(tensor({3e38f, std::numeric_limits<float>::infinity()})), {2}, {0, 1});
  const Tensor i = tensor<std::int32_t>({1, 2}, {2});
  CHECK(isnan(i).dtype() == kBool);
  check_values(isnan(i), {2}, {0, 0});
  check_values(isinf(i), {2}, {0, 0});
  check_values(isfinite(i), {2}, {1, 1});
}

TEST_CASE("reduce_std and norm: NumPy's values, ddof, integer inputs, errors", "[reduce_std][norm]") {
  const Tensor x = tensor({1.0, 2.0, 3.0, 4.0}, {4}, kFloat64);
  check_values(reduce_std(x), {}, {1.118033988749895}, {1e-15, 1e-15});
  check_values(reduce_std(x, {}, false, 1), {}, {1.2909944487358056}, {1e-15, 1e-15});
  const Tensor m = tensor({1.0, 3.0, 2.0, 2.0, 0.0, 10.0}, {3, 2});
  check_values(reduce_std(m, {1}), {3}, {1, 0, 5});
  check_values(reduce_std(m, {0}, true, 1), {1, 2}, {1, std::sqrt(19.0)});
  const Tensor si = reduce_std(tensor<std::int32_t>({1, 3}, {2}));
  CHECK(si.dtype() == kFloat32);
  check_values(si, {}, {1});
  CHECK(std::isnan(values(reduce_std(x, {}, false, 4))[0]));
  CHECK_THROWS_WITH(reduce_std(x, {}, false, -1), Contains("reduce_std: ddof must be >= 0, got -1 (shape [4])"));
  CHECK_THROWS_WITH(reduce_std(x, {1}), Contains("reduce_std: axis 1 is out of range for a tensor of rank 1"));

  check_values(norm(tensor({3.0, 4.0})), {}, {5});
  check_values(norm(tensor({3.0, -4.0}), 1), {}, {7});
  const Tensor n = tensor({3.0, 4.0, 6.0, -8.0}, {2, 2});
  check_values(norm(n, 2, {1}), {2}, {5, 10});
  check_values(norm(n, 1, {0}, true), {1, 2}, {9, 12});
  check_values(norm(n), {}, {std::sqrt(125.0)});  // flattened: Frobenius
  CHECK(norm(tensor<std::int64_t>({3, 4}, {2})).dtype() == kFloat32);
  CHECK_THROWS_AS(norm(n, 3), ValueError);
  CHECK_THROWS_WITH(norm(n, 3), Contains("norm: ord must be 1 or 2 (vector norms), got 3 (shape [2, 2])"));
  CHECK_THROWS_WITH(norm(tensor({true})), Contains("norm: bool tensors are not supported (shape [1])"));
}

TEST_CASE("cumsum: running sums along an axis, dtypes, sizes 0 to 9", "[cumsum]") {
  check_values(cumsum(tensor({1.0, 2.0, 3.0, 4.0, 5.0}), 0), {5}, {1, 3, 6, 10, 15});
  const Tensor a = iota({2, 3}) + 1.0;  // [[1, 2, 3], [4, 5, 6]]
  check_values(cumsum(a, 0), {2, 3}, {1, 2, 3, 5, 7, 9});
  check_values(cumsum(a, -1), {2, 3}, {1, 3, 6, 4, 9, 15});
  check_values(cumsum(a.transpose(), 1), {3, 2}, {1, 5, 2, 7, 3, 9});
  const Tensor i = cumsum(tensor<std::int32_t>({1, -2, 3}, {3}), 0);
  CHECK(i.dtype() == kInt32);
  check_values(i, {3}, {1, -1, 2}, {0, 0});
  const Tensor b = cumsum(tensor({true, false, true}), 0);
  CHECK(b.dtype() == kInt64);
  check_values(b, {3}, {1, 1, 2}, {0, 0});
  for (std::int64_t n = 0; n <= 9; ++n) {  // every power-of-two boundary of the scan
    INFO("n " << n);
    std::vector<double> v, expected;
    double s = 0;
    for (std::int64_t k = 0; k < n; ++k) {
      v.push_back(static_cast<double>(k * k % 7) - 2);
      s += v.back();
      expected.push_back(s);
    }
    check_values(cumsum(from_values(v, {n}, kInt64), 0), {n}, expected, {0, 0});
  }
  CHECK_THROWS_AS(cumsum(scalar(1.0), 0), ShapeError);
  CHECK_THROWS_WITH(cumsum(scalar(1.0), 0), Contains("cumsum: needs at least 1 dimension, got shape []"));
  CHECK_THROWS_WITH(cumsum(a, 2), Contains("cumsum: axis 2 is out of range for a tensor of rank 2"));
}

namespace {
// A golden operand as a tensor of `dtype`: contiguous, or (reversed) a view with negative
// strides over the same values (reversing every axis reverses the row-major order).
Tensor golden_operand(const einsum_golden::Operand& o, DType dtype, bool reversed) {
  const Shape shape(o.shape, o.shape + o.rank);
  std::vector<double> v(o.values, o.values + count(shape));
  if (!reversed) return from_values(v, shape, dtype);
  std::reverse(v.begin(), v.end());
  return flip(from_values(v, shape, dtype));
}
}  // namespace

TEST_CASE("einsum: NumPy's values for matmul, batches, outer products, traces, diagonals, sums, '...', "
          "three operands",
          "[einsum]") {
  for (const auto& c : einsum_golden::kCases) {
    const Shape out_shape(c.out_shape, c.out_shape + c.out_rank);
    const std::vector<double> expected(c.expected, c.expected + count(out_shape));
    for (DType dt : {kFloat64, kFloat32}) {
      for (bool reversed : {false, true}) {
        INFO(c.equation << " " << dtype_name(dt) << (reversed ? " negative strides" : ""));
        std::vector<Tensor> ops;
        for (int i = 0; i < c.n; ++i) ops.push_back(golden_operand(c.operands[i], dt, reversed));
        const Tensor y = einsum(c.equation, ops);
        CHECK(y.dtype() == dt);
        check_values(y, out_shape, expected, dt == kFloat64 ? Tol{1e-12, 1e-12} : Tol{1e-5, 1e-5});
      }
    }
  }
}

TEST_CASE("einsum: overloads, integer dtypes, empty axes, and a trace that never reads off the diagonal",
          "[einsum]") {
  const Tensor a = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  const Tensor b = tensor({1.0, 0.0, -1.0, 2.0, 0.5, 1.0}, {3, 2});
  check_values(einsum("ij,jk->ik", a, b), {2, 2}, {0.5, 7, 2, 16});
  check_values(einsum("ij,jk->ik", {a, b}), {2, 2}, {0.5, 7, 2, 16});
  check_values(einsum("ij->ji", a), {3, 2}, {1, 4, 2, 5, 3, 6});
  CHECK(shares(einsum("ij->ji", a), a));  // a permutation is a view, as NumPy's
  check_values(einsum("ij->ij", a), {2, 3}, {1, 2, 3, 4, 5, 6});
  // the same tensor twice: sum of squares
  check_values(einsum("ij,ij->", a, a), {}, {91});
  // integers keep their dtype (sum widens to int64 on the way), as np.einsum
  const Tensor i32 = tensor<std::int32_t>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor col = einsum("ij->j", i32);
  CHECK(col.dtype() == kInt32);
  check_values(col, {3}, {5, 7, 9}, {0, 0});
  const Tensor prod = einsum("ij,kj->ik", i32, i32);
  CHECK(prod.dtype() == kInt32);
  check_values(prod, {2, 2}, {14, 32, 32, 77}, {0, 0});
  const Tensor i64s = tensor<std::int64_t>({1, 2, 3, 4}, {2, 2});
  CHECK(einsum("ii", i64s).dtype() == kInt64);
  check_values(einsum("ii", i64s), {}, {5}, {0, 0});
  // empty contracted axis: zeros; empty free axis: an empty result
  check_values(einsum("ij,jk->ik", zeros({2, 0}), zeros({0, 3})), {2, 3}, {0, 0, 0, 0, 0, 0});
  check_values(einsum("ij,jk->ik", zeros({0, 2}), ones({2, 3})), {0, 3}, {});
  check_values(einsum("ii->", zeros({0, 0})), {}, {0});
  // the diagonal is a slice, not a mask: inf and NaN off the diagonal do not reach the trace
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  check_values(einsum("ii->", tensor({1.0, inf, nan, 2.0}, {2, 2})), {}, {3});
  // "..." of zero dimensions, in the output or not
  check_values(einsum("...i->i...", tensor({1.0, 2.0})), {2}, {1, 2});
  check_values(einsum("i...->", tensor({1.0, 2.0})), {}, {3});
}

TEST_CASE("einsum: errors name einsum, the equation and the operand shapes", "[einsum][errors]") {
  const Tensor a = zeros({2, 3}), b = zeros({4, 5}), c = zeros({3, 4});
  CHECK_THROWS_AS(einsum("ij,jk->ik", a, b), ShapeError);
  CHECK_THROWS_WITH(einsum("ij,jk->ik", a, b),
                    Equals("einsum: index 'j' has size 3 in operand 0 and 4 in operand 1: ij,jk->ik with [2, 3], [4, 5]"));
  CHECK_THROWS_WITH(einsum("ii", a), Equals("einsum: index 'i' has size 2 in operand 0 and 3 in operand 0: ii with [2, 3]"));
  CHECK_THROWS_AS(einsum("ij,jk->ik", {a}), ValueError);
  CHECK_THROWS_WITH(einsum("ij,jk->ik", {a}),
                    Equals("einsum: the equation has 2 operand terms but 1 operands were given: ij,jk->ik with [2, 3]"));
  CHECK_THROWS_WITH(einsum("ij", {a, c}), Contains("1 operand terms but 2 operands") && Contains("ij with [2, 3], [3, 4]"));
  CHECK_THROWS_AS(einsum("ij", std::vector<Tensor>{}), ValueError);
  CHECK_THROWS_WITH(einsum("ij", std::vector<Tensor>{}), Equals("einsum: needs at least one operand: ij with no operands"));
  CHECK_THROWS_AS(einsum("ij,jk->il", a, c), ValueError);
  CHECK_THROWS_WITH(einsum("ij,jk->il", a, c),
                    Equals("einsum: output index 'l' appears in no operand: ij,jk->il with [2, 3], [3, 4]"));
  CHECK_THROWS_AS(einsum("ij->ii", a), ValueError);
  CHECK_THROWS_WITH(einsum("ij->ii", a), Equals("einsum: output index 'i' is repeated: ij->ii with [2, 3]"));
  for (const char* bad : {"i1->i", "ij->i->j", "i,j->i,j", "i-j", "ij>j", "i_j"}) {
    INFO(bad);
    CHECK_THROWS_AS(einsum(bad, {a}), ValueError);
    CHECK_THROWS_WITH(einsum(bad, {a}), Contains("einsum: invalid character") && Contains(bad));
  }
  CHECK_THROWS_WITH(einsum("i1->i", a), Catch::Matchers::StartsWith("einsum: invalid character '1' in the equation"));
  CHECK_THROWS_AS(einsum("i.j", a), ValueError);
  CHECK_THROWS_WITH(einsum("i.j", a), Equals("einsum: '.' must come as one '...' per term (term 0): i.j with [2, 3]"));
  CHECK_THROWS_AS(einsum("...i...", a), ValueError);
  CHECK_THROWS_AS(einsum("ijk", a), ShapeError);
  CHECK_THROWS_WITH(einsum("ijk", a),
                    Equals("einsum: operand 0 has 2 dimensions but its term has 3 indices and no '...': ijk with [2, 3]"));
  CHECK_THROWS_WITH(einsum("i", a), Contains("operand 0 has 2 dimensions but its term has 1 indices and no '...'"));
  CHECK_THROWS_WITH(einsum("...ijk", a),
                    Equals("einsum: operand 0 has 2 dimensions but its term has 3 indices besides '...': ...ijk with [2, 3]"));
  CHECK_THROWS_AS(einsum("ij,jk", a, zeros({3, 4}, kFloat64)), DTypeError);
  CHECK_THROWS_WITH(einsum("ij,jk", a, zeros({3, 4}, kFloat64)),
                    Equals("einsum: operands have different dtypes (float32 for operand 0, float64 for operand 1): "
                           "ij,jk with [2, 3], [3, 4]"));
  CHECK_THROWS_AS(einsum("ij", zeros({2, 2}, kBool)), DTypeError);
  CHECK_THROWS_WITH(einsum("ij", zeros({2, 2}, kBool)), Equals("einsum: bool tensors are not supported: ij with [2, 2]"));
  // "..." must be kept in the output, and broadcast
  CHECK_THROWS_AS(einsum("...ij->ij", zeros({4, 2, 3})), ValueError);
  CHECK_THROWS_WITH(einsum("...ij->ij", zeros({4, 2, 3})),
                    Equals("einsum: the operands have dimensions under '...' but the output has no '...' to keep them: "
                           "...ij->ij with [4, 2, 3]"));
  CHECK_THROWS_AS(einsum("...i,...i->...i", zeros({2, 3}), zeros({4, 3})), ShapeError);
  CHECK_THROWS_WITH(einsum("...i,...i->...i", zeros({2, 3}), zeros({4, 3})),
                    Equals("einsum: the dimensions under '...' cannot be broadcast: ...i,...i->...i with [2, 3], [4, 3]"));
  CHECK_THROWS_AS(einsum("ij", Tensor()), ValueError);
}

// =================================================================== nonzero, boolean_mask, gather_nd, scatter_nd, segments

namespace {

namespace ng = nd_index_golden;

template <class T, std::size_t N>
std::vector<double> golden(const T (&a)[N]) {
  return std::vector<double>(std::begin(a), std::end(a));
}

// ng::kP [2, 3, 4] as `dtype`
Tensor golden_params(DType dtype = kFloat64) { return from_values(golden(ng::kP), {2, 3, 4}, dtype); }

}  // namespace

TEST_CASE("nonzero: TensorFlow's tf.where(condition) coordinates, row-major", "[nd_index]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor c = tensor({0.0, 1.5, 0.0, nan, 0.0, -2.0}, {2, 3});
  const Tensor w = nonzero(c);
  CHECK(w.dtype() == kInt64);
  check_values(w, {3, 2}, golden(ng::kWhereFloat), {0, 0});
  const Tensor b = from_values(golden(ng::kB), {2, 3, 4}, kBool);
  check_values(nonzero(b), {8, 3}, golden(ng::kWhereBool), {0, 0});
  check_values(nonzero(tensor({0, 7, 0, -1})), {2, 1}, {1, 3}, {0, 0});  // int32
  CHECK(nonzero(zeros({2, 3})).shape() == Shape{0, 2});
  CHECK(nonzero(zeros({0, 3}, kBool)).shape() == Shape{0, 2});
  CHECK(nonzero(scalar(3)).shape() == Shape{1, 0});
  CHECK(nonzero(scalar(0)).shape() == Shape{0, 0});
  CHECK_THROWS_AS(nonzero(Tensor()), ValueError);
}

TEST_CASE("boolean_mask: TensorFlow's values, axes and errors", "[nd_index]") {
  const Tensor p = golden_params();
  const Tensor b = from_values(golden(ng::kB), {2, 3, 4}, kBool);
  check_values(boolean_mask(p, b[0], 1), {2, 4}, golden(ng::kMaskAxis1), {0, 0});
  check_values(boolean_mask(p, tensor<bool>({false, true}), 0), {1, 3, 4}, golden(ng::kMaskAxis0), {0, 0});
  const Tensor m4 = tensor<bool>({true, false, true, true});
  check_values(boolean_mask(p, m4, 2), {2, 3, 3}, golden(ng::kMaskAxis2), {0, 0});
  check_values(boolean_mask(p, m4, -1), {2, 3, 3}, golden(ng::kMaskAxis2), {0, 0});
  // the whole shape: a 1-D result; a non-contiguous x; no true entry
  check_values(boolean_mask(p, b), {8}, {-3, -0.5, 0, 0.5, 3, 3.5, 6, 6.5}, {0, 0});
  check_values(boolean_mask(p.astype(kFloat32).transpose(), tensor<bool>({false, true, true, false}), 0), {2, 3, 2},
               {-2.5, 3.5, -0.5, 5.5, 1.5, 7.5, -2, 4, 0, 6, 2, 8}, {0, 0});
  CHECK(boolean_mask(p, zeros({3}, kBool), 1).shape() == Shape{2, 0, 4});
  CHECK_THROWS_AS(boolean_mask(p, ones({3}, kInt32), 1), DTypeError);
  CHECK_THROWS_WITH(boolean_mask(p, ones({3}, kInt32), 1),
                    Equals("boolean_mask: mask must be bool, got int32 (mask [3], x [2, 3, 4])"));
  CHECK_THROWS_AS(boolean_mask(p, ones({4}, kBool), 1), ShapeError);
  CHECK_THROWS_WITH(boolean_mask(p, ones({4}, kBool), 1),
                    Equals("boolean_mask: mask [4] must equal the shape of x [2, 3, 4] over axes [1, 2)"));
  CHECK_THROWS_AS(boolean_mask(p, ones({4, 2}, kBool), 2), ShapeError);
  CHECK_THROWS_WITH(boolean_mask(p, ones({2}, kBool), -1),
                    Equals("boolean_mask: mask [2] must equal the shape of x [2, 3, 4] over axes [2, 3)"));
  CHECK_THROWS_AS(boolean_mask(p, ones({2}, kBool), 3), ShapeError);
  CHECK_THROWS_AS(boolean_mask(p, scalar(1, kBool)), ShapeError);
}

TEST_CASE("gather_nd: TensorFlow's values (slices, points, batch_dims 1)", "[nd_index]") {
  for (DType dt : {kFloat64, kFloat32, kInt32}) {
    INFO(dtype_name(dt));
    const Tensor p = golden_params(dt == kInt32 ? kFloat64 : dt);
    check_values(gather_nd(p, tensor({1, 2, 0, 0, 1, 2}, {3, 2})), {3, 4}, golden(ng::kGatherNdSlices), {0, 0});
    check_values(gather_nd(p, tensor<std::int64_t>({1, 2, 3, 0, 1, 0, 0, 0, 0, 1, 0, 2}, {2, 2, 3})), {2, 2},
                 golden(ng::kGatherNdPoints), {0, 0});
    check_values(gather_nd(p, tensor({2, 0, 1, 1}, {2, 2, 1}), 1), {2, 2, 4}, golden(ng::kGatherNdBatch1), {0, 0});
    check_values(gather_nd(p, tensor({2, 3, 0, 1, 2, 3, 1, 0, 0, 0, 2, 2}, {2, 3, 2}), 1), {2, 3},
                 golden(ng::kGatherNdBatch1Points), {0, 0});
  }
  const Tensor p = golden_params();
  // k = 0: the whole of params per index row; no index rows: an empty result
  CHECK(gather_nd(p, zeros({2, 0}, kInt64)).shape() == Shape{2, 2, 3, 4});
  check_values(gather_nd(p, zeros({1, 0}, kInt64))[0][1][2], {4}, {7, 7.5, 8, 8.5}, {0, 0});
  CHECK(gather_nd(p, zeros({0, 2}, kInt64)).shape() == Shape{0, 4});
  // of a transposed view: [4, 3, 2]
  check_values(gather_nd(p.transpose(), tensor({3, 1, 1, 0, 0, 0}, {2, 3})), {2}, {6.5, -3}, {0, 0});
}

TEST_CASE("gather_nd: errors name the op, the index and the shape", "[nd_index]") {
  const Tensor p = golden_params();
  CHECK_THROWS_AS(gather_nd(p, tensor({1, 3}, {1, 2})), IndexError);
  CHECK_THROWS_WITH(gather_nd(p, tensor({0, 0, 1, 3}, {2, 2})),
                    Equals("gather_nd: index [1, 3] (row 1 of indices [2, 2]) is out of bounds for params of shape "
                           "[2, 3, 4] (axis 1 has size 3)"));
  CHECK_THROWS_AS(gather_nd(p, tensor({-1}, {1, 1})), IndexError);
  CHECK_THROWS_WITH(gather_nd(p, tensor({0, 4, 1, 1}, {2, 2, 1}), 1),
                    Equals("gather_nd: index [4] (row 1 of indices [2, 2, 1]) is out of bounds for params of shape "
                           "[2, 3, 4] (axis 1 has size 3)"));
  CHECK_THROWS_AS(gather_nd(p, zeros({2, 4}, kInt64)), ShapeError);
  CHECK_THROWS_WITH(gather_nd(p, zeros({2, 4}, kInt64)),
                    Equals("gather_nd: indices [2, 4] index 4 axes but params [2, 3, 4] has 3 after 0 batch axes"));
  CHECK_THROWS_AS(gather_nd(p, zeros({3, 1, 1}, kInt64), 1), ShapeError);
  CHECK_THROWS_WITH(gather_nd(p, zeros({3, 1, 1}, kInt64), 1),
                    Equals("gather_nd: the first 1 (batch) axes of indices [3, 1, 1] and params [2, 3, 4] differ"));
  CHECK_THROWS_AS(gather_nd(p, scalar(0, kInt64)), ShapeError);
  CHECK_THROWS_AS(gather_nd(p, zeros({1, 1})), DTypeError);
  CHECK_THROWS_WITH(gather_nd(p, zeros({1, 1})), Contains("gather_nd") && Contains("float32"));
  CHECK_THROWS_AS(gather_nd(p, zeros({1, 1}, kInt64), -1), ValueError);
}

TEST_CASE("scatter_nd, tensor_scatter_nd_add: TensorFlow's values; duplicates add", "[nd_index]") {
  const Tensor idx = tensor({1, 2, 0, 0, 1, 2}, {3, 2});
  const Tensor u = from_values({-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6}, {3, 4}, kFloat64);
  check_values(scatter_nd(tensor({4, 3, 1, 7}, {4, 1}), tensor({9.0, 10.0, 11.0, 12.0}), {8}), {8},
               golden(ng::kScatterNdDoc), {0, 0});
  check_values(scatter_nd(idx, u, {2, 3, 4}), {2, 3, 4}, golden(ng::kScatterNdSlices), {0, 0});
  const Tensor si = scatter_nd(tensor({0, 1, 1, 1, 0, 1}, {3, 2}), tensor({5, 7, -2}), {2, 2});
  CHECK(si.dtype() == kInt32);
  check_values(si, {2, 2}, golden(ng::kScatterNdInt), {0, 0});
  check_values(tensor_scatter_nd_add(golden_params(), idx, u), {2, 3, 4}, golden(ng::kTensorScatterNdAdd), {0, 0});
  // into a transposed view; no updates
  check_values(tensor_scatter_nd_add(zeros({2, 3}).transpose(), tensor({2, 1}, {1, 2}), tensor({4.f}, {1})), {3, 2},
               {0, 0, 0, 0, 0, 4}, {0, 0});
  check_values(scatter_nd(zeros({0, 1}, kInt64), zeros({0}), {3}), {3}, {0, 0, 0}, {0, 0});
  CHECK_THROWS_AS(scatter_nd(tensor({3}, {1, 1}), tensor({1.f}), {3}), IndexError);
  CHECK_THROWS_WITH(scatter_nd(tensor({3}, {1, 1}), tensor({1.f}), {3}),
                    Equals("scatter_nd: index [3] (row 0 of indices [1, 1]) is out of bounds for the output of shape [3] "
                           "(axis 0 has size 3)"));
  CHECK_THROWS_AS(scatter_nd(idx, zeros({3}), {2, 3, 4}), ShapeError);
  CHECK_THROWS_WITH(scatter_nd(idx, zeros({3}), {2, 3, 4}),
                    Equals("scatter_nd: updates [3] must have shape [3, 4] (indices [3, 2] into the output [2, 3, 4])"));
  CHECK_THROWS_AS(scatter_nd(idx, zeros({3, 4}, kBool), {2, 3, 4}), DTypeError);
  CHECK_THROWS_AS(scatter_nd(idx, zeros({3, 4}), {2, -3, 4}), ValueError);
  CHECK_THROWS_WITH(tensor_scatter_nd_add(golden_params(), tensor({2, 0}, {1, 2}), zeros({1, 4})),
                    Equals("tensor_scatter_nd_add: index [2, 0] (row 0 of indices [1, 2]) is out of bounds for tensor "
                           "of shape [2, 3, 4] (axis 0 has size 2)"));
  CHECK_THROWS_AS(tensor_scatter_nd_add(zeros({2}, kInt32), tensor({1}, {1, 1}), tensor({1.5f})), DTypeError);
}

TEST_CASE("unsorted_segment_sum, _mean, _max: TensorFlow's values, empty segments, dropped rows", "[nd_index]") {
  const Tensor d = from_values(golden(ng::kD), {5, 3}, kFloat64);
  const Tensor ids = tensor({0, 3, 0, -1, 3});
  check_values(unsorted_segment_sum(d, ids, 4), {4, 3}, golden(ng::kSegSum), {0, 0});
  check_values(unsorted_segment_mean(d, ids, 4), {4, 3}, golden(ng::kSegMean), {0, 0});
  check_values(unsorted_segment_max(d, ids, 4), {4, 3}, golden(ng::kSegMax), {0, 0});
  const Tensor m32 = unsorted_segment_max(d.astype(kFloat32), ids, 4);
  CHECK(values(m32)[3] == static_cast<double>(std::numeric_limits<float>::lowest()));
  const Tensor mi = unsorted_segment_max(d.astype(kInt32), ids.astype(kInt64), 4);
  CHECK(mi.dtype() == kInt32);
  check_values(mi, {4, 3}, golden(ng::kSegMaxInt), {0, 0});
  check_values(unsorted_segment_max(d.astype(kInt64), tensor({0, 0, 0, -1, 0}), 2)[1], {3},
               std::vector<double>(3, static_cast<double>(std::numeric_limits<std::int64_t>::lowest())), {0, 0});
  check_values(unsorted_segment_sum(d.astype(kInt64), ids, 4), {4, 3}, golden(ng::kSegSum), {0, 0});
  // ids [2, 3], a prefix of data [2, 3, 2]
  const Tensor d2 = from_values({-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5}, {2, 3, 2}, kFloat64);
  const Tensor ids2 = tensor({1, 0, 1, 1, 2, 0}, {2, 3});
  check_values(unsorted_segment_sum(d2, ids2, 3), {3, 2}, golden(ng::kSegSum2d), {0, 0});
  check_values(unsorted_segment_max(d2, ids2, 3), {3, 2}, golden(ng::kSegMax2d), {0, 0});
  // every row dropped, no segments
  check_values(unsorted_segment_sum(d, full({5}, -1, kInt32), 2), {2, 3}, std::vector<double>(6, 0), {0, 0});
  CHECK(unsorted_segment_mean(d, full({5}, -1, kInt64), 0).shape() == Shape{0, 3});
  CHECK(unsorted_segment_max(d, full({5}, -1, kInt64), 0).shape() == Shape{0, 3});
  CHECK_THROWS_AS(unsorted_segment_sum(d, ids, 3), IndexError);
  CHECK_THROWS_WITH(unsorted_segment_sum(d, ids, 3),
                    Equals("unsorted_segment_sum: segment id 3 (entry 1 of segment_ids [5]) is out of range [0, 3) "
                           "(data [5, 3])"));
  CHECK_THROWS_AS(unsorted_segment_max(d, tensor({0, 1, 0}), 2), ShapeError);
  CHECK_THROWS_WITH(unsorted_segment_max(d, tensor({0, 1, 0}), 2),
                    Equals("unsorted_segment_max: segment_ids [3] must be a prefix of the data's shape [5, 3]"));
  CHECK_THROWS_AS(unsorted_segment_sum(d, ids.astype(kFloat32), 4), DTypeError);
  CHECK_THROWS_AS(unsorted_segment_sum(d, ids, -1), ValueError);
  CHECK_THROWS_AS(unsorted_segment_sum(d.astype(kBool), ids, 4), DTypeError);
  CHECK_THROWS_AS(unsorted_segment_mean(d.astype(kInt32), ids, 4), DTypeError);
  CHECK_THROWS_WITH(unsorted_segment_mean(d.astype(kInt32), ids, 4),
                    Equals("unsorted_segment_mean: data must be float32 or float64, got int32 (data [5, 3])"));
}

TEST_CASE("unsorted_segment_min, and max's filler: TensorFlow's values, empty segments, -inf rows", "[nd_index]") {
  const Tensor d = from_values(golden(ng::kD), {5, 3}, kFloat64);
  const Tensor ids = tensor({0, 3, 0, -1, 3});
  check_values(unsorted_segment_min(d, ids, 4), {4, 3}, golden(ng::kSegMin), {0, 0});
  CHECK(values(unsorted_segment_min(d.astype(kFloat32), ids, 4))[3] == static_cast<double>(std::numeric_limits<float>::max()));
  const Tensor mi = unsorted_segment_min(d.astype(kInt32), ids.astype(kInt64), 4);
  CHECK(mi.dtype() == kInt32);
  check_values(mi, {4, 3}, golden(ng::kSegMinInt), {0, 0});
  // INT64_MAX is no double: the empty segment's filler must be exact
  const Tensor m64 = unsorted_segment_min(d.astype(kInt64), tensor({0, 0, 0, -1, 0}), 2);
  CHECK(m64[1].to_vector<std::int64_t>() == std::vector<std::int64_t>(3, std::numeric_limits<std::int64_t>::max()));
  const Tensor d2 = from_values({-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5}, {2, 3, 2}, kFloat64);
  check_values(unsorted_segment_min(d2, tensor({1, 0, 1, 1, 2, 0}, {2, 3}), 3), {3, 2}, golden(ng::kSegMin2d), {0, 0});
  // a segment of -inf rows: the filler, -DBL_MAX (TensorFlow's); the other column's max
  const double inf = std::numeric_limits<double>::infinity();
  check_values(unsorted_segment_max(from_values({-inf, 1, -inf, 2}, {2, 2}, kFloat64), tensor({0, 0}), 1), {1, 2},
               golden(ng::kSegMaxInf), {0, 0});
  CHECK(unsorted_segment_min(d, full({5}, -1, kInt64), 0).shape() == Shape{0, 3});
  CHECK_THROWS_WITH(unsorted_segment_min(d, tensor({0, 1, 0}), 2),
                    Equals("unsorted_segment_min: segment_ids [3] must be a prefix of the data's shape [5, 3]"));
  CHECK_THROWS_AS(unsorted_segment_min(d, ids, 3), IndexError);
  CHECK_THROWS_AS(unsorted_segment_min(d.astype(kBool), ids, 4), DTypeError);
}

TEST_CASE("scatter_max, scatter_min: np.maximum.at's values (duplicates, NaN), dtypes and errors", "[nd_index]") {
  const Tensor base = from_values(golden(ng::kSB), {3, 4}, kFloat64);
  const Tensor index = tensor(std::vector<std::int64_t>(std::begin(ng::kSI), std::end(ng::kSI)), {2, 4});
  const Tensor src = from_values(golden(ng::kSS), {2, 4}, kFloat64);
  const auto same = [](const Tensor& got, const std::vector<double>& want) {  // NaN where want has NaN
    const std::vector<double> v = values(got);
    REQUIRE(v.size() == want.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      INFO("element " << i);
      if (std::isnan(want[i])) CHECK(std::isnan(v[i]));
      else CHECK(v[i] == want[i]);
    }
  };
  same(scatter_max(base, index, src, 0), golden(ng::kScatterMax));
  same(scatter_min(base, index, src, 0), golden(ng::kScatterMin));
  // along axis 1 (the transposed problem), int32 indices, a float32 base: float64 values converted
  same(scatter_max(base.transpose().astype(kFloat32), index.transpose().astype(kInt32), src.transpose(), 1),
       values(scatter_max(base, index, src, 0).transpose().astype(kFloat32)));
  // integers: exact extremes
  const Tensor ib = tensor({5, -5, 0}, {3});
  CHECK(scatter_max(ib, tensor({0, 0, 2, 1}), tensor({7, 9, -3, -9}), 0).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{9, -5, 0});
  CHECK(scatter_min(ib, tensor({0, 0, 2, 1}), tensor({7, 9, -3, -9}), 0).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{5, -9, -3});
  CHECK_THROWS_AS(scatter_max(ib, tensor({3}), tensor({1}), 0), IndexError);
  CHECK_THROWS_WITH(scatter_max(ib, tensor({-1}), tensor({1}), 0),
                    Equals("scatter_max: index -1 is out of bounds for axis 0 with size 3 (input [3])"));
  CHECK_THROWS_AS(scatter_min(ib, tensor({0}), tensor({1.5}), 0), DTypeError);
  CHECK_THROWS_WITH(scatter_min(ib, tensor({0}), tensor({1.5}), 0),
                    Equals("scatter_min: cannot scatter float64 values [1] into a int32 base [3]"));
  CHECK_THROWS_WITH(scatter_max(zeros({3, 5}, kFloat64), index, src, 0),
                    Equals("scatter_max: indices [2, 4] and values [2, 4] do not match the base [3, 5] outside axis 0"));
  CHECK_THROWS_AS(scatter_max(base.astype(kBool), index, src.astype(kBool), 0), DTypeError);
}

TEST_CASE("gather_nd, scatter_nd, unsorted_segment_*: wrap, clip and fill modes (NumPy-adjusted TensorFlow values)",
          "[nd_index][index_mode]") {
  const Tensor p = golden_params();
  const Tensor io = tensor(std::vector<std::int64_t>(std::begin(ng::kIO), std::end(ng::kIO)), {4, 2});
  const Tensor ibo = tensor(std::vector<std::int64_t>(std::begin(ng::kIBO), std::end(ng::kIBO)), {2, 2, 1});
  const Tensor uo = arange(16, kFloat64).reshape({4, 4}) - 7.0;
  const IndexMode modes[] = {IndexMode::Wrap, IndexMode::Clip, IndexMode::Fill};
  const std::vector<double> gathered[] = {golden(ng::kGatherNdWrap), golden(ng::kGatherNdClip),
                                          golden(ng::kGatherNdFill)};
  const std::vector<double> batched[] = {golden(ng::kGatherNdBatchWrap), golden(ng::kGatherNdBatchClip),
                                         golden(ng::kGatherNdBatchFill)};
  const std::vector<double> scattered[] = {golden(ng::kScatterNdWrap), golden(ng::kScatterNdClip),
                                           golden(ng::kScatterNdFill)};
  for (int m = 0; m < 3; ++m) {
    INFO("mode " << m);
    check_values(gather_nd(p, io, 0, modes[m]), {4, 4}, gathered[m], {0, 0});
    check_values(gather_nd(p, io.astype(kInt32), 0, modes[m]), {4, 4}, gathered[m], {0, 0});
    check_values(gather_nd(p.transpose(0, 1).contiguous().transpose(0, 1), io, 0, modes[m]), {4, 4},
                 gathered[m], {0, 0});
    check_values(gather_nd(p, ibo, 1, modes[m]), {2, 2, 4}, batched[m], {0, 0});
    check_values(scatter_nd(io, uo, {2, 3, 4}, modes[m]), {2, 3, 4}, scattered[m], {0, 0});
    // tensor_scatter_nd_add on P is P plus scatter_nd's result
    check_values(tensor_scatter_nd_add(p, io, uo, modes[m]) - p, {2, 3, 4}, scattered[m], {0, 0});
  }
  // a point gather (k = 3): [1, 2, -1] fills to P[1, 2, 3]; [2, 0, 0] is outside
  check_values(gather_nd(p, tensor({1, 2, -1, 2, 0, 0}, {2, 3}), 0, IndexMode::Fill), {2}, {8.5, 0}, {0, 0});
  check_values(gather_nd(p, tensor({1, 2, -1, 2, 0, 0}, {2, 3}), 0, IndexMode::Wrap), {2}, {8.5, -3}, {0, 0});
  // k = 0 and empty index lists need no adjustment; an empty axis has nowhere to wrap or clip to
  CHECK(gather_nd(p, zeros({2, 0}, kInt64), 0, IndexMode::Clip).shape() == Shape{2, 2, 3, 4});
  CHECK(gather_nd(zeros({0, 3}), zeros({0, 1}, kInt64), 0, IndexMode::Wrap).shape() == Shape{0, 3});
  check_values(gather_nd(zeros({0, 3}) + 1.0, tensor({0, -1}, {2, 1}), 0, IndexMode::Fill), {2, 3},
               std::vector<double>(6, 0), {0, 0});
  CHECK_THROWS_AS(gather_nd(zeros({0, 3}), tensor({0}, {1, 1}), 0, IndexMode::Clip), IndexError);
  CHECK_THROWS_WITH(scatter_nd(tensor({0}, {1, 1}), ones({1, 3}), {0, 3}, IndexMode::Wrap),
                    Equals("scatter_nd: cannot wrap indices [1, 1] into axis 0 of size 0 of the output [0, 3]"));
  CHECK_THROWS_WITH(gather_nd(p, zeros({1, 2}), 0, IndexMode::Fill),
                    Equals("gather_nd: indices must be int32 or int64, got float32 (shape [1, 2])"));

  // segments: ids 5 and 4 >= 4 wrapped, clipped or dropped; -1 dropped in every mode
  const Tensor d6 = from_values(golden(ng::kD6), {6, 3}, kFloat64);
  const Tensor ids = tensor({0, 5, 0, -1, 3, 4});
  using SegmentOp = Tensor (*)(const Tensor&, const Tensor&, std::int64_t, IndexMode);
  const SegmentOp ops[] = {unsorted_segment_sum, unsorted_segment_mean, unsorted_segment_max, unsorted_segment_min};
  const std::vector<double> want[3][4] = {
      {golden(ng::kSegSumWrap), golden(ng::kSegMeanWrap), golden(ng::kSegMaxWrap), golden(ng::kSegMinWrap)},
      {golden(ng::kSegSumClip), golden(ng::kSegMeanClip), golden(ng::kSegMaxClip), golden(ng::kSegMinClip)},
      {golden(ng::kSegSumFill), golden(ng::kSegMeanFill), golden(ng::kSegMaxFill), golden(ng::kSegMinFill)}};
  for (int m = 0; m < 3; ++m) {
    for (int o = 0; o < 4; ++o) {
      INFO("mode " << m << " op " << o);
      check_values(ops[o](d6, ids, 4, modes[m]), {4, 3}, want[m][o], {1e-15, 1e-15});
      check_values(ops[o](d6.reshape({2, 3, 3}), ids.reshape({2, 3}).astype(kInt64), 4, modes[m]), {4, 3},
                   want[m][o], {1e-15, 1e-15});
    }
  }
  // Raise's checks stay: the same ids raise there
  CHECK_THROWS_AS(unsorted_segment_sum(d6, ids, 4), IndexError);
  // no segment: an empty result whatever the ids; float ids are refused in every mode
  CHECK(unsorted_segment_sum(d6, ids, 0, IndexMode::Wrap).shape() == Shape{0, 3});
  CHECK(unsorted_segment_max(d6, ids, 0, IndexMode::Clip).shape() == Shape{0, 3});
  CHECK(unsorted_segment_mean(d6, ids, 0, IndexMode::Fill).shape() == Shape{0, 3});
  CHECK_THROWS_WITH(unsorted_segment_sum(d6, ids.astype(kFloat32), 4, IndexMode::Fill),
                    Equals("unsorted_segment_sum: segment_ids must be int32 or int64, got float32 (shape [6])"));
}

// =================================================================== cumsum / cumprod flags, cummax, cummin

TEST_CASE("cumsum, cumprod: TensorFlow's exclusive and reverse along both axes, with zeros", "[cumsum][cumprod][golden]") {
  namespace g = prod_golden;
  using Fn = Tensor (*)(const Tensor&, std::int64_t, bool, bool);
  struct Want {
    Fn fn;
    const char* name;
    int axis;
    bool exclusive, reverse;
    std::vector<double> values;
  };
  const std::vector<Want> wants = {
      {cumsum, "cumsum", 0, false, false, golden(g::kCumsumAxis0)},
      {cumsum, "cumsum", 0, true, false, golden(g::kCumsumAxis0Excl)},
      {cumsum, "cumsum", 0, false, true, golden(g::kCumsumAxis0Rev)},
      {cumsum, "cumsum", 0, true, true, golden(g::kCumsumAxis0ExclRev)},
      {cumsum, "cumsum", 1, false, false, golden(g::kCumsumAxis1)},
      {cumsum, "cumsum", 1, true, false, golden(g::kCumsumAxis1Excl)},
      {cumsum, "cumsum", 1, false, true, golden(g::kCumsumAxis1Rev)},
      {cumsum, "cumsum", 1, true, true, golden(g::kCumsumAxis1ExclRev)},
      {cumprod, "cumprod", 0, false, false, golden(g::kCumprodAxis0)},
      {cumprod, "cumprod", 0, true, false, golden(g::kCumprodAxis0Excl)},
      {cumprod, "cumprod", 0, false, true, golden(g::kCumprodAxis0Rev)},
      {cumprod, "cumprod", 0, true, true, golden(g::kCumprodAxis0ExclRev)},
      {cumprod, "cumprod", 1, false, false, golden(g::kCumprodAxis1)},
      {cumprod, "cumprod", 1, true, false, golden(g::kCumprodAxis1Excl)},
      {cumprod, "cumprod", 1, false, true, golden(g::kCumprodAxis1Rev)},
      {cumprod, "cumprod", 1, true, true, golden(g::kCumprodAxis1ExclRev)},
  };
  for (DType dt : {kFloat32, kFloat64}) {
    const Tensor c = from_values(golden(g::kC), {3, 5}, dt);
    const Tol tol = dt == kFloat32 ? Tol{1e-6, 1e-6} : Tol{1e-14, 1e-15};
    for (const Want& w : wants) {
      INFO(w.name << " axis " << w.axis << " exclusive " << w.exclusive << " reverse " << w.reverse << " "
                  << dtype_name(dt));
      const Tensor y = w.fn(c, w.axis, w.exclusive, w.reverse);
      CHECK(y.dtype() == dt);
      check_values(y, {3, 5}, w.values, tol);
      check_values(w.fn(c, w.axis - 2, w.exclusive, w.reverse), {3, 5}, w.values, tol);  // negative axis
      // the same along the other axis of the transposed view
      check_values(w.fn(c.transpose(), 1 - w.axis, w.exclusive, w.reverse).transpose(), {3, 5}, w.values, tol);
    }
  }
  // the two-argument cumsum is the inclusive forward one
  check_values(cumsum(from_values(golden(g::kC), {3, 5}, kFloat64), 1), {3, 5}, golden(g::kCumsumAxis1), {1e-14, 1e-15});
  // int32 keeps its dtype and wraps around (TensorFlow's values: 65536 * 65536 = 0)
  const Tensor ci = from_values(golden(g::kCi), {6}, kInt32);
  CHECK(cumprod(ci, 0).dtype() == kInt32);
  check_values(cumprod(ci, 0), {6}, golden(g::kCiCumprod), {0, 0});
  check_values(cumprod(ci, 0, true, true), {6}, golden(g::kCiCumprodExclRev), {0, 0});
  check_values(cumsum(ci, 0, true), {6}, golden(g::kCiCumsumExcl), {0, 0});
  // int64 wraps as NumPy's cumprod
  const std::vector<std::int64_t> v64(std::begin(g::kPInt64), std::end(g::kPInt64));
  CHECK(cumprod(tensor(v64, {6}), 0).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>(std::begin(g::kPInt64Cumprod), std::end(g::kPInt64Cumprod)));
}

TEST_CASE("cumprod: hand-worked values, bool, sizes 0 to 9, NaN and inf, errors", "[cumprod]") {
  check_values(cumprod(tensor({1.0, 2.0, 3.0, 4.0}), 0), {4}, {1, 2, 6, 24});
  check_values(cumprod(tensor({1.0, 2.0, 3.0, 4.0}), 0, true), {4}, {1, 1, 2, 6});
  check_values(cumprod(tensor({1.0, 2.0, 3.0, 4.0}), 0, false, true), {4}, {24, 24, 12, 4});
  check_values(cumprod(tensor({1.0, 2.0, 3.0, 4.0}), 0, true, true), {4}, {24, 12, 4, 1});
  check_values(cumsum(tensor({1.0, 2.0, 3.0, 4.0}), 0, true, true), {4}, {9, 7, 4, 0});
  const Tensor b = cumprod(tensor({true, true, false, true}), 0);
  CHECK(b.dtype() == kInt64);
  check_values(b, {4}, {1, 1, 0, 0}, {0, 0});
  for (std::int64_t n = 0; n <= 9; ++n) {  // every power-of-two boundary of the scan, both flags
    INFO("n " << n);
    std::vector<double> v, incl, excl_rev(static_cast<std::size_t>(n));
    double p = 1;
    for (std::int64_t k = 0; k < n; ++k) {
      v.push_back(static_cast<double>(k % 3) - 1.0 + (k % 3 == 1 ? 2.0 : 0.0));  // -1, 2, 1, -1, ...
      p *= v.back();
      incl.push_back(p);
    }
    p = 1;
    for (std::int64_t k = n - 1; k >= 0; --k) {
      excl_rev[static_cast<std::size_t>(k)] = p;
      p *= v[static_cast<std::size_t>(k)];
    }
    check_values(cumprod(from_values(v, {n}, kInt64), 0), {n}, incl, {0, 0});
    check_values(cumprod(from_values(v, {n}, kInt64), 0, true, true), {n}, excl_rev, {0, 0});
  }
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  const std::vector<double> got = values(cumprod(tensor({2.0, inf, 0.0, 3.0}), 0));
  CHECK(got[1] == inf);
  CHECK((std::isnan(got[2]) && std::isnan(got[3])));  // inf * 0, then NaN on
  CHECK(std::isnan(values(cumprod(tensor({nan, 0.0}), 0, false, true))[0]));
  check_values(cumprod(zeros({2, 0}), 1, true, true), {2, 0}, {});
  check_values(cumprod(zeros({0, 3}), 1), {0, 3}, {});
  CHECK_THROWS_AS(cumprod(scalar(1.0), 0), ShapeError);
  CHECK_THROWS_WITH(cumprod(scalar(1.0), 0), Contains("cumprod: needs at least 1 dimension, got shape []"));
  CHECK_THROWS_WITH(cumprod(zeros({2, 3}), -3), Contains("cumprod: axis -3 is out of range for a tensor of rank 2"));
  CHECK_THROWS_WITH(cumsum(zeros({2, 3}), 2, true), Contains("cumsum: axis 2 is out of range"));
}

TEST_CASE("cummax, cummin: NumPy's accumulate values (PyTorch's NaN rule), dtypes, errors", "[cummax][golden]") {
  namespace g = prod_golden;
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    const Tensor m = from_values(golden(g::kM), {2, 7}, dt);
    check_values(cummax(m, 0), {2, 7}, golden(g::kCummaxAxis0), {0, 0});
    check_values(cummax(m, 1), {2, 7}, golden(g::kCummaxAxis1), {0, 0});
    check_values(cummin(m, -2), {2, 7}, golden(g::kCumminAxis0), {0, 0});
    check_values(cummin(m, -1), {2, 7}, golden(g::kCumminAxis1), {0, 0});
    check_values(cummax(m.transpose(), 0).transpose(), {2, 7}, golden(g::kCummaxAxis1), {0, 0});
    CHECK(cummax(m, 1).dtype() == dt);
  }
  const Tensor i = tensor<std::int32_t>({3, -7, 5, 5, 2147483647, -2147483647 - 1}, {6});
  CHECK(cummax(i, 0).dtype() == kInt32);
  check_values(cummax(i, 0), {6}, {3, 3, 5, 5, 2147483647, 2147483647}, {0, 0});
  check_values(cummin(i, 0), {6}, {3, -7, -7, -7, -7, -2147483648.0}, {0, 0});
  check_values(cummax(tensor({false, true, false}), 0), {3}, {0, 1, 1}, {0, 0});
  check_values(cummax(zeros({0}), 0), {0}, {});
  CHECK_THROWS_WITH(cummax(scalar(1.0), 0), Contains("cummax: needs at least 1 dimension, got shape []"));
  CHECK_THROWS_WITH(cummin(zeros({2}), 1), Contains("cummin: axis 1 is out of range for a tensor of rank 1"));
}

// =================================================================== IndexMode of take, take_along_axis, gather, scatter_add

TEST_CASE("IndexMode wrap and clip: take, take_along_axis and scatter_add match NumPy's modes", "[gather][scatter_add][index_mode]") {
  namespace g = index_mode_golden;
  const Tensor x = from_values(golden(g::kX), {3, 4}, kFloat64);
  for (const DType it : {kInt64, kInt32}) {
    INFO("indices " << dtype_name(it));
    const Tensor idx = from_values(golden(g::kIdx), {10}, it);
    check_values(take(x, idx, 0, IndexMode::Wrap), {10, 4}, golden(g::kTakeAxis0Wrap), {0, 0});
    check_values(take(x, idx, 1, IndexMode::Wrap), {3, 10}, golden(g::kTakeAxis1Wrap), {0, 0});
    check_values(take(x, idx, 0, IndexMode::Clip), {10, 4}, golden(g::kTakeAxis0Clip), {0, 0});
    check_values(take(x, idx, -1, IndexMode::Clip), {3, 10}, golden(g::kTakeAxis1Clip), {0, 0});
    const Tensor along = from_values(golden(g::kAlongIdx), {3, 5}, it);
    check_values(take_along_axis(x, along, 1, IndexMode::Wrap), {3, 5}, golden(g::kAlongWrap), {0, 0});
    check_values(take_along_axis(x, along, 1, IndexMode::Clip), {3, 5}, golden(g::kAlongClip), {0, 0});
    const Tensor rows = from_values(golden(g::kScatterIdx), {6, 1}, it);
    const Tensor src = from_values(golden(g::kScatterSrc), {6, 2}, kFloat64);
    check_values(scatter_add(zeros({4, 2}, kFloat64), rows, src, 0, IndexMode::Wrap), {4, 2},
                 golden(g::kScatterWrap), {0, 0});
    check_values(scatter_add(zeros({4, 2}, kFloat64), rows, src, 0, IndexMode::Clip), {4, 2},
                 golden(g::kScatterClip), {0, 0});
  }
  // gather is take_along_axis on the last axis: x [3, 4], labels one per row
  check_values(gather(x, tensor<std::int64_t>({-1, 4, -6}, {3}), IndexMode::Wrap), {3}, {0.5, 2.0, 11.0}, {0, 0});
  check_values(gather(x, tensor<std::int64_t>({-1, 4, -6}, {3}), IndexMode::Clip), {3}, {-4.0, 6.5, 8.0}, {0, 0});
  // indices far outside (no overflow in the modulo or the clamp)
  const Tensor far = tensor<std::int64_t>({std::numeric_limits<std::int64_t>::min(),
                                           std::numeric_limits<std::int64_t>::max(), std::int64_t(1) << 40},
                                          {3});
  // INT64_MIN = -2^63 = 1 mod 3 (2^63 = 2 mod 3), INT64_MAX = 2^63 - 1 = 1 mod 3, 2^40 = 1 mod 3
  check_values(take(tensor({10.0, 20.0, 30.0}), far, 0, IndexMode::Wrap), {3}, {20, 20, 20}, {0, 0});
  check_values(take(tensor({10.0, 20.0, 30.0}), far, 0, IndexMode::Clip), {3}, {10, 30, 30}, {0, 0});
  check_values(take(tensor({10.0, 20.0, 30.0}), far, 0, IndexMode::Fill), {3}, {0, 0, 0}, {0, 0});
}

TEST_CASE("IndexMode fill: [-n, 0) counts from the end, the rest gives 0 or is dropped (JAX's fill)",
          "[gather][scatter_add][index_mode]") {
  const Tensor x = tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  // n = 3: -4 is outside (0), -3 is 0, -1 is 2, 3 and 7 are outside
  const Tensor idx = tensor<std::int64_t>({-4, -3, -1, 0, 2, 3, 7}, {7});
  check_values(take(x, idx, 1, IndexMode::Fill), {2, 7}, {0, 1, 3, 1, 3, 0, 0, 0, 4, 6, 4, 6, 0, 0}, {0, 0});
  // n = 2 along axis 0: 1, -2 (row 0), 2 and -3 outside: whole rows of 0
  check_values(take(x, tensor({1, -2, 2, -3}), 0, IndexMode::Fill), {4, 3}, {4, 5, 6, 1, 2, 3, 0, 0, 0, 0, 0, 0},
               {0, 0});
  check_values(take_along_axis(x, tensor({-1, 5, 1, -4}, {2, 2}), 1, IndexMode::Fill), {2, 2}, {3, 0, 5, 0}, {0, 0});
  check_values(gather(x, tensor({-1, 3}), IndexMode::Fill), {2}, {3, 0}, {0, 0});
  // scatter_add into [4]: -1 -> 3, 4 dropped, -4 -> 0, -5 dropped, 1 -> 1
  const Tensor base = tensor({10, 20, 30, 40}, {4});
  check_values(scatter_add(base, tensor<std::int64_t>({-1, 4, -4, -5, 1}, {5}), tensor({1, 2, 3, 4, 5}), 0,
                           IndexMode::Fill),
               {4}, {13, 25, 30, 41}, {0, 0});
  check_values(base, {4}, {10, 20, 30, 40}, {0, 0});  // the base is not modified
  // int types keep their dtype, bool values gather as in raise mode
  CHECK(take(tensor({true, false}), tensor({-1, 2}), 0, IndexMode::Fill).dtype() == kBool);
  check_values(take(tensor({true, false}), tensor({-1, 2, 0}), 0, IndexMode::Fill), {3}, {0, 0, 1}, {0, 0});
}

TEST_CASE("IndexMode: empty axes and indices, errors", "[gather][scatter_add][index_mode][errors]") {
  const Tensor x = zeros({2, 3});
  // raise (the default) names the op, the index, the axis, its size and the input's shape
  CHECK_THROWS_WITH(take(x, tensor({0, -1}), 1),
                    Equals("take: index -1 is out of bounds for axis 1 with size 3 (input [2, 3])"));
  CHECK_THROWS_WITH(take(x, tensor({2}), 0, IndexMode::Raise),
                    Equals("take: index 2 is out of bounds for axis 0 with size 2 (input [2, 3])"));
  CHECK_THROWS_WITH(scatter_add(x, tensor({5, 0}, {2, 1}), ones({2, 1}), 1),
                    Equals("scatter_add: index 5 is out of bounds for axis 1 with size 3 (input [2, 3])"));
  // an empty axis: nowhere to wrap or clip a non-empty index list to (NumPy raises too)
  const Tensor empty_axis = zeros({0, 3});
  CHECK_THROWS_WITH(take(empty_axis, tensor({0}), 0, IndexMode::Clip),
                    Equals("take: cannot clip indices into axis 0 of size 0 of [0, 3]"));
  CHECK_THROWS_WITH(take_along_axis(zeros({2, 0}), tensor({1, 1}, {2, 1}), 1, IndexMode::Wrap),
                    Equals("take_along_axis: cannot wrap indices into axis 1 of size 0 of [2, 0]"));
  CHECK_THROWS_AS(scatter_add(empty_axis, tensor({0}, {1, 1}), ones({1, 3}), 0, IndexMode::Wrap), IndexError);
  // fill has an answer: all 0, or all dropped
  check_values(take(empty_axis, tensor({0, -1}), 0, IndexMode::Fill), {2, 3}, {0, 0, 0, 0, 0, 0}, {0, 0});
  check_values(scatter_add(empty_axis, tensor({0}, {1, 1}), ones({1, 3}), 0, IndexMode::Fill), {0, 3}, {}, {0, 0});
  // no indices at all: nothing to adjust in any mode
  for (const IndexMode m : {IndexMode::Raise, IndexMode::Wrap, IndexMode::Clip, IndexMode::Fill}) {
    check_values(take(empty_axis, zeros({0}, kInt64), 0, m), {0, 3}, {});
    check_values(take(x, zeros({0}, kInt32), 1, m), {2, 0}, {});
  }
  // the modes change nothing else: float indices, shapes
  CHECK_THROWS_AS(take(x, zeros({2}), 0, IndexMode::Clip), DTypeError);
  CHECK_THROWS_AS(take_along_axis(x, tensor({0, 1}), 1, IndexMode::Wrap), ShapeError);
  CHECK_THROWS_AS(scatter_add(x, tensor({0, 1}, {1, 2}), ones({1, 2}), 1, IndexMode::Fill), ShapeError);
}
