// The naive kernels: the oracle of the tests and the "naive" side of the benchmarks.
// Every kernel is one odometer over the output's (or the input's) index space that
// recomputes each element's offset from its multi-index. Never optimised: keep it obviously
// correct.
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "tapeflow/kernels/naive.hpp"
// functors.hpp's CompareFn<LogicalNot> leaves its second parameter unused (reported upstream).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "tapeflow/kernels/functors.hpp"
#include "tapeflow/kernels/visit.hpp"
#pragma GCC diagnostic pop

namespace tapeflow::kernels::naive {
namespace {

using i64 = std::int64_t;

// Calls f(idx) for every multi-index idx of `shape` in row-major order (once for rank 0,
// never when an axis has length 0).
template <class F>
void for_each_index(int rank, const i64* shape, F&& f) {
  i64 n = 1;
  for (int d = 0; d < rank; ++d) n *= shape[d];
  i64 idx[kMaxRank] = {};
  for (i64 flat = 0; flat < n; ++flat) {
    f(static_cast<const i64*>(idx));
    for (int d = rank - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

i64 offset_of(const Layout& l, const i64* idx) {
  i64 off = 0;
  for (int d = 0; d < l.rank; ++d) off += idx[d] * l.strides[d];
  return off;
}

template <class T>
bool is_nan(T x) {
  return x != x;
}

// Sum accumulates floating point in double: the oracle should be more exact than the
// kernels it checks. Integer sums and products wrap around (wrap_add, wrap_mul), as NumPy's.
template <class T>
using SumAcc = std::conditional_t<std::is_floating_point_v<T>, double, T>;



}  // namespace

template <class T>
void unary(OpId op, T* out, const Layout& out_l, const T* in, const Layout& in_l, double p0, double p1) {
  visit_op<OpKind::Unary>(op, [&](auto tag) {
    const UnaryFn<decltype(tag)::value> f;
    for_each_index(out_l.rank, out_l.shape, [&](const i64* idx) {
      out[offset_of(out_l, idx)] = f(in[offset_of(in_l, idx)], p0, p1);
    });
  });
}

template <class T>
void binary(OpId op, T* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b,
            const Layout& b_l) {
  visit_op<OpKind::Binary>(op, [&](auto tag) {
    const BinaryFn<decltype(tag)::value> f;
    for_each_index(out_l.rank, out_l.shape, [&](const i64* idx) {
      out[offset_of(out_l, idx)] = f(a[offset_of(a_l, idx)], b[offset_of(b_l, idx)]);
    });
  });
}

template <class T>
void compare(OpId op, bool* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b,
             const Layout& b_l) {
  visit_op<OpKind::Compare, OpKind::Logical>(op, [&](auto tag) {
    const CompareFn<decltype(tag)::value> f;
    for_each_index(out_l.rank, out_l.shape, [&](const i64* idx) {
      out[offset_of(out_l, idx)] = f(a[offset_of(a_l, idx)], b[offset_of(b_l, idx)]);
    });
  });
}

template <class T>
void where(T* out, const Layout& out_l, const bool* cond, const Layout& cond_l, const T* a,
           const Layout& a_l, const T* b, const Layout& b_l) {
  for_each_index(out_l.rank, out_l.shape, [&](const i64* idx) {
    out[offset_of(out_l, idx)] =
        cond[offset_of(cond_l, idx)] ? a[offset_of(a_l, idx)] : b[offset_of(b_l, idx)];
  });
}

template <class TO, class TI>
void copy(TO* out, const Layout& out_l, const TI* in, const Layout& in_l) {
  for_each_index(out_l.rank, out_l.shape, [&](const i64* idx) {
    out[offset_of(out_l, idx)] = convert<TO>(in[offset_of(in_l, idx)]);
  });
}

template <class T>
void fill(T* out, const Layout& out_l, T value) {
  for_each_index(out_l.rank, out_l.shape, [&](const i64* idx) { out[offset_of(out_l, idx)] = value; });
}

template <class T>
void reduce(OpId op, T* out, const Layout& out_l, const T* in, const Layout& in_l) {
  // kept: the output's index space (reduced axes -> 1); red: the reduced axes (kept -> 1).
  // The input index is their sum, as each is 0 on the other's axes.
  const int rank = in_l.rank;
  i64 kept[kMaxRank], red[kMaxRank];
  for (int d = 0; d < rank; ++d) {
    const bool reduced = out_l.strides[d] == 0;
    kept[d] = reduced ? 1 : in_l.shape[d];
    red[d] = reduced ? in_l.shape[d] : 1;
  }
  for_each_index(rank, kept, [&](const i64* ki) {
    SumAcc<T> sum = 0;
    T ext = op == OpId::Prod ? T(1) : op == OpId::Max ? lowest_or_neg_inf<T>() : max_or_inf<T>();
    for_each_index(rank, red, [&](const i64* ri) {
      i64 idx[kMaxRank];
      for (int d = 0; d < rank; ++d) idx[d] = ki[d] + ri[d];
      const T x = in[offset_of(in_l, idx)];
      if (op == OpId::Sum) sum = wrap_add(sum, SumAcc<T>(x));
      else if (op == OpId::Prod) ext = wrap_mul(ext, x);
      else if (op == OpId::Max) ext = BinaryFn<OpId::Maximum>{}(ext, x);
      else ext = BinaryFn<OpId::Minimum>{}(ext, x);
    });
    out[offset_of(out_l, ki)] = op == OpId::Sum ? static_cast<T>(sum) : ext;
  });
}

template <class T>
void arg_reduce(OpId op, std::int64_t* out, const T* in, const Layout& in_l, int axis) {
  i64 rows[kMaxRank];
  for (int d = 0; d < in_l.rank; ++d) rows[d] = d == axis ? 1 : in_l.shape[d];
  const i64 len = in_l.shape[axis], stride = in_l.strides[axis];
  i64 next = 0;  // out is contiguous in the row-major order of the odometer
  for_each_index(in_l.rank, rows, [&](const i64* idx) {
    const T* row = in + offset_of(in_l, idx);
    T best = row[0];
    i64 best_i = 0;
    for (i64 i = 1; i < len; ++i) {
      const T x = row[i * stride];
      if (is_nan(best)) break;
      const bool better = op == OpId::ArgMax ? x > best : x < best;
      if (better || is_nan(x)) {
        best = x;
        best_i = i;
      }
    }
    out[next++] = best_i;
  });
}

// Insertion sort of each row's indices: moving an index left only past elements it sorts
// strictly before keeps equal keys in index order (stable).
template <class T>
void argsort(std::int64_t* out, const T* in, const Layout& in_l, int axis, bool descending) {
  i64 rows[kMaxRank];
  for (int d = 0; d < in_l.rank; ++d) rows[d] = d == axis ? 1 : in_l.shape[d];
  const Layout out_l = contiguous_layout(in_l.rank, in_l.shape);
  const i64 len = in_l.shape[axis], stride = in_l.strides[axis], out_stride = out_l.strides[axis];
  for_each_index(in_l.rank, rows, [&](const i64* idx) {
    const T* row = in + offset_of(in_l, idx);
    i64* y = out + offset_of(out_l, idx);
    for (i64 k = 0; k < len; ++k) {
      i64 j = k;
      for (; j > 0 && sorts_before(row[k * stride], row[y[(j - 1) * out_stride] * stride], descending); --j) {
        y[j * out_stride] = y[(j - 1) * out_stride];
      }
      y[j * out_stride] = k;
    }
  });
}

template <class T>
void matmul(T* out, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  const int r = a_l.rank;
  const i64 m = a_l.shape[r - 2], k = a_l.shape[r - 1], n = b_l.shape[r - 1];
  const i64 as_m = a_l.strides[r - 2], as_k = a_l.strides[r - 1];
  const i64 bs_k = b_l.strides[r - 2], bs_n = b_l.strides[r - 1];
  i64 batch_index = 0;
  for_each_index(r - 2, a_l.shape, [&](const i64* idx) {
    i64 a_off = 0, b_off = 0;
    for (int d = 0; d < r - 2; ++d) {
      a_off += idx[d] * a_l.strides[d];
      b_off += idx[d] * b_l.strides[d];
    }
    T* c = out + batch_index++ * m * n;
    for (i64 i = 0; i < m; ++i)
      for (i64 j = 0; j < n; ++j) {
        SumAcc<T> acc = 0;
        for (i64 p = 0; p < k; ++p)
          acc = wrap_add(acc, wrap_mul(SumAcc<T>(a[a_off + i * as_m + p * as_k]),
                                       SumAcc<T>(b[b_off + p * bs_k + j * bs_n])));
        c[i * n + j] = static_cast<T>(acc);
      }
  });
}

template <class T>
void gather(T* out, const Layout& out_l, const T* in, const Layout& in_l, const std::int64_t* idx,
            const Layout& idx_l, int axis) {
  for_each_index(out_l.rank, out_l.shape, [&](const i64* i) {
    i64 src[kMaxRank];
    for (int d = 0; d < out_l.rank; ++d) src[d] = i[d];
    src[axis] = idx[offset_of(idx_l, i)];
    // an index out of range gives 0 (the core checks user indices; see kernel_api.inc)
    const bool inside = src[axis] >= 0 && src[axis] < in_l.shape[axis];
    out[offset_of(out_l, i)] = inside ? in[offset_of(in_l, src)] : T(0);
  });
}

template <class T>
void scatter_reduce(OpId op, T* out, const Layout& out_l, const T* src, const Layout& src_l,
                    const std::int64_t* idx, const Layout& idx_l, int axis) {
  if (op != OpId::Add && op != OpId::Maximum && op != OpId::Minimum)
    throw std::invalid_argument(std::string("naive scatter_reduce: not add, maximum or minimum: ") + op_name(op));
  for_each_index(src_l.rank, src_l.shape, [&](const i64* i) {
    i64 dst[kMaxRank];
    for (int d = 0; d < src_l.rank; ++d) dst[d] = i[d];
    dst[axis] = idx[offset_of(idx_l, i)];
    if (dst[axis] < 0 || dst[axis] >= out_l.shape[axis]) return;  // dropped (see kernel_api.inc)
    T& y = out[offset_of(out_l, dst)];
    const T v = src[offset_of(src_l, i)];
    y = op == OpId::Add ? wrap_add(y, v) : op == OpId::Maximum ? BinaryFn<OpId::Maximum>{}(y, v)
                                                               : BinaryFn<OpId::Minimum>{}(y, v);
  });
}

template <class T>
void scatter_add(T* out, const Layout& out_l, const T* src, const Layout& src_l,
                 const std::int64_t* idx, const Layout& idx_l, int axis) {
  scatter_reduce<T>(OpId::Add, out, out_l, src, src_l, idx, idx_l, axis);
}

template <class T>
void uniform(T* out, std::int64_t n, std::uint64_t seed, std::uint64_t offset, double low, double high) {
  for (i64 i = 0; i < n; ++i) out[i] = uniform_at<T>(seed, offset + std::uint64_t(i), low, high);
}

template <class T>
void normal(T* out, std::int64_t n, std::uint64_t seed, std::uint64_t offset, double mean, double stddev) {
  for (i64 i = 0; i < n; ++i) out[i] = normal_at<T>(seed, offset + std::uint64_t(i), mean, stddev);
}

template <class T>
void addc(bool divide, T* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b,
          const Layout& b_l, T value) {
  for_each_index(out_l.rank, out_l.shape, [&](const i64* idx) {
    T& y = out[offset_of(out_l, idx)];
    const T u = a[offset_of(a_l, idx)], v = b[offset_of(b_l, idx)];
    const T q = divide ? u / v : u * v;
    y = y + value * q;
  });
}

template <class T>
void softmax(bool log, T* out, const T* in, const Layout& in_l, int axis) {
  // groups: every index of the other axes; within one, walk the axis
  const i64 len = in_l.shape[axis], in_step = in_l.strides[axis];
  i64 out_step = 1;
  for (int d = in_l.rank - 1; d > axis; --d) out_step *= in_l.shape[d];
  const i64 groups = len == 0 ? 0 : in_l.size() / len;
  for (i64 g = 0; g < groups; ++g) {
    i64 rem = g, in_off = 0, out_off = 0, out_stride = 1;
    for (int d = in_l.rank - 1; d >= 0; --d) {
      if (d == axis) {
        out_stride *= len;
        continue;
      }
      const i64 ix = rem % in_l.shape[d];
      rem /= in_l.shape[d];
      in_off += ix * in_l.strides[d];
      out_off += ix * out_stride;
      out_stride *= in_l.shape[d];
    }
    double m = static_cast<double>(in[in_off]);
    for (i64 k = 1; k < len; ++k) m = std::max(m, static_cast<double>(in[in_off + k * in_step]));
    double total = 0;
    for (i64 k = 0; k < len; ++k) total += std::exp(static_cast<double>(in[in_off + k * in_step]) - m);
    for (i64 k = 0; k < len; ++k) {
      const double z = static_cast<double>(in[in_off + k * in_step]) - m;
      out[out_off + k * out_step] = static_cast<T>(log ? z - std::log(total) : std::exp(z) / total);
    }
  }
}

template <class T>
void im2col(T* out, const T* in, const Layout& in_l, const Window2d& w, T fill) {
  const i64 shape[5] = {in_l.shape[0], w.oh, w.ow, w.kh * w.kw, in_l.shape[3]};
  for_each_index(5, shape, [&](const i64* i) {
    const i64 row = i[1] * w.stride - w.pad_top + i[3] / w.kw * w.dilation;
    const i64 col = i[2] * w.stride - w.pad_left + i[3] % w.kw * w.dilation;
    const bool inside = row >= 0 && row < in_l.shape[1] && col >= 0 && col < in_l.shape[2];
    const i64 src[4] = {i[0], row, col, i[4]};
    *out++ = inside ? in[offset_of(in_l, src)] : fill;
  });
}

template <class T>
void col2im(T* out, const Layout& out_l, const T* in, const Layout& in_l, const Window2d& w) {
  // scatter form (every entry of in added where it was read from), unlike the kernels' gather
  for (i64 k = 0; k < out_l.size(); ++k) out[k] = T(0);
  const i64 h = out_l.shape[1], wd = out_l.shape[2], c = out_l.shape[3];
  for_each_index(in_l.rank, in_l.shape, [&](const i64* i) {
    const i64 row = i[1] * w.stride - w.pad_top + i[3] / w.kw * w.dilation;
    const i64 col = i[2] * w.stride - w.pad_left + i[3] % w.kw * w.dilation;
    if (row < 0 || row >= h || col < 0 || col >= wd) return;
    T& y = out[((i[0] * h + row) * wd + col) * c + i[4]];
    y = wrap_add(y, in[offset_of(in_l, i)]);
  });
}

namespace {
// The (row, col) of the first maximum of x's channel ch in window (n, i, j); false when the
// window has no position inside the image.
template <class T>
bool pool_argmax(const T* x, const Layout& x_l, const Window2d& w, i64 n, i64 i, i64 j, i64 ch, i64& row, i64& col) {
  bool found = false;
  T best{};
  for (i64 di = 0; di < w.kh; ++di) {
    for (i64 dj = 0; dj < w.kw; ++dj) {
      const i64 r = i * w.stride - w.pad_top + di, q = j * w.stride - w.pad_left + dj;
      if (r < 0 || r >= x_l.shape[1] || q < 0 || q >= x_l.shape[2]) continue;
      const i64 idx[4] = {n, r, q, ch};
      const T v = x[offset_of(x_l, idx)];
      if (!found || max_scan_takes(v, best)) {
        best = v;
        row = r;
        col = q;
        found = true;
      }
    }
  }
  return found;
}
}  // namespace

template <class T>
void pool_select(T* out, const T* x, const Layout& x_l, const T* v, const Layout& v_l, const Window2d& w) {
  const i64 shape[4] = {x_l.shape[0], w.oh, w.ow, x_l.shape[3]};
  for_each_index(4, shape, [&](const i64* i) {
    i64 row = 0, col = 0;
    if (pool_argmax(x, x_l, w, i[0], i[1], i[2], i[3], row, col)) {
      const i64 at[4] = {i[0], row, col, i[3]};
      *out++ = v[offset_of(v_l, at)];
    } else {
      *out++ = T(0);
    }
  });
}

template <class T>
void pool_scatter(T* out, const T* x, const Layout& x_l, const T* g, const Layout& g_l, const Window2d& w) {
  for (i64 k = 0; k < x_l.size(); ++k) out[k] = T(0);
  const i64 h = x_l.shape[1], wd = x_l.shape[2], c = x_l.shape[3];
  const i64 shape[4] = {x_l.shape[0], w.oh, w.ow, c};
  for_each_index(4, shape, [&](const i64* i) {
    i64 row = 0, col = 0;
    if (pool_argmax(x, x_l, w, i[0], i[1], i[2], i[3], row, col)) {
      T& y = out[((i[0] * h + row) * wd + col) * c + i[3]];
      y = wrap_add(y, g[offset_of(g_l, i)]);
    }
  });
}

// ---- explicit instantiations ----
#include "tapeflow/kernels/kernel_instantiations.inc"

}  // namespace tapeflow::kernels::naive
