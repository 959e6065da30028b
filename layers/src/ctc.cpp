// CTC loss (Graves et al., 2006) as a composite of public ops, following TensorFlow's dense
// tf.nn.ctc_loss (what keras.ops.ctc_loss calls), and the greedy decoder (tf.nn.ctc_greedy_decoder).
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "tapeflow/losses.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow::losses {
namespace {

// Integer values of a [batch] or [batch, n] tensor, read on the host (floats must hold integers).
std::vector<std::int64_t> host_ints(const Tensor& x, const char* what, const char* op) {
  if (!is_integral(x.dtype()) && !is_floating(x.dtype())) {
    throw DTypeError(fmt::format("{}: {} must be integers, got {}", op, what, dtype_name(x.dtype())));
  }
  if (is_floating(x.dtype())) {
    const auto v = x.astype(kFloat64).to(Device::cpu()).to_vector<double>();
    std::vector<std::int64_t> out;
    out.reserve(v.size());
    for (double d : v) {
      if (!(std::floor(d) == d && std::abs(d) < 9e15)) {
        throw ValueError(fmt::format("{}: {} {} must hold integers, got {}", op, what, shape_str(x.shape()), d));
      }
      out.push_back(static_cast<std::int64_t>(d));
    }
    return out;
  }
  return x.astype(kInt64).to(Device::cpu()).to_vector<std::int64_t>();
}

}  // namespace

// States per example, as TensorFlow's dense CTC: 0 the start (it emits nothing), then for each
// label i = 0 .. max_len - 1 the blank before it (1 + 2i) and the label (2 + 2i), then the
// blank after the last (2 max_len + 1): S = 2 max_len + 2. alpha_t(s) = logsumexp(alpha_{t-1}(s),
// alpha_{t-1}(s - 1), alpha_{t-1}(s - 2) where a label may follow the one two states back) +
// log p_t(class of s), alpha_{-1} = log 1 at the start, "log 0" elsewhere. The loss is
// -logsumexp(alpha_T + end), end = 0 on the label and the blank after it (the start and the
// first blank for an empty label), TensorFlow's log_0 = log(1e-307) elsewhere; past an
// example's logit_length its alphas stay as they were.
Tensor ctc_loss(const Tensor& labels, const Tensor& logits, const Tensor& label_length, const Tensor& logit_length,
                std::int64_t mask_index) {
  const char* op = "ctc_loss";
  if (!labels.defined() || !logits.defined() || !label_length.defined() || !logit_length.defined()) {
    throw ValueError(fmt::format("{}: an argument is undefined", op));
  }
  if (!is_floating(logits.dtype())) {
    throw DTypeError(fmt::format("{}: logits must be float32 or float64, got {}", op, dtype_name(logits.dtype())));
  }
  if (labels.rank() != 2 || logits.rank() != 3 || labels.dim(0) != logits.dim(0)) {
    throw ShapeError(fmt::format("{}: labels must be [batch, max_label_len] and logits [batch, time, classes] with one "
                                 "batch, got labels {} and logits {}",
                                 op, shape_str(labels.shape()), shape_str(logits.shape())));
  }
  const std::int64_t batch = logits.dim(0), time = logits.dim(1), classes = logits.dim(2), max_len = labels.dim(1);
  for (const Tensor* len : {&label_length, &logit_length}) {
    if (len->shape() != Shape{batch}) {
      throw ShapeError(fmt::format("{}: label_length and logit_length must be [batch] = [{}], got {} and {}", op, batch,
                                   shape_str(label_length.shape()), shape_str(logit_length.shape())));
    }
  }
  const std::int64_t blank = mask_index < 0 ? mask_index + classes : mask_index;
  if (blank < 0 || blank >= classes) {
    throw IndexError(fmt::format("{}: mask_index {} is outside [-{}, {}) for logits {}", op, mask_index, classes,
                                 classes, shape_str(logits.shape())));
  }
  const auto lab = host_ints(labels, "labels", op);
  const auto lab_len = host_ints(label_length, "label_length", op);
  const auto log_len = host_ints(logit_length, "logit_length", op);

  // host tables: each state's class [batch, S - 1] (the start has none), where a skip of two
  // states is allowed [batch, S], the end weights [batch, S]
  const std::int64_t states = 2 * max_len + 2;
  const double log_0 = static_cast<double>(static_cast<float>(std::log(1e-307)));
  // "log 0" of the states not reached yet: finite so that logsumexp and its gradient never see
  // inf - inf; a path through one weighs exp(-1e30 - x) = 0 beside any real one
  const double neg = -1e30;
  std::vector<std::int64_t> state_class(static_cast<std::size_t>(batch * (states - 1)), blank);
  std::vector<std::int32_t> skip(static_cast<std::size_t>(batch * states), 0);
  std::vector<double> end(static_cast<std::size_t>(batch * states), log_0);
  bool full_length = true;
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t n = lab_len[b];
    if (n < 0 || n > max_len) {
      throw ValueError(fmt::format("{}: label_length[{}] = {} is outside [0, {}] for labels {}", op, b, n, max_len,
                                   shape_str(labels.shape())));
    }
    if (log_len[b] < 0 || log_len[b] > time) {
      throw ValueError(fmt::format("{}: logit_length[{}] = {} is outside [0, {}] for logits {}", op, b, log_len[b],
                                   time, shape_str(logits.shape())));
    }
    full_length = full_length && log_len[b] == time;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t c = lab[b * max_len + i];
      if (c < 0 || c >= classes) {
        throw IndexError(fmt::format("{}: labels[{}, {}] = {} is outside [0, {}) for logits {}", op, b, i, c, classes,
                                     shape_str(logits.shape())));
      }
      state_class[b * (states - 1) + 2 * i + 1] = c;
    }
    // labels past the length only lead to states that end with log_0, so they matter only
    // where no alignment exists; TensorFlow keeps them (one outside the classes is a blank here)
    for (std::int64_t i = n; i < max_len; ++i) {
      const std::int64_t c = lab[b * max_len + i];
      if (c >= 0 && c < classes) state_class[b * (states - 1) + 2 * i + 1] = c;
    }
    // the label state 2 + 2i may be entered from 2i (the previous label, or the start for the
    // first) unless it repeats that label
    for (std::int64_t i = 0; i < max_len; ++i) {
      const std::int64_t s = 2 + 2 * i;
      skip[b * states + s] = i == 0 || state_class[b * (states - 1) + s - 1] != state_class[b * (states - 1) + s - 3];
    }
    end[b * states + 2 * n] = 0;
    end[b * states + 2 * n + 1] = 0;
  }

  const Device dev = logits.device();
  const DType dt = logits.dtype();
  // log p_t of each state's class, the start's "log 0" first: [batch, time, S]
  const Tensor cls = tensor(state_class, {batch, 1, states - 1}).to(dev);
  // every state's class lies in [0, classes) (checked above): clip mode reads nothing back
  const Tensor emit = concat(
      {full({batch, time, 1}, neg, dt, dev), take_along_axis(log_softmax(logits, -1), cls, 2, IndexMode::Clip)}, 2);
  const Tensor can_skip = tensor(skip, {batch, states}).to(dev) != 0;
  const Tensor neg_1 = full({batch, 1}, neg, dt, dev), neg_2 = full({batch, 2}, neg, dt, dev);
  const Tensor neg_all = full({batch, states}, neg, dt, dev);
  std::vector<double> start(static_cast<std::size_t>(batch * states), neg);
  for (std::int64_t b = 0; b < batch; ++b) start[b * states] = 0;
  Tensor alpha = tensor(start, {batch, states}, kFloat64).astype(dt).to(dev);
  for (std::int64_t t = 0; t < time; ++t) {
    const Tensor from_1 = concat({neg_1, alpha(all, Slice(0, states - 1))}, 1);
    const Tensor from_2 = where(can_skip, concat({neg_2, alpha(all, Slice(0, states - 2))}, 1), neg_all);
    const Tensor next = logsumexp(stack({alpha, from_1, from_2}, -1), {-1}) + emit(all, t);
    if (full_length) {
      alpha = next;
    } else {
      std::vector<std::int32_t> running(static_cast<std::size_t>(batch));
      for (std::int64_t b = 0; b < batch; ++b) running[b] = t < log_len[b];
      alpha = where(tensor(running, {batch, 1}).to(dev) != 0, next, alpha);
    }
  }
  const Tensor end_w = tensor(end, {batch, states}, kFloat64).astype(dt).to(dev);
  return -logsumexp(alpha + end_w, {-1});
}

Tensor ctc(const Tensor& y_true, const Tensor& y_pred) {
  const char* op = "ctc";
  if (!y_true.defined() || !y_pred.defined()) throw ValueError(fmt::format("{}: y_true or y_pred is undefined", op));
  if (y_true.rank() != 2 || y_pred.rank() != 3) {
    throw ShapeError(fmt::format("{}: y_true must be [batch, max_length] labels and y_pred [batch, time, classes] "
                                 "logits, got {} and {}",
                                 op, shape_str(y_true.shape()), shape_str(y_pred.shape())));
  }
  // Keras: every step counts, a label's length is its count of nonzero entries
  const std::int64_t batch = y_pred.dim(0);
  const Tensor label_length = sum((y_true != 0).astype(kInt64), {-1});
  const Tensor logit_length = full({batch}, static_cast<double>(y_pred.dim(1)), kInt64, y_pred.device());
  return ctc_loss(y_true, y_pred, label_length, logit_length, 0);
}

CtcDecoded ctc_greedy_decode(const Tensor& inputs, const Tensor& sequence_lengths, bool merge_repeated,
                             std::int64_t mask_index) {
  const char* op = "ctc_greedy_decode";
  if (!inputs.defined() || !sequence_lengths.defined()) throw ValueError(fmt::format("{}: an argument is undefined", op));
  if (!is_floating(inputs.dtype())) {
    throw DTypeError(fmt::format("{}: inputs must be float32 or float64, got {}", op, dtype_name(inputs.dtype())));
  }
  if (inputs.rank() != 3 || sequence_lengths.shape() != Shape{inputs.dim(0)}) {
    throw ShapeError(fmt::format("{}: inputs must be [batch, time, classes] and sequence_lengths [batch], got {} and {}",
                                 op, shape_str(inputs.shape()), shape_str(sequence_lengths.shape())));
  }
  const std::int64_t batch = inputs.dim(0), time = inputs.dim(1), classes = inputs.dim(2);
  const std::int64_t blank = mask_index < 0 ? mask_index + classes : mask_index;
  if (blank < 0 || blank >= classes) {
    throw IndexError(fmt::format("{}: mask_index {} is outside [-{}, {}) for inputs {}", op, mask_index, classes,
                                 classes, shape_str(inputs.shape())));
  }
  const auto lengths = host_ints(sequence_lengths, "sequence_lengths", op);
  const auto x = inputs.astype(kFloat64).to(Device::cpu()).contiguous().to_vector<double>();
  std::vector<std::int32_t> decoded(static_cast<std::size_t>(batch * time), -1);
  std::vector<double> scores(static_cast<std::size_t>(batch), 0.0);
  for (std::int64_t b = 0; b < batch; ++b) {
    if (lengths[b] < 0 || lengths[b] > time) {
      throw ValueError(fmt::format("{}: sequence_lengths[{}] = {} is outside [0, {}] for inputs {}", op, b, lengths[b],
                                   time, shape_str(inputs.shape())));
    }
    std::int64_t out = 0, prev = -1;
    for (std::int64_t t = 0; t < lengths[b]; ++t) {
      const double* row = x.data() + (b * time + t) * classes;
      std::int64_t best = 0;
      for (std::int64_t c = 1; c < classes; ++c) {
        if (row[c] > row[best]) best = c;
      }
      scores[b] -= row[best];
      if (best != blank && !(merge_repeated && best == prev)) decoded[b * time + out++] = static_cast<std::int32_t>(best);
      prev = best;
    }
  }
  return {tensor(decoded, {1, batch, time}, kInt32).to(inputs.device()),
          tensor(scores, {batch, 1}, kFloat64).astype(inputs.dtype()).to(inputs.device())};
}

}  // namespace tapeflow::losses
