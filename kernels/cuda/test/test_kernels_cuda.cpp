// kernels/cuda against the naive kernels, on raw device buffers (the core's own per-device
// tests are test/test_device.cpp). Runs everywhere: without a usable device it checks that the
// queries report the reason and that calls throw CudaError with file:line, and the kernel
// cases say they are skipped.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tapeflow/kernels/cuda.hpp"
#include "tapeflow/kernels/naive.hpp"

namespace cuda = tapeflow::kernels::cuda;
namespace naive = tapeflow::kernels::naive;
using tapeflow::OpId;
using tapeflow::kernels::Layout;

namespace {

bool have_device() {
  if (cuda::device_count() > 0) {
    cuda::set_device(0);
    return true;
  }
  WARN("skipped: " << cuda::device_status());
  return false;
}

// n elements of T on the device, from the cache; copied in from / out to host vectors.
template <class T>
struct DeviceBuffer {
  explicit DeviceBuffer(std::size_t n) : count(n) { ptr = static_cast<T*>(cuda::allocate(0, n * sizeof(T), capacity)); }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    cuda::copy_to_device(ptr, host.data(), host.size() * sizeof(T));
  }
  ~DeviceBuffer() { cuda::deallocate(0, ptr, capacity); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  std::vector<T> host() const {
    std::vector<T> out(count);
    cuda::copy_to_host(out.data(), ptr, count * sizeof(T));
    return out;
  }
  T* ptr = nullptr;
  std::size_t count = 0;
  std::size_t capacity = 0;
};

Layout layout(std::vector<std::int64_t> shape, std::vector<std::int64_t> strides) {
  Layout l;
  l.rank = static_cast<int>(shape.size());
  for (int i = 0; i < l.rank; ++i) {
    l.shape[i] = shape[static_cast<std::size_t>(i)];
    l.strides[i] = strides[static_cast<std::size_t>(i)];
  }
  return l;
}
Layout contiguous(std::vector<std::int64_t> shape) {
  return tapeflow::kernels::contiguous_layout(static_cast<int>(shape.size()), shape.data());
}

template <class T>
std::vector<T> random_values(std::size_t n, std::uint32_t seed, double lo = -3, double hi = 3) {
  std::mt19937 rng(seed);
  std::vector<T> v(n);
  for (auto& x : v) {
    if constexpr (std::is_floating_point_v<T>) x = static_cast<T>(std::uniform_real_distribution<double>(lo, hi)(rng));
    else x = static_cast<T>(std::uniform_int_distribution<int>(static_cast<int>(lo), static_cast<int>(hi))(rng));
  }
  return v;
}

template <class T>
void check_near(const std::vector<T>& actual, const std::vector<T>& expected, double rtol) {
  REQUIRE(actual.size() == expected.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
    const bool ok = (std::isnan(a) && std::isnan(e)) || a == e || std::abs(a - e) <= rtol * (1 + std::abs(e));
    if (!ok && bad++ < 5) UNSCOPED_INFO("[" << i << "] " << a << " vs " << e);
  }
  CHECK(bad == 0);
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
    CHECK(status.rfind("CUDA device 0 of ", 0) == 0);
  }
}

TEST_CASE("cuda: a missing device throws CudaError naming the call and the reason") {
  const int count = cuda::device_count();
  try {
    cuda::set_device(count);  // one past the last
    FAIL("set_device past the last device did not throw");
  } catch (const cuda::CudaError& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("set_device") != std::string::npos);
    CHECK(what.find("not available") != std::string::npos);
    CHECK(e.code() != 0);
  }
  std::size_t capacity = 0;
  CHECK_THROWS_AS(cuda::allocate(count, 16, capacity), cuda::CudaError);
  CHECK_THROWS_AS(cuda::cache_stats(count), cuda::CudaError);
  CHECK_FALSE(cuda::allow_tf32());
}

TEST_CASE("cuda: the caching allocator reuses buffers and counts bytes") {
  if (!have_device()) return;
  cuda::empty_cache(0);
  const cuda::CacheStats s0 = cuda::cache_stats(0);
  std::size_t cap = 0;
  void* p = cuda::allocate(0, 1000, cap);
  CHECK(cap >= 1000);
  CHECK(cuda::cache_stats(0).current_bytes == s0.current_bytes + cap);
  cuda::deallocate(0, p, cap);
  CHECK(cuda::cache_stats(0).cached_bytes == s0.cached_bytes + cap);
  std::size_t cap2 = 0;
  void* q = cuda::allocate(0, 900, cap2);  // the same size class: served from the cache
  CHECK(q == p);
  CHECK(cap2 == cap);
  CHECK(cuda::cache_stats(0).cache_hits == s0.cache_hits + 1);
  cuda::deallocate(0, q, cap2);
  cuda::empty_cache(0);
  CHECK(cuda::cache_stats(0).cached_bytes == 0);
  CHECK(cuda::cache_stats(0).peak_bytes >= cap);
}

TEST_CASE("cuda: element-wise kernels match the naive ones on strided layouts") {
  if (!have_device()) return;
  const std::size_t n = 6 * 7;
  const auto a = random_values<float>(n, 1), b = random_values<float>(7, 2, 0.5, 2);
  DeviceBuffer<float> da(a), db(b), dout(n);
  std::vector<float> expected(n);
  // out[i, j] = a[j, i]^T op b[j] (transposed a, broadcast b), for a few ops
  const Layout out_l = contiguous({6, 7}), a_l = layout({6, 7}, {1, 6}), b_l = layout({6, 7}, {0, 1});
  for (OpId op : {OpId::Add, OpId::Sub, OpId::Mul, OpId::Div, OpId::Pow, OpId::Maximum}) {
    cuda::binary<float>(op, dout.ptr, out_l, da.ptr, a_l, db.ptr, b_l);
    naive::binary<float>(op, expected.data(), out_l, a.data(), a_l, b.data(), b_l);
    check_near(dout.host(), expected, 1e-6);
  }
  for (OpId op : {OpId::Exp, OpId::Tanh, OpId::Sigmoid, OpId::Relu, OpId::Clip}) {
    cuda::unary<float>(op, dout.ptr, out_l, da.ptr, a_l, -1, 1);
    naive::unary<float>(op, expected.data(), out_l, a.data(), a_l, -1, 1);
    check_near(dout.host(), expected, 1e-6);
  }
  // contiguous and vectorised, with a tail
  const std::size_t big = (1u << 20) + 3;
  const auto x = random_values<double>(big, 3);
  DeviceBuffer<double> dx(x), dy(big);
  std::vector<double> ey(big);
  const Layout l = contiguous({static_cast<std::int64_t>(big)});
  cuda::unary<double>(OpId::Neg, dy.ptr, l, dx.ptr, l, 0, 0);
  naive::unary<double>(OpId::Neg, ey.data(), l, x.data(), l, 0, 0);
  check_near(dy.host(), ey, 0);
  cuda::binary<double>(OpId::Mul, dy.ptr, l, dx.ptr, l, dx.ptr, l);
  naive::binary<double>(OpId::Mul, ey.data(), l, x.data(), l, x.data(), l);
  check_near(dy.host(), ey, 0);
}

TEST_CASE("cuda: reductions, arg-reductions and softmax match the naive ones") {
  if (!have_device()) return;
  // [3, 300000] summed along the long axis (split into partials), and along the short one
  const std::int64_t rows = 3, cols = 300000;
  const auto x = random_values<float>(static_cast<std::size_t>(rows * cols), 4);
  DeviceBuffer<float> dx(x);
  const Layout in_l = contiguous({rows, cols});
  for (OpId op : {OpId::Sum, OpId::Max, OpId::Min}) {
    DeviceBuffer<float> d_row(rows);
    std::vector<float> e_row(static_cast<std::size_t>(rows));
    const Layout row_out = layout({rows, cols}, {1, 0});
    cuda::reduce<float>(op, d_row.ptr, row_out, dx.ptr, in_l);
    naive::reduce<float>(op, e_row.data(), row_out, x.data(), in_l);
    check_near(d_row.host(), e_row, 1e-5);
    DeviceBuffer<float> d_col(static_cast<std::size_t>(cols));
    std::vector<float> e_col(static_cast<std::size_t>(cols));
    const Layout col_out = layout({rows, cols}, {0, 1});
    cuda::reduce<float>(op, d_col.ptr, col_out, dx.ptr, in_l);
    naive::reduce<float>(op, e_col.data(), col_out, x.data(), in_l);
    check_near(d_col.host(), e_col, 1e-5);
  }
  // argmax with ties and a NaN: the first index wins, a NaN wins over everything
  std::vector<double> t = {1, 3, 3, 2, 5, 5, NAN, 5, 0, 0, 0, 0};
  DeviceBuffer<double> dt(t);
  DeviceBuffer<std::int64_t> di(3);
  std::vector<std::int64_t> ei(3);
  const Layout tl = contiguous({3, 4});
  cuda::arg_reduce<double>(OpId::ArgMax, di.ptr, dt.ptr, tl, 1);
  naive::arg_reduce<double>(OpId::ArgMax, ei.data(), t.data(), tl, 1);
  CHECK(di.host() == ei);
  CHECK(ei == std::vector<std::int64_t>{1, 2, 0});
  // softmax along the long axis of a transposed view
  DeviceBuffer<float> ds(static_cast<std::size_t>(rows * cols));
  std::vector<float> es(static_cast<std::size_t>(rows * cols));
  const Layout tr = layout({cols, rows}, {1, cols});
  cuda::softmax<float>(true, ds.ptr, dx.ptr, tr, 0);
  naive::softmax<float>(true, es.data(), x.data(), tr, 0);
  check_near(ds.host(), es, 1e-5);
}

TEST_CASE("cuda: matmul matches the naive one (cuBLAS, batched, broadcast, integers)") {
  if (!have_device()) return;
  // a [2, 3, 5, 4] (transposed matrices) @ b [3, 4, 6] broadcast over the first axis
  const auto a = random_values<double>(2 * 3 * 4 * 5, 5), b = random_values<double>(3 * 4 * 6, 6);
  const Layout a_l = layout({2, 3, 5, 4}, {60, 20, 1, 5}), b_l = layout({2, 3, 4, 6}, {0, 24, 6, 1});
  DeviceBuffer<double> da(a), db(b), dout(2 * 3 * 5 * 6);
  std::vector<double> e(2 * 3 * 5 * 6);
  cuda::matmul<double>(dout.ptr, da.ptr, a_l, db.ptr, b_l);
  naive::matmul<double>(e.data(), a.data(), a_l, b.data(), b_l);
  check_near(dout.host(), e, 1e-12);
  const auto ia = random_values<std::int64_t>(7 * 9, 7), ib = random_values<std::int64_t>(9 * 4, 8);
  DeviceBuffer<std::int64_t> dia(ia), dib(ib), dio(7 * 4);
  std::vector<std::int64_t> eio(7 * 4);
  cuda::matmul<std::int64_t>(dio.ptr, dia.ptr, contiguous({7, 9}), dib.ptr, contiguous({9, 4}));
  naive::matmul<std::int64_t>(eio.data(), ia.data(), contiguous({7, 9}), ib.data(), contiguous({9, 4}));
  CHECK(dio.host() == eio);
}

TEST_CASE("cuda: gather, scatter_add and random numbers match the naive ones") {
  if (!have_device()) return;
  const auto x = random_values<float>(4 * 5, 9);
  const std::vector<std::int64_t> idx = {4, 0, 4, 1, 1, 1, 3, 2};  // [4, 2], duplicates
  DeviceBuffer<float> dx(x), dout(8), dsum(20);
  DeviceBuffer<std::int64_t> didx(idx);
  std::vector<float> e(8), esum(20, 0.f);
  const Layout out_l = contiguous({4, 2}), in_l = contiguous({4, 5}), idx_l = contiguous({4, 2});
  cuda::gather<float>(dout.ptr, out_l, dx.ptr, in_l, didx.ptr, idx_l, 1);
  naive::gather<float>(e.data(), out_l, x.data(), in_l, idx.data(), idx_l, 1);
  CHECK(dout.host() == e);
  cuda::fill<float>(dsum.ptr, in_l, 0.f);
  cuda::scatter_add<float>(dsum.ptr, in_l, dout.ptr, out_l, didx.ptr, idx_l, 1);
  naive::scatter_add<float>(esum.data(), in_l, e.data(), out_l, idx.data(), idx_l, 1);
  check_near(dsum.host(), esum, 1e-6);
  const std::int64_t n = 100003;
  DeviceBuffer<float> du(static_cast<std::size_t>(n));
  std::vector<float> eu(static_cast<std::size_t>(n));
  cuda::uniform<float>(du.ptr, n, 42, 1000, -1, 2);
  naive::uniform<float>(eu.data(), n, 42, 1000, -1, 2);
  CHECK(du.host() == eu);
  DeviceBuffer<double> dn(static_cast<std::size_t>(n));
  std::vector<double> en(static_cast<std::size_t>(n));
  cuda::normal<double>(dn.ptr, n, 7, 0, 0.5, 2);
  naive::normal<double>(en.data(), n, 7, 0, 0.5, 2);
  check_near(dn.host(), en, 1e-15);  // the device's log/cos may differ in the last bit
}
