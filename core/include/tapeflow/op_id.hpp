#pragma once
/// The op enum and its tables, derived from ops.def. Dependency-free: kernels include it too.
#include <array>
#include <cstddef>

namespace tapeflow {

enum class OpKind { Unary, Binary, Compare, Logical, Ternary, Reduce, ArgReduce, Matmul, View, Other };

enum class OpId {
#define TAPEFLOW_OP(id, name, kind, diff) id,
#include "tapeflow/ops.def"
#undef TAPEFLOW_OP
};

inline constexpr std::size_t kNumOps = 0
#define TAPEFLOW_OP(id, name, kind, diff) +1
#include "tapeflow/ops.def"
#undef TAPEFLOW_OP
    ;

struct OpInfo {
  const char* name;
  OpKind kind;
  bool differentiable;
};

inline constexpr std::array<OpInfo, kNumOps> kOpInfo = {{
#define TAPEFLOW_OP(id, name, kind, diff) {name, OpKind::kind, diff},
#include "tapeflow/ops.def"
#undef TAPEFLOW_OP
}};

constexpr const OpInfo& op_info(OpId op) { return kOpInfo[static_cast<std::size_t>(op)]; }
constexpr const char* op_name(OpId op) { return op_info(op).name; }

}  // namespace tapeflow
