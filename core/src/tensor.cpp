// Tensor handles, views and in-place writes.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>

#include "internal.hpp"

namespace tapeflow {
namespace detail {
namespace {
std::uint64_t next_id() {
  static std::atomic<std::uint64_t> counter{1};
  return counter.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

kernels::Layout layout_of(const Tensor& t, const char* op) {
  const Shape& shape = t.shape();
  const Shape& strides = t.strides();
  const int rank = static_cast<int>(shape.size());
  if (rank > kernels::kMaxRank) {
    throw ValueError(fmt::format("{}: rank {} exceeds the maximum of {}", op, rank, kernels::kMaxRank));
  }
  kernels::Layout l;
  l.rank = rank;
  for (int i = 0; i < rank; ++i) {
    l.shape[i] = shape[i];
    l.strides[i] = strides[i];
  }
  return l;
}

kernels::Layout layout_as(const Tensor& t, const Shape& shape, const char* op) {
  if (static_cast<std::int64_t>(shape.size()) > kernels::kMaxRank) {
    throw ValueError(fmt::format("{}: rank {} exceeds the maximum of {}", op, shape.size(), kernels::kMaxRank));
  }
  const Shape& t_shape = t.shape();
  const Shape& t_strides = t.strides();
  kernels::Layout l;
  l.rank = static_cast<int>(shape.size());
  const int lead = l.rank - static_cast<int>(t_shape.size());
  for (int i = 0; i < l.rank; ++i) {
    l.shape[i] = shape[i];
    if (i < lead) {
      l.strides[i] = 0;
    } else {
      const auto d = t_shape[i - lead];
      l.strides[i] = (d == 1 && shape[i] != 1) ? 0 : t_strides[i - lead];
    }
  }
  return l;
}

void check_shape(const Shape& shape, const char* op) {
  if (shape.size() > static_cast<std::size_t>(kernels::kMaxRank)) {
    throw ShapeError(fmt::format("{}: shape {} has rank {}, more than the maximum of {}", op, shape_str(shape),
                                 shape.size(), kernels::kMaxRank));
  }
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d < 0) throw ValueError(fmt::format("{}: negative size in shape {}", op, shape_str(shape)));
    if (d > 0 && __builtin_mul_overflow(n, d, &n)) {
      throw ValueError(fmt::format("{}: shape {} has more elements than an int64 can count", op, shape_str(shape)));
    }
  }
}

bool weak_int_fits(const Tensor& t, DType dtype) {
  if (dtype != DType::Int32 || !t.is_weak() || t.dtype() != DType::Int64) return true;
  const auto v = t.item<std::int64_t>();
  return v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max();
}

void check_weak_int(const Tensor& t, DType dtype, const char* op) {
  if (!weak_int_fits(t, dtype)) {
    throw ValueError(fmt::format("{}: the integer {} is out of range for {}", op, t.item<std::int64_t>(),
                                 dtype_name(dtype)));
  }
}

Tensor make_view(const Tensor& t, Shape shape, Shape strides, std::int64_t offset) {
  return Tensor(t.storage(), std::move(shape), std::move(strides), offset, t.dtype());
}

void check_defined(const Tensor& t, const char* op) {
  if (!t.defined()) throw ValueError(fmt::format("{}: the tensor is undefined (empty handle)", op));
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  if (a.device() != b.device()) {
    throw DeviceError(fmt::format("{}: tensors are on different devices: {} and {}", op, a.device().str(),
                                  b.device().str()));
  }
}

void* raw_ptr(const Tensor& t) {
  return static_cast<char*>(t.storage()->data()) + t.offset() * static_cast<std::int64_t>(itemsize(t.dtype()));
}

#if defined(TAPEFLOW_HAVE_CUDA)
void use_device(Device device, const char* op) {
  if (!device.is_cuda()) return;
  const int count = kernels::cuda::device_count();
  if (device.index < 0 || device.index >= count) {
    throw DeviceError(fmt::format("{}: device {} is not available ({})", op, device.str(),
                                  count == 0 ? kernels::cuda::device_status()
                                             : fmt::format("{} CUDA device(s)", count)));
  }
  try {
    kernels::cuda::set_device(device.index);
  } catch (const kernels::cuda::CudaError&) {
    rethrow_device_error(op);
  }
}

void rethrow_device_error(const char* op) {
  try {
    throw;
  } catch (const kernels::cuda::CudaError& e) {
    throw DeviceError(fmt::format("{}: {}", op, e.what()));
  }
}
#else
void use_device(Device device, const char* op) {
  if (device.is_cuda()) {
    throw DeviceError(fmt::format("{}: device {} is not available (no CUDA device: this build has no CUDA, "
                                  "TAPEFLOW_CUDA=OFF)",
                                  op, device.str()));
  }
}
#endif

Tensor scalar_to_device(const Tensor& t, Device device) {
  if (!t.defined() || t.rank() != 0 || !t.device().is_cpu() || device.is_cpu()) return t;
  if (!t.is_weak()) return t.to(device);
  // filled with its exact value (an int64 above 2^53 too), queued like any kernel: a copy from
  // the host would wait for the device
  Tensor out = empty({}, t.dtype(), device);
  const kernels::Layout l = layout_of(out, "to");
  TAPEFLOW_DISPATCH_ALL(t.dtype(), TAPEFLOW_KERNEL(device, "to", fill<T>(ptr<T>(out), l, *ptr<T>(t))));
  out.impl_->weak = true;
  return out;
}

}  // namespace detail

using detail::TensorImpl;

Tensor::Tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, std::int64_t offset, DType dtype)
    : impl_(std::make_shared<TensorImpl>()) {
  // the front-ends check shapes naming the op; this keeps the kernels' fixed-size layouts safe
  if (shape.size() > static_cast<std::size_t>(kernels::kMaxRank)) detail::check_shape(shape, "tensor");
  impl_->storage = std::move(storage);
  impl_->shape = std::move(shape);
  impl_->strides = std::move(strides);
  impl_->offset = offset;
  impl_->dtype = dtype;
  impl_->id = detail::next_id();
}

Tensor Tensor::weak_scalar(double value, DType dtype) {
  Tensor t = full({}, value, dtype);
  t.impl_->weak = true;
  return t;
}

Tensor Tensor::weak_int(std::int64_t value) {
  Tensor t = empty({}, DType::Int64);
  *t.data<std::int64_t>() = value;  // exact, not through a double (2^53 + 1 stays odd)
  t.impl_->weak = true;
  return t;
}

Tensor Tensor::weak_uint(unsigned long long value) {
  if (value > static_cast<unsigned long long>(std::numeric_limits<std::int64_t>::max())) {
    throw ValueError(fmt::format("scalar: the integer {} does not fit int64", value));
  }
  return weak_int(static_cast<std::int64_t>(value));
}

const TensorImpl& Tensor::impl(const char* op) const {
  if (!impl_) throw ValueError(fmt::format("{}: the tensor is undefined (empty handle)", op));
  return *impl_;
}

const Shape& Tensor::shape() const { return impl("shape").shape; }
std::int64_t Tensor::dim(std::int64_t i) const { return shape()[normalize_axis(i, rank(), "dim")]; }
std::int64_t Tensor::rank() const { return static_cast<std::int64_t>(impl("rank").shape.size()); }
std::int64_t Tensor::size() const { return numel(impl("size").shape); }
DType Tensor::dtype() const { return impl("dtype").dtype; }
Device Tensor::device() const { return impl("device").storage->device(); }
const Shape& Tensor::strides() const { return impl("strides").strides; }
std::int64_t Tensor::offset() const { return impl("offset").offset; }
std::uint64_t Tensor::id() const { return impl("id").id; }
std::uint64_t Tensor::version() const { return impl("version").storage->version(); }
const std::shared_ptr<Storage>& Tensor::storage() const { return impl("storage").storage; }
bool Tensor::is_weak() const { return impl_ && impl_->weak; }
bool Tensor::is_variable() const { return impl_ && impl_->variable; }
const detail::VariableInfo* Tensor::variable_info() const { return impl_ ? impl_->variable.get() : nullptr; }
void Tensor::set_variable_info(std::shared_ptr<detail::VariableInfo> info) {
  impl("set_variable_info");
  impl_->variable = std::move(info);
}

bool Tensor::is_contiguous() const {
  const auto& im = impl("is_contiguous");
  std::int64_t expected = 1;
  for (std::size_t i = im.shape.size(); i-- > 0;) {
    if (im.shape[i] != 1 && im.strides[i] != expected) return false;
    expected *= im.shape[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  const auto& im = impl("data_ptr");
  if (!im.storage->device().is_cpu()) {
    throw DeviceError(fmt::format("data_ptr: the tensor is on {}; copy it to the CPU first (t.to(Device::cpu())) "
                                  "or use device_data_ptr()",
                                  device().str()));
  }
  return detail::raw_ptr(*this);
}

void* Tensor::device_data_ptr() const {
  impl("device_data_ptr");
  return detail::raw_ptr(*this);
}

template <class T>
T* Tensor::data() const {
  if (dtype() != dtype_v<T>) {
    throw DTypeError(fmt::format("data: the tensor is {}, not {}", dtype_name(dtype()), dtype_name(dtype_v<T>)));
  }
  return static_cast<T*>(data_ptr());
}

template <class R>
std::vector<R> Tensor::to_vector() const {
  const auto& im = impl("to_vector");
  if (!im.storage->device().is_cpu()) {
    detail::NoRecord no_record;
    return to(Device::cpu()).to_vector<R>();
  }
  // std::vector<bool> has no data(): go through a bool buffer
  std::unique_ptr<R[]> buf(new R[static_cast<std::size_t>(size())]);
  if (size() > 0) {
    const Shape& s = im.shape;
    auto out_l = kernels::contiguous_layout(static_cast<int>(s.size()), s.data());
    auto in_l = detail::layout_of(*this, "to_vector");
    TAPEFLOW_DISPATCH_ALL(im.dtype, kernels::cpu::copy<R, T>(buf.get(), out_l, static_cast<const T*>(data_ptr()), in_l));
  }
  return std::vector<R>(buf.get(), buf.get() + size());
}

template <class T>
T Tensor::item() const {
  if (size() != 1) {
    throw ValueError(fmt::format("item: the tensor has {} elements (shape {}); item() needs exactly one", size(),
                                 shape_str(shape())));
  }
  return to_vector<T>()[0];
}

#define TAPEFLOW_INSTANTIATE(T)                  \
  template T* Tensor::data<T>() const;           \
  template std::vector<T> Tensor::to_vector<T>() const; \
  template T Tensor::item<T>() const;
TAPEFLOW_INSTANTIATE(bool)
TAPEFLOW_INSTANTIATE(std::int32_t)
TAPEFLOW_INSTANTIATE(std::int64_t)
TAPEFLOW_INSTANTIATE(float)
TAPEFLOW_INSTANTIATE(double)
#undef TAPEFLOW_INSTANTIATE

// ------------------------------------------------------------------------- views

namespace {
// Strides for viewing (shape, strides) as new_shape without a copy, if possible
// (the rule NumPy and PyTorch use: each run of merged axes must be contiguous within itself).
std::optional<Shape> view_strides(const Shape& shape, const Shape& strides, const Shape& new_shape) {
  Shape out(new_shape.size());
  if (numel(shape) == 0 || shape.empty()) return contiguous_strides(new_shape);
  std::int64_t view_d = static_cast<std::int64_t>(new_shape.size()) - 1;
  std::int64_t chunk_base_stride = strides.back();
  std::int64_t tensor_numel = 1, view_numel = 1;
  for (std::int64_t d = static_cast<std::int64_t>(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

// Python's slice.indices(n): (start, length) with clamping; step != 0.
std::pair<std::int64_t, std::int64_t> slice_bounds(const Slice& s, std::int64_t n) {
  const std::int64_t step = s.step;
  std::int64_t start, stop;
  if (step > 0) {
    start = s.start ? *s.start : 0;
    stop = s.stop ? *s.stop : n;
    if (start < 0) start = std::max<std::int64_t>(start + n, 0);
    if (stop < 0) stop = std::max<std::int64_t>(stop + n, 0);
    start = std::min(start, n);
    stop = std::min(stop, n);
    const std::int64_t len = start < stop ? (stop - start - 1) / step + 1 : 0;  // CPython's form: no overflow
    return {len > 0 ? start : 0, len};
  }
  start = s.start ? *s.start : n - 1;
  stop = s.stop ? *s.stop : -1 - n;  // before the first element
  if (start < 0) start = std::max<std::int64_t>(start + n, -1);
  if (stop < 0) stop = std::max<std::int64_t>(stop + n, -1);
  start = std::min(start, n - 1);
  stop = std::min(stop, n - 1);
  const std::int64_t neg = step == INT64_MIN ? INT64_MAX : -step;
  const std::int64_t len = stop < start ? (start - stop - 1) / neg + 1 : 0;
  return {len > 0 ? start : 0, len};
}
}  // namespace

Tensor Tensor::reshape(const Shape& new_shape_in) const {
  const auto& im = impl("reshape");
  Shape new_shape = new_shape_in;
  std::int64_t infer = -1, known = 1;
  bool zero = false, overflow = false;
  for (std::size_t i = 0; i < new_shape.size(); ++i) {
    if (new_shape[i] == -1) {
      if (infer >= 0) throw ValueError(fmt::format("reshape: more than one -1 in {}", shape_str(new_shape_in)));
      infer = static_cast<std::int64_t>(i);
    } else if (new_shape[i] < 0) {
      throw ValueError(fmt::format("reshape: negative size in {}", shape_str(new_shape_in)));
    } else if (new_shape[i] == 0) {
      zero = true;
    } else {
      overflow = __builtin_mul_overflow(known, new_shape[i], &known) || overflow;
    }
  }
  if (zero) {
    known = 0;
  } else if (overflow) {
    throw ValueError(fmt::format("reshape: the product of {} overflows int64", shape_str(new_shape_in)));
  }
  const std::int64_t n = numel(im.shape);
  if (infer >= 0) {
    if (known == 0 || n % known != 0) {
      throw ShapeError(fmt::format("reshape: cannot reshape {} ({} elements) into {}", shape_str(im.shape), n,
                                   shape_str(new_shape_in)));
    }
    new_shape[infer] = n / known;
  }
  if (numel(new_shape) != n) {
    throw ShapeError(fmt::format("reshape: cannot reshape {} ({} elements) into {} ({} elements)",
                                 shape_str(im.shape), n, shape_str(new_shape_in), numel(new_shape)));
  }
  detail::check_shape(new_shape, "reshape");
  if (new_shape == im.shape) return *this;
  auto strides = view_strides(im.shape, im.strides, new_shape);
  if (!strides) return contiguous().reshape(new_shape);
  Tensor out = detail::make_view(*this, new_shape, *strides, im.offset);
  detail::record(OpId::Reshape, {*this}, {out}, [&] {
    OpAttrs a;
    a.shape = im.shape;
    return a;
  });
  return out;
}

Tensor Tensor::permute(const std::vector<std::int64_t>& axes) const {
  const auto& im = impl("permute");
  const std::int64_t r = rank();
  if (static_cast<std::int64_t>(axes.size()) != r) {
    throw ValueError(fmt::format("permute: {} axes given for a tensor of rank {} (shape {})", axes.size(), r,
                                 shape_str(im.shape)));
  }
  std::vector<std::int64_t> perm(axes.size());
  std::vector<bool> seen(axes.size(), false);
  Shape shape(axes.size()), strides(axes.size());
  for (std::size_t i = 0; i < axes.size(); ++i) {
    const int a = normalize_axis(axes[i], r, "permute");
    if (seen[a]) throw ValueError(fmt::format("permute: axis {} repeated in [{}]", a, fmt::join(axes, ", ")));
    seen[a] = true;
    perm[i] = a;
    shape[i] = im.shape[a];
    strides[i] = im.strides[a];
  }
  bool identity = true;
  for (std::size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == static_cast<std::int64_t>(i);
  if (identity) return *this;
  Tensor out = detail::make_view(*this, shape, strides, im.offset);
  detail::record(OpId::Permute, {*this}, {out}, [&] {
    OpAttrs a;
    a.axes = perm;
    return a;
  });
  return out;
}

Tensor Tensor::transpose() const {
  std::vector<std::int64_t> axes(static_cast<std::size_t>(rank()));
  std::iota(axes.rbegin(), axes.rend(), 0);
  return permute(axes);
}

Tensor Tensor::transpose(std::int64_t axis0, std::int64_t axis1) const {
  std::vector<std::int64_t> axes(static_cast<std::size_t>(rank()));
  std::iota(axes.begin(), axes.end(), 0);
  std::swap(axes[normalize_axis(axis0, rank(), "transpose")], axes[normalize_axis(axis1, rank(), "transpose")]);
  return permute(axes);
}

Tensor Tensor::expand_dims(std::int64_t axis) const {
  const int a = normalize_axis(axis, rank() + 1, "expand_dims");
  Shape s = shape();
  s.insert(s.begin() + a, 1);
  detail::check_shape(s, "expand_dims");
  return reshape(s);
}

Tensor Tensor::squeeze(const std::vector<std::int64_t>& axes) const {
  const Shape& s = shape();
  std::vector<bool> drop(s.size(), false);
  if (axes.empty()) {
    for (std::size_t i = 0; i < s.size(); ++i) drop[i] = s[i] == 1;
  } else {
    for (auto ax : axes) {
      const int a = normalize_axis(ax, rank(), "squeeze");
      if (s[a] != 1) {
        throw ShapeError(fmt::format("squeeze: axis {} has size {}, not 1 (shape {})", ax, s[a], shape_str(s)));
      }
      if (drop[a]) throw ValueError(fmt::format("squeeze: repeated axis in [{}]", fmt::join(axes, ", ")));
      drop[a] = true;
    }
  }
  Shape out;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (!drop[i]) out.push_back(s[i]);
  return reshape(out);
}

Tensor Tensor::flatten() const { return reshape({size()}); }

Tensor Tensor::broadcast_to(const Shape& target) const {
  const auto& im = impl("broadcast_to");
  if (target.size() < im.shape.size()) {
    throw ShapeError(fmt::format("broadcast_to: cannot broadcast {} to {} (fewer axes)", shape_str(im.shape),
                                 shape_str(target)));
  }
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] < 0) {
      throw ShapeError(fmt::format("broadcast_to: cannot broadcast {} to {}: negative size {} at axis {}",
                                   shape_str(im.shape), shape_str(target), target[i], i));
    }
  }
  detail::check_shape(target, "broadcast_to");
  const std::size_t lead = target.size() - im.shape.size();
  for (std::size_t i = 0; i < im.shape.size(); ++i) {
    if (im.shape[i] != target[lead + i] && im.shape[i] != 1) {
      throw ShapeError(fmt::format("broadcast_to: cannot broadcast {} to {}: size {} vs {} at axis {}",
                                   shape_str(im.shape), shape_str(target), im.shape[i], target[lead + i], lead + i));
    }
  }
  if (target == im.shape) return *this;
  auto l = detail::layout_as(*this, target, "broadcast_to");
  Shape strides(l.strides, l.strides + l.rank);
  Tensor out = detail::make_view(*this, target, strides, im.offset);
  detail::record(OpId::BroadcastTo, {*this}, {out}, [&] {
    OpAttrs a;
    a.shape = im.shape;
    return a;
  });
  return out;
}

Tensor Tensor::index(const std::vector<Index>& indices) const {
  const auto& im = impl("index");
  const std::int64_t r = rank();
  std::int64_t consumed = 0;
  int ellipses = 0;
  for (const auto& ix : indices) {
    const auto& v = ix.value();
    if (std::holds_alternative<std::int64_t>(v) || std::holds_alternative<Slice>(v)) ++consumed;
    if (std::holds_alternative<EllipsisType>(v)) ++ellipses;
  }
  if (ellipses > 1) throw IndexError("index: an index can only have a single ellipsis");
  if (consumed > r) {
    throw IndexError(fmt::format("index: too many indices: {} given for a tensor of rank {} (shape {})", consumed,
                                 r, shape_str(im.shape)));
  }
  // One slice per input axis (ints become length-1 slices), then a reshape that drops
  // the int axes and inserts the new ones.
  std::vector<std::int64_t> starts(r, 0), steps(r, 1);
  Shape sliced = im.shape, strides = im.strides, final_shape;
  std::int64_t offset = im.offset, axis = 0;
  auto full_axis = [&]() {
    final_shape.push_back(im.shape[axis]);
    ++axis;
  };
  for (const auto& ix : indices) {
    const auto& v = ix.value();
    if (const auto* i = std::get_if<std::int64_t>(&v)) {
      const std::int64_t n = im.shape[axis];
      const std::int64_t k = *i < 0 ? *i + n : *i;
      if (k < 0 || k >= n) {
        throw IndexError(fmt::format("index: index {} is out of bounds for axis {} with size {} (shape {})", *i,
                                     axis, n, shape_str(im.shape)));
      }
      starts[axis] = k;
      sliced[axis] = 1;
      offset += k * im.strides[axis];
      ++axis;
    } else if (const auto* s = std::get_if<Slice>(&v)) {
      if (s->step == 0) throw ValueError("index: slice step cannot be zero");
      const auto [start, len] = slice_bounds(*s, im.shape[axis]);
      starts[axis] = start;
      steps[axis] = s->step;
      sliced[axis] = len;
      // with one element or none the stride is never used (and step * stride may overflow)
      strides[axis] = len > 1 ? im.strides[axis] * s->step : im.strides[axis];
      offset += start * im.strides[axis];
      final_shape.push_back(len);
      ++axis;
    } else if (std::holds_alternative<EllipsisType>(v)) {
      for (std::int64_t k = 0; k < r - consumed; ++k) full_axis();
    } else {
      final_shape.push_back(1);
    }
  }
  while (axis < r) full_axis();
  detail::check_shape(final_shape, "index");  // newaxis entries may pass the maximum rank

  Tensor out = *this;
  if (sliced != im.shape || steps != std::vector<std::int64_t>(r, 1)) {
    out = detail::make_view(*this, sliced, strides, offset);
    detail::record(OpId::Slice, {*this}, {out}, [&] {
      OpAttrs a;
      a.shape = im.shape;
      a.starts = starts;
      a.steps = steps;
      return a;
    });
  }
  return out.reshape(final_shape);
}

// ------------------------------------------------------------------------- copies

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  const auto& im = impl("clone");
  Tensor out = empty(im.shape, im.dtype, device());
  if (size() > 0) {
    auto out_l = detail::layout_of(out, "clone");
    auto in_l = detail::layout_of(*this, "clone");
    TAPEFLOW_DISPATCH_ALL(im.dtype, TAPEFLOW_KERNEL(out.device(), "clone",
                                                    copy<T, T>(detail::ptr<T>(out), out_l, detail::ptr<T>(*this), in_l)));
  }
  detail::record(OpId::Copy, {*this}, {out});
  return out;
}

Tensor Tensor::astype(DType dtype) const {
  const auto& im = impl("astype");
  if (dtype == im.dtype) return *this;
  Tensor out = empty(im.shape, dtype, device());
  const std::int64_t n = numel(im.shape);
  if (n == 1 && im.storage->device().is_cpu()) {  // a scalar (x * 0.5's 0.5): no kernel launch
    TAPEFLOW_DISPATCH_ALL(dtype, {
      using TO = T;
      TO* o = detail::ptr<TO>(out);
      TAPEFLOW_DISPATCH_ALL(im.dtype, *o = kernels::convert<TO>(*detail::ptr<T>(*this)));
    });
  } else if (n > 0) {
    auto out_l = detail::layout_of(out, "astype");
    auto in_l = detail::layout_of(*this, "astype");
    using detail::TensorImpl;
    TAPEFLOW_DISPATCH_ALL(dtype, {
      using TO = T;
      TAPEFLOW_DISPATCH_ALL(im.dtype,
                            TAPEFLOW_KERNEL(out.device(), "astype",
                                            copy<TO, T>(detail::ptr<TO>(out), out_l, detail::ptr<T>(*this), in_l)));
    });
  }
  detail::record(OpId::Cast, {*this}, {out}, [&] {
    OpAttrs a;
    a.dtype = im.dtype;
    return a;
  });
  return out;
}

Tensor Tensor::to(Device device) const {
  const auto& im = impl("to");
  const Device from = im.storage->device();
  if (device == from) return *this;
  detail::use_device(device, "to");
  detail::use_device(from, "to");
  Tensor src;
  {
    detail::NoRecord no_record;  // one Copy node below covers the whole move
    src = contiguous();
  }
  Tensor out = empty(im.shape, im.dtype, device);
#if defined(TAPEFLOW_HAVE_CUDA)
  const std::size_t bytes = nbytes();
  if (bytes > 0) {
    try {
      if (from.is_cpu()) {
        kernels::cuda::set_device(device.index);
        kernels::cuda::copy_to_device(detail::raw_ptr(out), detail::raw_ptr(src), bytes);
      } else if (device.is_cpu()) {
        kernels::cuda::set_device(from.index);
        kernels::cuda::copy_to_host(detail::raw_ptr(out), detail::raw_ptr(src), bytes);
      } else {
        kernels::cuda::set_device(device.index);
        kernels::cuda::copy_device_to_device(detail::raw_ptr(out), device.index, detail::raw_ptr(src), from.index,
                                             bytes);
      }
    } catch (const kernels::cuda::CudaError&) {
      detail::rethrow_device_error("to");
    }
  }
#endif
  detail::record(OpId::Copy, {*this}, {out});
  if (device.is_cpu()) detail::run_deferred_checks();  // the device has caught up: its checks are cheap to read
  return out;
}

// ------------------------------------------------------------------------- in place

namespace {
// Prepares `other` for an in-place write into `self`: same device, broadcastable to self's
// shape, self's dtype, and not overlapping self's storage (a copy otherwise).
Tensor prepare_inplace(const Tensor& self, const Tensor& other, const char* op) {
  detail::check_defined(self, op);
  detail::check_defined(other, op);
  const Tensor other_here = detail::scalar_to_device(other, self.device());
  detail::check_same_device(self, other_here, op);
  const Shape b = broadcast_shapes(self.shape(), other.shape(), op);
  if (b != self.shape()) {
    throw ShapeError(fmt::format("{}: cannot write a tensor of shape {} into one of shape {}", op,
                                 shape_str(other.shape()), shape_str(self.shape())));
  }
  if (self.is_weak()) throw ValueError(fmt::format("{}: cannot write into a scalar constant", op));
  for (std::int64_t i = 0; i < self.rank(); ++i) {
    if (self.strides()[i] == 0 && self.shape()[i] > 1) {
      throw ValueError(fmt::format("{}: cannot write into a broadcast view (shape {}, stride 0 at axis {}): "
                                   "several elements share one memory location; clone() it first",
                                   op, shape_str(self.shape()), i));
    }
  }
  if (!is_floating(self.dtype()) && is_floating(other.dtype())) {
    throw DTypeError(fmt::format("{}: cannot write {} values into a {} tensor in place", op,
                                 dtype_name(other.dtype()), dtype_name(self.dtype())));
  }
  detail::check_weak_int(other, self.dtype(), op);
  // in-place writes are never recorded: a tape that tracks `self` may refuse the write
  if (OpObserver* o = current_observer()) o->before_write(self, op);
  detail::NoRecord no_record;
  Tensor src = other_here.astype(self.dtype());
  if (src.storage() == self.storage()) src = src.clone();
  return src;
}

Tensor& inplace_binary(Tensor& self, const Tensor& other, OpId op, const char* name) {
  Tensor src = prepare_inplace(self, other, name);
  if (self.dtype() == DType::Bool) throw DTypeError(fmt::format("{}: bool tensors are not supported", name));
  if (self.size() > 0) {
    auto l = detail::layout_of(self, name);
    auto sl = detail::layout_as(src, self.shape(), name);
    TAPEFLOW_DISPATCH_NUMERIC(self.dtype(), name,
                              TAPEFLOW_KERNEL(self.device(), name,
                                              binary<T>(op, detail::ptr<T>(self), l, detail::ptr<T>(self), l,
                                                        detail::ptr<T>(src), sl)));
  }
  self.storage()->bump_version();
  return self;
}

Tensor& inplace_addc(Tensor& self, const Tensor& a, const Tensor& b, double value, bool divide, const char* name) {
  detail::check_defined(self, name);
  if (!is_floating(self.dtype())) {
    throw DTypeError(fmt::format("{}: only float tensors are updated in place this way, got {} (shape {})", name,
                                 dtype_name(self.dtype()), shape_str(self.shape())));
  }
  const Tensor sa = prepare_inplace(self, a, name);
  const Tensor sb = prepare_inplace(self, b, name);
  if (self.size() > 0) {
    auto l = detail::layout_of(self, name);
    auto al = detail::layout_as(sa, self.shape(), name);
    auto bl = detail::layout_as(sb, self.shape(), name);
    if (self.dtype() == DType::Float32) {
      TAPEFLOW_KERNEL(self.device(), name,
                      addc<float>(divide, detail::ptr<float>(self), l, detail::ptr<float>(sa), al,
                                  detail::ptr<float>(sb), bl, static_cast<float>(value)));
    } else {
      TAPEFLOW_KERNEL(self.device(), name,
                      addc<double>(divide, detail::ptr<double>(self), l, detail::ptr<double>(sa), al,
                                   detail::ptr<double>(sb), bl, value));
    }
  }
  self.storage()->bump_version();
  return self;
}
}  // namespace

Tensor& Tensor::addcmul_(const Tensor& a, const Tensor& b, double value) {
  return inplace_addc(*this, a, b, value, false, "addcmul_");
}
Tensor& Tensor::addcdiv_(const Tensor& a, const Tensor& b, double value) {
  return inplace_addc(*this, a, b, value, true, "addcdiv_");
}
Tensor& Tensor::add_(const Tensor& other) { return inplace_binary(*this, other, OpId::Add, "add_"); }
Tensor& Tensor::sub_(const Tensor& other) { return inplace_binary(*this, other, OpId::Sub, "sub_"); }
Tensor& Tensor::mul_(const Tensor& other) { return inplace_binary(*this, other, OpId::Mul, "mul_"); }

Tensor& Tensor::assign(const Tensor& other) {
  Tensor moved;
  if (other.defined() && defined() && other.device() != device()) {
    detail::NoRecord no_record;
    moved = other.to(device());  // copy_ semantics: the source may live on another device
  }
  Tensor src = prepare_inplace(*this, moved.defined() ? moved : other, "assign");
  if (size() > 0) {
    auto l = detail::layout_of(*this, "assign");
    auto sl = detail::layout_as(src, shape(), "assign");
    TAPEFLOW_DISPATCH_ALL(dtype(), TAPEFLOW_KERNEL(device(), "assign",
                                                   copy<T, T>(detail::ptr<T>(*this), l, detail::ptr<T>(src), sl)));
  }
  storage()->bump_version();
  return *this;
}

}  // namespace tapeflow
