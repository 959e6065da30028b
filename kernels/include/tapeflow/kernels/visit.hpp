#pragma once
// Host-side helpers every backend (naive, cpu, cuda) shares: the op visitor over ops.def and
// the identities of max and min.
#include <limits>
#include <type_traits>

#include "tapeflow/op_id.hpp"

namespace tapeflow::kernels {

// Calls f(std::integral_constant<OpId, op>) for the op when its ops.def row has one of the
// wanted kinds. The switch lists every row, and f is instantiated for every row of a wanted
// kind, so a row without its functor is a compile error, never a silent no-op. Ops of other
// kinds never reach the kernels (the front-ends dispatch by kind).
template <OpKind k1, OpKind k2, OpId op, class F>
void visit_if(F& f) {
  if constexpr (op_info(op).kind == k1 || op_info(op).kind == k2) f(std::integral_constant<OpId, op>{});
}
template <OpKind k1, OpKind k2 = k1, class F>
void visit_op(OpId op, F&& f) {
  switch (op) {
#define TAPEFLOW_OP(id, name, kind, diff) \
  case OpId::id:                          \
    visit_if<k1, k2, OpId::id>(f);        \
    break;
#include "tapeflow/ops.def"
#undef TAPEFLOW_OP
  }
}

// The identity of max (-inf, or the lowest integer) and of min (+inf, or the largest).
template <class T>
T lowest_or_neg_inf() {
  if constexpr (std::numeric_limits<T>::has_infinity) return -std::numeric_limits<T>::infinity();
  return std::numeric_limits<T>::lowest();
}
template <class T>
T max_or_inf() {
  if constexpr (std::numeric_limits<T>::has_infinity) return std::numeric_limits<T>::infinity();
  return std::numeric_limits<T>::max();
}

}  // namespace tapeflow::kernels
