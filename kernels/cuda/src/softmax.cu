// softmax and log_softmax along one axis: a warp per row for rows of up to 1024 elements,
// else a block per row; three passes over the row (max, sum of exp, write). exp runs in T;
// the sum of float32 exps accumulates in double.
#include "common.cuh"

namespace tapeflow::kernels::cuda {
namespace {

using detail::i64;
using detail::Indexer;

template <class T>
using SumAcc = std::conditional_t<std::is_same_v<T, float>, double, T>;

// NaN handling does not matter here: one NaN in a row makes its sum, and so every output, NaN.
struct MaxFn {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return a > b ? a : b;
  }
};
struct AddFn {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};

// The row's rows_ix offsets: operand 0 in the input, 1 in the contiguous output.
template <class T>
struct Row {
  const T* x;
  T* y;
  i64 len, in_step, out_step;
};

// Reduces across the threads that share a row: a warp (kWarp) or the whole block.
template <bool kWarp, class T, class F>
__device__ T row_reduce(T v, F f, T identity, T* scratch) {
  if constexpr (kWarp) {
    return detail::warp_reduce(v, f);
  } else {
    return detail::block_reduce(v, f, identity, scratch);
  }
}

// One row by the `threads` threads that share it (thread `t` of them).
template <bool kWarp, class T>
__device__ void softmax_row(bool log, const Row<T>& r, i64 t, i64 threads, SumAcc<T>* sum_scratch, T* max_scratch) {
  using Acc = SumAcc<T>;
  T m = r.x[0];
  for (i64 k = t; k < r.len; k += threads) m = MaxFn{}(m, r.x[k * r.in_step]);
  m = row_reduce<kWarp>(m, MaxFn{}, m, max_scratch);
  Acc total = 0;
  for (i64 k = t; k < r.len; k += threads) total += static_cast<Acc>(exp(r.x[k * r.in_step] - m));
  total = row_reduce<kWarp>(total, AddFn{}, Acc(0), sum_scratch);
  if (log) {
    const T log_total = static_cast<T>(::log(total));
    for (i64 k = t; k < r.len; k += threads) r.y[k * r.out_step] = (r.x[k * r.in_step] - m) - log_total;
  } else {
    const T inv_total = static_cast<T>(Acc(1) / total);
    for (i64 k = t; k < r.len; k += threads) r.y[k * r.out_step] = exp(r.x[k * r.in_step] - m) * inv_total;
  }
}

template <class T>
__global__ void softmax_warp(bool log, T* out, const T* in, Indexer<2> rows_ix, i64 rows, i64 len, i64 in_step,
                             i64 out_step) {
  const i64 warps = static_cast<i64>(blockDim.x / 32) * gridDim.x;
  for (i64 r = static_cast<i64>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    i64 off[2];
    rows_ix.offsets(r, off);
    softmax_row<true>(log, Row<T>{in + off[0], out + off[1], len, in_step, out_step}, threadIdx.x % 32, 32,
                      static_cast<SumAcc<T>*>(nullptr), static_cast<T*>(nullptr));
  }
}

template <class T>
__global__ void softmax_block(bool log, T* out, const T* in, Indexer<2> rows_ix, i64 rows, i64 len, i64 in_step,
                              i64 out_step) {
  __shared__ SumAcc<T> sum_scratch[32];
  __shared__ T max_scratch[32];
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    i64 off[2];
    rows_ix.offsets(r, off);
    softmax_row<false>(log, Row<T>{in + off[0], out + off[1], len, in_step, out_step}, threadIdx.x, blockDim.x,
                       sum_scratch, max_scratch);
  }
}

}  // namespace

template <class T>
void softmax(bool log, T* out, const T* in, const Layout& in_l, int axis) {
  // rows: every index of the other axes, with the input's strides and the contiguous output's
  int rank = 0;
  i64 shape[kMaxRank] = {}, in_strides[kMaxRank] = {}, out_strides[kMaxRank] = {};
  i64 out_stride = 1, out_step = 1;
  for (int d = in_l.rank - 1; d >= 0; --d) {
    if (d == axis) {
      out_step = out_stride;
    } else {
      shape[rank] = in_l.shape[d];
      in_strides[rank] = in_l.strides[d];
      out_strides[rank++] = out_stride;
    }
    out_stride *= in_l.shape[d];
  }
  std::reverse(shape, shape + rank);  // collected innermost first
  std::reverse(in_strides, in_strides + rank);
  std::reverse(out_strides, out_strides + rank);
  i64 rows = 1;
  for (int d = 0; d < rank; ++d) rows *= shape[d];
  const i64 len = in_l.shape[axis], in_step = in_l.strides[axis];
  if (rows == 0 || len == 0) return;
  const i64* const strides[] = {in_strides, out_strides};
  const Indexer<2> rows_ix = detail::make_indexer<2>(rank, shape, strides);
  const cudaStream_t s = detail::current_stream();
  if (len <= 1024) {
    softmax_warp<T><<<detail::grid_for(rows * 32), detail::kBlock, 0, s>>>(log, out, in, rows_ix, rows, len, in_step,
                                                                           out_step);
  } else {
    softmax_block<T><<<static_cast<unsigned>(std::min(rows, detail::kMaxBlocks)), detail::kBlock, 0, s>>>(
        log, out, in, rows_ix, rows, len, in_step, out_step);
  }
  TAPEFLOW_CUDA_LAUNCHED();
}

template void softmax<float>(bool, float*, const float*, const Layout&, int);
template void softmax<double>(bool, double*, const double*, const Layout&, int);

}  // namespace tapeflow::kernels::cuda
