// Reductions (sum / max / min / prod over any set of axes), arg-reductions and argsort (along one
// axis, as the arg-reductions; by rank counting and merging, see argsort_rank). The input's axes are
// split into kept and reduced ones (each coalesced); every output element is one reduction
// over the reduced index space, by one thread (short), a column of a 32 x 8 block (outputs
// adjacent in memory, as in a sum over the batch axis), one warp (medium) or one block
// (long). Few long reductions are split into chunks whose partials a second pass combines.
#include "common.cuh"

namespace tapeflow::kernels::cuda {
namespace {

using detail::i64;
using detail::Indexer;

// Floating sums accumulate in double (as the naive oracle does), integer ones wrap around; max,
// min and prod in T (an integer prod wraps around, as the naive oracle's).
template <class T>
using SumAcc = std::conditional_t<std::is_floating_point_v<T>, double, T>;

template <class T>
struct SumOp {
  using Acc = SumAcc<T>;
  __device__ Acc operator()(Acc a, Acc b) const { return wrap_add(a, b); }
};
// NaN propagates, as in the naive kernel (which folds with maximum / minimum).
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
template <class T>
struct ProdOp {
  using Acc = T;
  __device__ Acc operator()(Acc a, Acc b) const { return wrap_mul(a, b); }
};

// `outputs` reductions of `len` elements each. kept (over the kept axes, row-major linear
// index o) gives the input offset of reduction o's first element (operand 0) and the
// output's offset (operand 1); red gives the input offsets within one reduction.
struct Plan {
  Indexer<2> kept;
  Indexer<1> red;
  i64 outputs = 1, len = 1;
};

// Folds elements begin, begin + step, ... < end of the reduction starting at input offset base.
template <class Op, class T>
__device__ typename Op::Acc fold(const T* in, const Plan& p, i64 base, i64 begin, i64 step, i64 end,
                                 typename Op::Acc acc) {
  const Op op;
  for (i64 r = begin; r < end; r += step) {
    i64 off[1];
    p.red.offsets(r, off);
    acc = op(acc, static_cast<typename Op::Acc>(in[base + off[0]]));
  }
  return acc;
}

// One thread per output.
template <class Op, class T>
__global__ void reduce_thread(T* out, const T* in, Plan p, typename Op::Acc identity) {
  for (i64 o = detail::first_item(); o < p.outputs; o += detail::item_stride()) {
    i64 off[2];
    p.kept.offsets(o, off);
    out[off[1]] = static_cast<T>(fold<Op>(in, p, off[0], 0, 1, p.len, identity));
  }
}

// One warp per output.
template <class Op, class T>
__global__ void reduce_warp(T* out, const T* in, Plan p, typename Op::Acc identity) {
  const int lane = threadIdx.x % 32;
  const i64 warps = static_cast<i64>(blockDim.x / 32) * gridDim.x;
  for (i64 o = static_cast<i64>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; o < p.outputs; o += warps) {
    i64 off[2];
    p.kept.offsets(o, off);
    const auto acc = detail::warp_reduce(fold<Op>(in, p, off[0], lane, 32, p.len, identity), Op{});
    if (lane == 0) out[off[1]] = static_cast<T>(acc);
  }
}

// Blocks of 32 x kColumnRows threads: threadIdx.x picks one of 32 consecutive outputs (so a
// warp reads 32 adjacent elements), threadIdx.y and blockIdx.y split its reduction.
// gridDim.y == 1 writes the output, else partials[o * gridDim.y + blockIdx.y].
constexpr int kColumnRows = 8;
template <class Op, class T>
__global__ void reduce_columns(T* out, typename Op::Acc* partials, const T* in, Plan p,
                               typename Op::Acc identity) {
  using Acc = typename Op::Acc;
  __shared__ Acc scratch[kColumnRows][33];
  const Op op;
  const i64 tiles = (p.outputs + 31) / 32, chunks = gridDim.y;
  for (i64 tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const i64 o = tile * 32 + threadIdx.x;
    i64 off[2] = {0, 0};
    Acc acc = identity;
    if (o < p.outputs) {
      p.kept.offsets(o, off);
      acc = fold<Op>(in, p, off[0], static_cast<i64>(blockIdx.y) * kColumnRows + threadIdx.y, chunks * kColumnRows,
                     p.len, identity);
    }
    scratch[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && o < p.outputs) {
      for (int y = 1; y < kColumnRows; ++y) acc = op(acc, scratch[y][threadIdx.x]);
      if (chunks == 1) out[off[1]] = static_cast<T>(acc);
      else partials[o * chunks + blockIdx.y] = acc;
    }
    __syncthreads();  // scratch is reused by the next tile
  }
}

// One block per (output, chunk) of `chunks` equal chunks: chunks == 1 writes the output,
// else partials[o * chunks + c].
template <class Op, class T>
__global__ void reduce_block(T* out, typename Op::Acc* partials, const T* in, Plan p, i64 chunks,
                             typename Op::Acc identity) {
  using Acc = typename Op::Acc;
  __shared__ Acc scratch[32];
  const i64 chunk_len = (p.len + chunks - 1) / chunks;
  for (i64 w = blockIdx.x; w < p.outputs * chunks; w += gridDim.x) {
    const i64 o = w / chunks, c = w % chunks;
    const i64 begin = c * chunk_len, end = begin + chunk_len < p.len ? begin + chunk_len : p.len;
    i64 off[2];
    p.kept.offsets(o, off);
    Acc acc = fold<Op>(in, p, off[0], begin + threadIdx.x, blockDim.x, end, identity);
    acc = detail::block_reduce(acc, Op{}, identity, scratch);
    if (threadIdx.x == 0) {
      if (chunks == 1) out[off[1]] = static_cast<T>(acc);
      else partials[w] = acc;
    }
  }
}

// The second pass: one warp per output over its `chunks` partials, in chunk order.
template <class Op, class T>
__global__ void reduce_partials(T* out, const typename Op::Acc* partials, Plan p, i64 chunks,
                                typename Op::Acc identity) {
  using Acc = typename Op::Acc;
  const Op op;
  const int lane = threadIdx.x % 32;
  const i64 warps = static_cast<i64>(blockDim.x / 32) * gridDim.x;
  for (i64 o = static_cast<i64>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; o < p.outputs; o += warps) {
    Acc acc = identity;
    for (i64 c = lane; c < chunks; c += 32) acc = op(acc, partials[o * chunks + c]);
    acc = detail::warp_reduce(acc, op);
    if (lane == 0) {
      i64 off[2];
      p.kept.offsets(o, off);
      out[off[1]] = static_cast<T>(acc);
    }
  }
}

// Partials of a split reduction: cached device memory, handed back as soon as the kernels
// that use it are queued (the stream orders any later user after them).
template <class Acc>
class Partials {
 public:
  explicit Partials(i64 count) : device_(current_device()) {
    ptr_ = static_cast<Acc*>(allocate(device_, static_cast<std::size_t>(count) * sizeof(Acc), capacity_));
  }
  ~Partials() { deallocate(device_, ptr_, capacity_); }
  Partials(const Partials&) = delete;
  Partials& operator=(const Partials&) = delete;
  Acc* get() const { return ptr_; }

 private:
  int device_;
  std::size_t capacity_ = 0;
  Acc* ptr_ = nullptr;
};

// Enough blocks in flight to keep every SM of the device busy.
constexpr i64 kWantBlocks = 2048;

template <class Op, class T>
void launch_reduce(T* out, const T* in, const Plan& p, typename Op::Acc identity) {
  using Acc = typename Op::Acc;
  const cudaStream_t s = detail::current_stream();
  const bool outputs_adjacent = p.kept.rank > 0 && p.kept.strides[0][p.kept.rank - 1] == 1;
  const bool reduction_adjacent = p.red.rank > 0 && p.red.strides[0][p.red.rank - 1] == 1;
  if (p.len <= 16) {
    reduce_thread<Op, T><<<detail::grid_for(p.outputs), detail::kBlock, 0, s>>>(out, in, p, identity);
    TAPEFLOW_CUDA_LAUNCHED();
  } else if (outputs_adjacent && !reduction_adjacent) {
    const i64 tiles = (p.outputs + 31) / 32;
    const i64 chunks = std::clamp<i64>(kWantBlocks / tiles, 1, std::min<i64>((p.len + 255) / 256, 65535));
    const dim3 grid(static_cast<unsigned>(std::min(tiles, detail::kMaxBlocks)), static_cast<unsigned>(chunks));
    const dim3 block(32, kColumnRows);
    if (chunks == 1) {
      reduce_columns<Op, T><<<grid, block, 0, s>>>(out, nullptr, in, p, identity);
      TAPEFLOW_CUDA_LAUNCHED();
      return;
    }
    Partials<Acc> partials(p.outputs * chunks);
    reduce_columns<Op, T><<<grid, block, 0, s>>>(out, partials.get(), in, p, identity);
    TAPEFLOW_CUDA_LAUNCHED();
    reduce_partials<Op, T><<<detail::grid_for(p.outputs * 32), detail::kBlock, 0, s>>>(out, partials.get(), p,
                                                                                       chunks, identity);
    TAPEFLOW_CUDA_LAUNCHED();
  } else if (p.len <= 1024) {
    reduce_warp<Op, T><<<detail::grid_for(p.outputs * 32), detail::kBlock, 0, s>>>(out, in, p, identity);
    TAPEFLOW_CUDA_LAUNCHED();
  } else {
    // split long reductions when there are too few of them to fill the device
    const i64 chunks =
        p.outputs >= kWantBlocks ? 1 : std::clamp<i64>(kWantBlocks / p.outputs, 1, (p.len + 4095) / 4096);
    const auto grid = static_cast<unsigned>(std::min<i64>(p.outputs * chunks, detail::kMaxBlocks));
    if (chunks == 1) {
      reduce_block<Op, T><<<grid, detail::kBlock, 0, s>>>(out, nullptr, in, p, 1, identity);
      TAPEFLOW_CUDA_LAUNCHED();
      return;
    }
    Partials<Acc> partials(p.outputs * chunks);
    reduce_block<Op, T><<<grid, detail::kBlock, 0, s>>>(out, partials.get(), in, p, chunks, identity);
    TAPEFLOW_CUDA_LAUNCHED();
    reduce_partials<Op, T><<<detail::grid_for(p.outputs * 32), detail::kBlock, 0, s>>>(out, partials.get(), p,
                                                                                       chunks, identity);
    TAPEFLOW_CUDA_LAUNCHED();
  }
}

// ------------------------------------------------------------------ arg-reductions

// Is candidate (v, i) better than the current (best, bi)? NaN wins (the first NaN), then the
// larger (ArgMax) or smaller value, then the smaller index: the naive scan's answer. A strict
// total order, so any reduction tree agrees with the scan.
template <class T>
__device__ bool arg_better(bool is_max, T v, i64 i, T best, i64 bi) {
  const bool vn = v != v, bn = best != best;
  if (vn || bn) return vn && (!bn || i < bi);
  if (v == best) return i < bi;
  return is_max ? v > best : v < best;
}

// The best of elements begin, begin + step, ... < len of one row (element 0 is every
// thread's first candidate: it is a real one).
template <class T>
__device__ void arg_scan(const T* row, i64 row_step, i64 len, i64 begin, i64 step, bool is_max, T& best, i64& bi) {
  best = row[0];
  bi = 0;
  for (i64 i = begin; i < len; i += step) {
    const T v = row[i * row_step];
    if (arg_better(is_max, v, i, best, bi)) {
      best = v;
      bi = i;
    }
  }
}

template <class T>
__device__ void warp_arg(bool is_max, T& best, i64& bi) {
  for (int o = 16; o > 0; o /= 2) {
    const T v = __shfl_xor_sync(0xffffffffu, best, o);
    const i64 i = __shfl_xor_sync(0xffffffffu, bi, o);
    if (arg_better(is_max, v, i, best, bi)) {
      best = v;
      bi = i;
    }
  }
}

// One warp per row (rows of up to 1024 elements).
template <class T>
__global__ void arg_reduce_warp(std::int64_t* out, const T* in, Indexer<1> rows_ix, i64 rows, i64 len, i64 step,
                                bool is_max) {
  const int lane = threadIdx.x % 32;
  const i64 warps = static_cast<i64>(blockDim.x / 32) * gridDim.x;
  for (i64 r = static_cast<i64>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    i64 off[1];
    rows_ix.offsets(r, off);
    T best;
    i64 bi;
    arg_scan(in + off[0], step, len, lane, 32, is_max, best, bi);
    warp_arg(is_max, best, bi);
    if (lane == 0) out[r] = bi;
  }
}

// One block per row.
template <class T>
__global__ void arg_reduce_block(std::int64_t* out, const T* in, Indexer<1> rows_ix, i64 rows, i64 len, i64 step,
                                 bool is_max) {
  __shared__ T vals[32];
  __shared__ i64 idxs[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    i64 off[1];
    rows_ix.offsets(r, off);
    T best;
    i64 bi;
    arg_scan(in + off[0], step, len, threadIdx.x, blockDim.x, is_max, best, bi);
    warp_arg(is_max, best, bi);
    if (lane == 0) {
      vals[warp] = best;
      idxs[warp] = bi;
    }
    __syncthreads();
    if (warp == 0) {
      // lanes past the last warp repeat warp 0's candidate: a no-op in the order
      best = vals[lane < warps ? lane : 0];
      bi = idxs[lane < warps ? lane : 0];
      warp_arg(is_max, best, bi);
      if (lane == 0) out[r] = bi;
    }
    __syncthreads();  // vals and idxs are reused by the next row
  }
}

// ------------------------------------------------------------------ argsort

// The stable sorting permutation. Rows of up to kRankMax elements, and the first step of
// longer ones, rank by counting: the thread of element i counts, over its run [start, end)
// of the row (the whole row, or kRun elements), rank(i) = #{j : key j sorts before key i, or
// the two are equal and j < i} and writes i at slot start + rank(i). (key, index) is a strict
// total order, so the ranks are a permutation of the run: every slot is written once, with no
// atomics or shared memory. That costs a compare per element of the run, so longer rows then
// merge neighbouring sorted runs, doubling their width each pass (argsort_merge): O(len
// log^2 len) per row instead of O(len^2).
constexpr i64 kRankMax = 64;
constexpr i64 kRun = 32;

// Writes the slot's index to out[off[1] + slot * out_step] (the result) when scratch is null,
// else to scratch[r * len + slot] (a pass's contiguous [rows, len] buffer). The kernels take
// both as pointer arguments, as the CUDA emulator wants the memory a kernel touches.
__device__ inline void put_slot(std::int64_t* out, i64 out_step, std::int64_t* scratch, i64 r, i64 len, const i64* off,
                                i64 slot, std::int64_t index) {
  if (scratch != nullptr) scratch[r * len + slot] = index;
  else out[off[1] + slot * out_step] = index;
}

template <class T>
__global__ void argsort_rank(std::int64_t* out, i64 out_step, std::int64_t* scratch, const T* in, Indexer<2> rows_ix, i64 n, i64 len, i64 step, i64 run,
                             bool descending) {
  for (i64 e = detail::first_item(); e < n; e += detail::item_stride()) {
    const i64 r = e / len, i = e - r * len;
    i64 off[2];
    rows_ix.offsets(r, off);
    const T* row = in + off[0];
    const T key = row[i * step];
    const i64 start = i / run * run, end = start + run < len ? start + run : len;
    i64 rank = 0;
    for (i64 j = start; j < end; ++j) {
      const T other = row[j * step];
      rank += sorts_before(other, key, descending) || (j < i && !sorts_before(key, other, descending));
    }
    put_slot(out, out_step, scratch, r, len, off, start + rank, i);
  }
}

// One merge pass over src, whose runs of `width` are sorted: the runs [lo, mid) and [mid, hi)
// of each pair become one. An element of the left run moves past the right run's elements that
// sort before it, one of the right run past the left run's that do not sort after it (equal
// keys: the left run's, the earlier indices, first, so the merge is stable); both counts by
// binary search.
template <class T>
__global__ void argsort_merge(std::int64_t* out, i64 out_step, std::int64_t* scratch, const std::int64_t* src, const T* in, Indexer<2> rows_ix, i64 n, i64 len,
                              i64 step, i64 width, bool descending) {
  for (i64 e = detail::first_item(); e < n; e += detail::item_stride()) {
    const i64 r = e / len, j = e - r * len;
    i64 off[2];
    rows_ix.offsets(r, off);
    const T* row = in + off[0];
    const std::int64_t* s = src + r * len;
    const std::int64_t index = s[j];
    const T key = row[index * step];
    const i64 lo = j / (2 * width) * (2 * width);
    const i64 mid = lo + width < len ? lo + width : len, hi = lo + 2 * width < len ? lo + 2 * width : len;
    const bool left = j < mid;
    i64 a = left ? mid : lo, b = left ? hi : mid;  // the first slot of the other run not passed
    while (a < b) {
      const i64 m = a + (b - a) / 2;
      const T other = row[s[m] * step];
      const bool passed = left ? sorts_before(other, key, descending) : !sorts_before(key, other, descending);
      if (passed) a = m + 1;
      else b = m;
    }
    put_slot(out, out_step, scratch, r, len, off, left ? j + a - mid : j - mid + a, index);
  }
}

}  // namespace

template <class T>
void reduce(OpId op, T* out, const Layout& out_l, const T* in, const Layout& in_l) {
  // kept axes: input and output strides; reduced axes (stride 0 in out_l): input strides
  int kept_rank = 0, red_rank = 0;
  i64 kept_shape[kMaxRank] = {}, kept_in[kMaxRank] = {}, kept_out[kMaxRank] = {};
  i64 red_shape[kMaxRank] = {}, red_in[kMaxRank] = {};
  for (int d = 0; d < in_l.rank; ++d) {
    if (out_l.strides[d] == 0 && in_l.shape[d] != 1) {
      red_shape[red_rank] = in_l.shape[d];
      red_in[red_rank++] = in_l.strides[d];
    } else {
      kept_shape[kept_rank] = in_l.shape[d];
      kept_in[kept_rank] = in_l.strides[d];
      kept_out[kept_rank++] = out_l.strides[d];
    }
  }
  Plan p;
  const i64* const kept_strides[] = {kept_in, kept_out};
  const i64* const red_strides[] = {red_in};
  p.kept = detail::make_indexer<2>(kept_rank, kept_shape, kept_strides);
  p.red = detail::make_indexer<1>(red_rank, red_shape, red_strides);
  p.outputs = 1;
  for (int d = 0; d < kept_rank; ++d) p.outputs *= kept_shape[d];
  p.len = 1;
  for (int d = 0; d < red_rank; ++d) p.len *= red_shape[d];
  if (p.outputs == 0) return;
  if (p.len == 0) {  // as the naive kernel: 0 for sum, 1 for prod, -inf / +inf (lowest / max) for max / min
    const T v = op == OpId::Sum    ? T(0)
                : op == OpId::Prod ? T(1)
                : op == OpId::Max  ? lowest_or_neg_inf<T>()
                                   : max_or_inf<T>();
    Layout out_kept;
    out_kept.rank = kept_rank;
    std::copy(kept_shape, kept_shape + kept_rank, out_kept.shape);
    std::copy(kept_out, kept_out + kept_rank, out_kept.strides);
    fill<T>(out, out_kept, v);
    return;
  }
  switch (op) {
    case OpId::Sum: launch_reduce<SumOp<T>>(out, in, p, SumAcc<T>(0)); break;
    case OpId::Max: launch_reduce<MaxOp<T>>(out, in, p, lowest_or_neg_inf<T>()); break;
    case OpId::Min: launch_reduce<MinOp<T>>(out, in, p, max_or_inf<T>()); break;
    case OpId::Prod: launch_reduce<ProdOp<T>>(out, in, p, T(1)); break;
    default: throw CudaError(std::string("cuda reduce: not a reduction: ") + op_name(op), 0);
  }
}

template <class T>
void arg_reduce(OpId op, std::int64_t* out, const T* in, const Layout& in_l, int axis) {
  // rows: every index of the other axes, in row-major order (out is contiguous in it)
  int rank = 0;
  i64 shape[kMaxRank] = {}, strides[kMaxRank] = {};
  for (int d = 0; d < in_l.rank; ++d) {
    if (d == axis) continue;
    shape[rank] = in_l.shape[d];
    strides[rank++] = in_l.strides[d];
  }
  i64 rows = 1;
  for (int d = 0; d < rank; ++d) rows *= shape[d];
  const i64 len = in_l.shape[axis], step = in_l.strides[axis];
  if (rows == 0 || len == 0) return;
  const i64* const rows_strides[] = {strides};
  const Indexer<1> rows_ix = detail::make_indexer<1>(rank, shape, rows_strides);
  const cudaStream_t s = detail::current_stream();
  const bool is_max = op == OpId::ArgMax;
  if (len <= 1024) {
    arg_reduce_warp<T><<<detail::grid_for(rows * 32), detail::kBlock, 0, s>>>(out, in, rows_ix, rows, len, step,
                                                                              is_max);
  } else {
    arg_reduce_block<T><<<static_cast<unsigned>(std::min(rows, detail::kMaxBlocks)), detail::kBlock, 0, s>>>(
        out, in, rows_ix, rows, len, step, is_max);
  }
  TAPEFLOW_CUDA_LAUNCHED();
}

template <class T>
void argsort(std::int64_t* out, const T* in, const Layout& in_l, int axis, bool descending) {
  // rows: every index of the other axes, with the input's strides and out's (contiguous) ones
  const Layout out_l = contiguous_layout(in_l.rank, in_l.shape);
  int rank = 0;
  i64 shape[kMaxRank] = {}, in_strides[kMaxRank] = {}, out_strides[kMaxRank] = {};
  for (int d = 0; d < in_l.rank; ++d) {
    if (d == axis) continue;
    shape[rank] = in_l.shape[d];
    in_strides[rank] = in_l.strides[d];
    out_strides[rank++] = out_l.strides[d];
  }
  const i64 n = in_l.size(), len = in_l.shape[axis];
  if (n == 0) return;
  const i64* const rows_strides[] = {in_strides, out_strides};
  const Indexer<2> rows_ix = detail::make_indexer<2>(rank, shape, rows_strides);
  const cudaStream_t st = detail::current_stream();
  const i64 step = in_l.strides[axis], out_step = out_l.strides[axis];
  if (len <= kRankMax) {
    argsort_rank<T><<<detail::grid_for(n), detail::kBlock, 0, st>>>(out, out_step, nullptr, in, rows_ix, n,
                                                                     len, step, len, descending);
    TAPEFLOW_CUDA_LAUNCHED();
    return;
  }
  // sorted runs of kRun in one buffer, then passes from one buffer to the other; the last
  // pass writes the result
  Partials<std::int64_t> a(n), b(n);
  std::int64_t* src = a.get();
  std::int64_t* dst = b.get();
  argsort_rank<T><<<detail::grid_for(n), detail::kBlock, 0, st>>>(out, out_step, src, in, rows_ix, n, len,
                                                                   step, kRun, descending);
  TAPEFLOW_CUDA_LAUNCHED();
  for (i64 width = kRun; width < len; width *= 2) {
    const bool last = 2 * width >= len;
    argsort_merge<T><<<detail::grid_for(n), detail::kBlock, 0, st>>>(
        out, out_step, last ? nullptr : dst, src, in, rows_ix, n, len, step, width, descending);
    TAPEFLOW_CUDA_LAUNCHED();
    std::swap(src, dst);
  }
}

#define TAPEFLOW_CUDA_REDUCE(T)                                               \
  template void reduce<T>(OpId, T*, const Layout&, const T*, const Layout&); \
  template void arg_reduce<T>(OpId, std::int64_t*, const T*, const Layout&, int); \
  template void argsort<T>(std::int64_t*, const T*, const Layout&, int, bool);
TAPEFLOW_CUDA_REDUCE(std::int32_t)
TAPEFLOW_CUDA_REDUCE(std::int64_t)
TAPEFLOW_CUDA_REDUCE(float)
TAPEFLOW_CUDA_REDUCE(double)
#undef TAPEFLOW_CUDA_REDUCE

}  // namespace tapeflow::kernels::cuda
