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
#include <optional>
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
  Tensor output;  ///< [B, T, output_shape] (MultiHeadAttention), [B, T, dv] (Attention)
  /// The attention probabilities before dropout: [B, heads, T, S] (MultiHeadAttention),
  /// [B, T, S] (Attention, AdditiveAttention).
  Tensor scores;
};

/// What MultiHeadAttention, Attention and AdditiveAttention share: a call on a query and a value
/// with AttentionCall's arguments, and the list call [query, value(, key)] of Keras (a Merge),
/// eagerly or on KerasTensors in a functional model (training reaches the dropout).
class AttentionLayer : public Merge {
 public:
  using Merge::operator();
  /// The attention output [B, T, out] of query [B, T, dq] over value [B, S, dv].
  Tensor operator()(const Tensor& query, const Tensor& value, const AttentionCall& args = {});
  /// The output and the attention scores (Keras's return_attention_scores=True).
  AttentionOutput with_scores(const Tensor& query, const Tensor& value, const AttentionCall& args = {});
  /// [query, value] or [query, value, key], in inference.
  Tensor merge(const std::vector<Tensor>& inputs) override;
  /// The list call with the inputs' masks (a Functional model's, from an Embedding with
  /// mask_zero or a Masking layer): the query's and value's masks are query_mask and
  /// value_mask, as Keras takes them from the tensors' _keras_mask; the key's is key_mask where
  /// the layer takes one (MultiHeadAttention), else ignored as in Keras.
  Tensor merge_masked(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks, bool training) override;
  /// The query's mask (Keras sets it on the output); none without one.
  Tensor compute_mask(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const override;
  using Merge::compute_mask;

 protected:
  /// `key_mask`: the layer takes the key's mask in a list call.
  AttentionLayer(std::string class_name, std::string name, bool key_mask);
  /// The layer's computation, after it is named and placed (invoke); checks its inputs.
  virtual AttentionOutput attend(const Tensor& query, const Tensor& value, const AttentionCall& args) = 0;

 private:
  bool key_mask_;
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
class MultiHeadAttention : public AttentionLayer {
 public:
  MultiHeadAttention(std::int64_t num_heads, std::int64_t key_dim, MultiHeadAttentionOptions options = {});

  /// [B, T, out] for query [B, T, dq]: out is options.output_shape, else dq; the checks of a call.
  Shape compute_output_shape(const std::vector<Shape>& input_shapes) const override;
  using Merge::compute_output_shape;

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

 protected:
  AttentionOutput attend(const Tensor& query, const Tensor& value, const AttentionCall& args) override;

 private:
  void check_inputs(const Shape& query, const Shape& value, const Shape& key) const;

  std::int64_t num_heads_, key_dim_;
  MultiHeadAttentionOptions options_;
  std::shared_ptr<Layer> query_dense_, key_dense_, value_dense_, output_dense_;
  Shape input_dims_;  // the query's, value's and key's last axes at the first call
};

struct AttentionOptions {
  /// A trainable scalar "scale" (initialised to 1) multiplies the scores (Keras's use_scale).
  bool use_scale = false;
  /// "dot": scores = q k^T; "concat": scores = concat_score_weight * sum(tanh(q + k), -1)
  /// (the scale, with use_scale, multiplies q + k inside the tanh). ValueError for another.
  std::string score_mode = "dot";
  /// Dropout rate on the attention probabilities, in training only; in [0, 1).
  double dropout = 0;
  /// Seeds the layer's generator (Keras's seed; set_seed does the same); unset: the layer's own.
  std::optional<std::uint64_t> seed;
  std::string name;
};

/// Keras's Attention (keras.layers.Attention, Keras 3.15): Luong-style dot-product attention,
/// with no projections. query [B, Tq, dim], value [B, Tv, dv], key [B, Tv, dim] (default: the
/// value); scores [B, Tq, Tv] as AttentionOptions::score_mode says, softmax over Tv, output
/// probs @ value: [B, Tq, dv].
///
///     layers::Attention att;
///     Tensor y = att(query, value);                    // [B, Tq, dv]
///     AttentionCall args;
///     args.value_mask = padding;                       // [B, Tv], nonzero = a real step
///     AttentionOutput r = att.with_scores(query, value, args);  // r.scores: [B, Tq, Tv]
///     KerasTensor h = (*shared_att)({q, v});           // functional: [query, value(, key)]
///
/// Matches Keras: the weights "<layer>/scale" [] (use_scale) and "<layer>/concat_score_weight" []
/// ("concat"), both initialised to 1, in that order; the masks as Keras's _apply_scores: where
/// the value mask (value_mask [B, Tv]) or the causal mask (use_causal_mask: j <= i) is false,
/// 1e9 is subtracted from the score before the softmax (the probabilities are not zeroed after
/// it, so a query whose keys are all masked gets about the softmax of its unmasked scores in
/// float64 and uniform probabilities in float32, as in Keras); the output is 0 where the query
/// mask (query_mask [B, Tq]) is false; the scores returned are the probabilities before dropout.
/// AttentionCall's key_mask and attention_mask are not Keras's Attention arguments (ValueError);
/// in a model the query's and value's masks come from the graph (the key's is ignored, as in
/// Keras) and the output carries the query's.
///
/// An AttentionLayer: `att(query, value, args)`, `att.with_scores(...)` (scores [B, Tq, Tv]),
/// `att({query, value(, key)})`, eagerly or on KerasTensors. Errors
/// (ValueError, ShapeError) name the layer and the shapes: inputs of rank 3, one batch size,
/// value and key with the same steps, query and key with the same features.
class Attention : public AttentionLayer {
 public:
  explicit Attention(AttentionOptions options = {});

  /// [B, Tq, dv] for query [B, Tq, dim] and value [B, Tv, dv]; the checks of a call.
  Shape compute_output_shape(const std::vector<Shape>& input_shapes) const override;
  using Merge::compute_output_shape;

  bool use_scale() const { return use_scale_; }
  const std::string& score_mode() const { return score_mode_; }
  double dropout() const { return dropout_; }

 protected:
  /// For AdditiveAttention: `additive` scores with a scale of [dim].
  Attention(std::string class_name, bool additive, AttentionOptions options);
  AttentionOutput attend(const Tensor& query, const Tensor& value, const AttentionCall& args) override;

 private:
  Tensor scores(const Tensor& query, const Tensor& key) const;
  void check_inputs(const Shape& query, const Shape& value, const Shape& key) const;

  bool additive_, use_scale_;
  std::string score_mode_;
  double dropout_;
  bool made_ = false;  // the weights exist (made at the first call, after its checks)
  Variable scale_, concat_score_weight_;
  std::int64_t dim_ = -1;  // the query's features at the first call (AdditiveAttention's scale)
};

struct AdditiveAttentionOptions {
  /// A trainable "scale" [dim] (glorot_uniform, as Keras) weighs the tanh's features; off: 1.
  bool use_scale = true;
  /// Dropout rate on the attention probabilities, in training only; in [0, 1).
  double dropout = 0;
  /// Seeds the layer's generator (Keras's seed keyword); unset: the layer's own.
  std::optional<std::uint64_t> seed;
  std::string name;
};

/// Keras's AdditiveAttention (keras.layers.AdditiveAttention, Keras 3.15): Bahdanau-style
/// attention, scores [B, Tq, Tv] = sum(scale * tanh(q[:, :, None, :] + k[:, None, :, :]), -1)
/// with the weight "<layer>/scale" [dim] (dim: the query's features at the first call; later
/// calls must keep it, ShapeError otherwise). Everything else (masks, dropout, scores, the list
/// call) is Attention's.
class AdditiveAttention : public Attention {
 public:
  explicit AdditiveAttention(AdditiveAttentionOptions options = {});
};

}  // namespace layers
}  // namespace tapeflow
