#pragma once
// Private helpers of the core's front-ends: layouts for the kernels, dtype dispatch,
// recording to the observer.
#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <utility>
#include <vector>

#include "tapeflow/kernels/cpu.hpp"
#include "tapeflow/kernels/functors.hpp"
#if defined(TAPEFLOW_HAVE_CUDA)
#include "tapeflow/kernels/cuda.hpp"
#endif
#include "tapeflow/observer.hpp"
#include "tapeflow/ops.hpp"
#include "tapeflow/tensor.hpp"

namespace tapeflow::detail {

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  std::int64_t offset = 0;
  DType dtype = DType::Float32;
  std::uint64_t id = 0;
  bool weak = false;
  std::shared_ptr<VariableInfo> variable;
};

// The tensor's own layout.
kernels::Layout layout_of(const Tensor& t, const char* op);
// t's layout broadcast to `shape` (stride 0 on broadcast axes); shapes already checked.
kernels::Layout layout_as(const Tensor& t, const Shape& shape, const char* op);

// Throws unless a tensor of `shape` can exist (ShapeError / ValueError naming op): rank at most
// kernels::kMaxRank, no negative size, and the product of the non-zero sizes (its contiguous
// strides' largest product) within an int64.
void check_shape(const Shape& shape, const char* op);
// Does t, if a weak integer (a C++ integer in an op), fit dtype? Always true otherwise. Weak
// integers are int64, so only an int32 dtype can be too narrow.
bool weak_int_fits(const Tensor& t, DType dtype);
// Throws ValueError naming op unless weak_int_fits(t, dtype): arithmetic with an integer the
// tensor's dtype cannot hold raises, as NumPy 2's does with a Python int.
void check_weak_int(const Tensor& t, DType dtype, const char* op);

// Reads the calling thread's pending check_later() conditions (each one a wait for its device)
// and throws the first failed one's error; the others are dropped. Called after each read of
// device values.
void run_deferred_checks();

// The CPU's memory and swap in bytes (SIZE_MAX where unknown): no CPU tensor can be larger.
std::size_t cpu_memory_bytes();

// empty(), with errors naming op.
Tensor empty_for(const Shape& shape, DType dtype, Device device, const char* op);

// A new tensor sharing t's storage.
Tensor make_view(const Tensor& t, Shape shape, Shape strides, std::int64_t offset);

// Records op on the calling thread's tape, if any. attrs are built only when one listens; the
// lists are passed as views (no allocation per op).
template <class Inputs, class MakeAttrs>
inline void record(OpId op, const Inputs& inputs, std::initializer_list<Tensor> outputs, MakeAttrs&& make_attrs) {
  if (OpObserver* o = current_observer()) {
    o->record(op, TensorList(std::data(inputs), std::size(inputs)), TensorList(std::data(outputs), outputs.size()),
              make_attrs());
  }
}
template <class MakeAttrs>
inline void record(OpId op, std::initializer_list<Tensor> inputs, std::initializer_list<Tensor> outputs,
                   MakeAttrs&& make_attrs) {
  record<std::initializer_list<Tensor>>(op, inputs, outputs, std::forward<MakeAttrs>(make_attrs));
}
inline void record(OpId op, std::initializer_list<Tensor> inputs, std::initializer_list<Tensor> outputs) {
  record(op, inputs, outputs, [] { return OpAttrs{}; });
}

// Suspends recording on this thread for its lifetime (for values a composite treats as
// constants, like the max subtracted in softmax).
using NoRecord = NoRecording;

void check_defined(const Tensor& t, const char* op);
// Axes normalised, sorted and unique; empty means all. Errors name op.
std::vector<std::int64_t> reduce_axes(const std::vector<std::int64_t>& axes, std::int64_t rank, const char* op);
void check_same_device(const Tensor& a, const Tensor& b, const char* op);

// The first element on the tensor's own device (a device pointer for CUDA tensors). Only the
// kernel calls take these; host code reads through data<T>() (CPU only) or to_vector().
void* raw_ptr(const Tensor& t);
template <class T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(raw_ptr(t));
}

// For CUDA tensors: makes `device` current on this thread. Throws DeviceError where the build
// has no CUDA or the device is not usable.
void use_device(Device device, const char* op);
#if defined(TAPEFLOW_HAVE_CUDA)
// Inside a catch of kernels::cuda::CudaError: rethrows it as DeviceError naming op.
[[noreturn]] void rethrow_device_error(const char* op);
#endif

// A tensor of rank 0 on the CPU (a C++ number, a loss weight) used with tensors on `device`
// moves there, as PyTorch lets CPU scalars mix with CUDA tensors; anything else is returned
// as it is (and the op's device check names both devices).
Tensor scalar_to_device(const Tensor& t, Device device);

}  // namespace tapeflow::detail

// Runs kernels::<backend>::call on the backend of `device` (CPU or CUDA). Used inside the
// dtype dispatch: TAPEFLOW_KERNEL(out.device(), name, binary<T>(op, ...)).
#if defined(TAPEFLOW_HAVE_CUDA)
#define TAPEFLOW_KERNEL(device, op, ...)                          \
  do {                                                            \
    if ((device).is_cuda()) {                                     \
      ::tapeflow::detail::use_device((device), (op));             \
      try {                                                       \
        ::tapeflow::kernels::cuda::__VA_ARGS__;                   \
      } catch (const ::tapeflow::kernels::cuda::CudaError&) {     \
        ::tapeflow::detail::rethrow_device_error(op);             \
      }                                                           \
    } else {                                                      \
      ::tapeflow::kernels::cpu::__VA_ARGS__;                      \
    }                                                             \
  } while (0)
#else
#define TAPEFLOW_KERNEL(device, op, ...)                          \
  do {                                                            \
    if ((device).is_cuda()) ::tapeflow::detail::use_device((device), (op)); \
    ::tapeflow::kernels::cpu::__VA_ARGS__;                        \
  } while (0)
#endif

namespace tapeflow::detail {

}  // namespace tapeflow::detail

// Runs the body with T bound to the C++ type of dtype.
#define TAPEFLOW_DISPATCH_NUMERIC(dtype, op, ...)                                           \
  switch (dtype) {                                                                          \
    case ::tapeflow::DType::Float32: { using T = float; __VA_ARGS__; break; }               \
    case ::tapeflow::DType::Float64: { using T = double; __VA_ARGS__; break; }              \
    case ::tapeflow::DType::Int32: { using T = std::int32_t; __VA_ARGS__; break; }          \
    case ::tapeflow::DType::Int64: { using T = std::int64_t; __VA_ARGS__; break; }          \
    case ::tapeflow::DType::Bool:                                                           \
      throw ::tapeflow::DTypeError(fmt::format("{}: bool tensors are not supported", op)); \
  }
#define TAPEFLOW_DISPATCH_ALL(dtype, ...)                                                   \
  switch (dtype) {                                                                          \
    case ::tapeflow::DType::Float32: { using T = float; __VA_ARGS__; break; }               \
    case ::tapeflow::DType::Float64: { using T = double; __VA_ARGS__; break; }              \
    case ::tapeflow::DType::Int32: { using T = std::int32_t; __VA_ARGS__; break; }          \
    case ::tapeflow::DType::Int64: { using T = std::int64_t; __VA_ARGS__; break; }          \
    case ::tapeflow::DType::Bool: { using T = bool; __VA_ARGS__; break; }                   \
  }
