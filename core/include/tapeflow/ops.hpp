#pragma once
/// The op front-ends: creation, element-wise math with NumPy broadcasting and promotion,
/// reductions, matmul, joining and indexing. Every function validates its inputs and throws
/// a tapeflow::Error naming the op and the shapes / dtypes involved.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "tapeflow/generator.hpp"
#include "tapeflow/tensor.hpp"

namespace tapeflow {

// ---------------------------------------------------------------- creation
/// A tensor of `shape` holding `values` (row-major), converted to `dtype`.
template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape, DType dtype = dtype_v<T>,
              Device device = Device::cpu());
template <class T>
Tensor tensor(std::initializer_list<T> values, const Shape& shape, DType dtype = dtype_v<T>,
              Device device = Device::cpu()) {
  return tensor(std::vector<T>(values), shape, dtype, device);
}
/// A 1-D tensor of `values`.
template <class T>
Tensor tensor(std::initializer_list<T> values) {
  return tensor(std::vector<T>(values), Shape{static_cast<std::int64_t>(values.size())});
}
template <class T>
Tensor tensor(const std::vector<T>& values) {
  return tensor(values, Shape{static_cast<std::int64_t>(values.size())});
}
/// A rank-0 tensor.
Tensor scalar(double value, DType dtype = kFloat32, Device device = Device::cpu());
/// Uninitialised memory (contents unspecified).
Tensor empty(const Shape& shape, DType dtype = kFloat32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = kFloat32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = kFloat32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = kFloat32, Device device = Device::cpu());
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
/// start, start + step, ... < stop (NumPy's arange).
Tensor arange(double start, double stop, double step = 1, DType dtype = kFloat32, Device device = Device::cpu());
Tensor arange(std::int64_t stop, DType dtype = kInt64, Device device = Device::cpu());
/// `num` evenly spaced values from start to stop inclusive.
Tensor linspace(double start, double stop, std::int64_t num, DType dtype = kFloat32, Device device = Device::cpu());
/// Identity matrix [n, m] (m = -1, the default, is n; other negative sizes raise ValueError).
Tensor eye(std::int64_t n, std::int64_t m = -1, DType dtype = kFloat32, Device device = Device::cpu());
/// Uniform in [low, high) from a seeded counter-based generator.
Tensor uniform(const Shape& shape, Generator& gen, double low = 0, double high = 1, DType dtype = kFloat32,
               Device device = Device::cpu());
/// Normal(mean, stddev) from a seeded counter-based generator.
Tensor normal(const Shape& shape, Generator& gen, double mean = 0, double stddev = 1, DType dtype = kFloat32,
              Device device = Device::cpu());

// ---------------------------------------------------------------- element-wise
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
/// True division: integer inputs give float32.
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
/// x ** exponent with a constant exponent (its own op: cheaper and defined for x < 0).
Tensor pow(const Tensor& x, double exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
/// The angle of the point (x, y) in radians, in [-pi, pi]: NumPy's arctan2(y, x) and
/// tf.math.atan2(y, x), y first. Signed zeros and infinities as C's atan2 (atan2(0, -0) = pi,
/// atan2(-0, -1) = -pi, atan2(inf, inf) = pi / 4). Integer inputs give float32, as div;
/// broadcasting as add. Gradient: d/dy = x / (x^2 + y^2), d/dx = -y / (x^2 + y^2).
Tensor atan2(const Tensor& y, const Tensor& x);
/// Floor division and its remainder, NumPy's `//` and `%` (floor_divide, remainder / mod),
/// TensorFlow's floordiv / floormod: the quotient rounded toward -inf and the remainder with
/// the divisor's sign, so a == floor_divide(a, b) * b + mod(a, b): -7 // 2 = -4, -7 % 2 = 1,
/// 7 % -2 = -1. Integers stay integers (dtypes as mul; two bools raise DTypeError); integer
/// division by zero gives 0 for both, as div's integer kernel and NumPy's values (no trap, no
/// error; NumPy warns), and INT_MIN // -1 wraps to INT_MIN, as NumPy's. Floats follow NumPy's
/// divmod: the remainder is fmod(a, b) moved to b's sign (a zero remainder takes b's sign:
/// mod(4.0, -2.0) is -0.0), the quotient (a - mod) / b rounded to a whole number, so
/// floor_divide(1.0, 0.1) is 9 as NumPy's (TensorFlow's floor(1 / 0.1) gives 10); x // 0 is
/// x / 0 (+-inf, NaN for 0 // 0) and x % 0 is NaN; mod(-5.0, inf) is inf, floor_divide(-5.0,
/// inf) is -1. Gradients (TensorFlow's): floor_divide's is zero; mod's is 1 in a and
/// -floor_divide(a, b) in b. floordiv and floormod are TensorFlow's names for the same ops.
Tensor floor_divide(const Tensor& a, const Tensor& b);
Tensor mod(const Tensor& a, const Tensor& b);
Tensor floordiv(const Tensor& a, const Tensor& b);
Tensor floormod(const Tensor& a, const Tensor& b);
/// The gradient rules' fused derivatives (one pass instead of 2-3 ops; differentiable):
/// grad * (1 - y * y) for y = tanh(x), grad * y * (1 - y) for y = sigmoid(x), and
/// x > 0 ? grad : 0 for relu(x) (a NaN grad stays NaN). Broadcasting and dtypes as mul.
Tensor tanh_grad(const Tensor& grad, const Tensor& y);
Tensor sigmoid_grad(const Tensor& grad, const Tensor& y);
Tensor relu_grad(const Tensor& grad, const Tensor& x);
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
/// log(1 + x), exact where x is tiny (where 1 + x rounds to 1, log gives 0): NumPy's log1p.
Tensor log1p(const Tensor& x);
/// exp(x) - 1, exact where x is tiny (where exp(x) rounds to 1): NumPy's expm1.
Tensor expm1(const Tensor& x);
/// The error function, 2 / sqrt(pi) * integral of exp(-t^2) from 0 to x (exact gelu).
Tensor erf(const Tensor& x);
/// Sine, cosine and tangent in radians (NumPy's sin, cos, tan); integer inputs give float32,
/// as exp, and so do all the trigonometric and hyperbolic functions below. Each is the
/// device's libm function of the same name, element by element.
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tan(const Tensor& x);
/// Inverse sine, cosine and tangent in radians (NumPy's arcsin, arccos, arctan; TensorFlow's
/// asin, acos, atan): asin in [-pi/2, pi/2], acos in [0, pi], atan in (-pi/2, pi/2); asin and
/// acos give NaN outside [-1, 1]. Gradients 1 / sqrt(1 - x^2), -1 / sqrt(1 - x^2) (inf at +-1)
/// and 1 / (1 + x^2).
Tensor asin(const Tensor& x);
Tensor acos(const Tensor& x);
Tensor atan(const Tensor& x);
/// Hyperbolic sine and cosine (overflow to +-inf past |x| ~ 89 in float32, ~ 710 in float64),
/// and the inverse hyperbolic functions: asinh, acosh (NaN below 1) and atanh (+-inf at +-1,
/// NaN outside [-1, 1]), NumPy's arcsinh / arccosh / arctanh. Gradients: cosh, sinh,
/// 1 / cosh(asinh x), 1 / sinh(acosh x) (inf at 1) and 1 / (1 - x^2).
Tensor sinh(const Tensor& x);
Tensor cosh(const Tensor& x);
Tensor asinh(const Tensor& x);
Tensor acosh(const Tensor& x);
Tensor atanh(const Tensor& x);
/// NumPy's floor, ceil and round (decimals = 0): round is half to even (round(0.5) = 0,
/// round(1.5) = 2, round(-2.5) = -2), as NumPy and TensorFlow's tf.round. NaN, inf and -0 pass
/// through; integer tensors are returned unchanged in their dtype (NumPy >= 2.1's floor / ceil,
/// NumPy's round); bool raises DTypeError, as every unary op here. The gradient is zero.
Tensor floor(const Tensor& x);
Tensor ceil(const Tensor& x);
Tensor round(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor square(const Tensor& x);
/// Composites of the ops above (no kernel of their own; their gradients follow), each rounding
/// twice where NumPy's function rounds once, so they can differ from NumPy in the last bit or
/// two:
/// reciprocal(x) = 1 / x (one division: NumPy's float values exactly; integer inputs give
/// float32, as div, where NumPy's integer reciprocal truncates).
/// rsqrt(x) = 1 / sqrt(x) (TensorFlow's rsqrt; within 1 ulp of the exact value).
/// log2(x) = log(x) / log(2) and log10(x) = log(x) / log(10): within 2 ulps of NumPy's, not
/// always exact at powers of the base (log10(1000) may give 2.9999999999999996, log2(2^-126)
/// in float32 -126.00001).
/// exp2(x) = pow(2, x): the pow kernel, exact at whole x (exp2(10) = 1024).
/// Integer inputs give float32 for all five, as log.
Tensor reciprocal(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor log2(const Tensor& x);
Tensor log10(const Tensor& x);
Tensor exp2(const Tensor& x);
/// (a - b)^2 as (a - b) * (a - b), TensorFlow's squared_difference: the rounding of a sub and a
/// mul; integers stay integers (and wrap), dtypes and broadcasting as sub.
Tensor squared_difference(const Tensor& a, const Tensor& b);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
/// NumPy's isnan, isinf and isfinite, as bool; integer tensors are all finite.
Tensor isnan(const Tensor& x);
Tensor isinf(const Tensor& x);
Tensor isfinite(const Tensor& x);
/// 1 where x > 0, else 0 (relu's derivative).
Tensor step(const Tensor& x);
Tensor clip(const Tensor& x, double low, double high);
/// 1 where low <= x <= high, else 0 (clip's derivative).
Tensor clip_mask(const Tensor& x, double low, double high);

Tensor equal(const Tensor& a, const Tensor& b);
Tensor not_equal(const Tensor& a, const Tensor& b);
Tensor less(const Tensor& a, const Tensor& b);
Tensor less_equal(const Tensor& a, const Tensor& b);
Tensor greater(const Tensor& a, const Tensor& b);
Tensor greater_equal(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);
/// True where exactly one of a and b is non-zero (NumPy's logical_xor: any dtype is truth-tested,
/// NaN counts as true; TensorFlow's takes bools only): logical_not(a) != logical_not(b).
Tensor logical_xor(const Tensor& a, const Tensor& b);
/// cond ? a : b, all three broadcast; cond is bool.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// C++ numbers convert to weak rank-0 tensors (see Tensor's scalar constructor), so
// x * 2.0, maximum(x, 0.0) and where(c, x, 0) keep x's dtype.
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
/// mod(a, b): NumPy's, Python's and PyTorch's `%`, the remainder of floor division with the
/// divisor's sign (-7 % 2 is 1), not C++'s truncating `%` on integers (-7 % 2 is -1 there).
Tensor operator%(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator&&(const Tensor& a, const Tensor& b);
Tensor operator||(const Tensor& a, const Tensor& b);
Tensor operator!(const Tensor& x);
/// The dtype of an op on a and b: PyTorch's promotion (dtype.hpp), with weak scalars taking the
/// other's dtype.
DType result_dtype(const Tensor& a, const Tensor& b);

// ---------------------------------------------------------------- reductions
/// Axes may be negative; an empty list reduces every axis.
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
Tensor max(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
Tensor min(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
/// The product over `axes` (np.prod, tf.math.reduce_prod). dtypes as sum's (NumPy's rule): bool
/// and int32 give int64, whose products wrap around (two's complement, as NumPy's); floats keep
/// their dtype and multiply in it (no wider accumulator, as NumPy and TensorFlow). A zero-size
/// reduction gives 1. Gradient: TensorFlow's, the product of all the other elements of each
/// group from exclusive cumulative products from both ends (cumprod), never prod / x, so it is
/// right where x has zeros (and NaN only where TensorFlow's is: an inf beside a zero).
Tensor prod(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
/// Population variance (ddof 0), as NumPy and TensorFlow.
Tensor var(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
Tensor logsumexp(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
/// Standard deviation, sqrt of the variance with n - ddof in the denominator: NumPy's std,
/// TensorFlow's reduce_std (ddof 0), named as TensorFlow's since a function `std` would make
/// every `std(...)` call ambiguous under `using namespace tapeflow`. n - ddof <= 0 gives NaN; a
/// negative ddof is a ValueError. Integer inputs give float32, as var. The gradient at a zero deviation is inf (sqrt's).
Tensor reduce_std(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false,
                  std::int64_t ddof = 0);
/// Vector norms over `axes` (all of them by default, the flattened tensor, as tf.norm and
/// np.linalg.norm(x.ravel())): ord 2, sqrt(sum(x^2)); ord 1, sum(|x|). Other ords (and the
/// matrix norms of np.linalg.norm with two axes) are a ValueError. Integer inputs give float32.
/// No overflow guard (sum(x^2) overflows where |x| > 1e19 in float32); the 2-norm's gradient at
/// 0 is NaN.
Tensor norm(const Tensor& x, double ord = 2, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
/// Whether any / every element over `axes` is non-zero (NaN counts as non-zero), as bool:
/// NumPy's any / all, TensorFlow's reduce_any / reduce_all. Any dtype. Over an empty axis any is
/// false and all is true. (Named as TensorFlow's: `all` is the `:` slice here.)
Tensor reduce_any(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
Tensor reduce_all(const Tensor& x, const std::vector<std::int64_t>& axes = {}, bool keepdims = false);
/// The running sum along `axis` (NumPy's cumsum with an axis; tf.math.cumsum): y[i] = x[0] +
/// ... + x[i]. A composite: ceil(log2 n) passes of y += y shifted by 1, 2, 4, ... (Hillis-Steele),
/// so O(n log n) additions and float results sum in that tree order, not left to right (within
/// a few ulps of NumPy's). Keeps the dtype (NumPy widens int32 to int64); bool gives int64.
/// tf.math.cumsum's flags: `exclusive` leaves x[i] out (y[i] = x[0] + ... + x[i-1], y[0] = 0);
/// `reverse` runs from the end (y[i] = x[i] + ... + x[n-1]); both: y[i] = x[i+1] + ... + x[n-1].
Tensor cumsum(const Tensor& x, std::int64_t axis, bool exclusive = false, bool reverse = false);
/// The running product along `axis` (np.cumprod, tf.math.cumprod with its `exclusive` and
/// `reverse` flags, as cumsum's; an exclusive product starts at 1). A composite as cumsum
/// (Hillis-Steele passes of y *= y shifted), so its gradient comes from mul's and is right where
/// x has zeros. dtypes as cumsum's: integers keep theirs and wrap around, bool gives int64.
Tensor cumprod(const Tensor& x, std::int64_t axis, bool exclusive = false, bool reverse = false);
/// The running maximum / minimum along `axis` (the values of torch.cummax / torch.cummin;
/// np.maximum.accumulate): y[i] = max(x[0], ..., x[i]). NaN propagates: from the first NaN on,
/// y is NaN (as PyTorch). Any numeric dtype, kept (bool as int64, as cumsum). A composite of
/// Hillis-Steele passes of maximum / minimum; the gradient of y[i] goes to one position, the
/// last j <= i holding the running extremum (the last NaN where y[i] is NaN): the index
/// torch.cummax returns, whose gradient PyTorch's sends there too.
Tensor cummax(const Tensor& x, std::int64_t axis);
Tensor cummin(const Tensor& x, std::int64_t axis);
/// int64 index of the first max/min along `axis`.
Tensor argmax(const Tensor& x, std::int64_t axis, bool keepdims = false);
Tensor argmin(const Tensor& x, std::int64_t axis, bool keepdims = false);
/// Over the flattened tensor.
Tensor argmax(const Tensor& x);
Tensor argmin(const Tensor& x);
/// The int64 indices that sort x along `axis` (NumPy's argsort(kind="stable"), tf.argsort with
/// stable=True, torch.argsort(stable=True)): stable, so equal values keep their order, also
/// descending (as TensorFlow's and PyTorch's stable descending sorts). NaN is larger than every
/// number, +inf included (NumPy's and PyTorch's rule; TensorFlow's sort leaves NaNs where they
/// fall): NaNs go last ascending, first descending, in their input order; -0.0 equals 0.0.
/// Every dtype (bool: false < true); the same indices on every device. Not differentiable.
/// CPU: std::stable_sort per row, O(n log n); CUDA: rank counting for rows of up to 64, a merge
/// sort (runs of 32 ranked, then merged pairwise by binary search) beyond, O(n log^2 n) per row.
Tensor argsort(const Tensor& x, std::int64_t axis = -1, bool descending = false);
/// x sorted along `axis` (np.sort, tf.sort): take_along_axis(x, argsort(x, axis, descending),
/// axis), so the gradient flows back to each value's position (ties and NaNs as argsort's).
Tensor sort(const Tensor& x, std::int64_t axis = -1, bool descending = false);
/// What top_k returns: values [..., k] (x's dtype, differentiable) and their int64 indices
/// [..., k] along x's last axis.
struct TopK {
  Tensor values;
  Tensor indices;
};
/// The k largest entries along the last axis (tf.math.top_k): with `sorted`, largest first,
/// equal values by lower index first (TensorFlow's tie rule), NaN larger than every number (as
/// argsort, PyTorch's topk); without, the same k entries in increasing index order. k in
/// [0, n], n the last axis's length (ValueError otherwise, also for a rank-0 input). Values are
/// take_along_axis(x, indices, -1), so differentiable. A full descending argsort, then k kept.
TopK top_k(const Tensor& x, std::int64_t k, bool sorted = true);
Tensor softmax(const Tensor& x, std::int64_t axis = -1);
Tensor log_softmax(const Tensor& x, std::int64_t axis = -1);

// ---------------------------------------------------------------- activations
// Keras's activations (keras.activations), composites of the ops above: differentiable (twice)
// on every device. Integer inputs give float32, as exp; bool is a DTypeError. At a kink the
// derivative is TensorFlow's (noted).
/// x > 0 ? x : alpha * (exp(x) - 1); the derivative at 0 is alpha.
Tensor elu(const Tensor& x, double alpha = 1.0);
/// scale * elu(x, alpha) with Klambauer et al.'s alpha = 1.67326... and scale = 1.05070...
Tensor selu(const Tensor& x);
/// x * P(X <= x) for X ~ N(0, 1): 0.5 x (1 + erf(x / sqrt 2)); `approximate`: the tanh form
/// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))). Exact by default, as Keras and PyTorch.
Tensor gelu(const Tensor& x, bool approximate = false);
/// x * sigmoid(x), also called swish.
Tensor silu(const Tensor& x);
inline Tensor swish(const Tensor& x) { return silu(x); }
/// x > 0 ? x : negative_slope * x (Keras's default slope 0.2); the derivative at 0 is the slope.
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.2);
/// log(1 + exp(x)), without overflow: x itself where that rounds to x (TensorFlow's threshold).
Tensor softplus(const Tensor& x);
/// x / (1 + |x|).
Tensor softsign(const Tensor& x);
/// min(max(x, 0), 6); the derivative is 0 at 0 and at 6.
Tensor relu6(const Tensor& x);
/// relu6(x + 3) / 6 (Keras 3's; Keras 2's was clip(0.2 x + 0.5, 0, 1)).
Tensor hard_sigmoid(const Tensor& x);
/// x * hard_sigmoid(x), also called hard_swish.
Tensor hard_silu(const Tensor& x);
inline Tensor hard_swish(const Tensor& x) { return hard_silu(x); }
/// x * tanh(softplus(x)).
Tensor mish(const Tensor& x);
/// Sums `x` down to `shape` (undoes broadcasting); the tape's one place for it.
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---------------------------------------------------------------- linear algebra
/// NumPy's matmul: 1-D operands are promoted and the added axis removed; batch axes broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);
/// NumPy's dot for 1-D and 2-D operands; N-D: sum over a's last and b's second-to-last axis.
Tensor dot(const Tensor& a, const Tensor& b);
/// Sum over a's axes_a and b's axes_b.
Tensor tensordot(const Tensor& a, const Tensor& b, const std::vector<std::int64_t>& axes_a,
                 const std::vector<std::int64_t>& axes_b);
/// Sum over a's last n and b's first n axes.
Tensor tensordot(const Tensor& a, const Tensor& b, std::int64_t n);
/// Einstein summation, as np.einsum / tf.einsum / torch.einsum: one term of letter indices
/// (a-z, A-Z) per operand, separated by commas, and an optional "->" with the output's indices:
/// "ij,jk->ik" (matmul), "bij,bjk->bik", "i,j->ij" (outer), "ij->ji", "ii->i" (diagonal), "ii->"
/// (trace), "ij->j", "bhqd,bhkd->bhqk". Indices missing from the output are summed. Without
/// "->" the output is NumPy's: the indices that occur once, in alphabetical order (upper case
/// first). "..." stands for the leading or middle dimensions not named, broadcast across the
/// operands as NumPy broadcasts (right-aligned, size 1 stretches): "...ij,...jk->...ik"; without
/// "->" they come first in the output. Named indices must have one size everywhere (no
/// broadcasting of a named size 1, as TensorFlow; NumPy would stretch it). Spaces are ignored.
/// A composite of permute, reshape, slicing, sum, mul and matmul (differentiable, every
/// device): each pair is contracted by one batched matmul, operands left to right; one operand
/// only permuted ("ij->ji") is returned as a view of it, as NumPy's. Operands
/// share one dtype (no promotion, as tf.einsum; bool is refused) and one device.
/// Errors name the equation and the operand shapes: ValueError for a malformed equation, a wrong
/// operand count, an output index repeated or in no operand; ShapeError for a rank that does not
/// match the term or an index of two sizes; DTypeError for mixed dtypes.
Tensor einsum(const std::string& equation, const std::vector<Tensor>& operands);
Tensor einsum(const std::string& equation, const Tensor& a);
Tensor einsum(const std::string& equation, const Tensor& a, const Tensor& b);

// ---------------------------------------------------------------- joining, indexing
Tensor concat(const std::vector<Tensor>& tensors, std::int64_t axis = 0);
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t axis = 0);
/// `sections` equal parts along axis.
std::vector<Tensor> split(const Tensor& x, std::int64_t sections, std::int64_t axis = 0);
/// Parts of the given sizes along axis.
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t axis = 0);
/// np.tile: x repeated reps[i] times along axis i; the shorter of x's rank and reps is padded
/// with leading 1s (so the result has max(rank, reps.size()) axes). Repetitions must be >= 0.
Tensor tile(const Tensor& x, const std::vector<std::int64_t>& reps);
/// np.repeat with one count: each entry `repeats` times in a row along `axis`
/// ([1, 2] -> [1, 1, 2, 2]); tf.repeat. Without an axis, of the flattened tensor, as NumPy.
Tensor repeat(const Tensor& x, std::int64_t repeats, std::int64_t axis);
Tensor repeat(const Tensor& x, std::int64_t repeats);
/// np.pad in constant mode: pad_width holds one (before, after) pair per axis, or one pair for
/// every axis; the new entries are constant_value (converted to x's dtype). Widths must be >= 0.
Tensor pad(const Tensor& x, const std::vector<std::pair<std::int64_t, std::int64_t>>& pad_width,
           double constant_value = 0);
/// np.flip: x reversed along `axes` (every axis when empty), a view with negative steps.
Tensor flip(const Tensor& x, const std::vector<std::int64_t>& axes = {});
/// np.tril / np.triu over the last two axes (batched): x with the entries above (tril) or below
/// (triu) the k-th diagonal set to zero (false for bool); k > 0 is above the main diagonal.
Tensor tril(const Tensor& x, std::int64_t k = 0);
Tensor triu(const Tensor& x, std::int64_t k = 0);
/// [..., depth] float32 of 0/1; indices outside [0, depth) give an all-zero row (as TensorFlow).
Tensor one_hot(const Tensor& indices, std::int64_t depth, DType dtype = kFloat32);
/// What take_along_axis, take, gather, scatter_add, scatter_max and scatter_min do with an index
/// i outside [0, n) of an axis of length n (NumPy's and JAX's `mode=`; gather_nd, scatter_nd and
/// the unsorted_segment ops take it too, see theirs):
/// - Raise: IndexError naming the op, the index, the axis, its size and the input's shape (any
///   i < 0 too: unlike NumPy's raise, negative indices do not count from the end). The indices
///   are read on the host: on CUDA one copy back that waits for the device.
/// - Wrap: i mod n, floor modulo (NumPy's wrap): -1 is n - 1, n + 2 is 2.
/// - Clip: i clamped into [0, n - 1] (NumPy's clip, which does not count a negative index from
///   the end: -1 is 0, as np.take(a, [-1], mode="clip") gives a[0]).
/// - Fill: i in [-n, 0) counts from the end (i + n, as JAX normalises negative indices); any
///   other i outside [0, n) gives 0 in a gather and is dropped by scatter_add (JAX's fill and
///   drop with fill_value 0).
/// Wrap, Clip and Fill adjust the indices with tensor ops on their device and never read them
/// on the host (no synchronisation), so computed indices cost no round trip. On an empty axis
/// (n = 0) Wrap and Clip have nowhere to send an index: non-empty indices raise IndexError (as
/// NumPy's "cannot do a non-empty take from an empty axes"); Fill gives 0 / drops them all.
/// Gradients follow the adjusted index: a clipped take scatters its gradient into the clamped
/// position, a filled entry (0) has none, a dropped scatter_add value gets a zero gradient.
enum class IndexMode { Raise, Wrap, Clip, Fill };
/// NumPy's take_along_axis: indices (int32/int64) have x's rank and broadcast against it
/// except along `axis`; indices outside the axis as `mode` says.
Tensor take_along_axis(const Tensor& x, const Tensor& indices, std::int64_t axis, IndexMode mode = IndexMode::Raise);
/// NumPy's take with a 1-D index list: the entries `indices` along `axis` (rows of a batch);
/// indices outside the axis as `mode` says.
Tensor take(const Tensor& x, const Tensor& indices, std::int64_t axis = 0, IndexMode mode = IndexMode::Raise);
/// Per-example values: x [batch, classes], labels [batch] -> [batch] (x[i, labels[i]]); labels
/// outside the classes as `mode` says.
Tensor gather(const Tensor& x, const Tensor& labels, IndexMode mode = IndexMode::Raise);
/// base with src added at the given indices along axis (duplicates accumulate); the inverse
/// of take_along_axis. Indices outside the axis as `mode` says (fill drops their values).
Tensor scatter_add(const Tensor& base, const Tensor& indices, const Tensor& src, std::int64_t axis,
                   IndexMode mode = IndexMode::Raise);
/// base with src combined in at the given indices along axis by maximum / minimum (NaN
/// propagating, as maximum's): PyTorch's scatter_reduce(..., "amax" / "amin", include_self=True),
/// indices (and `mode`), shapes and dtypes as scatter_add's. Differentiable in base and src: each
/// result's gradient is split evenly among the values equal to it, base's included (as PyTorch's).
Tensor scatter_max(const Tensor& base, const Tensor& indices, const Tensor& src, std::int64_t axis,
                   IndexMode mode = IndexMode::Raise);
Tensor scatter_min(const Tensor& base, const Tensor& indices, const Tensor& src, std::int64_t axis,
                   IndexMode mode = IndexMode::Raise);
namespace detail {
/// take_along_axis and scatter_add for indices known to lie in range: the ones a tape saved
/// (checked when they were first used; the tape's version check refuses them if written since),
/// argsort's output, coordinates the caller has checked. They skip the bounds check, which on
/// CUDA copies the indices to the host and waits for the device. The kernels still never read or
/// write outside their tensors: a gather of an out-of-range index gives 0 and a scatter drops it.
Tensor take_along_axis_trusted(const Tensor& x, const Tensor& indices, std::int64_t axis);
Tensor scatter_add_trusted(const Tensor& base, const Tensor& indices, const Tensor& src, std::int64_t axis);
/// scatter_max (is_max) or scatter_min for trusted indices; without count_base, base's values
/// equal to a result take no share of its gradient (unsorted_segment_max's filler).
Tensor scatter_extremum_trusted(bool is_max, const Tensor& base, const Tensor& indices, const Tensor& src,
                                std::int64_t axis, bool count_base);
}  // namespace detail
/// TensorFlow's tf.where(condition) with one argument (np.argwhere): the int64 [n, rank]
/// coordinates of condition's true (non-zero; NaN counts as non-zero) entries in row-major order,
/// on condition's device. Any dtype; a rank-0 condition gives [0 or 1, 0]. n depends on the
/// values, so it is read on the host: on CUDA only n itself comes back (one int64, synchronising
/// with the device), the coordinates are computed there (an exclusive cumsum gives each true
/// entry its row, a scatter places the flat positions, a divide and mod per axis unravel them);
/// on the CPU one pass over the values. Not differentiable (an integer result).
Tensor nonzero(const Tensor& condition);
/// tf.boolean_mask: the entries of x where the bool `mask` is true, mask's axes merged into one.
/// mask's shape must equal x's shape over axes [axis, axis + mask.rank) (axis may be negative):
/// x [pre..., mask..., post...] -> [pre..., n, post...], n the number of trues, in row-major order.
/// take(x, nonzero(mask)) on the merged axis, so differentiable in x; synchronises on CUDA to
/// read the number of trues, as nonzero.
Tensor boolean_mask(const Tensor& x, const Tensor& mask, std::int64_t axis = 0);
/// tf.gather_nd: indices (int32/int64) [batch..., m..., k] hold coordinates into params' k axes
/// after its `batch_dims` leading axes, which must equal indices' first batch_dims axes:
/// params [batch..., p_0..p_{k-1}, rest...] -> [batch..., m..., rest...], each entry
/// params[b..., i_0, ..., i_{k-1}] (a slice when rest is not empty). A coordinate outside
/// [0, size) of its axis is handled as `mode` says (IndexMode), axis by axis:
/// - Raise (the default, TensorFlow's on the CPU): IndexError naming the index and params'
///   shape, negative coordinates too. The indices are read on the host (on CUDA one copy back
///   that waits for the device, as take's check).
/// - Wrap, Clip: each coordinate wrapped / clamped into its own axis.
/// - Fill: a coordinate in [-size, 0) counts from the end; an entry with any other coordinate
///   outside its axis is 0 (TensorFlow's gather_nd on a GPU, which also zeroes negative ones).
///   Wrap, Clip and Fill compute the rows with tensor ops on the indices' device: no host read.
/// Turned into flat rows for take, so differentiable in params (a filled entry has no gradient).
Tensor gather_nd(const Tensor& params, const Tensor& indices, std::int64_t batch_dims = 0,
                 IndexMode mode = IndexMode::Raise);
/// tf.scatter_nd: zeros(shape, updates' dtype) with updates [m..., rest...] added at the
/// coordinates indices [m..., k] into shape's first k axes (rest = shape[k:]); duplicates add.
/// Out-of-range coordinates as gather_nd's `mode` says, Fill dropping the update (TensorFlow's
/// scatter_nd on a GPU ignores it); Raise (the default) raises IndexError. Bool updates raise
/// DTypeError. A scatter_add on the flattened leading axes, so differentiable in updates (the
/// gradient is gather_nd's; a dropped update's is zero).
Tensor scatter_nd(const Tensor& indices, const Tensor& updates, const Shape& shape, IndexMode mode = IndexMode::Raise);
/// tf.tensor_scatter_nd_add: x with updates added as scatter_nd places them (x's dtype; updates
/// must not be float for an integer x, as scatter_add; `mode` as scatter_nd's). Differentiable
/// in x and updates.
Tensor tensor_scatter_nd_add(const Tensor& x, const Tensor& indices, const Tensor& updates,
                             IndexMode mode = IndexMode::Raise);
/// tf.math.unsorted_segment_sum / _mean / _max / _min: segment_ids (int32/int64) have a prefix
/// of data's shape, data [ids..., rest...] -> [num_segments, rest...], output[s] the sum / mean /
/// max / min of the rows of data whose id is s. Rows with a negative id are dropped in every
/// mode (as TensorFlow); an id >= num_segments is handled as `mode` says:
/// - Raise (the default, TensorFlow's on the CPU): IndexError naming the id. The ids are read on
///   the host (on CUDA one copy back that waits for the device).
/// - Wrap: id mod num_segments; Clip: segment num_segments - 1.
/// - Fill: the row is dropped, as TensorFlow's GPU kernels drop it (and JAX's segment_sum).
///   Wrap, Clip and Fill work on the ids' device: no host read, so they suit CUDA training loops.
/// An empty segment gives 0 (sum, mean) or the dtype's lowest value for max and highest for min
/// (-FLT_MAX / FLT_MAX for float32, not -inf / inf; INT_MIN / INT_MAX for integers), as
/// TensorFlow: a segment of -inf rows has max -FLT_MAX too. sum is a scatter_add; mean (float
/// data only) divides it by the counts (counted on the host for Raise, by a scatter_add of ones
/// otherwise); max and min are a scatter_max / scatter_min of the rows into that filler, memory
/// [num_segments, rest...]. All are differentiable in data (a dropped row's gradient is zero); a
/// segment's max (min) gradient is split evenly among its rows equal to it, as TensorFlow.
Tensor unsorted_segment_sum(const Tensor& data, const Tensor& segment_ids, std::int64_t num_segments,
                            IndexMode mode = IndexMode::Raise);
Tensor unsorted_segment_mean(const Tensor& data, const Tensor& segment_ids, std::int64_t num_segments,
                             IndexMode mode = IndexMode::Raise);
Tensor unsorted_segment_max(const Tensor& data, const Tensor& segment_ids, std::int64_t num_segments,
                            IndexMode mode = IndexMode::Raise);
Tensor unsorted_segment_min(const Tensor& data, const Tensor& segment_ids, std::int64_t num_segments,
                            IndexMode mode = IndexMode::Raise);
/// zeros(shape) with x written at the slice (starts, steps) of every axis; x's shape is the
/// slice's shape. The gradient of a slice.
Tensor slice_scatter(const Tensor& x, const Shape& shape, const std::vector<std::int64_t>& starts,
                     const std::vector<std::int64_t>& steps);

// ---------------------------------------------------------------- convolution, pooling, dropout
enum class Padding { Valid, Same };
/// 2-D convolution (cross-correlation, as TensorFlow). x [batch, h, w, c_in] (NHWC),
/// filters [kh, kw, c_in, c_out] (HWIO) -> [batch, oh, ow, c_out]. `dilation` spaces the
/// filter's taps (atrous convolution, TensorFlow's dilations): a kh x kw filter spans
/// (kh - 1) * dilation + 1 rows; stride and dilation may both exceed 1 here (Keras's layers refuse it).
Tensor conv2d(const Tensor& x, const Tensor& filters, std::int64_t stride = 1, Padding padding = Padding::Valid,
              std::int64_t dilation = 1);
/// Depthwise 2-D convolution (TensorFlow's depthwise_conv2d): each input channel convolved with
/// its own `mult` filters. x [batch, h, w, c], filters [kh, kw, c, mult] -> [batch, oh, ow,
/// c * mult], output channel k * mult + q from input channel k and filter q; stride, padding
/// and dilation as conv2d's.
Tensor depthwise_conv2d(const Tensor& x, const Tensor& filters, std::int64_t stride = 1,
                        Padding padding = Padding::Valid, std::int64_t dilation = 1);
/// Transposed convolution (TensorFlow's conv2d_transpose): the gradient of conv2d with respect to
/// its input. x [batch, h, w, c_in], filters [kh, kw, c_out, c_in] (conv2d's filters of the
/// forward convolution from [batch, out_h, out_w, c_out] to x) -> [batch, out_h, out_w, c_out].
/// The output size must be one whose conv2d windows (stride, padding, dilation) are h x w
/// (ShapeError otherwise); Keras's Conv2DTranspose chooses it.
Tensor conv2d_transpose(const Tensor& x, const Tensor& filters, std::int64_t out_h, std::int64_t out_w,
                        std::int64_t stride = 1, Padding padding = Padding::Valid, std::int64_t dilation = 1);
/// Max over pool x pool windows (stride 0, the default, is pool; a negative one raises
/// ValueError). x [batch, h, w, c].
Tensor max_pool2d(const Tensor& x, std::int64_t pool = 2, std::int64_t stride = 0, Padding padding = Padding::Valid);
Tensor avg_pool2d(const Tensor& x, std::int64_t pool = 2, std::int64_t stride = 0, Padding padding = Padding::Valid);
/// Every kh x kw window of x [batch, h, w, c] (NHWC) at conv2d's stride, padding and dilation,
/// as [batch, oh, ow, kh * kw, c]: tap di * kw + dj of window (i, j) is
/// x[:, i * stride - top + di * dilation, j * stride - left + dj * dilation, :], or `fill` where
/// that lies in the padding (TensorFlow's extract_patches with rates, PyTorch's unfold, channels
/// last). conv2d is im2col then one matmul.
Tensor im2col(const Tensor& x, std::int64_t kh, std::int64_t kw, std::int64_t stride = 1,
              Padding padding = Padding::Valid, double fill = 0, std::int64_t dilation = 1);
/// im2col's adjoint (PyTorch's fold): cols [batch, oh, ow, kh * kw, c] of an [h, w] image back to
/// [batch, h, w, c], each element the sum of the entries im2col reads from it.
Tensor col2im(const Tensor& cols, std::int64_t h, std::int64_t w, std::int64_t kh, std::int64_t kw,
              std::int64_t stride = 1, Padding padding = Padding::Valid, std::int64_t dilation = 1);
/// Max pooling's selection: v [batch, h, w, c] (x's shape) taken, in every pool x pool window
/// (max_pool2d's), at the position of x's first maximum (row-major within the window; NaN
/// wins): [batch, oh, ow, c]. max_pool2d(x) is max_pool_select(x, x); x only picks positions,
/// so no gradient flows to it through here (as through an argmax).
Tensor max_pool_select(const Tensor& x, const Tensor& v, std::int64_t pool = 2, std::int64_t stride = 0,
                       Padding padding = Padding::Valid);
/// max_pool_select's adjoint in v, max pooling's gradient: g [batch, oh, ow, c] added back at
/// the positions of x [batch, h, w, c] that the windows select; x's shape.
Tensor max_pool_scatter(const Tensor& x, const Tensor& g, std::int64_t pool = 2, std::int64_t stride = 0,
                        Padding padding = Padding::Valid);
/// Inverted dropout: each element is zeroed with probability `rate`, the rest scaled by 1/(1 - rate).
Tensor dropout(const Tensor& x, double rate, Generator& gen);

// ---------------------------------------------------------------- checks that do not wait

/// Checks a condition computed where its data live, without waiting for a device: `ok` is a
/// 0-d tensor (e.g. reduce_all(labels < n)). On the CPU it is read at once. On a CUDA device
/// it is read at the calling thread's next read of device values (to(Device::cpu()), item(),
/// to_vector(), cuda::synchronize()), which, once its own copy is done, throws
/// `raise(message)` if `ok` was false. Checks with the same message are combined on the
/// device (one logical_and), so a loop that adds one per step holds one; past 64 messages
/// they are all read. The sparse losses' labels and Embedding's indices are checked this way
/// on a device.
void check_later(const Tensor& ok, std::string message, void (*raise)(const std::string& message));
/// check_later raising E (an Error type): check_later<IndexError>(ok, "...").
template <class E>
void check_later(const Tensor& ok, std::string message) {
  check_later(ok, std::move(message), [](const std::string& m) { throw E(m); });
}

}  // namespace tapeflow
