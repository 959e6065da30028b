// NumPy-style printing of tensors. The layout follows numpy.array_repr (numpy >= 1.14) with
// precision 4, line width 75 and summaries above 1000 elements keeping 3 items per edge:
//
//   tensor([[1. , 2.5],
//           [3. , 4. ]], shape=[2, 2], dtype=float32)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tapeflow/ops.hpp"
#include "tapeflow/tensor.hpp"

namespace tapeflow {
namespace {

constexpr std::size_t kLineWidth = 75;
constexpr std::int64_t kSummaryThreshold = 1000;
constexpr std::int64_t kEdgeItems = 3;
constexpr int kPrecision = 4;
constexpr const char* kPrefix = "tensor(";

// The elements that are printed: the whole tensor, or, when summarising, every axis longer
// than 2 * kEdgeItems cut to its first and last kEdgeItems. The cuts are views and only the
// small pieces are joined, so printing a 47M-element tensor copies a few hundred values.
Tensor shown_part(const Tensor& t, std::int64_t axis, const std::vector<bool>& cut) {
  if (axis == t.rank()) return t;
  if (!cut[static_cast<std::size_t>(axis)]) return shown_part(t, axis + 1, cut);
  std::vector<Index> head(static_cast<std::size_t>(axis), Index(all));
  std::vector<Index> tail = head;
  head.emplace_back(Slice(0, kEdgeItems));
  tail.emplace_back(Slice(-kEdgeItems, none));
  return concat({shown_part(t.index(head), axis + 1, cut), shown_part(t.index(tail), axis + 1, cut)}, axis);
}

std::string pad_left(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

std::string pad_right(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

// "1.5000" -> "1.5", "2.0000" -> "2." (NumPy's trim='.').
std::string trim_zeros(std::string s) {
  const auto last = s.find_last_not_of('0');
  s.erase(last + 1);
  return s;
}

// Splits "-1.2346e+05" into int part "-1", fraction "2346" and exponent digits "05" with sign.
struct SciParts {
  std::string int_part, frac, exp_sign, exp_digits;
};

SciParts split_scientific(const std::string& s) {
  SciParts p;
  const auto e = s.find('e');
  const auto dot = s.find('.');  // absent when formatted with precision 0: "1e+05"
  p.int_part = s.substr(0, std::min(dot, e));
  if (dot != std::string::npos) p.frac = s.substr(dot + 1, e - dot - 1);
  p.exp_sign = s.substr(e + 1, 1);
  p.exp_digits = s.substr(e + 2);
  return p;
}

// Floats as NumPy's FloatingFormat (floatmode 'maxprec'): scientific notation when the
// non-zero magnitudes reach 1e8, go below 1e-4 or span more than 1000x; otherwise positional
// with up to kPrecision decimals, every value padded to the same integer and fraction widths
// so the decimal points line up.
std::vector<std::string> format_floats(const std::vector<double>& values) {
  double max_abs = 0, min_abs = HUGE_VAL;
  bool any_finite = false, any_nonfinite = false, neg_inf = false;
  for (double v : values) {
    if (!std::isfinite(v)) {
      any_nonfinite = true;
      neg_inf = neg_inf || (std::isinf(v) && v < 0);
      continue;
    }
    any_finite = true;
    const double a = std::fabs(v);
    if (a == 0) continue;
    max_abs = std::max(max_abs, a);
    min_abs = std::min(min_abs, a);
  }
  const bool nonzero = max_abs > 0;
  const bool scientific = nonzero && (max_abs >= 1e8 || min_abs < 1e-4 || max_abs / min_abs > 1e3);

  std::size_t left = 0, right = 0;  // widths of the integer part and of what follows the '.'
  int sci_precision = 0;
  std::size_t exp_width = 2;
  if (scientific) {
    // The fraction shows as many digits as the most precise value needs (at most kPrecision).
    for (double v : values) {
      if (!std::isfinite(v)) continue;
      const SciParts p = split_scientific(fmt::format("{:.{}e}", v, kPrecision));
      sci_precision = std::max(sci_precision, static_cast<int>(trim_zeros(p.frac).size()));
      left = std::max(left, p.int_part.size());
      exp_width = std::max(exp_width, p.exp_digits.size());
    }
    right = static_cast<std::size_t>(sci_precision) + 2 + exp_width;
  } else {
    for (double v : values) {
      if (!std::isfinite(v)) continue;
      const std::string s = trim_zeros(fmt::format("{:.{}f}", v, kPrecision));
      const auto dot = s.find('.');
      left = std::max(left, dot);
      right = std::max(right, s.size() - dot - 1);
    }
  }
  if (any_nonfinite) {
    // "nan" and "inf" are right-aligned in the same width as the numbers.
    const std::size_t inf_len = neg_inf ? 4 : 3;
    const std::size_t used = right + 1;
    if (!any_finite) left = 0;
    left = std::max(left, inf_len > used ? inf_len - used : 0);
  }

  std::vector<std::string> out;
  out.reserve(values.size());
  for (double v : values) {
    if (std::isnan(v)) {
      out.push_back(pad_left("nan", left + right + 1));
    } else if (std::isinf(v)) {
      out.push_back(pad_left(v < 0 ? "-inf" : "inf", left + right + 1));
    } else if (scientific) {
      const SciParts p = split_scientific(fmt::format("{:.{}e}", v, sci_precision));
      std::string exp = p.exp_digits;
      exp = std::string(exp_width - std::min(exp_width, exp.size()), '0') + exp;
      out.push_back(pad_left(p.int_part, left) + "." + p.frac + "e" + p.exp_sign + exp);
    } else {
      const std::string s = trim_zeros(fmt::format("{:.{}f}", v, kPrecision));
      const auto dot = s.find('.');
      out.push_back(pad_left(s.substr(0, dot), left) + pad_right(s.substr(dot), right + 1));
    }
  }
  return out;
}

std::vector<std::string> format_ints(const std::vector<std::int64_t>& values) {
  std::vector<std::string> out;
  out.reserve(values.size());
  std::size_t width = 0;
  for (std::int64_t v : values) {
    out.push_back(fmt::format("{}", v));
    width = std::max(width, out.back().size());
  }
  for (auto& s : out) s = pad_left(s, width);
  return out;
}

// " True" has the width of "False" so columns line up, except for a lone scalar (NumPy's choice).
std::vector<std::string> format_bools(const std::vector<bool>& values, bool scalar) {
  std::vector<std::string> out;
  out.reserve(values.size());
  for (bool v : values) out.push_back(v ? (scalar ? "True" : " True") : "False");
  return out;
}

std::vector<std::string> format_values(const Tensor& t, bool scalar) {
  switch (t.dtype()) {
    case DType::Bool: return format_bools(t.to_vector<bool>(), scalar);
    case DType::Int32:
    case DType::Int64: return format_ints(t.to_vector<std::int64_t>());
    case DType::Float32:
    case DType::Float64: return format_floats(t.to_vector<double>());
  }
  return {};
}

std::string rstrip(const std::string& s) {
  const auto last = s.find_last_not_of(' ');
  return last == std::string::npos ? std::string() : s.substr(0, last + 1);
}

// Nested brackets of already formatted words; numpy's _formatArray.
class Layout {
 public:
  Layout(const std::vector<std::string>& words, Shape shape, std::vector<bool> cut)
      : words_(words), shape_(std::move(shape)), cut_(std::move(cut)), strides_(shape_.size(), 1) {
    for (std::size_t i = shape_.size(); i-- > 1;) strides_[i - 1] = strides_[i] * shape_[i];
  }

  // `hanging` is the indent of continuation lines; `width` what a line may use before its
  // closing brackets.
  std::string format(std::size_t axis, std::int64_t base, const std::string& hanging, std::size_t width) const {
    const std::size_t axes_left = shape_.size() - axis;
    const std::int64_t n = shape_[axis];
    const bool cut = cut_[axis];
    std::string s;
    if (axes_left == 1) {
      const std::size_t elem_width = width > 1 ? width - 1 : 1;  // room for ',' or ']'
      std::string line = hanging;
      for (std::int64_t i = 0; i < n; ++i) {
        if (cut && i == kEdgeItems) {
          extend_line(s, line, "...", elem_width, hanging);
          line += ", ";
        }
        extend_line(s, line, words_[static_cast<std::size_t>(base + i * strides_[axis])], elem_width, hanging);
        if (i + 1 < n) line += ", ";
      }
      s += line;
    } else {
      // A blank line between blocks of rank 2 and more, as NumPy does.
      const std::string separator = "," + std::string(axes_left - 1, '\n');
      for (std::int64_t i = 0; i < n; ++i) {
        if (cut && i == kEdgeItems) s += hanging + "..." + separator;
        s += hanging + format(axis + 1, base + i * strides_[axis], hanging + " ", width > 1 ? width - 1 : 1);
        if (i + 1 < n) s += separator;
      }
    }
    // The first line's indent stands for the brackets already printed before it.
    return "[" + s.substr(hanging.size()) + "]";
  }

 private:
  static void extend_line(std::string& s, std::string& line, const std::string& word, std::size_t width,
                          const std::string& hanging) {
    // Wrapping a line that holds only the indent would not make room.
    if (line.size() + word.size() > width && line.size() > hanging.size()) {
      s += rstrip(line) + "\n";
      line = hanging;
    }
    line += word;
  }

  const std::vector<std::string>& words_;
  Shape shape_;
  std::vector<bool> cut_;
  Shape strides_;
};

std::string format_tensor(const Tensor& t) {
  if (!t.defined()) return "tensor(undefined)";
  std::string body;
  if (t.rank() == 0) {
    body = format_values(t, true).at(0);
  } else if (t.size() == 0) {
    body = "[]";
  } else {
    const bool summarise = t.size() > kSummaryThreshold;
    std::vector<bool> cut(static_cast<std::size_t>(t.rank()));
    for (std::size_t i = 0; i < cut.size(); ++i)
      cut[i] = summarise && t.shape()[i] > 2 * kEdgeItems;
    const Tensor shown = summarise ? shown_part(t, 0, cut) : t;
    const std::vector<std::string> words = format_values(shown, false);
    const Layout layout(words, shown.shape(), cut);
    const std::string prefix = kPrefix;
    // Width minus one for the ',' that follows the values.
    body = layout.format(0, 0, std::string(prefix.size() + 1, ' '), kLineWidth - 1);
  }
  std::string out = kPrefix + body + ",";
  std::string extras = fmt::format("shape={}, dtype={}", shape_str(t.shape()), dtype_name(t.dtype()));
  if (!t.device().is_cpu()) extras += ", device=" + t.device().str();
  extras += ")";
  // Like NumPy's dtype=: on its own line when it would run past the line width.
  const auto line_start = out.rfind('\n');
  const std::size_t last_line = out.size() - (line_start == std::string::npos ? 0 : line_start + 1);
  if (last_line + 1 + extras.size() > kLineWidth)
    out += "\n" + std::string(std::char_traits<char>::length(kPrefix), ' ');
  else
    out += " ";
  return out + extras;
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << format_tensor(t); }
std::ostream& operator<<(std::ostream& os, DType dtype) { return os << dtype_name(dtype); }
std::ostream& operator<<(std::ostream& os, const Device& device) { return os << device.str(); }

std::string to_string(const Tensor& t) { return format_tensor(t); }

}  // namespace tapeflow
