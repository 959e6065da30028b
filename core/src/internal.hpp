#pragma once
// Private helpers of the core's front-ends: layouts for the kernels, dtype dispatch,
// recording to the observer.
#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include "tapeflow/kernels/cpu.hpp"
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

// A new tensor sharing t's storage.
Tensor make_view(const Tensor& t, Shape shape, Shape strides, std::int64_t offset);

// Records op on the calling thread's tape, if any. The lists become vectors, and attrs are
// built, only when one listens (no allocation per op otherwise).
template <class Inputs, class MakeAttrs>
inline void record(OpId op, const Inputs& inputs, std::initializer_list<Tensor> outputs, MakeAttrs&& make_attrs) {
  if (OpObserver* o = current_observer()) {
    o->record(op, std::vector<Tensor>(inputs.begin(), inputs.end()), std::vector<Tensor>(outputs), make_attrs());
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
void check_same_device(const Tensor& a, const Tensor& b, const char* op);

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
