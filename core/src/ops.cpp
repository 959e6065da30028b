// The op front-ends: validate, compute the output shape and dtype, allocate, dispatch to the
// device's kernels, and tell the observer.
#include "tapeflow/ops.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "internal.hpp"
#include "tapeflow/observer.hpp"

namespace tapeflow {

namespace {
thread_local OpObserver* t_observer = nullptr;
}  // namespace
OpObserver* current_observer() { return t_observer; }
OpObserver* set_current_observer(OpObserver* observer) {
  OpObserver* previous = t_observer;
  t_observer = observer;
  return previous;
}
namespace {
thread_local int t_no_recording = 0;
}  // namespace
int no_recording_depth() { return t_no_recording; }
NoRecording::NoRecording() : saved_(set_current_observer(nullptr)) { ++t_no_recording; }
NoRecording::~NoRecording() {
  --t_no_recording;
  set_current_observer(saved_);
}

namespace {

using detail::ptr;
using detail::scalar_to_device;
using detail::check_defined;
using detail::check_same_device;
using detail::layout_as;
using detail::layout_of;
using detail::record;

}  // namespace

namespace detail {
std::vector<std::int64_t> reduce_axes(const std::vector<std::int64_t>& axes, std::int64_t rank, const char* op) {
  std::vector<std::int64_t> out;
  if (axes.empty()) {
    out.resize(static_cast<std::size_t>(rank));
    std::iota(out.begin(), out.end(), 0);
    return out;
  }
  for (auto a : axes) out.push_back(normalize_axis(a, rank, op));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end()) {
    throw ValueError(fmt::format("{}: repeated axis in [{}]", op, fmt::join(axes, ", ")));
  }
  return out;
}
}  // namespace detail

namespace {

using detail::reduce_axes;

}  // namespace

// ============================================================== creation

template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape, DType dtype, Device device) {
  detail::check_shape(shape, "tensor");
  detail::use_device(device, "tensor");  // an unavailable device is named by this op, not by to()
  if (static_cast<std::int64_t>(values.size()) != numel(shape)) {
    throw ValueError(fmt::format("tensor: {} values do not fill shape {} ({} elements)", values.size(),
                                 shape_str(shape), numel(shape)));
  }
  Tensor t = empty(shape, dtype_v<T>);
  T* p = t.data<T>();
  for (std::size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t.astype(dtype).to(device);
}
template Tensor tensor<bool>(const std::vector<bool>&, const Shape&, DType, Device);
template Tensor tensor<std::int32_t>(const std::vector<std::int32_t>&, const Shape&, DType, Device);
template Tensor tensor<std::int64_t>(const std::vector<std::int64_t>&, const Shape&, DType, Device);
template Tensor tensor<float>(const std::vector<float>&, const Shape&, DType, Device);
template Tensor tensor<double>(const std::vector<double>&, const Shape&, DType, Device);

Tensor detail::empty_for(const Shape& shape, DType dtype, Device device, const char* op) {
  check_shape(shape, op);
  std::int64_t bytes = 0;
  if (__builtin_mul_overflow(numel(shape), static_cast<std::int64_t>(itemsize(dtype)), &bytes)) {
    throw ValueError(fmt::format("{}: shape {} of {} needs more bytes than can be addressed", op, shape_str(shape),
                                 dtype_name(dtype)));
  }
  // an unavailable device (or out of memory) is named by the op, not by the allocator
  auto storage = std::make_shared<Storage>(static_cast<std::size_t>(bytes), device, op);
  return Tensor(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

Tensor empty(const Shape& shape, DType dtype, Device device) {
  return detail::empty_for(shape, dtype, device, "empty");
}

namespace {
Tensor full_for(const Shape& shape, double value, DType dtype, Device device, const char* op) {
  Tensor t = detail::empty_for(shape, dtype, device, op);
  const std::int64_t n = numel(shape);
  // an integer dtype saturates (NaN -> 0), as a float -> int astype does
  if (n == 1 && device.is_cpu()) {  // a scalar (a C++ number in an op): no kernel launch
    TAPEFLOW_DISPATCH_ALL(dtype, *ptr<T>(t) = kernels::convert<T>(value));
  } else if (n > 0) {
    auto l = layout_of(t, op);
    TAPEFLOW_DISPATCH_ALL(dtype, TAPEFLOW_KERNEL(device, op, fill<T>(ptr<T>(t), l, kernels::convert<T>(value))));
  }
  return t;
}
}  // namespace

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  return full_for(shape, value, dtype, device, "full");
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full_for(shape, 0, dtype, device, "zeros"); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full_for(shape, 1, dtype, device, "ones"); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype(), t.device()); }
Tensor scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double stop, double step, DType dtype, Device device) {
  detail::use_device(device, "arange");
  if (step == 0) throw ValueError("arange: step cannot be zero");
  const double span = std::ceil((stop - start) / step);
  // NaN (a NaN argument, inf - inf) or a count no int64 holds: converting it is undefined
  if (std::isnan(span)) {
    throw ValueError(fmt::format("arange: start {}, stop {}, step {} give no element count", start, stop, step));
  }
  if (span >= 0x1p63) {
    throw ValueError(fmt::format("arange: start {}, stop {}, step {} give {} elements, more than an int64 can count",
                                 start, stop, step, span));
  }
  const auto n = static_cast<std::int64_t>(std::max(0.0, span));
  if (static_cast<double>(n) * static_cast<double>(itemsize(dtype)) > static_cast<double>(detail::cpu_memory_bytes())) {
    throw ValueError(fmt::format("arange: start {}, stop {}, step {} give {} elements of {}, more than this machine's "
                                 "{} bytes of memory",
                                 start, stop, step, n, dtype_name(dtype), detail::cpu_memory_bytes()));
  }
  Tensor t = detail::empty_for({n}, dtype, Device::cpu(), "arange");
  TAPEFLOW_DISPATCH_NUMERIC(dtype, "arange", {
    T* p = t.data<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = kernels::convert<T>(start + static_cast<double>(i) * step);
  });
  return t.to(device);
}
Tensor arange(std::int64_t stop, DType dtype, Device device) {
  return arange(0.0, static_cast<double>(stop), 1.0, dtype, device);
}

Tensor linspace(double start, double stop, std::int64_t num, DType dtype, Device device) {
  detail::use_device(device, "linspace");
  if (num < 0) throw ValueError(fmt::format("linspace: num must be non-negative, got {}", num));
  Tensor t = detail::empty_for({num}, dtype, Device::cpu(), "linspace");
  const double step = num > 1 ? (stop - start) / static_cast<double>(num - 1) : 0.0;
  TAPEFLOW_DISPATCH_NUMERIC(dtype, "linspace", {
    T* p = t.data<T>();
    for (std::int64_t i = 0; i < num; ++i) p[i] = kernels::convert<T>(start + static_cast<double>(i) * step);
    if (num > 1) p[num - 1] = kernels::convert<T>(stop);
  });
  return t.to(device);
}

Tensor eye(std::int64_t n, std::int64_t m, DType dtype, Device device) {
  detail::use_device(device, "eye");
  if (n < 0) throw ValueError(fmt::format("eye: size must be non-negative, got {}", n));
  if (m < -1) throw ValueError(fmt::format("eye: number of columns must be non-negative (or -1: n), got {}", m));
  if (m == -1) m = n;
  Tensor t = full_for({n, m}, 0, dtype, Device::cpu(), "eye");
  TAPEFLOW_DISPATCH_ALL(dtype, {
    T* p = t.data<T>();
    for (std::int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = T(1);
  });
  return t.to(device);
}

namespace {
Tensor random_tensor(const Shape& shape, Generator& gen, double a, double b, DType dtype, Device device,
                     bool is_normal) {
  const char* op = is_normal ? "normal" : "uniform";
  if (!is_floating(dtype)) {
    throw DTypeError(fmt::format("{}: dtype must be float32 or float64, got {}", op, dtype_name(dtype)));
  }
  Tensor t = detail::empty_for(shape, dtype, device, op);
  const std::int64_t n = t.size();
  const std::uint64_t offset = gen.advance(static_cast<std::uint64_t>(n));
  if (n == 0) return t;
  if (dtype == kFloat32) {
    if (is_normal) TAPEFLOW_KERNEL(device, op, normal<float>(ptr<float>(t), n, gen.seed(), offset, a, b));
    else TAPEFLOW_KERNEL(device, op, uniform<float>(ptr<float>(t), n, gen.seed(), offset, a, b));
  } else {
    if (is_normal) TAPEFLOW_KERNEL(device, op, normal<double>(ptr<double>(t), n, gen.seed(), offset, a, b));
    else TAPEFLOW_KERNEL(device, op, uniform<double>(ptr<double>(t), n, gen.seed(), offset, a, b));
  }
  return t;
}
}  // namespace

Tensor uniform(const Shape& shape, Generator& gen, double low, double high, DType dtype, Device device) {
  // as PyTorch's uniform_: finite bounds (and span), low <= high
  if (!std::isfinite(low) || !std::isfinite(high) || !std::isfinite(high - low) || low > high) {
    throw ValueError(fmt::format("uniform: expected finite bounds with low <= high, got low={} high={}", low, high));
  }
  return random_tensor(shape, gen, low, high, dtype, device, false);
}
Tensor normal(const Shape& shape, Generator& gen, double mean, double stddev, DType dtype, Device device) {
  if (!std::isfinite(mean) || !(stddev >= 0) || !std::isfinite(stddev)) {
    throw ValueError(fmt::format("normal: expected a finite mean and stddev >= 0, got mean={} stddev={}", mean, stddev));
  }
  return random_tensor(shape, gen, mean, stddev, dtype, device, true);
}

// ============================================================== element-wise

DType result_dtype(const Tensor& a, const Tensor& b) {
  // A weak scalar takes the other operand's dtype, but never turns a float into an int.
  auto weak = [](DType strong, DType w) {
    if (is_floating(w) && !is_floating(strong)) return kFloat32;
    if (w == kInt64 && strong == kBool) return kInt64;
    return strong;
  };
  if (a.is_weak() && !b.is_weak()) return weak(b.dtype(), a.dtype());
  if (b.is_weak() && !a.is_weak()) return weak(a.dtype(), b.dtype());
  return promote(a.dtype(), b.dtype());
}

namespace {

Tensor unary_op(OpId op, const Tensor& x_in, double p0 = 0, double p1 = 0, bool float_only = false) {
  const char* name = op_name(op);
  check_defined(x_in, name);
  if (x_in.dtype() == kBool) {
    throw DTypeError(fmt::format("{}: bool tensors are not supported (shape {})", name, shape_str(x_in.shape())));
  }
  const Tensor x = (float_only && !is_floating(x_in.dtype())) ? x_in.astype(kFloat32) : x_in;
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  if (out.size() > 0) {
    auto ol = layout_of(out, name);
    auto xl = layout_of(x, name);
    TAPEFLOW_DISPATCH_NUMERIC(x.dtype(), name,
                              TAPEFLOW_KERNEL(out.device(), name, unary<T>(op, ptr<T>(out), ol, ptr<T>(x), xl, p0, p1)));
  }
  record(op, {x}, {out}, [&] {
    OpAttrs a;
    a.p0 = p0;
    a.p1 = p1;
    return a;
  });
  return out;
}

// Broadcast shape of a and b, with both converted to dtype.
struct Operands {
  Tensor a, b;
  Shape shape;
};
Operands operands(const Tensor& a_in, const Tensor& b_in, DType dtype, const char* op) {
  check_defined(a_in, op);
  check_defined(b_in, op);
  const Tensor a = scalar_to_device(a_in, b_in.device());
  const Tensor b = scalar_to_device(b_in, a.device());
  check_same_device(a, b, op);
  Shape s = broadcast_shapes(a.shape(), b.shape(), op);
  return {a.astype(dtype), b.astype(dtype), std::move(s)};
}

Tensor binary_op(OpId op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = op_name(op);
  check_defined(a_in, name);
  check_defined(b_in, name);
  DType dt = result_dtype(a_in, b_in);
  if (dt == kBool) {
    // as NumPy and PyTorch: + and maximum are or, * and minimum are and, / divides as float32
    if (op == OpId::Add || op == OpId::Maximum) return logical_or(a_in, b_in);
    if (op == OpId::Mul || op == OpId::Minimum) return logical_and(a_in, b_in);
    if (op != OpId::Div) {
      throw DTypeError(fmt::format("{}: not defined for two bool tensors ({} and {}); use logical ops or astype",
                                   name, shape_str(a_in.shape()), shape_str(b_in.shape())));
    }
  }
  if ((op == OpId::Div || op == OpId::Pow || op == OpId::Atan2) && !is_floating(dt)) dt = kFloat32;
  if (dt == kInt32) {
    detail::check_weak_int(a_in, dt, name);
    detail::check_weak_int(b_in, dt, name);
  }
  auto [a, b, shape] = operands(a_in, b_in, dt, name);
  Tensor out = empty(shape, dt, a.device());
  if (out.size() > 0) {
    auto ol = layout_of(out, name);
    auto al = layout_as(a, shape, name);
    auto bl = layout_as(b, shape, name);
    TAPEFLOW_DISPATCH_NUMERIC(dt, name,
                              TAPEFLOW_KERNEL(out.device(), name,
                                              binary<T>(op, ptr<T>(out), ol, ptr<T>(a), al, ptr<T>(b), bl)));
  }
  record(op, {a, b}, {out});
  return out;
}

Tensor compare_op(OpId op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = op_name(op);
  check_defined(a_in, name);
  check_defined(b_in, name);
  const bool logical = op_info(op).kind == OpKind::Logical;
  DType dt = logical ? kBool : result_dtype(a_in, b_in);
  // an integer int32 cannot hold compares exactly in int64 (int32 < 3000000000 is true)
  if (dt == kInt32 && !(detail::weak_int_fits(a_in, dt) && detail::weak_int_fits(b_in, dt))) dt = kInt64;
  auto [a, b, shape] = operands(a_in, b_in, dt, name);
  Tensor out = empty(shape, kBool, a.device());
  if (out.size() > 0) {
    auto ol = layout_of(out, name);
    auto al = layout_as(a, shape, name);
    auto bl = layout_as(b, shape, name);
    TAPEFLOW_DISPATCH_ALL(
        dt, TAPEFLOW_KERNEL(out.device(), name, compare<T>(op, ptr<bool>(out), ol, ptr<T>(a), al, ptr<T>(b), bl)));
  }
  record(op, {a, b}, {out});
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(OpId::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(OpId::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(OpId::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(OpId::Div, a, b); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary_op(OpId::Pow, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary_op(OpId::Maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary_op(OpId::Minimum, a, b); }
Tensor atan2(const Tensor& y, const Tensor& x) { return binary_op(OpId::Atan2, y, x); }
Tensor floor_divide(const Tensor& a, const Tensor& b) { return binary_op(OpId::FloorDiv, a, b); }
Tensor mod(const Tensor& a, const Tensor& b) { return binary_op(OpId::FloorMod, a, b); }
Tensor floordiv(const Tensor& a, const Tensor& b) { return floor_divide(a, b); }
Tensor floormod(const Tensor& a, const Tensor& b) { return mod(a, b); }
Tensor tanh_grad(const Tensor& grad, const Tensor& y) { return binary_op(OpId::TanhGrad, grad, y); }
Tensor sigmoid_grad(const Tensor& grad, const Tensor& y) { return binary_op(OpId::SigmoidGrad, grad, y); }
Tensor relu_grad(const Tensor& grad, const Tensor& x) { return binary_op(OpId::ReluGrad, grad, x); }
Tensor pow(const Tensor& x, double exponent) { return unary_op(OpId::PowScalar, x, exponent, 0, true); }
Tensor neg(const Tensor& x) { return unary_op(OpId::Neg, x); }
Tensor abs(const Tensor& x) { return unary_op(OpId::Abs, x); }
Tensor sign(const Tensor& x) { return unary_op(OpId::Sign, x); }
Tensor exp(const Tensor& x) { return unary_op(OpId::Exp, x, 0, 0, true); }
Tensor log(const Tensor& x) { return unary_op(OpId::Log, x, 0, 0, true); }
Tensor log1p(const Tensor& x) { return unary_op(OpId::Log1p, x, 0, 0, true); }
Tensor expm1(const Tensor& x) { return unary_op(OpId::Expm1, x, 0, 0, true); }
Tensor erf(const Tensor& x) { return unary_op(OpId::Erf, x, 0, 0, true); }
Tensor sin(const Tensor& x) { return unary_op(OpId::Sin, x, 0, 0, true); }
Tensor cos(const Tensor& x) { return unary_op(OpId::Cos, x, 0, 0, true); }
Tensor tan(const Tensor& x) { return unary_op(OpId::Tan, x, 0, 0, true); }
Tensor asin(const Tensor& x) { return unary_op(OpId::Asin, x, 0, 0, true); }
Tensor acos(const Tensor& x) { return unary_op(OpId::Acos, x, 0, 0, true); }
Tensor atan(const Tensor& x) { return unary_op(OpId::Atan, x, 0, 0, true); }
Tensor sinh(const Tensor& x) { return unary_op(OpId::Sinh, x, 0, 0, true); }
Tensor cosh(const Tensor& x) { return unary_op(OpId::Cosh, x, 0, 0, true); }
Tensor asinh(const Tensor& x) { return unary_op(OpId::Asinh, x, 0, 0, true); }
Tensor acosh(const Tensor& x) { return unary_op(OpId::Acosh, x, 0, 0, true); }
Tensor atanh(const Tensor& x) { return unary_op(OpId::Atanh, x, 0, 0, true); }
Tensor floor(const Tensor& x) { return unary_op(OpId::Floor, x); }
Tensor ceil(const Tensor& x) { return unary_op(OpId::Ceil, x); }
Tensor round(const Tensor& x) { return unary_op(OpId::Round, x); }
Tensor sqrt(const Tensor& x) { return unary_op(OpId::Sqrt, x, 0, 0, true); }
Tensor square(const Tensor& x) { return mul(x, x); }
Tensor reciprocal(const Tensor& x) { return div(1.0, x); }
Tensor rsqrt(const Tensor& x) { return div(1.0, sqrt(x)); }
Tensor log2(const Tensor& x) { return div(log(x), 0.69314718055994530942); }
Tensor log10(const Tensor& x) { return div(log(x), 2.30258509299404568402); }
Tensor exp2(const Tensor& x) { return pow(Tensor(2.0), x); }  // weak 2.0: x's float dtype, float32 for ints
Tensor squared_difference(const Tensor& a, const Tensor& b) { return square(sub(a, b)); }
Tensor tanh(const Tensor& x) { return unary_op(OpId::Tanh, x, 0, 0, true); }
Tensor sigmoid(const Tensor& x) { return unary_op(OpId::Sigmoid, x, 0, 0, true); }
Tensor relu(const Tensor& x) { return unary_op(OpId::Relu, x); }
Tensor step(const Tensor& x) { return unary_op(OpId::Step, x); }
Tensor clip(const Tensor& x, double low, double high) {
  if (low > high) throw ValueError(fmt::format("clip: low {} is greater than high {}", low, high));
  return unary_op(OpId::Clip, x, low, high);
}
Tensor clip_mask(const Tensor& x, double low, double high) { return unary_op(OpId::ClipMask, x, low, high); }

Tensor equal(const Tensor& a, const Tensor& b) { return compare_op(OpId::Equal, a, b); }
Tensor not_equal(const Tensor& a, const Tensor& b) { return compare_op(OpId::NotEqual, a, b); }
Tensor less(const Tensor& a, const Tensor& b) { return compare_op(OpId::Less, a, b); }
Tensor less_equal(const Tensor& a, const Tensor& b) { return compare_op(OpId::LessEqual, a, b); }
Tensor greater(const Tensor& a, const Tensor& b) { return compare_op(OpId::Greater, a, b); }
Tensor greater_equal(const Tensor& a, const Tensor& b) { return compare_op(OpId::GreaterEqual, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return compare_op(OpId::LogicalAnd, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return compare_op(OpId::LogicalOr, a, b); }
Tensor logical_not(const Tensor& x) { return compare_op(OpId::LogicalNot, x, x); }
Tensor logical_xor(const Tensor& a, const Tensor& b) { return not_equal(logical_not(a), logical_not(b)); }

Tensor where(const Tensor& cond_in, const Tensor& a_arg, const Tensor& b_arg) {
  const char* name = "where";
  check_defined(cond_in, name);
  check_defined(a_arg, name);
  check_defined(b_arg, name);
  const Tensor a_in = scalar_to_device(a_arg, cond_in.device());
  const Tensor b_in = scalar_to_device(b_arg, cond_in.device());
  check_same_device(cond_in, a_in, name);
  check_same_device(a_in, b_in, name);
  if (cond_in.dtype() != kBool) {
    throw DTypeError(fmt::format("where: the condition must be bool, got {} (shape {})", dtype_name(cond_in.dtype()),
                                 shape_str(cond_in.shape())));
  }
  const DType dt = result_dtype(a_in, b_in);
  detail::check_weak_int(a_in, dt, name);
  detail::check_weak_int(b_in, dt, name);
  const Shape shape = broadcast_shapes(cond_in.shape(), broadcast_shapes(a_in.shape(), b_in.shape(), name), name);
  Tensor a = a_in.astype(dt), b = b_in.astype(dt);
  Tensor out = empty(shape, dt, a.device());
  if (out.size() > 0) {
    auto ol = layout_of(out, name);
    auto cl = layout_as(cond_in, shape, name);
    auto al = layout_as(a, shape, name);
    auto bl = layout_as(b, shape, name);
    TAPEFLOW_DISPATCH_ALL(dt, TAPEFLOW_KERNEL(out.device(), name,
                                              where<T>(ptr<T>(out), ol, ptr<bool>(cond_in), cl, ptr<T>(a), al,
                                                       ptr<T>(b), bl)));
  }
  record(OpId::Where, {cond_in, a, b}, {out});
  return out;
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator%(const Tensor& a, const Tensor& b) { return mod(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator==(const Tensor& a, const Tensor& b) { return equal(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return not_equal(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return less(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return less_equal(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return greater(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return greater_equal(a, b); }
Tensor operator&&(const Tensor& a, const Tensor& b) { return logical_and(a, b); }
Tensor operator||(const Tensor& a, const Tensor& b) { return logical_or(a, b); }
Tensor operator!(const Tensor& x) { return logical_not(x); }

// ============================================================== reductions

namespace {
// Output shape of a reduction, and the output's strides seen from the input's axes
// (0 on reduced axes) for the kernels.
struct Reduction {
  std::vector<std::int64_t> axes;
  Shape out_shape;       // with keepdims applied
  Shape keep_shape;      // reduced axes as 1
  std::vector<bool> reduced;
};
Reduction plan_reduction(const Tensor& x, const std::vector<std::int64_t>& axes_in, bool keepdims, const char* op) {
  Reduction r;
  r.axes = reduce_axes(axes_in, x.rank(), op);
  r.reduced.assign(static_cast<std::size_t>(x.rank()), false);
  for (auto a : r.axes) r.reduced[a] = true;
  for (std::int64_t i = 0; i < x.rank(); ++i) {
    r.keep_shape.push_back(r.reduced[i] ? 1 : x.shape()[i]);
    if (!r.reduced[i] || keepdims) r.out_shape.push_back(r.reduced[i] ? 1 : x.shape()[i]);
  }
  return r;
}

Tensor reduce_op(OpId op, const Tensor& x_in, const std::vector<std::int64_t>& axes, bool keepdims) {
  const char* name = op_name(op);
  check_defined(x_in, name);
  Reduction r = plan_reduction(x_in, axes, keepdims, name);
  Tensor x = x_in;
  const bool widens = op == OpId::Sum || op == OpId::Prod;  // the two with an identity for every size
  if (widens && !is_floating(x.dtype())) x = x.astype(kInt64);  // as NumPy: no int32 overflow
  if (x.dtype() == kBool) {  // max/min of bools: any/all, still bool
    detail::NoRecord no_record;
    return reduce_op(op, x_in.astype(kInt32), axes, keepdims).astype(kBool);
  }
  if (!widens) {
    for (auto a : r.axes) {
      if (x.shape()[a] == 0) {
        throw ValueError(fmt::format("{}: zero-size axis {} has no identity (shape {})", name, a,
                                     shape_str(x.shape())));
      }
    }
  }
  Tensor out = empty(r.keep_shape, x.dtype(), x.device());
  if (out.size() > 0) {
    kernels::Layout ol = layout_of(out, name);
    for (int i = 0; i < ol.rank; ++i) {
      if (r.reduced[i]) ol.strides[i] = 0;
      ol.shape[i] = x.shape()[i];
    }
    auto xl = layout_of(x, name);
    TAPEFLOW_DISPATCH_NUMERIC(x.dtype(), name,
                              TAPEFLOW_KERNEL(out.device(), name, reduce<T>(op, ptr<T>(out), ol, ptr<T>(x), xl)));
  }
  if (!keepdims) out = detail::make_view(out, r.out_shape, contiguous_strides(r.out_shape), 0);
  record(op, {x}, {out}, [&] {
    OpAttrs a;
    a.axes = r.axes;
    a.keepdims = keepdims;
    a.shape = x.shape();
    return a;
  });
  return out;
}

Tensor arg_reduce_op(OpId op, const Tensor& x, std::int64_t axis_in, bool keepdims) {
  const char* name = op_name(op);
  check_defined(x, name);
  const int axis = normalize_axis(axis_in, x.rank(), name);
  if (x.shape()[axis] == 0) {
    throw ValueError(fmt::format("{}: axis {} has size 0 (shape {})", name, axis_in, shape_str(x.shape())));
  }
  Shape out_shape = x.shape();
  out_shape.erase(out_shape.begin() + axis);
  Tensor out = empty(out_shape, kInt64, x.device());
  const Tensor xs = x.dtype() == kBool ? x.astype(kInt32) : x;
  if (out.size() > 0) {
    auto xl = layout_of(xs, name);
    TAPEFLOW_DISPATCH_NUMERIC(
        xs.dtype(), name,
        TAPEFLOW_KERNEL(out.device(), name, arg_reduce<T>(op, ptr<std::int64_t>(out), ptr<T>(xs), xl, axis)));
  }
  record(op, {xs}, {out});
  return keepdims ? out.expand_dims(axis) : out;
}
}  // namespace

Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  return reduce_op(OpId::Sum, x, axes, keepdims);
}
Tensor max(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  return reduce_op(OpId::Max, x, axes, keepdims);
}
Tensor min(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  return reduce_op(OpId::Min, x, axes, keepdims);
}
Tensor prod(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  return reduce_op(OpId::Prod, x, axes, keepdims);
}
Tensor argmax(const Tensor& x, std::int64_t axis, bool keepdims) {
  return arg_reduce_op(OpId::ArgMax, x, axis, keepdims);
}
Tensor argmin(const Tensor& x, std::int64_t axis, bool keepdims) {
  return arg_reduce_op(OpId::ArgMin, x, axis, keepdims);
}
Tensor argmax(const Tensor& x) { return argmax(x.flatten(), 0); }
Tensor argmin(const Tensor& x) { return argmin(x.flatten(), 0); }

namespace {
// argsort, with errors naming the op the user called (sort, top_k)
Tensor argsort_for(const Tensor& x, std::int64_t axis_in, bool descending, const char* name) {
  check_defined(x, name);
  const int axis = normalize_axis(axis_in, x.rank(), name);
  Tensor out = empty(x.shape(), kInt64, x.device());
  const Tensor xs = x.dtype() == kBool ? x.astype(kInt32) : x;  // false < true, as argmax's
  if (out.size() > 0) {
    auto xl = layout_of(xs, name);
    TAPEFLOW_DISPATCH_NUMERIC(xs.dtype(), name,
                              TAPEFLOW_KERNEL(out.device(), name,
                                              argsort<T>(ptr<std::int64_t>(out), ptr<T>(xs), xl, axis, descending)));
  }
  record(OpId::ArgSort, {xs}, {out}, [&] {
    OpAttrs a;
    a.axes = {axis};
    a.p0 = descending ? 1 : 0;
    return a;
  });
  return out;
}
}  // namespace

Tensor argsort(const Tensor& x, std::int64_t axis, bool descending) {
  return argsort_for(x, axis, descending, "argsort");
}

Tensor sort(const Tensor& x, std::int64_t axis, bool descending) {
  return detail::take_along_axis_trusted(x, argsort_for(x, axis, descending, "sort"), axis);
}

TopK top_k(const Tensor& x, std::int64_t k, bool sorted) {
  check_defined(x, "top_k");
  const std::int64_t n = x.rank() == 0 ? 0 : x.shape().back();
  if (x.rank() == 0 || k < 0 || k > n) {
    throw ValueError(fmt::format("top_k: k = {} is out of range for input shape {} (k must lie in [0, {}], the "
                                 "length of the last axis, and the input must have one)",
                                 k, shape_str(x.shape()), n));
  }
  Tensor indices = argsort_for(x, -1, true, "top_k")(ellipsis, Slice(0, k));
  if (!sorted) indices = sort(indices, -1);  // the same k entries, in the order of the input
  return {detail::take_along_axis_trusted(x, indices, -1), indices};
}

Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  check_defined(x, "mean");
  std::int64_t count = 1;
  for (auto a : reduce_axes(axes, x.rank(), "mean")) count *= x.shape()[a];
  // an empty mean is NaN, as in NumPy
  const double scale = count == 0 ? std::nan("") : 1.0 / static_cast<double>(count);
  if (is_floating(x.dtype())) return sum(x, axes, keepdims) * scale;
  // integers (and bools) are summed in float64, as NumPy, then given as float32: their float32
  // sum lost digits, and cancelled to a wrong sign with values near INT_MAX
  return (sum(x.astype(kFloat64), axes, keepdims) * scale).astype(kFloat32);
}

Tensor var(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  check_defined(x, "var");
  reduce_axes(axes, x.rank(), "var");  // errors name var, not the mean inside
  if (!is_floating(x.dtype())) return var(x.astype(kFloat64), axes, keepdims).astype(kFloat32);  // as mean
  const Tensor d = x - mean(x, axes, true);
  return mean(d * d, axes, keepdims);
}

Tensor logsumexp(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  check_defined(x, "logsumexp");
  for (auto a : reduce_axes(axes, x.rank(), "logsumexp")) {  // errors name logsumexp, not the max inside
    if (x.shape()[a] == 0) {
      throw ValueError(fmt::format("logsumexp: zero-size axis {} has no identity (shape {})", a, shape_str(x.shape())));
    }
  }
  const Tensor xf = is_floating(x.dtype()) ? x : x.astype(kFloat32);
  Tensor m;
  {
    // the shift is a constant for the gradient (it cancels); -inf rows shift by 0
    detail::NoRecord no_record;
    m = max(xf, axes, true);
    m = where(abs(m) < INFINITY, m, 0.0);
  }
  Tensor out = log(sum(exp(xf - m), axes, true)) + m;
  if (keepdims) return out;
  return out.squeeze(reduce_axes(axes, x.rank(), "logsumexp"));
}

namespace {
Tensor softmax_op(OpId op, const Tensor& x_in, std::int64_t axis_in) {
  const char* name = op_name(op);
  check_defined(x_in, name);
  const Tensor x = is_floating(x_in.dtype()) ? x_in : x_in.astype(kFloat32);
  const int axis = normalize_axis(axis_in, x.rank(), name);
  Tensor out = empty(x.shape(), x.dtype(), x.device());
  if (out.size() > 0) {
    auto xl = layout_of(x, name);
    const bool log = op == OpId::LogSoftmax;
    if (x.dtype() == kFloat32) {
      TAPEFLOW_KERNEL(out.device(), name, softmax<float>(log, ptr<float>(out), ptr<float>(x), xl, axis));
    } else {
      TAPEFLOW_KERNEL(out.device(), name, softmax<double>(log, ptr<double>(out), ptr<double>(x), xl, axis));
    }
  }
  record(op, {x}, {out}, [&] {
    OpAttrs a;
    a.axes = {axis};
    return a;
  });
  return out;
}
}  // namespace

Tensor softmax(const Tensor& x, std::int64_t axis) { return softmax_op(OpId::Softmax, x, axis); }
Tensor log_softmax(const Tensor& x, std::int64_t axis) { return softmax_op(OpId::LogSoftmax, x, axis); }

Tensor sum_to(const Tensor& x, const Shape& shape) {
  check_defined(x, "sum_to");
  if (x.shape() == shape) return x;
  const Shape b = broadcast_shapes(x.shape(), shape, "sum_to");
  if (b != x.shape() || shape.size() > x.shape().size()) {
    throw ShapeError(fmt::format("sum_to: cannot sum {} down to {}", shape_str(x.shape()), shape_str(shape)));
  }
  const std::size_t lead = x.shape().size() - shape.size();
  std::vector<std::int64_t> axes;
  for (std::size_t i = 0; i < x.shape().size(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && x.shape()[i] != 1)) axes.push_back(static_cast<std::int64_t>(i));
  }
  if (axes.empty()) return x.reshape(shape);
  return sum(x, axes, true).reshape(shape);
}

// ============================================================== linear algebra

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  const char* name = "matmul";
  check_defined(a_in, name);
  check_defined(b_in, name);
  check_same_device(a_in, b_in, name);
  if (a_in.rank() == 0 || b_in.rank() == 0) {
    throw ShapeError(fmt::format("matmul: operands must have at least one axis: {} @ {}", shape_str(a_in.shape()),
                                 shape_str(b_in.shape())));
  }
  const DType dt = result_dtype(a_in, b_in);
  if (dt == kBool) throw DTypeError("matmul: bool tensors are not supported");
  // 1-D operands: a vector on the left is a row, on the right a column; the axis goes away after.
  const bool a_vec = a_in.rank() == 1, b_vec = b_in.rank() == 1;
  Tensor a = a_vec ? a_in.reshape({1, a_in.dim(0)}) : a_in;
  Tensor b = b_vec ? b_in.reshape({b_in.dim(0), 1}) : b_in;
  const std::int64_t m = a.dim(-2), k = a.dim(-1), k2 = b.dim(-2), n = b.dim(-1);
  if (k != k2) {
    throw ShapeError(fmt::format("matmul: inner dimensions differ: {} @ {} ({} vs {})", shape_str(a_in.shape()),
                                 shape_str(b_in.shape()), k, k2));
  }
  a = a.astype(dt);
  b = b.astype(dt);
  const Shape a_batch(a.shape().begin(), a.shape().end() - 2);
  const Shape b_batch(b.shape().begin(), b.shape().end() - 2);
  Shape batch;
  try {
    batch = broadcast_shapes(a_batch, b_batch, name);
  } catch (const ShapeError&) {
    throw ShapeError(fmt::format("matmul: batch dimensions cannot be broadcast: {} @ {}", shape_str(a_in.shape()),
                                 shape_str(b_in.shape())));
  }
  Shape a_full = batch, b_full = batch, out_shape = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  out_shape.insert(out_shape.end(), {m, n});
  Tensor out = empty(out_shape, dt, a.device());
  if (out.size() > 0) {
    auto al = layout_as(a, a_full, name);
    auto bl = layout_as(b, b_full, name);
    if (k == 0) {
      TAPEFLOW_DISPATCH_NUMERIC(dt, name,
                                TAPEFLOW_KERNEL(out.device(), name, fill<T>(ptr<T>(out), layout_of(out, name), T(0))));
    } else {
      TAPEFLOW_DISPATCH_NUMERIC(
          dt, name, TAPEFLOW_KERNEL(out.device(), name, matmul<T>(ptr<T>(out), ptr<T>(a), al, ptr<T>(b), bl)));
    }
  }
  record(OpId::Matmul, {a, b}, {out});
  if (a_vec || b_vec) {
    Shape s = batch;
    if (!a_vec) s.push_back(m);
    if (!b_vec) s.push_back(n);
    return out.reshape(s);
  }
  return out;
}

Tensor tensordot(const Tensor& a, const Tensor& b, const std::vector<std::int64_t>& axes_a,
                 const std::vector<std::int64_t>& axes_b) {
  const char* name = "tensordot";
  check_defined(a, name);
  check_defined(b, name);
  if (axes_a.size() != axes_b.size()) {
    throw ValueError(fmt::format("tensordot: {} axes of a but {} axes of b", axes_a.size(), axes_b.size()));
  }
  std::vector<bool> ca(static_cast<std::size_t>(a.rank()), false), cb(static_cast<std::size_t>(b.rank()), false);
  std::vector<std::int64_t> perm_a, perm_b, contracted_a, contracted_b;
  std::int64_t ksize = 1;
  for (std::size_t i = 0; i < axes_a.size(); ++i) {
    const int x = normalize_axis(axes_a[i], a.rank(), name), y = normalize_axis(axes_b[i], b.rank(), name);
    if (a.shape()[x] != b.shape()[y]) {
      throw ShapeError(fmt::format("tensordot: axis {} of {} (size {}) does not match axis {} of {} (size {})", x,
                                   shape_str(a.shape()), a.shape()[x], y, shape_str(b.shape()), b.shape()[y]));
    }
    if (ca[x] || cb[y]) throw ValueError("tensordot: repeated axis");
    ca[x] = cb[y] = true;
    contracted_a.push_back(x);
    contracted_b.push_back(y);
    ksize *= a.shape()[x];
  }
  Shape free_shape;
  std::int64_t msize = 1, nsize = 1;
  for (std::int64_t i = 0; i < a.rank(); ++i)
    if (!ca[i]) {
      perm_a.push_back(i);
      free_shape.push_back(a.shape()[i]);
      msize *= a.shape()[i];
    }
  perm_a.insert(perm_a.end(), contracted_a.begin(), contracted_a.end());
  perm_b = contracted_b;
  for (std::int64_t i = 0; i < b.rank(); ++i)
    if (!cb[i]) {
      perm_b.push_back(i);
      free_shape.push_back(b.shape()[i]);
      nsize *= b.shape()[i];
    }
  Tensor a2 = a.permute(perm_a).reshape({msize, ksize});
  Tensor b2 = b.permute(perm_b).reshape({ksize, nsize});
  return matmul(a2, b2).reshape(free_shape);
}

Tensor tensordot(const Tensor& a, const Tensor& b, std::int64_t n) {
  if (n < 0 || n > a.rank() || n > b.rank()) {
    throw ValueError(fmt::format("tensordot: cannot contract {} axes of {} and {}", n, shape_str(a.shape()),
                                 shape_str(b.shape())));
  }
  std::vector<std::int64_t> axa, axb;
  for (std::int64_t i = 0; i < n; ++i) {
    axa.push_back(a.rank() - n + i);
    axb.push_back(i);
  }
  return tensordot(a, b, axa, axb);
}

Tensor dot(const Tensor& a, const Tensor& b) {
  check_defined(a, "dot");
  check_defined(b, "dot");
  if (a.rank() == 0 || b.rank() == 0) return mul(a, b);
  if (a.rank() <= 2 && b.rank() <= 2) return matmul(a, b);
  return tensordot(a, b, {-1}, {b.rank() >= 2 ? -2 : -1});
}

// ============================================================== joining, indexing

Tensor concat(const std::vector<Tensor>& tensors, std::int64_t axis_in) {
  const char* name = "concat";
  if (tensors.empty()) throw ValueError("concat: needs at least one tensor");
  for (const auto& t : tensors) {
    check_defined(t, name);
    check_same_device(tensors[0], t, name);
  }
  const std::int64_t rank = tensors[0].rank();
  if (rank == 0) throw ShapeError("concat: rank-0 tensors cannot be concatenated; use stack");
  const int axis = normalize_axis(axis_in, rank, name);
  DType dt = tensors[0].dtype();
  Shape shape = tensors[0].shape();
  shape[axis] = 0;
  for (const auto& t : tensors) {
    bool ok = t.rank() == rank;
    for (std::int64_t i = 0; ok && i < rank; ++i) ok = i == axis || t.shape()[i] == tensors[0].shape()[i];
    if (!ok) {
      std::vector<std::string> shapes;
      for (const auto& u : tensors) shapes.push_back(shape_str(u.shape()));
      throw ShapeError(fmt::format("concat: shapes differ outside axis {}: {}", axis, fmt::join(shapes, ", ")));
    }
    shape[axis] += t.shape()[axis];
    dt = promote(dt, t.dtype());
  }
  Tensor out = empty(shape, dt, tensors[0].device());
  std::vector<Tensor> inputs;
  std::int64_t at = 0;
  for (const auto& t : tensors) {
    Tensor src = t.astype(dt);
    inputs.push_back(src);
    if (src.size() > 0) {
      kernels::Layout ol = layout_of(out, name);
      ol.shape[axis] = src.shape()[axis];
      auto sl = layout_of(src, name);
      const std::int64_t off = at * out.strides()[axis];
      TAPEFLOW_DISPATCH_ALL(dt, TAPEFLOW_KERNEL(out.device(), name, copy<T, T>(ptr<T>(out) + off, ol, ptr<T>(src), sl)));
    }
    at += src.shape()[axis];
  }
  record(OpId::Concat, inputs, {out}, [&] {
    OpAttrs a;
    a.axes = {axis};
    return a;
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t axis) {
  if (tensors.empty()) throw ValueError("stack: needs at least one tensor");
  for (const auto& t : tensors) {
    check_defined(t, "stack");
    if (t.shape() != tensors[0].shape()) {
      throw ShapeError(fmt::format("stack: shapes differ: {} and {}", shape_str(tensors[0].shape()),
                                   shape_str(t.shape())));
    }
  }
  const int a = normalize_axis(axis, tensors[0].rank() + 1, "stack");
  std::vector<Tensor> expanded;
  for (const auto& t : tensors) expanded.push_back(t.expand_dims(a));
  return concat(expanded, a);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t axis_in) {
  check_defined(x, "split");
  const int axis = normalize_axis(axis_in, x.rank(), "split");
  std::int64_t total = 0;
  for (auto s : sizes) {
    if (s < 0) throw ValueError(fmt::format("split: negative size {}", s));
    if (__builtin_add_overflow(total, s, &total)) {
      throw ShapeError(fmt::format(
          "split: sizes [{}] add up to more than an int64 holds, but axis {} of {} has size {}",
          fmt::join(sizes, ", "), axis, shape_str(x.shape()), x.shape()[axis]));
    }
  }
  if (total != x.shape()[axis]) {
    throw ShapeError(fmt::format("split: sizes [{}] add up to {}, but axis {} of {} has size {}",
                                 fmt::join(sizes, ", "), total, axis, shape_str(x.shape()), x.shape()[axis]));
  }
  std::vector<Tensor> parts;
  std::int64_t at = 0;
  for (auto s : sizes) {
    std::vector<Index> idx(static_cast<std::size_t>(axis), Index(all));
    idx.emplace_back(Slice(at, at + s));
    parts.push_back(x.index(idx));
    at += s;
  }
  return parts;
}

std::vector<Tensor> split(const Tensor& x, std::int64_t sections, std::int64_t axis) {
  check_defined(x, "split");
  const int a = normalize_axis(axis, x.rank(), "split");
  if (sections <= 0 || x.shape()[a] % sections != 0) {
    throw ShapeError(fmt::format("split: axis {} of {} (size {}) cannot be split into {} equal parts", a,
                                 shape_str(x.shape()), x.shape()[a], sections));
  }
  return split(x, std::vector<std::int64_t>(static_cast<std::size_t>(sections), x.shape()[a] / sections), a);
}

Tensor one_hot(const Tensor& indices, std::int64_t depth, DType dtype) {
  check_defined(indices, "one_hot");
  if (!is_integral(indices.dtype())) {
    throw DTypeError(fmt::format("one_hot: indices must be int32 or int64, got {}", dtype_name(indices.dtype())));
  }
  if (depth < 0) throw ValueError(fmt::format("one_hot: depth must be non-negative, got {}", depth));
  // the [..., depth] result and the int64 arange(depth) it compares against must be addressable
  std::int64_t elements = 0, bytes = 0, range_bytes = 0;
  if (__builtin_mul_overflow(indices.size(), depth, &elements) ||
      __builtin_mul_overflow(elements, static_cast<std::int64_t>(itemsize(dtype)), &bytes) ||
      __builtin_mul_overflow(depth, static_cast<std::int64_t>(itemsize(kInt64)), &range_bytes)) {
    throw ValueError(fmt::format("one_hot: depth {} for indices of shape {} needs more bytes than can be addressed",
                                 depth, shape_str(indices.shape())));
  }
  Shape out_shape = indices.shape();
  out_shape.push_back(depth);
  detail::check_shape(out_shape, "one_hot");  // rank 16 indices would make rank 17
  return equal(indices.astype(kInt64).expand_dims(-1), arange(depth, kInt64, indices.device())).astype(dtype);
}

namespace {
// Indices as int64 for an axis of length n of `shape`, adjusted as `mode` says (see IndexMode).
// raise throws IndexError naming op for one outside [0, n), reading them on the host; the other
// modes adjust them with tensor ops on their device. `trusted` indices (known to lie in range,
// see detail::take_along_axis_trusted) are neither read nor adjusted.
Tensor checked_indices(const Tensor& indices, const Shape& shape, int axis, const char* op, IndexMode mode,
                       bool trusted) {
  if (!is_integral(indices.dtype())) {
    throw DTypeError(fmt::format("{}: indices must be int32 or int64, got {}", op, dtype_name(indices.dtype())));
  }
  const std::int64_t n = shape[static_cast<std::size_t>(axis)];
  Tensor idx = indices.astype(kInt64).contiguous();
  if (trusted || idx.size() == 0) return idx;
  if (n == 0 && (mode == IndexMode::Wrap || mode == IndexMode::Clip)) {
    throw IndexError(fmt::format("{}: cannot {} indices into axis {} of size 0 of {}", op,
                                 mode == IndexMode::Wrap ? "wrap" : "clip", axis, shape_str(shape)));
  }
  switch (mode) {
    case IndexMode::Wrap:
      return mod(idx, n);
    case IndexMode::Clip:
      return clip(idx, 0, static_cast<double>(n - 1));
    case IndexMode::Fill:
      // [-n, 0) from the end; the rest outside [0, n) stays there: the kernels give 0 / drop it.
      // n is added to the negative ones only (idx + n would overflow near INT64_MAX)
      return idx + where(less(idx, 0), n, 0);
    case IndexMode::Raise:
      break;
  }
  // CUDA indices are checked on the host (one copy, synchronising): a bad index is an
  // IndexError here, where the kernels would only skip it (gather gives 0 there).
  const Tensor host = idx.device().is_cpu() ? idx : idx.to(Device::cpu());
  const std::int64_t* p = host.data<std::int64_t>();
  for (std::int64_t i = 0; i < idx.size(); ++i) {
    if (p[i] < 0 || p[i] >= n) {
      throw IndexError(fmt::format("{}: index {} is out of bounds for axis {} with size {} (input {})", op, p[i],
                                   axis, n, shape_str(shape)));
    }
  }
  return idx;
}
}  // namespace

namespace {
// take_along_axis, with errors naming the op the user called (take, gather)
Tensor take_along_axis_for(const Tensor& x, const Tensor& indices, std::int64_t axis_in, const char* name,
                           IndexMode mode, bool trusted = false) {
  check_defined(x, name);
  check_defined(indices, name);
  check_same_device(x, indices, name);
  if (x.rank() != indices.rank()) {
    throw ShapeError(fmt::format("{}: indices {} must have the rank of the input {}", name,
                                 shape_str(indices.shape()), shape_str(x.shape())));
  }
  const int axis = normalize_axis(axis_in, x.rank(), name);
  Shape xs = x.shape(), is = indices.shape();
  xs[axis] = 1;
  is[axis] = 1;
  Shape out_shape;
  try {
    out_shape = broadcast_shapes(xs, is, name);
  } catch (const ShapeError&) {
    throw ShapeError(fmt::format("{}: input {} and indices {} do not broadcast outside axis {}", name,
                                 shape_str(x.shape()), shape_str(indices.shape()), axis));
  }
  out_shape[axis] = indices.shape()[axis];
  Tensor idx = checked_indices(indices, x.shape(), axis, name, mode, trusted);
  Tensor out = empty(out_shape, x.dtype(), x.device());
  if (out.size() > 0) {
    Shape src_shape = out_shape;
    src_shape[axis] = x.shape()[axis];
    auto ol = layout_of(out, name);
    auto xl = layout_as(x, src_shape, name);
    auto il = layout_as(idx, out_shape, name);
    TAPEFLOW_DISPATCH_ALL(x.dtype(), TAPEFLOW_KERNEL(out.device(), name,
                                                     gather<T>(ptr<T>(out), ol, ptr<T>(x), xl, ptr<std::int64_t>(idx),
                                                               il, axis)));
  }
  record(OpId::Gather, {x, idx}, {out}, [&] {
    OpAttrs a;
    a.axes = {axis};
    return a;
  });
  return out;
}
}  // namespace

Tensor take_along_axis(const Tensor& x, const Tensor& indices, std::int64_t axis, IndexMode mode) {
  return take_along_axis_for(x, indices, axis, "take_along_axis", mode);
}

Tensor take(const Tensor& x, const Tensor& indices, std::int64_t axis_in, IndexMode mode) {
  check_defined(x, "take");
  check_defined(indices, "take");
  if (indices.rank() != 1) {
    throw ShapeError(fmt::format("take: indices must be 1-D, got shape {}", shape_str(indices.shape())));
  }
  const int axis = normalize_axis(axis_in, x.rank(), "take");
  Shape s(static_cast<std::size_t>(x.rank()), 1);
  s[axis] = indices.dim(0);
  return take_along_axis_for(x, indices.reshape(s), axis, "take", mode);
}

Tensor gather(const Tensor& x, const Tensor& labels, IndexMode mode) {
  check_defined(x, "gather");
  check_defined(labels, "gather");
  if (x.rank() != labels.rank() + 1) {
    throw ShapeError(fmt::format("gather: labels {} must have one axis fewer than the values {}",
                                 shape_str(labels.shape()), shape_str(x.shape())));
  }
  const Shape outer(x.shape().begin(), x.shape().end() - 1);
  for (std::size_t i = 0; i < outer.size(); ++i) {
    if (labels.shape()[i] != outer[i] && labels.shape()[i] != 1 && outer[i] != 1) {
      throw ShapeError(fmt::format("gather: labels {} do not match the values {} (size {} vs {} at axis {})",
                                   shape_str(labels.shape()), shape_str(x.shape()), labels.shape()[i], outer[i], i));
    }
  }
  return take_along_axis_for(x, labels.expand_dims(-1), -1, "gather", mode).squeeze({-1});
}

namespace {
// scatter_add, scatter_max and scatter_min (op ScatterAdd, ScatterMax, ScatterMin); for the last
// two, count_base says whether base's values equal to a result share its gradient.
Tensor scatter_for(OpId op, const Tensor& base, const Tensor& indices, const Tensor& src_in, std::int64_t axis_in,
                   IndexMode mode, bool trusted, bool count_base = true) {
  const char* name = op_name(op);
  check_defined(base, name);
  check_defined(indices, name);
  check_defined(src_in, name);
  check_same_device(base, src_in, name);
  check_same_device(base, indices, name);
  const int axis = normalize_axis(axis_in, base.rank(), name);
  const Shape shape = broadcast_shapes(indices.shape(), src_in.shape(), name);
  bool ok = static_cast<std::int64_t>(shape.size()) == base.rank();
  for (std::int64_t i = 0; ok && i < base.rank(); ++i) ok = i == axis || shape[i] == base.shape()[i];
  if (!ok) {
    throw ShapeError(fmt::format("{}: indices {} and values {} do not match the base {} outside axis {}", name,
                                 shape_str(indices.shape()), shape_str(src_in.shape()), shape_str(base.shape()),
                                 axis));
  }
  if (base.dtype() == kBool) throw DTypeError(fmt::format("{}: bool tensors are not supported", name));
  // as add_ (and NumPy's np.add.at): float values are never truncated into an integer base
  if (!is_floating(base.dtype()) && is_floating(src_in.dtype())) {
    throw DTypeError(fmt::format("{}: cannot scatter {} values {} into a {} base {}", name, dtype_name(src_in.dtype()),
                                 shape_str(src_in.shape()), dtype_name(base.dtype()), shape_str(base.shape())));
  }
  Tensor idx = checked_indices(indices, base.shape(), axis, name, mode, trusted);
  Tensor src = src_in.astype(base.dtype());
  Tensor out;
  {
    detail::NoRecord no_record;
    out = base.clone();
  }
  if (numel(shape) > 0) {
    auto ol = layout_of(out, name);
    for (int i = 0; i < ol.rank; ++i)
      if (i != axis) ol.shape[i] = shape[i];
    auto sl = layout_as(src, shape, name);
    auto il = layout_as(idx, shape, name);
    const OpId combine = op == OpId::ScatterMax ? OpId::Maximum : op == OpId::ScatterMin ? OpId::Minimum : OpId::Add;
    TAPEFLOW_DISPATCH_NUMERIC(base.dtype(), name,
                              TAPEFLOW_KERNEL(out.device(), name,
                                              scatter_reduce<T>(combine, ptr<T>(out), ol, ptr<T>(src), sl,
                                                                ptr<std::int64_t>(idx), il, axis)));
  }
  record(op, {base, idx, src}, {out}, [&] {
    OpAttrs a;
    a.axes = {axis};
    a.p0 = count_base ? 1 : 0;
    return a;
  });
  return out;
}
}  // namespace

Tensor scatter_add(const Tensor& base, const Tensor& indices, const Tensor& src, std::int64_t axis,
                   IndexMode mode) {
  return scatter_for(OpId::ScatterAdd, base, indices, src, axis, mode, false);
}
Tensor scatter_max(const Tensor& base, const Tensor& indices, const Tensor& src, std::int64_t axis,
                   IndexMode mode) {
  return scatter_for(OpId::ScatterMax, base, indices, src, axis, mode, false);
}
Tensor scatter_min(const Tensor& base, const Tensor& indices, const Tensor& src, std::int64_t axis,
                   IndexMode mode) {
  return scatter_for(OpId::ScatterMin, base, indices, src, axis, mode, false);
}

namespace detail {
Tensor take_along_axis_trusted(const Tensor& x, const Tensor& indices, std::int64_t axis) {
  return take_along_axis_for(x, indices, axis, "take_along_axis", IndexMode::Raise, true);
}

Tensor scatter_add_trusted(const Tensor& base, const Tensor& indices, const Tensor& src, std::int64_t axis) {
  return scatter_for(OpId::ScatterAdd, base, indices, src, axis, IndexMode::Raise, true);
}
Tensor scatter_extremum_trusted(bool is_max, const Tensor& base, const Tensor& indices, const Tensor& src,
                                std::int64_t axis, bool count_base) {
  return scatter_for(is_max ? OpId::ScatterMax : OpId::ScatterMin, base, indices, src, axis, IndexMode::Raise, true,
                     count_base);
}
}  // namespace detail

Tensor slice_scatter(const Tensor& x, const Shape& shape, const std::vector<std::int64_t>& starts,
                     const std::vector<std::int64_t>& steps) {
  const char* name = "slice_scatter";
  check_defined(x, name);
  const std::size_t r = shape.size();
  if (static_cast<std::size_t>(x.rank()) != r || starts.size() != r || steps.size() != r) {
    throw ShapeError(fmt::format("slice_scatter: values {} do not fit a slice of {}", shape_str(x.shape()),
                                 shape_str(shape)));
  }
  Tensor out = zeros(shape, x.dtype(), x.device());
  Shape strides = contiguous_strides(shape);
  std::int64_t offset = 0;
  for (std::size_t i = 0; i < r; ++i) {
    std::int64_t last = 0;  // an overflow lies outside the slice too
    const bool overflow = __builtin_mul_overflow(x.shape()[i] - 1, steps[i], &last) ||
                          __builtin_add_overflow(starts[i], last, &last);
    if (x.shape()[i] > 0 && (overflow || starts[i] < 0 || starts[i] >= shape[i] || last < 0 || last >= shape[i])) {
      throw IndexError(fmt::format("slice_scatter: values {} do not fit a slice of {} at axis {}",
                                   shape_str(x.shape()), shape_str(shape), i));
    }
    if (x.shape()[i] > 0) offset += starts[i] * strides[i];
    // with one element or none the stride is never used (and step * stride may overflow); with
    // more, |step| * stride <= shape[i] * stride: both ends lie inside
    if (x.shape()[i] > 1) strides[i] *= steps[i];
  }
  if (x.size() > 0) {
    Tensor view = detail::make_view(out, x.shape(), strides, offset);
    auto vl = layout_of(view, name);
    auto xl = layout_of(x, name);
    TAPEFLOW_DISPATCH_ALL(x.dtype(), TAPEFLOW_KERNEL(out.device(), name, copy<T, T>(ptr<T>(view), vl, ptr<T>(x), xl)));
  }
  record(OpId::SliceScatter, {x}, {out}, [&] {
    OpAttrs a;
    a.shape = shape;
    a.starts = starts;
    a.steps = steps;
    return a;
  });
  return out;
}

}  // namespace tapeflow
