// Reductions (sum / max / min over any set of axes), arg-reductions and softmax. The
// input's axes are split into kept and reduced ones; every output element is one reduction
// over the reduced index space, by one thread (short), one warp (medium) or one block
// (long), or, for a few very long ones, by many blocks writing partials that a second pass
// combines.
#include <limits>

#include "common.cuh"

namespace tapeflow::kernels::cuda {
namespace {

using detail::i64;
using detail::offset_at;

// Floating sums accumulate in double (as the naive oracle does); max and min in T.
template <class T>
using SumAcc = std::conditional_t<std::is_floating_point_v<T>, double, T>;

template <class T>
struct SumOp {
  using Acc = SumAcc<T>;
  __device__ Acc operator()(Acc a, Acc b) const { return a + b; }
};
template <class T>
struct MaxOp {
  using Acc = T;
  __device__ Acc operator()(Acc a, Acc b) const { return BinaryFn<OpId::Maximum>{}(a, b); }
};
template <class T>
struct MinOp {
  using Acc = T;
  __device__ Acc operator()(Acc a, Acc b) const { return BinaryFn<OpId::Minimum>{}(a, b); }
};

// One reduction per output: `outputs` of them, each over `len` elements. kept_l addresses
// the first element of output o's reduction (row-major linear index o over the kept axes),
// red_l walks one reduction. out_l maps o to the output's offset.
struct Plan {
  Layout kept, red, out;
  i64 outputs = 1, len = 1;
};

// Each thread folds its share of reduction `o`; threads [0, lanes) of a group share one o.
template <class Op, class T>
__device__ typename Op::Acc fold(const T* in, const Plan& p, i64 o, i64 begin, i64 step, i64 end,
                                 typename Op::Acc identity) {
  const Op op;
  typename Op::Acc acc = identity;
  const i64 base = offset_at(p.kept, o);
  for (i64 r = begin; r < end; r += step) acc = op(acc, static_cast<typename Op::Acc>(in[base + offset_at(p.red, r)]));
  return acc;
}

// One thread per output.
template <class Op, class T>
__global__ void reduce_thread(T* out, const T* in, Plan p, typename Op::Acc identity) {
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  for (i64 o = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; o < p.outputs; o += stride) {
    out[offset_at(p.out, o)] = static_cast<T>(fold<Op>(in, p, o, 0, 1, p.len, identity));
  }
}

// One warp per output.
template <class Op, class T>
__global__ void reduce_warp(T* out, const T* in, Plan p, typename Op::Acc identity) {
  const Op op;
  const int lane = threadIdx.x % 32;
  const i64 warps_per_grid = static_cast<i64>(blockDim.x / 32) * gridDim.x;
  for (i64 o = static_cast<i64>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; o < p.outputs;
       o += warps_per_grid) {
    auto acc = fold<Op>(in, p, o, lane, 32, p.len, identity);
    for (int s = 16; s > 0; s /= 2) acc = op(acc, __shfl_down_sync(0xffffffffu, acc, s));
    if (lane == 0) out[offset_at(p.out, o)] = static_cast<T>(acc);
  }
}

// One block per (output, chunk): chunks == 1 writes the output, else partials[o * chunks + c].
template <class Op, class T>
__global__ void reduce_block(T* out, typename Op::Acc* partials, const T* in, Plan p, i64 chunks,
                             typename Op::Acc identity) {
  using Acc = typename Op::Acc;
  __shared__ Acc scratch[32];
  const i64 chunk_len = (p.len + chunks - 1) / chunks;
  for (i64 w = blockIdx.x; w < p.outputs * chunks; w += gridDim.x) {
    const i64 o = w / chunks, c = w % chunks;
    const i64 begin = c * chunk_len, end = begin + chunk_len < p.len ? begin + chunk_len : p.len;
    Acc acc = fold<Op>(in, p, o, begin + threadIdx.x, blockDim.x, end, identity);
    acc = detail::block_reduce(acc, Op{}, identity, scratch);
    if (threadIdx.x == 0) {
      if (chunks == 1) out[offset_at(p.out, o)] = static_cast<T>(acc);
      else partials[w] = acc;
    }
  }
}

// The second pass: one block per output over its `chunks` partials.
template <class Op, class T>
__global__ void reduce_partials(T* out, const typename Op::Acc* partials, Plan p, i64 chunks,
                                typename Op::Acc identity) {
  using Acc = typename Op::Acc;
  __shared__ Acc scratch[32];
  const Op op;
  for (i64 o = blockIdx.x; o < p.outputs; o += gridDim.x) {
    Acc acc = identity;
    for (i64 c = threadIdx.x; c < chunks; c += blockDim.x) acc = op(acc, partials[o * chunks + c]);
    acc = detail::block_reduce(acc, op, identity, scratch);
    if (threadIdx.x == 0) out[offset_at(p.out, o)] = static_cast<T>(acc);
  }
}

template <class Op, class T>
void launch_reduce(T* out, const T* in, const Plan& p, typename Op::Acc identity) {
  using Acc = typename Op::Acc;
  const cudaStream_t s = detail::current_stream();
  if (p.outputs == 0) return;
  if (p.len <= 16) {
    reduce_thread<Op, T><<<detail::grid_for(p.outputs), detail::kBlock, 0, s>>>(out, in, p, identity);
  } else if (p.len <= 1024) {
    reduce_warp<Op, T><<<detail::grid_for(p.outputs * 32), detail::kBlock, 0, s>>>(out, in, p, identity);
  } else {
    // Enough blocks in flight to cover the device: split long reductions when outputs are few.
    const i64 want_blocks = 1024;
    i64 chunks = 1;
    if (p.outputs < want_blocks) chunks = std::min<i64>(want_blocks / p.outputs, (p.len + 4095) / 4096);
    chunks = std::max<i64>(chunks, 1);
    const auto grid = static_cast<unsigned>(std::min<i64>(p.outputs * chunks, detail::kMaxBlocks));
    if (chunks == 1) {
      reduce_block<Op, T><<<grid, detail::kBlock, 0, s>>>(out, nullptr, in, p, 1, identity);
      TAPEFLOW_CUDA_LAUNCHED();
      return;
    }
    const int device = current_device();
    std::size_t capacity = 0;
    const std::size_t bytes = static_cast<std::size_t>(p.outputs * chunks) * sizeof(Acc);
    auto* partials = static_cast<Acc*>(allocate(device, bytes, capacity));
    reduce_block<Op, T><<<grid, detail::kBlock, 0, s>>>(out, partials, in, p, chunks, identity);
    const cudaError_t launched = cudaGetLastError();
    if (launched == cudaSuccess) {
      reduce_partials<Op, T><<<static_cast<unsigned>(std::min<i64>(p.outputs, detail::kMaxBlocks)), detail::kBlock, 0,
                               s>>>(out, partials, p, chunks, identity);
    }
    // Back to the cache at once: the stream orders any later use after these kernels.
    deallocate(device, partials, capacity);
    TAPEFLOW_CUDA_CHECK(launched);
  }
  TAPEFLOW_CUDA_LAUNCHED();
}

// ------------------------------------------------------------------ arg-reductions

// Is candidate (v, i) better than the current (best, bi)? NaN wins (the first NaN), then the
// larger (ArgMax) or smaller value, then the smaller index: the naive scan's answer.
template <class T>
__device__ bool arg_better(bool is_max, T v, i64 i, T best, i64 bi) {
  const bool vn = v != v, bn = best != best;
  if (vn || bn) return vn && (!bn || i < bi);
  if (v == best) return i < bi;
  return is_max ? v > best : v < best;
}

// One block per row: threads scan interleaved elements, then combine (value, index) pairs.
template <class T>
__global__ void arg_reduce_block(std::int64_t* out, const T* in, Layout rows_l, i64 rows, i64 len, i64 step,
                                 bool is_max) {
  __shared__ T vals[detail::kBlock];
  __shared__ i64 idxs[detail::kBlock];
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = in + offset_at(rows_l, r);
    T best = row[0];  // element 0 is every thread's first candidate: it is a real one
    i64 bi = 0;
    for (i64 i = threadIdx.x; i < len; i += blockDim.x) {
      const T v = row[i * step];
      if (arg_better(is_max, v, i, best, bi)) {
        best = v;
        bi = i;
      }
    }
    vals[threadIdx.x] = best;
    idxs[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
      if (threadIdx.x < s && arg_better(is_max, vals[threadIdx.x + s], idxs[threadIdx.x + s], vals[threadIdx.x],
                                        idxs[threadIdx.x])) {
        vals[threadIdx.x] = vals[threadIdx.x + s];
        idxs[threadIdx.x] = idxs[threadIdx.x + s];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) out[r] = idxs[0];
    __syncthreads();
  }
}

// ------------------------------------------------------------------ softmax

template <class T>
struct MaxT {
  __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};
template <class T>
struct AddT {
  __device__ T operator()(T a, T b) const { return a + b; }
};

// One block per row; in_rows / out_rows address each row's first element; the row is walked
// with in_step / out_step. Computed in T's precision with the max subtracted first.
template <class T>
__global__ void softmax_block(bool log, T* out, const T* in, Layout in_rows, Layout out_rows, i64 rows, i64 len,
                              i64 in_step, i64 out_step) {
  __shared__ T scratch[32];
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* x = in + offset_at(in_rows, r);
    T* y = out + offset_at(out_rows, r);
    T m = x[0];
    for (i64 k = threadIdx.x; k < len; k += blockDim.x) m = MaxT<T>{}(m, x[k * in_step]);
    m = detail::block_reduce(m, MaxT<T>{}, m, scratch);
    T total = 0;
    for (i64 k = threadIdx.x; k < len; k += blockDim.x) total += exp(x[k * in_step] - m);
    total = detail::block_reduce(total, AddT<T>{}, T(0), scratch);
    const T log_total = ::log(total);
    for (i64 k = threadIdx.x; k < len; k += blockDim.x) {
      const T z = x[k * in_step] - m;
      y[k * out_step] = log ? z - log_total : exp(z) / total;
    }
  }
}

}  // namespace

template <class T>
void reduce(OpId op, T* out, const Layout& out_l, const T* in, const Layout& in_l) {
  Plan p;
  p.kept.rank = p.red.rank = p.out.rank = 0;
  for (int d = 0; d < in_l.rank; ++d) {
    const bool reduced = out_l.strides[d] == 0 && in_l.shape[d] != 1;
    Layout& l = reduced ? p.red : p.kept;
    l.shape[l.rank] = in_l.shape[d];
    l.strides[l.rank] = in_l.strides[d];
    ++l.rank;
    if (!reduced) {
      p.out.shape[p.out.rank] = in_l.shape[d];
      p.out.strides[p.out.rank] = out_l.strides[d];
      ++p.out.rank;
    }
  }
  p.outputs = p.kept.size();
  p.len = p.red.size();
  if (p.outputs == 0) return;
  if (p.len == 0) {  // as the naive kernel: 0 for sum, -inf / +inf (lowest / max) otherwise
    const T v = op == OpId::Sum ? T(0) : op == OpId::Max ? lowest_or_neg_inf<T>() : max_or_inf<T>();
    fill<T>(out, p.out, v);
    return;
  }
  switch (op) {
    case OpId::Sum: launch_reduce<SumOp<T>>(out, in, p, SumAcc<T>(0)); break;
    case OpId::Max: launch_reduce<MaxOp<T>>(out, in, p, lowest_or_neg_inf<T>()); break;
    case OpId::Min: launch_reduce<MinOp<T>>(out, in, p, max_or_inf<T>()); break;
    default: throw CudaError(std::string("cuda reduce: not a reduction: ") + op_name(op), 0);
  }
}

template <class T>
void arg_reduce(OpId op, std::int64_t* out, const T* in, const Layout& in_l, int axis) {
  Layout rows_l;
  rows_l.rank = 0;
  for (int d = 0; d < in_l.rank; ++d) {
    if (d == axis) continue;
    rows_l.shape[rows_l.rank] = in_l.shape[d];
    rows_l.strides[rows_l.rank] = in_l.strides[d];
    ++rows_l.rank;
  }
  const i64 rows = rows_l.size(), len = in_l.shape[axis];
  if (rows == 0 || len == 0) return;
  arg_reduce_block<T><<<static_cast<unsigned>(std::min<i64>(rows, detail::kMaxBlocks)), detail::kBlock, 0,
                        detail::current_stream()>>>(out, in, rows_l, rows, len, in_l.strides[axis],
                                                    op == OpId::ArgMax);
  TAPEFLOW_CUDA_LAUNCHED();
}

template <class T>
void softmax(bool log, T* out, const T* in, const Layout& in_l, int axis) {
  // rows: every index of the other axes, in the input's layout and in the contiguous output
  Layout in_rows, out_rows;
  in_rows.rank = out_rows.rank = 0;
  i64 out_stride = 1, out_step = 1;
  i64 out_strides[kMaxRank];
  for (int d = in_l.rank - 1; d >= 0; --d) {
    out_strides[d] = out_stride;
    if (d == axis) out_step = out_stride;
    out_stride *= in_l.shape[d];
  }
  for (int d = 0; d < in_l.rank; ++d) {
    if (d == axis) continue;
    in_rows.shape[in_rows.rank] = out_rows.shape[out_rows.rank] = in_l.shape[d];
    in_rows.strides[in_rows.rank++] = in_l.strides[d];
    out_rows.strides[out_rows.rank++] = out_strides[d];
  }
  const i64 rows = in_rows.size(), len = in_l.shape[axis];
  if (rows == 0 || len == 0) return;
  softmax_block<T><<<static_cast<unsigned>(std::min<i64>(rows, detail::kMaxBlocks)), detail::kBlock, 0,
                     detail::current_stream()>>>(log, out, in, in_rows, out_rows, rows, len, in_l.strides[axis],
                                                 out_step);
  TAPEFLOW_CUDA_LAUNCHED();
}

#define TAPEFLOW_CUDA_REDUCE(T)                                                    \
  template void reduce<T>(OpId, T*, const Layout&, const T*, const Layout&);      \
  template void arg_reduce<T>(OpId, std::int64_t*, const T*, const Layout&, int);
TAPEFLOW_CUDA_REDUCE(std::int32_t)
TAPEFLOW_CUDA_REDUCE(std::int64_t)
TAPEFLOW_CUDA_REDUCE(float)
TAPEFLOW_CUDA_REDUCE(double)
#undef TAPEFLOW_CUDA_REDUCE
template void softmax<float>(bool, float*, const float*, const Layout&, int);
template void softmax<double>(bool, double*, const double*, const Layout&, int);

}  // namespace tapeflow::kernels::cuda
