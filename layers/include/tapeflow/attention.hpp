#pragma once
/// Keras's MultiHeadAttention (keras.layers.MultiHeadAttention, Keras 3.15): scaled dot-product
/// attention over several heads, with Keras's weights, masks and dropout. Ordinary user code on
/// the public API; the tape differentiates it.
///
///     layers::MultiHeadAttention mha(/*num_heads=*/4, /*key_dim=*/16);
///     Tensor y = mha(x, x);                            // self-attention: [B, T, dim] -> [B, T, dim]
///     AttentionCall args;
///     args.value_mask = padding;                       // [B, S], nonzero = a real step
///     args.use_causal_mask = true;
///     AttentionOutput r = mha.with_scores(x, x, args); // r.scores: [B, heads, T, T]
///
///     KerasTensor h = (*shared_mha)({x, x});           // in a functional model: [query, value(, key)]
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tapeflow/functional.hpp"
#include "tapeflow/layers.hpp"

namespace tapeflow {
namespace layers {

struct MultiHeadAttentionOptions {
  /// Size of each head for the value; 0: key_dim (Keras's None).
  std::int64_t value_dim = 0;
  /// Dropout rate on the attention probabilities, in training only, drawn from the layer's
  /// generator (set_seed); in [0, 1).
  double dropout = 0;
  bool use_bias = true;
  /// Size of the output's last axis; 0: the query's last axis (Keras's None). Keras also takes
  /// a tuple here; only one axis is supported.
  std::int64_t output_shape = 0;
  /// For the four projections' kernels and biases (Keras's defaults).
  Initializer kernel_initializer = initializers::glorot_uniform;
  Initializer bias_initializer = initializers::zeros;
  /// Penalties on every projection's kernel and bias (see DenseOptions).
  Regularizer kernel_regularizer, bias_regularizer;
  std::string name;
};

/// The optional arguments of a MultiHeadAttention call (Keras's call keywords). Every mask is
/// bool or numeric (nonzero: attend) and may live on any device.
struct AttentionCall {
  /// [B, S, key features]; undefined: the value.
  Tensor key;
  /// [B, T, S]: which keys each query may attend to; [T, S] or [1, T, S] broadcast.
  Tensor attention_mask;
  /// [B, T]: the query's steps (Keras's query_mask; see MultiHeadAttention for a Keras quirk).
  Tensor query_mask;
  /// [B, S]: the value's and the key's steps.
  Tensor value_mask, key_mask;
  /// Each query step i attends to key steps j <= i only.
  bool use_causal_mask = false;
  /// Turns on dropout.
  bool training = false;
};

/// A call's result with Keras's return_attention_scores=True.
struct AttentionOutput {
  Tensor output;  ///< [B, T, output_shape]
  Tensor scores;  ///< the attention probabilities [B, heads, T, S], before dropout
};

/// Keras's MultiHeadAttention on inputs of rank 3: query [B, T, dq], value [B, S, dv] and key
/// [B, S, dk] (default: the value) are projected to heads, q [B, T, heads, key_dim],
/// k [B, S, heads, key_dim], v [B, S, heads, value_dim]; the scores softmax(q k^T / sqrt(key_dim))
/// over the key axis weigh v, and the heads are projected to [B, T, output_shape].
///
/// Matches Keras: the weights, their shapes, order and names ("<layer>/query/kernel"
/// [dq, heads, key_dim], "<layer>/query/bias" [heads, key_dim], the same for "key" and "value"
/// (value_dim), "<layer>/attention_output/kernel" [heads, value_dim, out] and its bias [out]), so
/// Keras's get_weights() load one to one; the four projections are sublayers named query, key,
/// value and attention_output (Keras's EinsumDense); the masks are combined as Keras's
/// _compute_attention_mask (compute_attention_mask()) and applied as Keras's Softmax with a mask:
/// masked scores are replaced by -1e9 before the softmax and masked probabilities set to 0 after
/// it, so a query whose keys are all masked gets probabilities of 0 (its output is the output
/// bias).
///
/// Differs from Keras: only rank-3 inputs and the default attention_axes (ValueError naming the
/// shapes otherwise); no sliding_window, use_gate, constraints or activity regularizer. In a
/// model, the masks of the query, value and key come from the graph (an Embedding with
/// mask_zero, a Masking layer) and the output carries the query's, as in Keras; eagerly, pass
/// them in AttentionCall. Keras 3.15's call()
/// replaces an explicit query_mask by the query's propagated mask (so there it only works
/// through an Embedding(mask_zero=True) or Masking before), and its fused path (no dropout, no
/// scores) gives a fully masked query uniform probabilities, not zeros; here query_mask always
/// applies and a fully masked row is always 0, as in Keras's scores path.
///
/// It is a list layer (Merge): `mha({query, value})` or `mha({query, value, key})`, eagerly or
/// on KerasTensors in a functional model (training reaches the dropout). Errors (ValueError,
/// ShapeError) name the layer and the shapes. The weights are made at the first call, from the
/// query's, value's and key's last axes; later calls must keep them.
class MultiHeadAttention : public Merge {
 public:
  MultiHeadAttention(std::int64_t num_heads, std::int64_t key_dim, MultiHeadAttentionOptions options = {});

  using Merge::operator();
  /// The attention output [B, T, out] of query [B, T, dq] over value [B, S, dv].
  Tensor operator()(const Tensor& query, const Tensor& value, const AttentionCall& args = {});
  /// The output and the attention scores (Keras's return_attention_scores=True).
  AttentionOutput with_scores(const Tensor& query, const Tensor& value, const AttentionCall& args = {});
  /// [query, value] or [query, value, key], in inference.
  Tensor merge(const std::vector<Tensor>& inputs) override;
  /// The list call with the inputs' masks (a Functional model's, from an Embedding with
  /// mask_zero or a Masking layer): the query's, value's and key's masks are query_mask,
  /// value_mask and key_mask, as Keras takes them from the tensors' _keras_mask.
  Tensor merge_masked(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks, bool training) override;
  /// [B, T, out] for query [B, T, dq]: out is options.output_shape, else dq; the checks of a call.
  Shape compute_output_shape(const std::vector<Shape>& input_shapes) const override;
  using Merge::compute_output_shape;
  /// The query's mask (Keras sets it on the output); none without one.
  Tensor compute_mask(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const override;
  using Merge::compute_mask;

  /// Keras's _compute_attention_mask: query_mask[:, :, None] & value_mask[:, None, :] &
  /// key_mask[:, None, :] & the causal mask [1, T, S] (j <= i), then & attention_mask; bool,
  /// [B or 1, T, S], on the query's device; undefined when there is no mask. ShapeError naming
  /// the layer and the shapes for a mask of the wrong shape.
  Tensor compute_attention_mask(const Tensor& query, const Tensor& value, const AttentionCall& args) const;

  std::int64_t num_heads() const { return num_heads_; }
  std::int64_t key_dim() const { return key_dim_; }
  std::int64_t value_dim() const { return options_.value_dim; }
  double dropout() const { return options_.dropout; }
  bool use_bias() const { return options_.use_bias; }


 private:
  AttentionOutput attend(const Tensor& query, const Tensor& value, const AttentionCall& args);
  void check_inputs(const Shape& query, const Shape& value, const Shape& key) const;
  void check_list_size(const std::vector<Shape>& input_shapes) const;

  std::int64_t num_heads_, key_dim_;
  MultiHeadAttentionOptions options_;
  std::shared_ptr<Layer> query_dense_, key_dense_, value_dense_, output_dense_;
  Shape input_dims_;  // the query's, value's and key's last axes at the first call
};

}  // namespace layers
}  // namespace tapeflow
