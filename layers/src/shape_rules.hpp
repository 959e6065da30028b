#pragma once
// Helpers of the layers' compute_output_shape (Keras's symbolic shape inference): an axis of
// size -1 is unknown (None) and never fails a check; a result axis that depends on one is -1.
#include <fmt/format.h>

#include <cstdint>
#include <string>

#include "tapeflow/layers.hpp"

namespace tapeflow::layers::detail {

// A layer in messages: its name, or before a model named it, its default name.
inline std::string label(const Layer& layer) { return layer.name().empty() ? layer.default_name() : layer.name(); }

// Two sizes that are both known and differ.
inline bool differ(std::int64_t a, std::int64_t b) { return a >= 0 && b >= 0 && a != b; }

// a * b, unknown when either is.
inline std::int64_t times(std::int64_t a, std::int64_t b) { return a < 0 || b < 0 ? -1 : a * b; }

// The output length of a window of `span` taps (the dilated kernel) sliding by `stride` over
// `in` steps, as the core's conv and pooling ops compute it (TensorFlow's): ceil(in / stride)
// with same padding, (in - span) / stride + 1 with valid padding, where in < span is the
// ShapeError the op raises, in the layer's name.
inline std::int64_t window_length(std::int64_t in, std::int64_t span, std::int64_t stride, Padding padding,
                                  const Layer& layer, const char* op, const Shape& input_shape) {
  if (in < 0) return -1;
  if (padding == Padding::Same) return in / stride + (in % stride != 0 ? 1 : 0);
  if (in < span) {
    throw ShapeError(fmt::format("{}: {}: window {} is larger than the input {} (shape {}) with valid padding",
                                 label(layer), op, span, in, shape_str(input_shape)));
  }
  return (in - span) / stride + 1;
}

// ShapeError unless `input_shape` has `rank` axes: "<layer>: expected inputs <what>, got <shape>".
inline void expect_rank(const Shape& input_shape, std::size_t rank, const char* what, const Layer& layer) {
  if (input_shape.size() != rank) {
    throw ShapeError(fmt::format("{}: expected inputs {}, got {}", label(layer), what, shape_str(input_shape)));
  }
}

// ShapeError for a shape without even a batch axis (every layer's input has one), for the
// compute_output_shape overrides that read axis 0 or the last axis.
inline void expect_batch_axis(const Shape& input_shape, const Layer& layer) {
  if (input_shape.empty()) {
    throw ShapeError(fmt::format("{}: expected inputs with a batch axis, got a scalar shape []", label(layer)));
  }
}

/// "bilinear" or "nearest" (ValueError naming `layer` otherwise); shared by the image layers
/// (augmentation.cpp, image.cpp).
Interpolation interpolation_from_name(const std::string& name, const std::string& layer);

}  // namespace tapeflow::layers::detail
