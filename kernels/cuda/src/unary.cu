// unary: out = UnaryFn<op>(in, p0, p1), element-wise (elementwise.cuh has the kernels).
#include "elementwise.cuh"

namespace tapeflow::kernels::cuda {
namespace {

using detail::i64;

// UnaryFn<op> with its scalar parameters bound.
template <OpId op, class T>
struct Unary {
  double p0, p1;
  __device__ T operator()(T x) const { return UnaryFn<op>{}(x, p0, p1); }
};

// A float-only op on integers, as the naive kernel computes it: std:: math promotes the
// integer to double (pow_scalar's exponent is first converted to T: std::pow(x, T(p0))).
template <OpId op, class T>
struct Promoted {
  double p0, p1;
  __device__ T operator()(T x) const {
    const double e = op == OpId::PowScalar ? static_cast<double>(static_cast<T>(p0)) : p0;
    return static_cast<T>(UnaryFn<op>{}(static_cast<double>(x), e, p1));
  }
};

}  // namespace

template <class T>
void unary(OpId op, T* out, const Layout& out_l, const T* in, const Layout& in_l, double p0, double p1) {
  visit_op<OpKind::Unary>(op, [&](auto tag) {
    constexpr OpId id = decltype(tag)::value;
    if constexpr (std::is_integral_v<T> && detail::float_only(id)) {
      detail::launch_map1<false>(out, out_l, in, in_l, Promoted<id, T>{p0, p1});
    } else {
      detail::launch_map1<true>(out, out_l, in, in_l, Unary<id, T>{p0, p1});
    }
  });
}

template void unary<std::int32_t>(OpId, std::int32_t*, const Layout&, const std::int32_t*, const Layout&, double,
                                  double);
template void unary<std::int64_t>(OpId, std::int64_t*, const Layout&, const std::int64_t*, const Layout&, double,
                                  double);
template void unary<float>(OpId, float*, const Layout&, const float*, const Layout&, double, double);
template void unary<double>(OpId, double*, const Layout&, const double*, const Layout&, double, double);

}  // namespace tapeflow::kernels::cuda
