#pragma once
/// The hook between the core and a tape: every op front-end tells the current thread's
/// observer what it did. With no tape active this is one pointer test per op.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tapeflow/op_id.hpp"
#include "tapeflow/tensor.hpp"

namespace tapeflow {

/// The parameters an op was called with; each op uses the fields it needs.
struct OpAttrs {
  std::vector<std::int64_t> axes;    ///< reduce axes, permutation, concat/gather/argsort axis ([axis]);
                                     ///< windows (im2col, col2im, max_pool_*): [kh, kw, stride,
                                     ///< padding (0 valid, 1 same)], and dilation (im2col, col2im)
  Shape shape;                       ///< input shape (reshape, broadcast_to), full shape (slice_scatter),
                                     ///< image shape [b, h, w, c] (im2col, col2im, max_pool_*)
  std::vector<std::int64_t> starts;  ///< slice: start per axis
  std::vector<std::int64_t> steps;   ///< slice: step per axis
  double p0 = 0, p1 = 0;             ///< scalar parameters (pow_scalar, clip, im2col's fill,
                                     ///< argsort: 1 descending, 0 ascending)
  bool keepdims = false;
  DType dtype = DType::Float32;      ///< cast: the source dtype
};

/// A read-only view of an op's input or output tensors (C++17 has no std::span); valid for
/// the duration of OpObserver::record only.
class TensorList {
 public:
  TensorList(const Tensor* data, std::size_t size) : data_(data), size_(size) {}
  TensorList(const std::vector<Tensor>& v) : data_(v.data()), size_(v.size()) {}
  const Tensor* begin() const { return data_; }
  const Tensor* end() const { return data_ + size_; }
  const Tensor& operator[](std::size_t i) const { return data_[i]; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  const Tensor* data_;
  std::size_t size_;
};

/// Receives every op a front-end performs on this thread. The lists are views (no vector is
/// built per op): copy what must outlive the call.
class OpObserver {
 public:
  virtual ~OpObserver() = default;
  virtual void record(OpId op, TensorList inputs, TensorList outputs, const OpAttrs& attrs) = 0;
  /// Called before an in-place write into `target` (assign, add_, mul_, ...; `op` names it),
  /// which is never recorded. An observer may refuse the write by throwing.
  virtual void before_write(const Tensor& target, const char* op) {
    (void)target;
    (void)op;
  }
};

/// The observer of the calling thread (nullptr when none). Tapes install themselves here.
OpObserver* current_observer();
/// Installs an observer for the calling thread; returns the previous one.
OpObserver* set_current_observer(OpObserver* observer);
/// How many NoRecording scopes are open on the calling thread (a tape remembers the depth it
/// was created at, and records only at that depth or less).
int no_recording_depth();

/// While alive, no tape that exists when it starts sees the calling thread's ops: for values
/// that are constants to every tape (an optimizer's update temporaries, a layer's moving
/// statistics). A tape created inside records, as one created inside TensorFlow's
/// tape.stop_recording() does.
class NoRecording {
 public:
  NoRecording();
  ~NoRecording();
  NoRecording(const NoRecording&) = delete;
  NoRecording& operator=(const NoRecording&) = delete;

 private:
  OpObserver* saved_;
};

}  // namespace tapeflow
