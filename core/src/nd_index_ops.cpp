// TensorFlow's index ops (tf.where with one argument, boolean_mask, gather_nd, scatter_nd,
// tensor_scatter_nd_add, unsorted_segment_*) as composites of take and scatter_add over
// flattened axes, so they are differentiable through those rules and run on every device.
// With IndexMode::Raise the multi-dimensional indices are read on the host (one copy,
// synchronising, as take's check already does): that is where they are checked and turned into
// flat row numbers. The other modes compute the rows with tensor ops on the indices' device.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "internal.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow {
namespace {

using detail::check_defined;
using detail::check_same_device;

std::int64_t prod(Shape::const_iterator first, Shape::const_iterator last) {
  std::int64_t n = 1;
  for (; first != last; ++first) n *= *first;
  return n;
}

// The values of an int32/int64 tensor as int64 on the host (synchronises with a CUDA device).
std::vector<std::int64_t> host_ints(const Tensor& t, const char* op, const char* what) {
  if (!is_integral(t.dtype())) {
    throw DTypeError(fmt::format("{}: {} must be int32 or int64, got {} (shape {})", op, what, dtype_name(t.dtype()),
                                 shape_str(t.shape())));
  }
  const Tensor host = t.astype(kInt64).to(Device::cpu()).contiguous();
  const std::int64_t* p = host.data<std::int64_t>();
  return std::vector<std::int64_t>(p, p + host.size());
}

std::string coords_str(const std::int64_t* c, std::int64_t k) {
  return shape_str(Shape(c, c + k));
}

// The int64 [n] tensor of `values` on `device`.
Tensor rows_tensor(const std::vector<std::int64_t>& values, Device device) {
  return tensor(values, Shape{static_cast<std::int64_t>(values.size())}, kInt64, device);
}

// take(x, rows, axis) for int64 rows [n] known to lie in range (checked here on the host, or
// nonzero's output): no second check, which on CUDA would copy them back to the host.
Tensor take_rows(const Tensor& x, const Tensor& rows, std::int64_t axis) {
  Shape s(static_cast<std::size_t>(x.rank()), 1);
  s[static_cast<std::size_t>(axis)] = rows.size();
  return detail::take_along_axis_trusted(x, rows.reshape(s), axis);
}

// For indices [..., k] into the first k axes (after `batch` leading batch axes) of `shape`: the
// row of each index in `shape` flattened to [prod(shape[:batch + k]), ...], batch axes
// included. Throws IndexError naming op, the index and the shape for an index out of range.
std::vector<std::int64_t> flat_rows(const Tensor& indices, const Shape& shape, std::int64_t batch, const char* op,
                                    const char* shape_name) {
  const std::int64_t k = indices.shape().back();
  const std::vector<std::int64_t> idx = host_ints(indices, op, "indices");
  const std::int64_t n = k == 0 ? prod(indices.shape().begin(), indices.shape().end() - 1)
                                : static_cast<std::int64_t>(idx.size()) / k;
  const std::int64_t batches = prod(shape.begin(), shape.begin() + batch);
  const std::int64_t per_batch = batches == 0 ? 0 : n / batches;
  const std::int64_t inner = prod(shape.begin() + batch, shape.begin() + batch + k);
  std::vector<std::int64_t> rows(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) {
    const std::int64_t* c = idx.data() + r * k;
    std::int64_t row = 0;
    for (std::int64_t j = 0; j < k; ++j) {
      const std::int64_t size = shape[static_cast<std::size_t>(batch + j)];
      if (c[j] < 0 || c[j] >= size) {
        throw IndexError(fmt::format("{}: index {} (row {} of indices {}) is out of bounds for {} of shape {} "
                                     "(axis {} has size {})",
                                     op, coords_str(c, k), r, shape_str(indices.shape()), shape_name, shape_str(shape),
                                     batch + j, size));
      }
      row = row * size + c[j];
    }
    rows[static_cast<std::size_t>(r)] = (r / per_batch) * inner + row;
  }
  return rows;
}

// flat_rows on the indices' device for the modes that never read them on the host (Wrap, Clip,
// Fill; see IndexMode): each coordinate is adjusted along its own axis, then the rows are
// sum(c_j * stride_j) plus the batch offset, an int64 [n] tensor. A Fill entry with a
// coordinate still outside its axis gets row -1, which take gives 0 for and scatter drops.
// Wrap and Clip into an axis of size 0 raise IndexError (as take's) when there are indices.
Tensor device_rows(const Tensor& indices, const Shape& shape, std::int64_t batch, IndexMode mode, const char* op,
                   const char* shape_name) {
  if (!is_integral(indices.dtype())) {
    throw DTypeError(fmt::format("{}: indices must be int32 or int64, got {} (shape {})", op,
                                 dtype_name(indices.dtype()), shape_str(indices.shape())));
  }
  const Shape& is = indices.shape();
  const std::int64_t k = is.back();
  const std::int64_t n = prod(is.begin(), is.end() - 1);
  const Device device = indices.device();
  const Shape axes(shape.begin() + batch, shape.begin() + batch + k);
  if (n > 0 && (mode == IndexMode::Wrap || mode == IndexMode::Clip)) {
    for (std::int64_t j = 0; j < k; ++j) {
      if (axes[static_cast<std::size_t>(j)] == 0) {
        throw IndexError(fmt::format("{}: cannot {} indices {} into axis {} of size 0 of {} {}", op,
                                     mode == IndexMode::Wrap ? "wrap" : "clip", shape_str(is), batch + j, shape_name,
                                     shape_str(shape)));
      }
    }
  }
  const Tensor sizes = rows_tensor(axes, device);
  Tensor c = indices.astype(kInt64).reshape({n, k});
  Tensor valid;
  switch (mode) {
    case IndexMode::Wrap:
      c = mod(c, sizes);
      break;
    case IndexMode::Clip:
      c = minimum(maximum(c, 0), sizes - 1);
      break;
    case IndexMode::Fill:
      c = c + where(less(c, 0), sizes, 0);  // [-size, 0) from the end; never overflows
      valid = reduce_all(greater_equal(c, 0) && less(c, sizes), {1});
      c = where(valid.expand_dims(1), c, 0);  // no product of an out-of-range coordinate
      break;
    case IndexMode::Raise:
      break;
  }
  Tensor rows = sum(c * rows_tensor(contiguous_strides(axes), device), {1});
  const std::int64_t batches = prod(shape.begin(), shape.begin() + batch);
  if (batches > 1 && n > 0) {
    const std::int64_t inner = prod(axes.begin(), axes.end());
    rows = (rows.reshape({batches, n / batches}) + (arange(batches, kInt64, device) * inner).reshape({batches, 1}))
               .reshape({n});
  }
  if (valid.defined()) rows = where(valid, rows, -1);
  return rows;
}

// The rows of `indices` into `shape` (see flat_rows) as an int64 [n] tensor on their device:
// checked on the host for Raise, adjusted on the device otherwise.
Tensor index_rows(const Tensor& indices, const Shape& shape, std::int64_t batch, IndexMode mode, const char* op,
                  const char* shape_name) {
  if (mode == IndexMode::Raise) return rows_tensor(flat_rows(indices, shape, batch, op, shape_name), indices.device());
  return device_rows(indices, shape, batch, mode, op, shape_name);
}

// indices' last axis (k) must exist and fit within shape after `batch` axes.
void check_index_depth(const Tensor& indices, const Shape& shape, std::int64_t batch, const char* op,
                       const char* shape_name) {
  if (indices.rank() < 1 || indices.rank() <= batch) {
    throw ShapeError(fmt::format("{}: indices {} need a last axis of coordinates (and {} batch axes before it)", op,
                                 shape_str(indices.shape()), batch));
  }
  const std::int64_t k = indices.shape().back();
  if (batch + k > static_cast<std::int64_t>(shape.size())) {
    throw ShapeError(fmt::format("{}: indices {} index {} axes but {} {} has {} after {} batch axes", op,
                                 shape_str(indices.shape()), k, shape_name, shape_str(shape),
                                 static_cast<std::int64_t>(shape.size()) - batch, batch));
  }
}

// [rows] + shape[from:]
Shape rows_and(std::int64_t rows, const Shape& shape, std::int64_t from) {
  Shape s{rows};
  s.insert(s.end(), shape.begin() + from, shape.end());
  return s;
}

// int64 rows [n] as indices [n, 1, ...] of rank `rank`, to scatter along axis 0 of a [m, ...] base
Tensor scatter_rows(const Tensor& rows, std::int64_t rank) {
  Shape s(static_cast<std::size_t>(rank), 1);
  s[0] = rows.size();
  return rows.reshape(s);
}

// base [m, ...] with updates [n, ...] added at the given rows [n] (those outside [0, m) dropped)
Tensor add_rows(const Tensor& base, const Tensor& rows, const Tensor& updates) {
  return detail::scatter_add_trusted(base, scatter_rows(rows, base.rank()), updates, 0);
}

// tensor_scatter_nd_add's checks and work: `base` of `shape` (already on the updates' device)
Tensor scatter_nd_into(const Tensor& base, const Tensor& indices, const Tensor& updates, IndexMode mode,
                       const char* op, const char* shape_name) {
  check_same_device(base, indices, op);
  check_same_device(base, updates, op);
  const Shape& shape = base.shape();
  check_index_depth(indices, shape, 0, op, shape_name);
  const std::int64_t k = indices.shape().back();
  Shape want(indices.shape().begin(), indices.shape().end() - 1);
  want.insert(want.end(), shape.begin() + k, shape.end());
  if (updates.shape() != want) {
    throw ShapeError(fmt::format("{}: updates {} must have shape {} (indices {} into {} {})", op,
                                 shape_str(updates.shape()), shape_str(want), shape_str(indices.shape()), shape_name,
                                 shape_str(shape)));
  }
  if (base.dtype() == kBool) throw DTypeError(fmt::format("{}: bool tensors are not supported (shape {})", op, shape_str(shape)));
  const Tensor rows = index_rows(indices, shape, 0, mode, op, shape_name);
  const std::int64_t m = prod(shape.begin(), shape.begin() + k);
  const Tensor flat = base.reshape(rows_and(m, shape, k));
  const Tensor upd = updates.reshape(rows_and(rows.size(), shape, k));
  return add_rows(flat, rows, upd).reshape(shape);
}

// What the unsorted_segment ops share: data [n, ...] (segment_ids' axes merged) and the int64
// segment of each row [n] on the device, an id outside [0, num_segments) (-1 for one that goes
// nowhere) dropped by the scatters: no row is copied out of data. Raise reads the ids on the
// host to check them and count the rows of each segment; the other modes leave counts empty.
struct Segments {
  Tensor data;
  Tensor ids;
  std::vector<std::int64_t> counts;  // rows per segment (Raise)
};

Segments segments(const Tensor& data, const Tensor& segment_ids, std::int64_t num_segments, IndexMode mode,
                  const char* op) {
  check_defined(data, op);
  check_defined(segment_ids, op);
  check_same_device(data, segment_ids, op);
  const Shape& ds = data.shape();
  const Shape& is = segment_ids.shape();
  if (is.size() > ds.size() || !std::equal(is.begin(), is.end(), ds.begin())) {
    throw ShapeError(fmt::format("{}: segment_ids {} must be a prefix of the data's shape {}", op, shape_str(is),
                                 shape_str(ds)));
  }
  if (num_segments < 0) {
    throw ValueError(fmt::format("{}: num_segments must be >= 0, got {} (data {})", op, num_segments, shape_str(ds)));
  }
  if (data.dtype() == kBool) throw DTypeError(fmt::format("{}: bool tensors are not supported (data {})", op, shape_str(ds)));
  if (!is_integral(segment_ids.dtype())) {
    throw DTypeError(fmt::format("{}: segment_ids must be int32 or int64, got {} (shape {})", op,
                                 dtype_name(segment_ids.dtype()), shape_str(is)));
  }
  Segments s;
  const std::int64_t n = prod(is.begin(), is.end());
  s.data = data.reshape(rows_and(n, ds, static_cast<std::int64_t>(is.size())));
  const Tensor ids = segment_ids.astype(kInt64).reshape({n});
  switch (mode) {
    case IndexMode::Wrap:
      s.ids = num_segments == 0 ? ids : where(less(ids, 0), -1, mod(ids, num_segments));
      break;
    case IndexMode::Clip:
      s.ids = where(less(ids, 0), -1, minimum(ids, num_segments - 1));
      break;
    case IndexMode::Fill:  // the scatters drop every id outside [0, num_segments)
      s.ids = ids;
      break;
    case IndexMode::Raise: {  // checked (and counted) on the host, then as Fill: negatives dropped
      const std::vector<std::int64_t> host = host_ints(ids, op, "segment_ids");
      s.counts.assign(static_cast<std::size_t>(num_segments), 0);
      for (std::size_t r = 0; r < host.size(); ++r) {
        if (host[r] >= num_segments) {
          throw IndexError(fmt::format("{}: segment id {} (entry {} of segment_ids {}) is out of range [0, {}) "
                                       "(data {})",
                                       op, host[r], r, shape_str(is), num_segments, shape_str(ds)));
        }
        if (host[r] >= 0) ++s.counts[static_cast<std::size_t>(host[r])];
      }
      s.ids = ids;
      break;
    }
  }
  return s;
}

// The value of an empty segment's max (lowest: -FLT_MAX for float32, not -inf) or min
// (highest), as TensorFlow; [shape] on `device`. INT64_MAX is no double: made from an int64.
Tensor segment_filler(bool is_max, const Shape& shape, DType dtype, Device device) {
  switch (dtype) {
    case kFloat32:
      return full(shape, is_max ? std::numeric_limits<float>::lowest() : std::numeric_limits<float>::max(), dtype,
                  device);
    case kInt32:
      return full(shape, is_max ? std::numeric_limits<std::int32_t>::lowest() : std::numeric_limits<std::int32_t>::max(),
                  dtype, device);
    case kInt64: {
      const std::int64_t v = is_max ? std::numeric_limits<std::int64_t>::lowest() : std::numeric_limits<std::int64_t>::max();
      return tensor(std::vector<std::int64_t>{v}, Shape{1}, kInt64, device).broadcast_to(shape).contiguous();
    }
    default:
      return full(shape, is_max ? std::numeric_limits<double>::lowest() : std::numeric_limits<double>::max(), dtype,
                  device);
  }
}

// unsorted_segment_max (is_max) / _min: the filler with every row max-ed / min-ed into its
// segment (scatter_max along axis 0), the filler taking no share of the gradient
Tensor segment_extremum(bool is_max, const Tensor& data, const Tensor& segment_ids, std::int64_t num_segments,
                        IndexMode mode, const char* op) {
  const Segments s = segments(data, segment_ids, num_segments, mode, op);
  const Tensor base = segment_filler(is_max, rows_and(num_segments, s.data.shape(), 1), data.dtype(), data.device());
  if (s.ids.size() == 0 || num_segments == 0) return base;
  return detail::scatter_extremum_trusted(is_max, base, scatter_rows(s.ids, base.rank()), s.data, 0, false);
}

}  // namespace

namespace {
// nonzero on a device other than the CPU: only the count of true entries comes to the host (one
// int64, synchronising); each true entry's slot is the exclusive cumsum before it, the flat
// positions are scattered into [n] (the false entries' slot n is dropped), and the coordinates
// are (position / stride) mod size along each axis, all on the device.
Tensor device_nonzero(const Tensor& truth) {
  const Device device = truth.device();
  const Shape& shape = truth.shape();
  const auto rank = static_cast<std::int64_t>(shape.size());
  const Tensor flat = truth.reshape({-1});
  const Tensor ones_and_zeros = flat.astype(kInt64);
  const std::int64_t n = sum(ones_and_zeros).to(Device::cpu()).item<std::int64_t>();
  if (rank == 0 || n == 0) return zeros({n, rank}, kInt64, device);
  const Tensor slot = where(flat, cumsum(ones_and_zeros, 0, true), n);
  const Tensor at = detail::scatter_add_trusted(zeros({n}, kInt64, device), slot, arange(flat.size(), kInt64, device), 0);
  return mod(floor_divide(at.expand_dims(1), rows_tensor(contiguous_strides(shape), device)), rows_tensor(shape, device));
}
}  // namespace

Tensor nonzero(const Tensor& condition) {
  check_defined(condition, "nonzero");
  const Tensor truth = condition.dtype() == kBool ? condition : condition != 0.0;
  if (!truth.device().is_cpu()) return device_nonzero(truth);
  const Tensor host = truth.contiguous();
  const bool* p = host.data<bool>();
  const Shape& shape = condition.shape();
  const std::size_t rank = shape.size();
  std::vector<std::int64_t> coords;
  std::vector<std::int64_t> c(rank, 0);  // the row-major coordinates of element i
  for (std::int64_t i = 0; i < host.size(); ++i) {
    if (p[i]) coords.insert(coords.end(), c.begin(), c.end());
    for (std::size_t a = rank; a-- > 0;) {
      if (++c[a] < shape[a]) break;
      c[a] = 0;
    }
  }
  const std::int64_t n = rank == 0 ? (host.size() == 1 && p[0] ? 1 : 0)
                                   : static_cast<std::int64_t>(coords.size()) / static_cast<std::int64_t>(rank);
  return tensor(coords, Shape{n, static_cast<std::int64_t>(rank)}, kInt64, condition.device());
}

Tensor boolean_mask(const Tensor& x, const Tensor& mask, std::int64_t axis_in) {
  const char* op = "boolean_mask";
  check_defined(x, op);
  check_defined(mask, op);
  check_same_device(x, mask, op);
  if (mask.dtype() != kBool) {
    throw DTypeError(fmt::format("boolean_mask: mask must be bool, got {} (mask {}, x {})", dtype_name(mask.dtype()),
                                 shape_str(mask.shape()), shape_str(x.shape())));
  }
  if (mask.rank() == 0) {
    throw ShapeError(fmt::format("boolean_mask: mask must have at least 1 dimension (mask {}, x {})",
                                 shape_str(mask.shape()), shape_str(x.shape())));
  }
  const std::int64_t axis = axis_in < 0 ? axis_in + x.rank() : axis_in;
  const Shape& xs = x.shape();
  if (axis < 0 || axis + mask.rank() > x.rank() ||
      !std::equal(mask.shape().begin(), mask.shape().end(), xs.begin() + axis)) {
    const std::int64_t shown = axis < 0 ? axis_in : axis;
    throw ShapeError(fmt::format("boolean_mask: mask {} must equal the shape of x {} over axes [{}, {})",
                                 shape_str(mask.shape()), shape_str(xs), shown, shown + mask.rank()));
  }
  // x [pre..., mask..., post...] -> [pre..., prod(mask), post...], then the true rows taken
  Shape merged(xs.begin(), xs.begin() + axis);
  merged.push_back(mask.size());
  merged.insert(merged.end(), xs.begin() + axis + mask.rank(), xs.end());
  const Tensor rows = nonzero(mask.reshape({-1})).reshape({-1});
  return take_rows(x.reshape(merged), rows, axis);
}

Tensor gather_nd(const Tensor& params, const Tensor& indices, std::int64_t batch_dims, IndexMode mode) {
  const char* op = "gather_nd";
  check_defined(params, op);
  check_defined(indices, op);
  check_same_device(params, indices, op);
  if (batch_dims < 0) {
    throw ValueError(fmt::format("gather_nd: batch_dims must be >= 0, got {} (params {}, indices {})", batch_dims,
                                 shape_str(params.shape()), shape_str(indices.shape())));
  }
  const Shape& ps = params.shape();
  const Shape& is = indices.shape();
  check_index_depth(indices, ps, batch_dims, op, "params");
  if (!std::equal(is.begin(), is.begin() + batch_dims, ps.begin())) {
    throw ShapeError(fmt::format("gather_nd: the first {} (batch) axes of indices {} and params {} differ", batch_dims,
                                 shape_str(is), shape_str(ps)));
  }
  const std::int64_t k = is.back();
  const Tensor rows = index_rows(indices, ps, batch_dims, mode, op, "params");
  // params [batch..., p..., rest...] -> [prod(batch, p), rest...]; the rows taken; -> [indices[:-1]..., rest...]
  const Tensor flat = params.reshape(rows_and(prod(ps.begin(), ps.begin() + batch_dims + k), ps, batch_dims + k));
  Shape out(is.begin(), is.end() - 1);
  out.insert(out.end(), ps.begin() + batch_dims + k, ps.end());
  return take_rows(flat, rows, 0).reshape(out);
}

Tensor scatter_nd(const Tensor& indices, const Tensor& updates, const Shape& shape, IndexMode mode) {
  check_defined(indices, "scatter_nd");
  check_defined(updates, "scatter_nd");
  for (auto d : shape) {
    if (d < 0) throw ValueError(fmt::format("scatter_nd: shape {} has a negative size", shape_str(shape)));
  }
  return scatter_nd_into(zeros(shape, updates.dtype(), updates.device()), indices, updates, mode, "scatter_nd",
                         "the output");
}

Tensor tensor_scatter_nd_add(const Tensor& x, const Tensor& indices, const Tensor& updates, IndexMode mode) {
  check_defined(x, "tensor_scatter_nd_add");
  check_defined(indices, "tensor_scatter_nd_add");
  check_defined(updates, "tensor_scatter_nd_add");
  return scatter_nd_into(x, indices, updates, mode, "tensor_scatter_nd_add", "tensor");
}

Tensor unsorted_segment_sum(const Tensor& data, const Tensor& segment_ids, std::int64_t num_segments,
                            IndexMode mode) {
  const char* op = "unsorted_segment_sum";
  const Segments s = segments(data, segment_ids, num_segments, mode, op);
  const Tensor base = zeros(rows_and(num_segments, s.data.shape(), 1), data.dtype(), data.device());
  return add_rows(base, s.ids, s.data);
}

Tensor unsorted_segment_mean(const Tensor& data, const Tensor& segment_ids, std::int64_t num_segments,
                             IndexMode mode) {
  const char* op = "unsorted_segment_mean";
  if (data.defined() && !is_floating(data.dtype())) {
    throw DTypeError(fmt::format("{}: data must be float32 or float64, got {} (data {})", op, dtype_name(data.dtype()),
                                 shape_str(data.shape())));
  }
  const Segments s = segments(data, segment_ids, num_segments, mode, op);
  const Tensor base = zeros(rows_and(num_segments, s.data.shape(), 1), data.dtype(), data.device());
  Shape ds(static_cast<std::size_t>(base.rank()), 1);
  ds[0] = num_segments;
  Tensor divisors;  // an empty segment's sum is 0; so is its mean
  if (mode == IndexMode::Raise) {
    std::vector<double> d(s.counts.begin(), s.counts.end());
    for (auto& v : d) v = v > 0 ? v : 1;
    divisors = tensor(d, ds, data.dtype(), data.device());
  } else {
    const Tensor counts = add_rows(zeros({num_segments}, data.dtype(), data.device()), s.ids,
                                   ones({s.ids.size()}, data.dtype(), data.device()));
    divisors = maximum(counts, 1).reshape(ds);
  }
  return add_rows(base, s.ids, s.data) / divisors;
}

Tensor unsorted_segment_max(const Tensor& data, const Tensor& segment_ids, std::int64_t num_segments,
                            IndexMode mode) {
  return segment_extremum(true, data, segment_ids, num_segments, mode, "unsorted_segment_max");
}

Tensor unsorted_segment_min(const Tensor& data, const Tensor& segment_ids, std::int64_t num_segments,
                            IndexMode mode) {
  return segment_extremum(false, data, segment_ids, num_segments, mode, "unsorted_segment_min");
}

}  // namespace tapeflow
