#pragma once
/// Tensor: a cheap handle to shared storage with a shape, strides, offset and dtype.
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "tapeflow/allocator.hpp"
#include "tapeflow/dtype.hpp"
#include "tapeflow/error.hpp"
#include "tapeflow/shape.hpp"

namespace tapeflow {

/// `none` in a Slice: Python's omitted bound.
struct NoneType {};
inline constexpr NoneType none{};
/// `...` in an index: as many full slices as needed.
struct EllipsisType {};
inline constexpr EllipsisType ellipsis{};
/// A new axis of length 1 in an index (NumPy's np.newaxis).
struct NewAxisType {};
inline constexpr NewAxisType newaxis{};

/// One bound of a Slice: an integer or none.
class Bound {
 public:
  Bound(NoneType) {}
  template <class I, class = std::enable_if_t<std::is_integral_v<I>>>
  Bound(I v) : value_(static_cast<std::int64_t>(v)) {}
  const std::optional<std::int64_t>& value() const { return value_; }

 private:
  std::optional<std::int64_t> value_;
};

/// Python's start:stop:step. Slice() is `:`; Slice(10, 100) is `10:100`; Slice(none, none, -1) is `::-1`.
struct Slice {
  std::optional<std::int64_t> start, stop;
  std::int64_t step = 1;
  Slice() = default;
  Slice(Bound start_, Bound stop_, std::int64_t step_ = 1)
      : start(start_.value()), stop(stop_.value()), step(step_) {}
};
/// `:`, the whole axis.
inline const Slice all{};

/// One entry of an index: an integer (drops the axis), a Slice, `ellipsis` or `newaxis`.
class Index {
 public:
  template <class I, class = std::enable_if_t<std::is_integral_v<I>>>
  Index(I i) : v_(static_cast<std::int64_t>(i)) {}
  Index(Slice s) : v_(s) {}
  Index(EllipsisType e) : v_(e) {}
  Index(NewAxisType n) : v_(n) {}
  const std::variant<std::int64_t, Slice, EllipsisType, NewAxisType>& value() const { return v_; }

 private:
  std::variant<std::int64_t, Slice, EllipsisType, NewAxisType> v_;
};

class Tensor;
namespace detail {
struct TensorImpl;
Tensor scalar_to_device(const Tensor& t, Device device);
/// Extra state of a Variable (autodiff/ reads it through the public accessors).
struct VariableInfo {
  std::string name;
  bool trainable = true;
};
}  // namespace detail

class Tensor {
 public:
  /// An undefined tensor (defined() is false): what an unconnected gradient returns.
  Tensor() = default;
  Tensor(const Tensor&) = default;
  Tensor(Tensor&&) = default;
  /// Rebinds this handle to other's storage (no copy). Only a named tensor can be rebound:
  /// `x(Slice(0, 2)) = y` would rebind a temporary view and write nothing, so it does not
  /// compile; write into a view with `x(Slice(0, 2)).assign(y)`.
  Tensor& operator=(const Tensor&) & = default;
  Tensor& operator=(Tensor&&) & = default;
  ~Tensor() = default;
  /// A C++ number as a rank-0 "weak" tensor: in an op with a tensor it takes that tensor's
  /// dtype (x * 2.0 stays float32; a floating number with an integer tensor gives float32),
  /// as JAX's weak types and PyTorch's Python scalars do. Alone it is int64, float64 or bool.
  /// An integer keeps its exact value (as int64; an unsigned one above INT64_MAX throws
  /// ValueError); arithmetic with an integer tensor it does not fit raises ValueError, and
  /// comparisons give the exact answer, as NumPy 2 does with Python ints.
  template <class S, class = std::enable_if_t<std::is_arithmetic_v<S>>>
  Tensor(S value) : Tensor(make_weak(value)) {}

  // --- metadata ---
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  /// Length of axis i (negative counts from the end).
  std::int64_t dim(std::int64_t i) const;
  std::int64_t rank() const;
  /// Number of elements.
  std::int64_t size() const;
  DType dtype() const;
  Device device() const;
  const Shape& strides() const;
  std::int64_t offset() const;
  bool is_contiguous() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(size()) * itemsize(dtype()); }
  /// Unique identity of this handle's tensor (copies of a handle share it; views get new ones).
  std::uint64_t id() const;
  /// In-place writes to the storage so far.
  std::uint64_t version() const;
  const std::shared_ptr<Storage>& storage() const;

  // --- data ---
  /// Pointer to the first element (CPU tensors only: a CUDA tensor throws DeviceError).
  void* data_ptr() const;
  /// Pointer to the first element on the tensor's own device (a CUDA device pointer for CUDA
  /// tensors: for custom kernels; work is queued on the device's stream, see kernels/cuda.hpp).
  void* device_data_ptr() const;
  template <class T> T* data() const;
  /// The value of a one-element tensor, converted to T.
  template <class T> T item() const;
  /// All values in row-major order, converted to T. Reading a CUDA tensor copies it to the
  /// host, which waits for the work queued before it.
  template <class T> std::vector<T> to_vector() const;

  // --- views (no copy) ---
  /// New shape with the same elements; one -1 is inferred. Copies only when strides forbid a view.
  Tensor reshape(const Shape& shape) const;
  /// Reverses the axes (a matrix's transpose).
  Tensor transpose() const;
  Tensor transpose(std::int64_t axis0, std::int64_t axis1) const;
  Tensor permute(const std::vector<std::int64_t>& axes) const;
  Tensor expand_dims(std::int64_t axis) const;
  /// Drops the given size-1 axes, or all of them.
  Tensor squeeze(const std::vector<std::int64_t>& axes = {}) const;
  Tensor broadcast_to(const Shape& shape) const;
  Tensor flatten() const;
  /// NumPy indexing: t(Slice(10, 100)), t(all, Slice(14, none)), t(0), t(ellipsis, -1).
  template <class... I>
  Tensor operator()(I&&... indices) const {
    return index({Index(std::forward<I>(indices))...});
  }
  Tensor index(const std::vector<Index>& indices) const;
  /// t[i]: the i-th entry along axis 0 (drops the axis).
  Tensor operator[](std::int64_t i) const { return index({Index(i)}); }

  // --- copies ---
  /// This tensor if contiguous, else a contiguous copy.
  Tensor contiguous() const;
  /// Always a new contiguous copy.
  Tensor clone() const;
  /// A copy converted to dtype. Floating -> integer truncates toward zero and saturates to the
  /// integer's range, NaN giving 0 (CUDA's conversion, so every device agrees).
  Tensor astype(DType dtype) const;
  Tensor to(DType dtype) const { return astype(dtype); }
  /// This tensor on `device` (itself when already there; a contiguous copy otherwise).
  /// Recorded by a tape: the gradient flows back to the source device.
  Tensor to(Device device) const;

  // --- in place (for optimizers; never recorded by a tape; bump the version) ---
  Tensor& add_(const Tensor& other);
  Tensor& sub_(const Tensor& other);
  Tensor& mul_(const Tensor& other);
  /// this += value * a * b in one pass (PyTorch's addcmul_; float tensors). a and b broadcast
  /// to this shape. Computed as this + value * (a * b), rounded at each step on every device.
  Tensor& addcmul_(const Tensor& a, const Tensor& b, double value = 1);
  /// this += value * a / b in one pass (PyTorch's addcdiv_; float tensors), as addcmul_.
  Tensor& addcdiv_(const Tensor& a, const Tensor& b, double value = 1);
  /// Copies other's values (broadcast, converted, from any device) into this tensor.
  Tensor& assign(const Tensor& other);

  /// True for a tensor made from a C++ number (see the scalar constructor).
  bool is_weak() const;

  // --- Variable state (see autodiff's Variable) ---
  bool is_variable() const;
  const detail::VariableInfo* variable_info() const;

  /// Internal: builds a tensor from its parts.
  Tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, std::int64_t offset, DType dtype);

 protected:
  static Tensor weak_scalar(double value, DType dtype);
  static Tensor weak_int(std::int64_t value);
  static Tensor weak_uint(unsigned long long value);
  template <class S>
  static Tensor make_weak(S value) {
    if constexpr (std::is_same_v<S, bool>) {
      return weak_scalar(value ? 1.0 : 0.0, DType::Bool);
    } else if constexpr (std::is_floating_point_v<S>) {
      return weak_scalar(static_cast<double>(value), DType::Float64);
    } else if constexpr (std::is_unsigned_v<S>) {
      return weak_uint(static_cast<unsigned long long>(value));
    } else {
      return weak_int(static_cast<std::int64_t>(value));
    }
  }
  void set_variable_info(std::shared_ptr<detail::VariableInfo> info);

 private:
  friend Tensor detail::scalar_to_device(const Tensor& t, Device device);
  std::shared_ptr<detail::TensorImpl> impl_;
  const detail::TensorImpl& impl(const char* op) const;
};

/// NumPy-like printing (values, shape, dtype; long tensors summarised with ...).
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t);
/// "float32", "int64", ... (dtype_name).
std::ostream& operator<<(std::ostream& os, DType dtype);
/// "cpu", "cuda:0", ... (Device::str).
std::ostream& operator<<(std::ostream& os, const Device& device);

}  // namespace tapeflow
