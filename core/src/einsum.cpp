// einsum: a composite of public ops (permute, reshape, slicing, sum, mul, matmul), so the tape
// differentiates it and every device runs it with no kernel or gradient rule of its own.
//
// The plan, for operands given left to right:
//   1. parse the equation into one label per axis of every operand ("..." becomes one label per
//      broadcast dimension, right-aligned across the operands, as NumPy aligns them);
//   2. per operand, take the diagonal of every repeated label ("ii" -> "i") and sum the labels
//      that neither the output nor any other operand uses;
//   3. contract the running result with the next operand through one matmul: both permuted to
//      [batch..., free, contracted] and [batch..., contracted, free] and reshaped to
//      [batch..., M, K] @ [batch..., K, N] (a mul when nothing is contracted);
//   4. permute the result into the output's order.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <string>
#include <vector>

#include "internal.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow {

namespace {

// Labels: 'A'-'Z' are 0-25 and 'a'-'z' 26-51 (so ascending labels are NumPy's alphabetical order
// of the implicit output, upper case first); the dimensions under "..." are kEllipsis + 0, 1, ...
constexpr int kLetters = 52;
constexpr int kEllipsis = kLetters;

int label_of(char c) { return c >= 'A' && c <= 'Z' ? c - 'A' : c - 'a' + 26; }
char letter_of(int label) { return static_cast<char>(label < 26 ? 'A' + label : 'a' + label - 26); }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// One side of "->" split at its commas: letters and at most one "..." per term.
struct Term {
  std::vector<int> letters;
  int ellipsis_at = -1;  // index into letters where "..." stands, or -1
};

// A tensor with one label per axis.
struct Labeled {
  Tensor t;
  std::vector<int> labels;
};

class Einsum {
 public:
  Einsum(const std::string& equation, const std::vector<Tensor>& operands) : equation_(equation), operands_(operands) {}

  Tensor run() {
    if (operands_.empty()) throw ValueError(fmt::format("einsum: needs at least one operand: {}", where()));
    for (const auto& t : operands_) detail::check_defined(t, "einsum");
    parse();
    check_operands();
    assign_labels();
    std::vector<Labeled> ops;
    for (std::size_t i = 0; i < operands_.size(); ++i) ops.push_back(take_diagonals({operands_[i], axis_labels_[i]}));
    // After the diagonals every label occurs once per operand; a label is needed by later steps
    // while the output or an operand not yet contracted has it.
    for (std::size_t i = 0; i < ops.size(); ++i) ops[i] = sum_unused(ops[i], needed_by(ops, 0, i));
    Labeled acc = ops[0];
    for (std::size_t i = 1; i < ops.size(); ++i) acc = contract(acc, ops[i], needed_by(ops, i + 1, ops.size()));
    std::vector<std::int64_t> perm;
    for (int l : output_) {
      perm.push_back(std::find(acc.labels.begin(), acc.labels.end(), l) - acc.labels.begin());
    }
    Tensor out = acc.t;
    if (!std::is_sorted(perm.begin(), perm.end())) out = out.permute(perm);
    // sum widens integers to int64; einsum keeps its operands' dtype, as NumPy's does
    if (out.dtype() != dtype_) out = out.astype(dtype_);
    return out;
  }

 private:
  // "ij,jk->ik with [2, 3], [4, 5]": the context every message ends with.
  std::string where() const {
    std::vector<std::string> shapes;
    for (const auto& t : operands_) shapes.push_back(t.defined() ? shape_str(t.shape()) : "undefined");
    return fmt::format("{} with {}", equation_, shapes.empty() ? "no operands" : fmt::format("{}", fmt::join(shapes, ", ")));
  }

  // Splits the equation (spaces ignored, as NumPy and PyTorch do) into its input terms and the
  // explicit output term, if any.
  void parse() {
    std::vector<Term> terms(1);
    bool arrow = false;
    for (std::size_t i = 0; i < equation_.size(); ++i) {
      const char c = equation_[i];
      if (c == ' ') continue;
      Term& term = terms.back();
      if (is_letter(c)) {
        term.letters.push_back(label_of(c));
      } else if (c == '.') {
        if (equation_.compare(i, 3, "...") != 0 || term.ellipsis_at >= 0) {
          throw ValueError(fmt::format("einsum: '.' must come as one '...' per term (term {}): {}",
                                       terms.size() - 1, where()));
        }
        term.ellipsis_at = static_cast<int>(term.letters.size());
        i += 2;
      } else if (c == ',' && !arrow) {
        terms.emplace_back();
      } else if (c == '-' && !arrow && i + 1 < equation_.size() && equation_[i + 1] == '>') {
        arrow = true;
        terms.emplace_back();
        ++i;
      } else {
        throw ValueError(fmt::format("einsum: invalid character '{}' in the equation (indices are letters a-z, A-Z, "
                                     "with ',' between operands, '...' and one '->'): {}",
                                     c, where()));
      }
    }
    if (arrow) {
      output_term_ = terms.back();
      terms.pop_back();
    }
    inputs_ = terms;
    explicit_output_ = arrow;
  }

  void check_operands() {
    if (inputs_.size() != operands_.size()) {
      throw ValueError(fmt::format("einsum: the equation has {} operand terms but {} operands were given: {}",
                                   inputs_.size(), operands_.size(), where()));
    }
    dtype_ = operands_[0].dtype();
    for (std::size_t i = 0; i < operands_.size(); ++i) {
      const Tensor& t = operands_[i];
      detail::check_same_device(operands_[0], t, "einsum");
      if (t.dtype() != dtype_) {
        throw DTypeError(fmt::format("einsum: operands have different dtypes ({} for operand 0, {} for operand {}): {}",
                                     dtype_name(dtype_), dtype_name(t.dtype()), i, where()));
      }
      const Term& term = inputs_[i];
      const auto n = static_cast<std::int64_t>(term.letters.size());
      if (term.ellipsis_at < 0 ? t.rank() != n : t.rank() < n) {
        throw ShapeError(fmt::format("einsum: operand {} has {} dimensions but its term has {} indices{}: {}", i,
                                     t.rank(), n, term.ellipsis_at < 0 ? " and no '...'" : " besides '...'",
                                     where()));
      }
    }
    if (dtype_ == kBool) throw DTypeError(fmt::format("einsum: bool tensors are not supported: {}", where()));
  }

  // One label per axis of every operand, the size of each label, and the output's labels.
  void assign_labels() {
    std::int64_t ellipsis_rank = 0;
    for (std::size_t i = 0; i < operands_.size(); ++i) {
      if (inputs_[i].ellipsis_at >= 0) {
        ellipsis_rank = std::max<std::int64_t>(
            ellipsis_rank, operands_[i].rank() - static_cast<std::int64_t>(inputs_[i].letters.size()));
      }
    }
    sizes_.assign(static_cast<std::size_t>(kEllipsis + ellipsis_rank), -1);
    std::vector<int> owner(sizes_.size(), -1), count(sizes_.size(), 0);
    for (std::size_t i = 0; i < operands_.size(); ++i) {
      const Term& term = inputs_[i];
      const Tensor& t = operands_[i];
      std::vector<int> labels = term.letters;
      if (term.ellipsis_at >= 0) {
        // right-aligned: an operand with e dimensions under "..." has the last e of them
        const std::int64_t e = t.rank() - static_cast<std::int64_t>(term.letters.size());
        std::vector<int> dims;
        for (std::int64_t d = ellipsis_rank - e; d < ellipsis_rank; ++d) dims.push_back(kEllipsis + static_cast<int>(d));
        labels.insert(labels.begin() + term.ellipsis_at, dims.begin(), dims.end());
      }
      for (std::size_t axis = 0; axis < labels.size(); ++axis) {
        const auto l = static_cast<std::size_t>(labels[axis]);
        const std::int64_t size = t.shape()[axis];
        ++count[l];
        if (sizes_[l] < 0 || sizes_[l] == size) {
          if (sizes_[l] < 0) owner[l] = static_cast<int>(i);
          sizes_[l] = size;
        } else if (labels[axis] < kLetters) {
          throw ShapeError(fmt::format("einsum: index '{}' has size {} in operand {} and {} in operand {}: {}",
                                       letter_of(labels[axis]), sizes_[l], owner[l], size, i, where()));
        } else if (sizes_[l] == 1 || size == 1) {
          sizes_[l] = std::max(sizes_[l], size);  // "..." broadcasts as NumPy's
        } else {
          throw ShapeError(fmt::format("einsum: the dimensions under '...' cannot be broadcast: {}", where()));
        }
      }
      axis_labels_.push_back(labels);
    }
    std::vector<int> ellipsis_dims;
    for (std::int64_t d = 0; d < ellipsis_rank; ++d) ellipsis_dims.push_back(kEllipsis + static_cast<int>(d));
    if (!explicit_output_) {
      // NumPy's implicit output: "..." first, then the letters that occur once, alphabetically
      output_ = ellipsis_dims;
      for (int l = 0; l < kLetters; ++l)
        if (count[static_cast<std::size_t>(l)] == 1) output_.push_back(l);
      return;
    }
    std::vector<bool> seen(kLetters, false);
    for (int l : output_term_.letters) {
      if (count[static_cast<std::size_t>(l)] == 0) {
        throw ValueError(
            fmt::format("einsum: output index '{}' appears in no operand: {}", letter_of(l), where()));
      }
      if (seen[static_cast<std::size_t>(l)]) {
        throw ValueError(fmt::format("einsum: output index '{}' is repeated: {}", letter_of(l), where()));
      }
      seen[static_cast<std::size_t>(l)] = true;
    }
    if (output_term_.ellipsis_at < 0 && ellipsis_rank > 0) {
      throw ValueError(fmt::format(
          "einsum: the operands have dimensions under '...' but the output has no '...' to keep them: {}", where()));
    }
    output_ = output_term_.letters;
    if (output_term_.ellipsis_at >= 0) {
      output_.insert(output_.begin() + output_term_.ellipsis_at, ellipsis_dims.begin(), ellipsis_dims.end());
    }
  }

  // The labels of the output and of ops[first], ops[first + 1], ... other than ops[skip].
  std::vector<bool> needed_by(const std::vector<Labeled>& ops, std::size_t first, std::size_t skip) const {
    std::vector<bool> needed(sizes_.size(), false);
    for (int l : output_) needed[static_cast<std::size_t>(l)] = true;
    for (std::size_t j = first; j < ops.size(); ++j) {
      if (j == skip) continue;
      for (int l : ops[j].labels) needed[static_cast<std::size_t>(l)] = true;
    }
    return needed;
  }

  // Each label repeated in one operand becomes one axis: its diagonal.
  Labeled take_diagonals(Labeled x) const {
    for (;;) {
      std::size_t p = 0, q = 0;
      for (std::size_t a = 0; a < x.labels.size() && q == 0; ++a)
        for (std::size_t b = a + 1; b < x.labels.size(); ++b)
          if (x.labels[a] == x.labels[b]) {
            p = a;
            q = b;
            break;
          }
      if (q == 0) return x;
      // [rest..., n, n] -> [rest..., n * n], every (n + 1)-th entry: the diagonal, as a slice
      std::vector<std::int64_t> perm;
      std::vector<int> labels;
      Shape shape;
      for (std::size_t a = 0; a < x.labels.size(); ++a) {
        if (a == p || a == q) continue;
        perm.push_back(static_cast<std::int64_t>(a));
        labels.push_back(x.labels[a]);
        shape.push_back(x.t.shape()[a]);
      }
      const std::int64_t n = x.t.shape()[p];
      perm.push_back(static_cast<std::int64_t>(p));
      perm.push_back(static_cast<std::int64_t>(q));
      labels.push_back(x.labels[p]);
      shape.push_back(n * n);
      x.t = x.t.permute(perm).reshape(shape)(ellipsis, Slice(0, none, n + 1));
      x.labels = labels;
    }
  }

  // Sums the axes whose labels are not needed.
  static Labeled sum_unused(const Labeled& x, const std::vector<bool>& needed) {
    std::vector<std::int64_t> axes;
    Labeled out;
    for (std::size_t a = 0; a < x.labels.size(); ++a) {
      if (needed[static_cast<std::size_t>(x.labels[a])]) {
        out.labels.push_back(x.labels[a]);
      } else {
        axes.push_back(static_cast<std::int64_t>(a));
      }
    }
    out.t = axes.empty() ? x.t : sum(x.t, axes);  // an empty list would sum every axis
    return out;
  }

  // a and b contracted over the labels they share that are not needed later; the shared ones
  // that are needed are batch axes, the others free axes. Labels of the result: batch, a's free,
  // b's free. Every label of a or b is needed or shared (run() summed the others beforehand).
  Labeled contract(const Labeled& a, const Labeled& b, const std::vector<bool>& needed) const {
    std::vector<bool> in_a(sizes_.size(), false), in_b(sizes_.size(), false);
    for (int l : a.labels) in_a[static_cast<std::size_t>(l)] = true;
    for (int l : b.labels) in_b[static_cast<std::size_t>(l)] = true;
    std::vector<int> batch, contracted, free_a, free_b;
    for (int l : a.labels) {
      const auto u = static_cast<std::size_t>(l);
      if (!in_b[u]) {
        free_a.push_back(l);
      } else if (needed[u]) {
        batch.push_back(l);
      } else {
        contracted.push_back(l);
      }
    }
    for (int l : b.labels)
      if (!in_a[static_cast<std::size_t>(l)]) free_b.push_back(l);
    // Contracted labels are letters, of one size on both sides; the dimensions under "..." are all
    // in the output, so they are batch or free axes, and a batch axis of size 1 on one side
    // broadcasts in matmul / mul.
    const Tensor a3 = arrange(a, batch, free_a, contracted);
    const Tensor b3 = arrange(b, batch, contracted, free_b);
    // [batch..., M, K] @ [batch..., K, N]; with nothing contracted K is 1 and a product is enough
    const Tensor prod = contracted.empty() ? mul(a3, b3) : matmul(a3, b3);
    Shape shape(prod.shape().begin(), prod.shape().end() - 2);
    Labeled out;
    out.labels = batch;
    for (int l : free_a) {
      out.labels.push_back(l);
      shape.push_back(dim_of(a, l));
    }
    for (int l : free_b) {
      out.labels.push_back(l);
      shape.push_back(dim_of(b, l));
    }
    out.t = prod.reshape(shape);
    return out;
  }

  static std::int64_t axis_of(const Labeled& x, int label) {
    return std::find(x.labels.begin(), x.labels.end(), label) - x.labels.begin();
  }
  static std::int64_t dim_of(const Labeled& x, int label) { return x.t.shape()[axis_of(x, label)]; }

  // x permuted to [batch..., rows..., cols...] and reshaped to [batch..., rows, cols] (the
  // products of the sizes; each batch axis keeps its own size, which may be a broadcast 1).
  static Tensor arrange(const Labeled& x, const std::vector<int>& batch, const std::vector<int>& rows,
                        const std::vector<int>& cols) {
    std::vector<std::int64_t> perm;
    Shape shape;
    for (int l : batch) {
      perm.push_back(axis_of(x, l));
      shape.push_back(dim_of(x, l));
    }
    std::int64_t m = 1, k = 1;
    for (int l : rows) {
      perm.push_back(axis_of(x, l));
      m *= dim_of(x, l);
    }
    for (int l : cols) {
      perm.push_back(axis_of(x, l));
      k *= dim_of(x, l);
    }
    shape.push_back(m);
    shape.push_back(k);
    const Tensor t = std::is_sorted(perm.begin(), perm.end()) ? x.t : x.t.permute(perm);
    return t.reshape(shape);
  }

  const std::string& equation_;
  const std::vector<Tensor>& operands_;
  std::vector<Term> inputs_;
  Term output_term_;
  bool explicit_output_ = false;
  DType dtype_ = kFloat32;
  std::vector<std::vector<int>> axis_labels_;  // per operand, one label per axis
  std::vector<std::int64_t> sizes_;            // per label, its size (after broadcasting "...")
  std::vector<int> output_;                    // the output's labels in order
};

}  // namespace

Tensor einsum(const std::string& equation, const std::vector<Tensor>& operands) {
  return Einsum(equation, operands).run();
}
Tensor einsum(const std::string& equation, const Tensor& a) { return einsum(equation, std::vector<Tensor>{a}); }
Tensor einsum(const std::string& equation, const Tensor& a, const Tensor& b) {
  return einsum(equation, std::vector<Tensor>{a, b});
}

}  // namespace tapeflow
