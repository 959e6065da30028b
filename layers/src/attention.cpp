// Keras's MultiHeadAttention as a short function of public tensor ops: four projections, a
// masked softmax over the key axis, dropout on the probabilities.
#include "tapeflow/attention.hpp"

#include <fmt/format.h>

#include <cmath>

#include "shape_rules.hpp"

namespace tapeflow {
namespace layers {

namespace {

using detail::label;

std::int64_t product(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

// "query [B, T, dq], value [B, S, dv], key [B, S, dk]", for the errors
std::string qvk_str(const Shape& query, const Shape& value, const Shape& key) {
  return fmt::format("query {}, value {}, key {}", shape_str(query), shape_str(value), shape_str(key));
}

// The checks every attention layer makes of query [B, T, dq], value [B, S, dv] and key
// [B, S, dk]: rank 3, one batch size, the value's and the key's steps. `rank_note` ends the
// rank error's parenthesis.
void check_qvk(const Layer& layer, const Shape& query, const Shape& value, const Shape& key, const char* rank_note) {
  if (query.size() != 3 || value.size() != 3 || key.size() != 3) {
    throw ValueError(fmt::format("{}: expected query, value and key of rank 3 ([batch, steps, features]{}), got {}",
                                 label(layer), rank_note, qvk_str(query, value, key)));
  }
  using detail::differ;
  if (differ(value[0], query[0]) || differ(key[0], query[0])) {
    throw ValueError(fmt::format("{}: the batch sizes differ: {}", label(layer), qvk_str(query, value, key)));
  }
  if (differ(value[1], key[1])) {
    throw ValueError(fmt::format("{}: value and key must agree in every axis but the last: {}", label(layer),
                                 qvk_str(query, value, key)));
  }
}

// ValueError unless a list call holds [query, value] or [query, value, key].
void check_qvk_list(const Layer& layer, const std::vector<Shape>& input_shapes) {
  if (input_shapes.size() != 2 && input_shapes.size() != 3) {
    std::string shapes;
    for (const auto& s : input_shapes) shapes += (shapes.empty() ? "" : ", ") + shape_str(s);
    throw ValueError(fmt::format("{}: takes [query, value] or [query, value, key], got {} inputs: {}", label(layer),
                                 input_shapes.size(), shapes));
  }
}

// Keras's EinsumDense as MultiHeadAttention uses it: the input's last `contract` axes against
// the kernel's first ones. x [B, T, in...] -> [B, T, out...]; kernel [in..., out...], bias [out...].
class EinsumDense : public Layer {
 public:
  EinsumDense(std::string name, std::size_t contract, Shape out, const MultiHeadAttentionOptions& o)
      : Layer("EinsumDense", std::move(name)), contract_(contract), out_(std::move(out)), options_(o) {}

  /// The output's axes, until the first call builds the layer.
  void set_output_axes(Shape out) { out_ = std::move(out); }

  void build(const Shape& input_shape) override {
    in_.assign(input_shape.end() - static_cast<std::ptrdiff_t>(contract_), input_shape.end());
    Shape kernel_shape = in_;
    kernel_shape.insert(kernel_shape.end(), out_.begin(), out_.end());
    kernel_ = add_weight("kernel", kernel_shape, options_.kernel_initializer, true, options_.kernel_regularizer);
    if (options_.use_bias) bias_ = add_weight("bias", out_, options_.bias_initializer, true, options_.bias_regularizer);
  }

  Tensor call(const Tensor& x, bool) override {
    // x [B, T, in...] as [B, T, prod(in)] @ kernel [prod(in), prod(out)] -> [B, T, out...]
    Tensor y = matmul(x.reshape({x.dim(0), x.dim(1), product(in_)}), kernel_.reshape({product(in_), product(out_)}));
    Shape shape = {x.dim(0), x.dim(1)};
    shape.insert(shape.end(), out_.begin(), out_.end());
    y = y.reshape(shape);
    return options_.use_bias ? y + bias_ : y;
  }

 private:
  std::size_t contract_;
  Shape in_, out_;
  MultiHeadAttentionOptions options_;  // the owning layer's initializers, regularizers, use_bias
  Variable kernel_, bias_;
};

}  // namespace

// ================================================================ AttentionLayer

AttentionLayer::AttentionLayer(std::string class_name, std::string name, bool key_mask)
    : Merge(std::move(class_name), std::move(name)), key_mask_(key_mask) {}

AttentionOutput AttentionLayer::with_scores(const Tensor& query, const Tensor& value, const AttentionCall& args) {
  if (!query.defined() || !value.defined()) {
    throw ValueError(fmt::format("{}: the {} is undefined", label(*this), query.defined() ? "value" : "query"));
  }
  AttentionOutput out;
  invoke(query.shape(), query.device(), [&] {
    out = attend(query, value, args);
    return out.output;
  });
  return out;
}

Tensor AttentionLayer::operator()(const Tensor& query, const Tensor& value, const AttentionCall& args) {
  return with_scores(query, value, args).output;
}

Tensor AttentionLayer::merge(const std::vector<Tensor>& inputs) { return merge_masked(inputs, {}, false); }

Tensor AttentionLayer::compute_mask(const std::vector<Tensor>&, const std::vector<Tensor>& masks) const {
  return masks.empty() ? Tensor() : masks[0];
}

Tensor AttentionLayer::merge_masked(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks,
                                    bool training) {
  std::vector<Shape> input_shapes;
  for (const auto& x : inputs) input_shapes.push_back(x.shape());
  check_qvk_list(*this, input_shapes);
  check_list(inputs, 2);
  AttentionCall args;
  args.training = training;
  if (inputs.size() == 3) args.key = inputs[2];
  if (masks.size() == inputs.size()) {
    args.query_mask = masks[0];
    args.value_mask = masks[1];
    if (key_mask_ && masks.size() == 3) args.key_mask = masks[2];
  }
  return attend(inputs[0], inputs[1], args).output;
}

// ================================================================ MultiHeadAttention

MultiHeadAttention::MultiHeadAttention(std::int64_t num_heads, std::int64_t key_dim, MultiHeadAttentionOptions options)
    : AttentionLayer("MultiHeadAttention", options.name, true),
      num_heads_(num_heads),
      key_dim_(key_dim),
      options_(std::move(options)) {
  const auto positive = [](std::int64_t v, const char* what, bool zero_ok) {
    if (v < 0 || (v == 0 && !zero_ok)) {
      throw ValueError(fmt::format("MultiHeadAttention: {} must be a positive integer{}, got {}", what,
                                   zero_ok ? " (or 0 for the default)" : "", v));
    }
  };
  positive(num_heads, "num_heads", false);
  positive(key_dim, "key_dim", false);
  positive(options_.value_dim, "value_dim", true);
  positive(options_.output_shape, "output_shape", true);
  if (!(options_.dropout >= 0 && options_.dropout < 1)) {
    throw ValueError(fmt::format("MultiHeadAttention: dropout must be in [0, 1), got {}", options_.dropout));
  }
  if (options_.value_dim == 0) options_.value_dim = key_dim;
  // Keras's sublayers, in Keras's order: their weights are the layer's, in get_weights() order
  query_dense_ = track(std::make_shared<EinsumDense>("query", 1, Shape{num_heads, key_dim}, options_));
  key_dense_ = track(std::make_shared<EinsumDense>("key", 1, Shape{num_heads, key_dim}, options_));
  value_dense_ = track(std::make_shared<EinsumDense>("value", 1, Shape{num_heads, options_.value_dim}, options_));
  // [B, T, N, value_dim] -> [B, T, out]; out is the query's last axis unless output_shape says
  output_dense_ = track(std::make_shared<EinsumDense>("attention_output", 2, Shape{options_.output_shape}, options_));
}

void MultiHeadAttention::check_inputs(const Shape& query, const Shape& value, const Shape& key) const {
  check_qvk(*this, query, value, key, "; attention over several axes is not supported");
  using detail::differ;
  if (!input_dims_.empty() &&
      (differ(query[2], input_dims_[0]) || differ(value[2], input_dims_[1]) || differ(key[2], input_dims_[2]))) {
    throw ShapeError(fmt::format("{}: built for query, value and key features {}, got {}", label(*this),
                                 shape_str(input_dims_), qvk_str(query, value, key)));
  }
}

Shape MultiHeadAttention::compute_output_shape(const std::vector<Shape>& input_shapes) const {
  check_qvk_list(*this, input_shapes);
  check_list(input_shapes, 2);
  const Shape& query = input_shapes[0];
  check_inputs(query, input_shapes[1], input_shapes.size() == 3 ? input_shapes[2] : input_shapes[1]);
  // [B, T, out]: out is output_shape, else the query's last axis (which a built layer keeps)
  return {query[0], query[1], options_.output_shape > 0 ? options_.output_shape : query[2]};
}

Tensor MultiHeadAttention::compute_attention_mask(const Tensor& query, const Tensor& value,
                                                  const AttentionCall& args) const {
  const std::int64_t b = query.dim(0), t = query.dim(1), s = value.dim(1);
  // a mask as bool on the query's device, checked against `want` (an axis of 1 broadcasts
  // where `broadcast`)
  const auto as_bool = [&](const Tensor& m, const char* what, const Shape& want, bool broadcast) {
    bool ok = m.rank() == static_cast<std::int64_t>(want.size()) || (broadcast && m.rank() == 2);
    for (std::int64_t a = 1; ok && a <= m.rank(); ++a) {
      const std::int64_t got = m.dim(-a), need = want[want.size() - static_cast<std::size_t>(a)];
      ok = got == need || (broadcast && got == 1);
    }
    if (!ok) {
      throw ShapeError(fmt::format("{}: {} must be {}{}, got {} (query {}, value {})", label(*this), what,
                                   shape_str(want), broadcast ? " (or broadcast to it)" : "", shape_str(m.shape()),
                                   shape_str(query.shape()), shape_str(value.shape())));
    }
    const Tensor on = m.to(query.device());
    return on.dtype() == kBool ? on : on != 0.0;
  };
  const auto both = [](const Tensor& acc, const Tensor& m) { return acc.defined() ? logical_and(acc, m) : m; };
  Tensor mask;
  if (args.query_mask.defined()) mask = as_bool(args.query_mask, "query_mask", {b, t}, false).reshape({b, t, 1});
  if (args.value_mask.defined()) mask = both(mask, as_bool(args.value_mask, "value_mask", {b, s}, false).reshape({b, 1, s}));
  if (args.key_mask.defined()) mask = both(mask, as_bool(args.key_mask, "key_mask", {b, s}, false).reshape({b, 1, s}));
  if (args.use_causal_mask) {
    // [1, T, S]: query i sees keys j <= i
    const Tensor rows = arange(t, kInt64, query.device()).reshape({1, t, 1});
    const Tensor cols = arange(s, kInt64, query.device()).reshape({1, 1, s});
    mask = both(mask, rows >= cols);
  }
  if (args.attention_mask.defined()) mask = both(as_bool(args.attention_mask, "attention_mask", {b, t, s}, true), mask);
  if (mask.defined() && mask.rank() == 2) mask = mask.reshape({1, t, s});
  return mask;
}

AttentionOutput MultiHeadAttention::attend(const Tensor& query, const Tensor& value, const AttentionCall& args) {
  const Tensor& key = args.key.defined() ? args.key : value;
  check_inputs(query.shape(), value.shape(), key.shape());
  const Tensor mask = compute_attention_mask(query, value, args);
  if (!output_dense_->built() && options_.output_shape == 0) {
    static_cast<EinsumDense&>(*output_dense_).set_output_axes({query.dim(2)});
  }
  const Tensor q = (*query_dense_)(query) * (1.0 / std::sqrt(static_cast<double>(key_dim_)));  // [B, T, N, key_dim]
  const Tensor k = (*key_dense_)(key);        // [B, S, N, key_dim]
  const Tensor v = (*value_dense_)(value);    // [B, S, N, value_dim]
  input_dims_ = {query.dim(2), value.dim(2), key.dim(2)};
  // scores: [B, N, T, key_dim] @ [B, N, key_dim, S] -> [B, N, T, S]
  Tensor scores = matmul(q.permute({0, 2, 1, 3}), k.permute({0, 2, 3, 1}));
  Tensor probs;
  if (mask.defined()) {
    const Tensor m = mask.expand_dims(1);  // [B or 1, 1, T, S]: every head
    probs = where(m, softmax(where(m, scores, -1e9), -1), 0.0);
  } else {
    probs = softmax(scores, -1);
  }
  const Tensor kept = args.training && options_.dropout > 0 ? tapeflow::dropout(probs, options_.dropout, generator()) : probs;
  // [B, N, T, S] @ [B, N, S, value_dim] -> [B, N, T, value_dim] -> [B, T, N, value_dim]
  const Tensor heads = matmul(kept, v.permute({0, 2, 1, 3})).permute({0, 2, 1, 3});
  return {(*output_dense_)(heads), probs};
}

// ================================================================ Attention, AdditiveAttention
// Keras's Attention and AdditiveAttention: scores of the query against the key, no projections.

Attention::Attention(AttentionOptions options) : Attention("Attention", false, std::move(options)) {}

Attention::Attention(std::string class_name, bool additive, AttentionOptions options)
    : AttentionLayer(std::move(class_name), options.name, false),
      additive_(additive),
      use_scale_(options.use_scale),
      score_mode_(options.score_mode),
      dropout_(options.dropout) {
  if (score_mode_ != "dot" && score_mode_ != "concat") {
    throw ValueError(fmt::format("{}: score_mode must be \"dot\" or \"concat\", got \"{}\"", Layer::class_name(),
                                 score_mode_));
  }
  if (!(dropout_ >= 0 && dropout_ < 1)) {
    throw ValueError(fmt::format("{}: dropout must be in [0, 1), got {}", Layer::class_name(), dropout_));
  }
  if (options.seed) set_seed(*options.seed);
}

AdditiveAttention::AdditiveAttention(AdditiveAttentionOptions options)
    : Attention("AdditiveAttention", true, [&] {
        AttentionOptions o;
        o.use_scale = options.use_scale;
        o.dropout = options.dropout;
        o.seed = options.seed;
        o.name = options.name;
        return o;
      }()) {}

void Attention::check_inputs(const Shape& query, const Shape& value, const Shape& key) const {
  check_qvk(*this, query, value, key, "");
  const auto shapes = [&] { return qvk_str(query, value, key); };
  using detail::differ;
  if (differ(query[2], key[2])) {
    throw ShapeError(fmt::format("{}: query and key must have the same features: {}", label(*this), shapes()));
  }
  if (additive_ && dim_ >= 0 && differ(query[2], dim_)) {
    throw ShapeError(fmt::format("{}: built for {} query features, got {}", label(*this), dim_, shapes()));
  }
}

Shape Attention::compute_output_shape(const std::vector<Shape>& input_shapes) const {
  check_qvk_list(*this, input_shapes);
  check_list(input_shapes, 2);
  const Shape &query = input_shapes[0], &value = input_shapes[1];
  check_inputs(query, value, input_shapes.size() == 3 ? input_shapes[2] : value);
  return {query[0], query[1], value[2]};  // Keras: (*query[:-1], value[-1])
}

Tensor Attention::scores(const Tensor& query, const Tensor& key) const {
  if (additive_) {
    // [B, Tq, 1, dim] + [B, 1, Tv, dim] -> tanh, weighed per feature, summed: [B, Tq, Tv]
    const Tensor t = tanh(query.expand_dims(2) + key.expand_dims(1));
    return sum(use_scale_ ? Tensor(scale_) * t : t, {-1});
  }
  if (score_mode_ == "dot") {
    const Tensor s = matmul(query, key.permute({0, 2, 1}));  // [B, Tq, dim] @ [B, dim, Tv]
    return use_scale_ ? s * scale_ : s;
  }
  const Tensor qk = query.expand_dims(2) + key.expand_dims(1);  // concat: [B, Tq, Tv, dim]
  return sum(tanh(use_scale_ ? Tensor(scale_) * qk : qk), {-1}) * concat_score_weight_;
}

AttentionOutput Attention::attend(const Tensor& query, const Tensor& value, const AttentionCall& args) {
  const Tensor& key = args.key.defined() ? args.key : value;
  check_inputs(query.shape(), value.shape(), key.shape());
  if (args.key_mask.defined() || args.attention_mask.defined()) {
    throw ValueError(fmt::format("{}: takes no {} (Keras's {} masks the query and the value only)", label(*this),
                                 args.key_mask.defined() ? "key_mask" : "attention_mask", class_name()));
  }
  const std::int64_t b = query.dim(0), tq = query.dim(1), tv = value.dim(1);
  const auto as_bool = [&](const Tensor& m, const char* what, const Shape& want) {
    if (m.shape() != want) {
      throw ShapeError(fmt::format("{}: {} must be {}, got {} (query {}, value {})", label(*this), what,
                                   shape_str(want), shape_str(m.shape()), shape_str(query.shape()),
                                   shape_str(value.shape())));
    }
    const Tensor on = m.to(query.device());
    return on.dtype() == kBool ? on : on != 0.0;
  };
  const Tensor query_mask = args.query_mask.defined() ? as_bool(args.query_mask, "query_mask", {b, tq}) : Tensor();
  // Keras's _calculate_score_mask: the value mask [B, 1, Tv] & the causal mask [1, Tq, Tv]
  Tensor mask;
  if (args.value_mask.defined()) mask = as_bool(args.value_mask, "value_mask", {b, tv}).reshape({b, 1, tv});
  if (args.use_causal_mask) {
    const Tensor rows = arange(tq, kInt64, query.device()).reshape({1, tq, 1});
    const Tensor cols = arange(tv, kInt64, query.device()).reshape({1, 1, tv});
    mask = mask.defined() ? logical_and(mask, rows >= cols) : rows >= cols;
  }
  if (!made_) {
    if (use_scale_) scale_ = add_weight("scale", additive_ ? Shape{query.dim(2)} : Shape{},
                                        additive_ ? initializers::glorot_uniform : initializers::ones);
    if (!additive_ && score_mode_ == "concat") {
      concat_score_weight_ = add_weight("concat_score_weight", {}, initializers::ones);
    }
    dim_ = query.dim(2);
    made_ = true;
  }
  Tensor s = scores(query, key);
  // Keras's _apply_scores: masked scores lowered by 1e9 (65504 in float16, which has no layer
  // dtype here), not replaced
  if (mask.defined()) s = where(mask, s, s - 1e9);
  const Tensor probs = softmax(s, -1);
  const Tensor kept = args.training && dropout_ > 0 ? tapeflow::dropout(probs, dropout_, generator()) : probs;
  Tensor out = matmul(kept, value);  // [B, Tq, Tv] @ [B, Tv, dv]
  if (query_mask.defined()) out = where(query_mask.reshape({b, tq, 1}), out, 0.0);
  return {out, probs};
}

}  // namespace layers
}  // namespace tapeflow
