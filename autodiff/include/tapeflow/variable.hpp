#pragma once
/// Variable: a named tensor that tapes watch automatically when it is trainable.
#include <string>

#include "tapeflow/tensor.hpp"

namespace tapeflow {

/// A Tensor that owns its buffer, has a name, and is watched by every active GradientTape
/// (unless the tape was made with watch_accessed_variables off, or the variable is not
/// trainable). Use it wherever a Tensor goes. assign* write in place and are not recorded.
class Variable : public Tensor {
 public:
  Variable() = default;
  /// Copies `initial` into a new buffer.
  explicit Variable(const Tensor& initial, std::string name = "", bool trainable = true);

  const std::string& name() const;
  bool trainable() const;
  Variable& assign(const Tensor& value);
  Variable& assign_add(const Tensor& delta);
  Variable& assign_sub(const Tensor& delta);
};

}  // namespace tapeflow
