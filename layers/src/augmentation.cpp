// Image augmentation layers: per-image random transforms drawn on the host, applied with
// tensor ops (take + weighted sums) so they run on every device and are differentiable.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "tapeflow/layers.hpp"

#include "shape_rules.hpp"

namespace tapeflow {
namespace layers {

Factor::Factor(double f) : lower(-std::abs(f)), upper(std::abs(f)), pair(false), first(f), second(f) {}
Factor::Factor(double a, double b)
    : lower(std::min(a, b)), upper(std::max(a, b)), pair(true), first(a), second(b) {}

namespace {

constexpr double kPi = 3.14159265358979323846;

std::string factor_str(const Factor& f) {
  return f.pair ? fmt::format("({}, {})", f.first, f.second) : fmt::format("{}", f.first);
}

// ValueError unless both numbers given lie in [lo, hi] (lo excluded when open_lo).
void check_factor(const Factor& f, double lo, double hi, bool open_lo, const char* what, const char* layer) {
  auto ok = [&](double v) { return (open_lo ? v > lo : v >= lo) && v <= hi; };
  if (!ok(f.first) || !ok(f.second)) {
    throw ValueError(fmt::format("{}: {} must be a number or a pair of numbers in {}{}, {}], got {}", layer, what,
                                 open_lo ? "(" : "[", lo, hi, factor_str(f)));
  }
}

// ValueError unless `shape` is [batch, height, width, channels].
void check_image_rank(const Shape& shape, const std::string& layer) {
  if (shape.size() != 4) {
    throw ValueError(
        fmt::format("{}: expected images [batch, height, width, channels], got shape {}", layer, shape_str(shape)));
  }
}

// ValueError unless x is [batch, height, width, channels] of a floating dtype.
void check_images(const Tensor& x, const std::string& layer) {
  check_image_rank(x.shape(), layer);
  if (!is_floating(x.dtype())) {
    throw DTypeError(fmt::format("{}: expected floating images, got {} (shape {})", layer, dtype_name(x.dtype()),
                                 shape_str(x.shape())));
  }
}

// n draws uniform in [lower, upper] (exactly lower when the range is empty), on the host.
std::vector<double> draw_uniform(Generator& gen, std::int64_t n, const Factor& f, double offset = 0) {
  return uniform({n}, gen, offset + f.lower, offset + f.upper, kFloat64).to_vector<double>();
}

// TensorFlow's MapCoordinate for one axis of length len (image_ops.h): the coordinate a fill
// mode reads instead of `c`, clamped into [0, len - 1]; Constant leaves it as is.
float map_coordinate(float c, std::int64_t len, FillMode mode) {
  const auto flen = static_cast<float>(len);
  // A NaN or infinity reads the fill value (affine_transform's taps test the range); a huge
  // coordinate is brought within int64 reach first.
  if (!std::isfinite(c) || mode == FillMode::Constant) return c;
  c = std::clamp(c, -1e9f, 1e9f);
  switch (mode) {
    case FillMode::Reflect:
      if (c < 0) {
        if (len <= 1) {
          c = 0;
        } else {
          const float sz2 = 2 * flen;
          if (c < sz2) c = sz2 * static_cast<float>(static_cast<std::int64_t>(-c / sz2)) + c;
          c = (c < -flen) ? c + sz2 : -c - 1;
        }
      } else if (c > flen - 1) {
        if (len <= 1) {
          c = 0;
        } else {
          const float sz2 = 2 * flen;
          c -= sz2 * static_cast<float>(static_cast<std::int64_t>(c / sz2));
          if (c >= flen) c = sz2 - c - 1;
        }
      }
      return std::clamp(c, 0.0f, flen - 1);
    case FillMode::Wrap:
      // (sic: TensorFlow divides by len - 1 and shifts by len)
      if (c < 0) {
        if (len <= 1) {
          c = 0;
        } else {
          c += flen * static_cast<float>(static_cast<std::int64_t>(-c / (flen - 1)) + 1);
        }
      } else if (c > flen - 1) {
        if (len <= 1) {
          c = 0;
        } else {
          c -= flen * static_cast<float>(static_cast<std::int64_t>(c / (flen - 1)));
        }
      }
      return std::clamp(c, 0.0f, flen - 1);
    case FillMode::Nearest:
      return std::clamp(c, 0.0f, flen - 1);
    case FillMode::Constant:
      break;
  }
  return c;
}

FillMode fill_mode_from_name(const std::string& name, const std::string& layer) {
  if (name == "reflect") return FillMode::Reflect;
  if (name == "wrap") return FillMode::Wrap;
  if (name == "constant") return FillMode::Constant;
  if (name == "nearest") return FillMode::Nearest;
  throw ValueError(fmt::format("{}: unknown fill_mode \"{}\", expected one of \"reflect\", \"wrap\", \"constant\", "
                               "\"nearest\"",
                               layer, name));
}

}  // namespace

Interpolation detail::interpolation_from_name(const std::string& name, const std::string& layer) {
  if (name == "bilinear") return Interpolation::Bilinear;
  if (name == "nearest") return Interpolation::Nearest;
  throw ValueError(
      fmt::format("{}: unknown interpolation \"{}\", expected \"bilinear\" or \"nearest\"", layer, name));
}

// ================================================================ affine_transform

Tensor affine_transform(const Tensor& images, const std::vector<std::array<float, 8>>& transforms,
                        Interpolation interpolation, FillMode fill_mode, double fill_value) {
  check_images(images, "affine_transform");
  const std::int64_t b = images.shape()[0], h = images.shape()[1], w = images.shape()[2], c = images.shape()[3];
  if (static_cast<std::int64_t>(transforms.size()) != b) {
    throw ValueError(fmt::format("affine_transform: expected one transform per image ({}), got {}", b,
                                 transforms.size()));
  }
  // Per output pixel, K taps: a row of the flattened images [b * h * w, c] and its weight. A tap
  // outside the image (Constant mode, or a projection of 0) has weight 0 on row 0 and adds
  // weight * fill_value instead.
  const std::int64_t k = interpolation == Interpolation::Bilinear ? 4 : 1;
  const std::int64_t n = b * h * w;
  std::vector<std::int64_t> rows(static_cast<std::size_t>(n * k), 0);
  std::vector<double> weights(static_cast<std::size_t>(n * k), 0.0);
  std::vector<double> fill(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t i = 0; i < b; ++i) {
    const auto& t = transforms[static_cast<std::size_t>(i)];
    for (std::int64_t oy = 0; oy < h; ++oy) {
      for (std::int64_t ox = 0; ox < w; ++ox) {
        const std::int64_t p = (i * h + oy) * w + ox;
        std::int64_t* prow = &rows[static_cast<std::size_t>(p * k)];
        double* pw = &weights[static_cast<std::size_t>(p * k)];
        double& pfill = fill[static_cast<std::size_t>(p)];
        const auto fx = static_cast<float>(ox), fy = static_cast<float>(oy);
        const float proj = t[6] * fx + t[7] * fy + 1.0f;
        if (proj == 0.0f) {
          pfill = 1.0;
          continue;
        }
        const float x = map_coordinate((t[0] * fx + t[1] * fy + t[2]) / proj, w, fill_mode);
        const float y = map_coordinate((t[3] * fx + t[4] * fy + t[5]) / proj, h, fill_mode);
        // One tap at integer (ty, tx) with weight wt (TensorFlow's read_with_fill_value).
        std::int64_t tap = 0;
        auto add = [&](float ty, float tx, double wt) {
          if (ty >= 0 && ty < static_cast<float>(h) && tx >= 0 && tx < static_cast<float>(w)) {
            prow[tap] = (i * h + static_cast<std::int64_t>(ty)) * w + static_cast<std::int64_t>(tx);
            pw[tap] = wt;
          } else {
            pfill += wt;
          }
          ++tap;
        };
        if (interpolation == Interpolation::Nearest) {
          add(std::round(y), std::round(x), 1.0);
        } else {
          const float x0 = std::floor(x), y0 = std::floor(y), x1 = x0 + 1, y1 = y0 + 1;
          add(y0, x0, double((y1 - y) * (x1 - x)));
          add(y0, x1, double((y1 - y) * (x - x0)));
          add(y1, x0, double((y - y0) * (x1 - x)));
          add(y1, x1, double((y - y0) * (x - x0)));
        }
      }
    }
  }
  const Device dev = images.device();
  const DType dt = images.dtype();
  // taps: [n * k, c] -> [n, k, c], weighted and summed over k: [n, c]; the rows lie in [0, n)
  // by construction, so clip mode (no index read back from a GPU)
  const Tensor taps =
      take(images.reshape({n, c}), tensor(rows, {n * k}, kInt64, dev), 0, IndexMode::Clip).reshape({n, k, c});
  Tensor out = sum(taps * tensor(weights, {n, k, 1}, dt, dev), {1});
  if (fill_value != 0) out = out + tensor(fill, {n, 1}, dt, dev) * fill_value;
  return out.reshape({b, h, w, c});
}

// ================================================================ RandomFlip

RandomFlip::RandomFlip(const std::string& mode, std::string name) : Layer("RandomFlip", std::move(name)) {
  if (mode == "horizontal" || mode == "horizontal_and_vertical") horizontal_ = true;
  if (mode == "vertical" || mode == "horizontal_and_vertical") vertical_ = true;
  if (!horizontal_ && !vertical_) {
    throw ValueError(fmt::format("RandomFlip: unknown mode \"{}\", expected \"horizontal\", \"vertical\" or "
                                 "\"horizontal_and_vertical\"",
                                 mode));
  }
}

Tensor RandomFlip::call(const Tensor& x, bool training) {
  check_images(x, name());
  if (!training) return x;
  const std::int64_t b = x.shape()[0], h = x.shape()[1], w = x.shape()[2], c = x.shape()[3];
  // Draws: [batch] for the horizontal axis, then [batch] for the vertical; < 0.5 flips.
  std::vector<double> flip_x(static_cast<std::size_t>(b), 1.0), flip_y(flip_x);
  if (horizontal_) flip_x = uniform({b}, generator(), 0, 1, kFloat64).to_vector<double>();
  if (vertical_) flip_y = uniform({b}, generator(), 0, 1, kFloat64).to_vector<double>();
  // One source row of the flattened images [b * h * w, c] per output pixel.
  std::vector<std::int64_t> rows(static_cast<std::size_t>(b * h * w));
  for (std::int64_t i = 0; i < b; ++i) {
    const bool fx = flip_x[static_cast<std::size_t>(i)] < 0.5, fy = flip_y[static_cast<std::size_t>(i)] < 0.5;
    for (std::int64_t y = 0; y < h; ++y) {
      for (std::int64_t xx = 0; xx < w; ++xx) {
        rows[static_cast<std::size_t>((i * h + y) * w + xx)] =
            (i * h + (fy ? h - 1 - y : y)) * w + (fx ? w - 1 - xx : xx);
      }
    }
  }
  return take(x.reshape({b * h * w, c}), tensor(rows, {b * h * w}, kInt64, x.device()), 0, IndexMode::Clip)
      .reshape(x.shape());
}

// ================================================================ affine augmentations

AffineAugmentation::AffineAugmentation(std::string class_name, const AugmentOptions& options)
    : Layer(class_name, options.name),
      fill_mode_(fill_mode_from_name(options.fill_mode, class_name)),
      interpolation_(detail::interpolation_from_name(options.interpolation, class_name)),
      fill_value_(options.fill_value) {}

Tensor AffineAugmentation::call(const Tensor& x, bool training) {
  check_images(x, name());
  if (!training) return x;
  return affine_transform(x, draw(x.shape()[0], x.shape()[1], x.shape()[2]), interpolation_, fill_mode_,
                          fill_value_);
}

RandomRotation::RandomRotation(Factor factor, AugmentOptions options)
    : AffineAugmentation("RandomRotation", options), factor_(factor) {
  check_factor(factor_, -1, 1, false, "factor", "RandomRotation");
}

std::vector<std::array<float, 8>> RandomRotation::draw(std::int64_t batch, std::int64_t height, std::int64_t width) {
  // Keras's _compute_affine_matrix with no shear, translation or scale, about the centre
  // (cx, cy) = ((w - 1) / 2, (h - 1) / 2): [cos, -sin, cx - cx cos + cy sin, sin, cos, cy - cx sin - cy cos].
  // In float32 from the angle in degrees, as Keras: a quarter turn's cos is then -4.4e-8, not 0,
  // which decides the rounding of the half-pixel coordinates nearest interpolation reads.
  const std::vector<double> turns = draw_uniform(generator(), batch, factor_);
  const float cx = 0.5f * float(width - 1), cy = 0.5f * float(height - 1);
  std::vector<std::array<float, 8>> out;
  for (double turn : turns) {
    const float a = float(turn * 360) * float(kPi / 180), cs = std::cos(a), sn = std::sin(a);
    out.push_back({cs, -sn, cx - cx * cs - cy * -sn, sn, cs, cy - cx * sn - cy * cs, 0, 0});
  }
  return out;
}

RandomZoom::RandomZoom(Factor height_factor, std::optional<Factor> width_factor, AugmentOptions options)
    : AffineAugmentation("RandomZoom", options), height_factor_(height_factor), width_factor_(width_factor) {
  check_factor(height_factor_, -1, 1, true, "height_factor", "RandomZoom");
  if (width_factor_) check_factor(*width_factor_, -1, 1, true, "width_factor", "RandomZoom");
}

std::vector<std::array<float, 8>> RandomZoom::draw(std::int64_t batch, std::int64_t height, std::int64_t width) {
  // Keras's _get_zoom_matrix: scale about the centre, [zx, 0, (w - 1) / 2 (1 - zx), 0, zy, (h - 1) / 2 (1 - zy)].
  const std::vector<double> zy = draw_uniform(generator(), batch, height_factor_, 1.0);
  const std::vector<double> zx = width_factor_ ? draw_uniform(generator(), batch, *width_factor_, 1.0) : zy;
  std::vector<std::array<float, 8>> out;
  for (std::size_t i = 0; i < zy.size(); ++i) {
    out.push_back({float(zx[i]), 0, float(0.5 * double(width - 1) * (1 - zx[i])), 0, float(zy[i]),
                   float(0.5 * double(height - 1) * (1 - zy[i])), 0, 0});
  }
  return out;
}

RandomTranslation::RandomTranslation(Factor height_factor, Factor width_factor, AugmentOptions options)
    : AffineAugmentation("RandomTranslation", options), height_factor_(height_factor), width_factor_(width_factor) {
  check_factor(height_factor_, -1, 1, false, "height_factor", "RandomTranslation");
  check_factor(width_factor_, -1, 1, false, "width_factor", "RandomTranslation");
}

std::vector<std::array<float, 8>> RandomTranslation::draw(std::int64_t batch, std::int64_t height,
                                                          std::int64_t width) {
  // Keras's _get_translation_matrix: [1, 0, -dx, 0, 1, -dy], dx, dy in pixels.
  const std::vector<double> dy = draw_uniform(generator(), batch, height_factor_);
  const std::vector<double> dx = draw_uniform(generator(), batch, width_factor_);
  std::vector<std::array<float, 8>> out;
  for (std::size_t i = 0; i < dy.size(); ++i) {
    out.push_back({1, 0, float(-dx[i] * double(width)), 0, 1, float(-dy[i] * double(height)), 0, 0});
  }
  return out;
}

// ================================================================ RandomContrast

RandomContrast::RandomContrast(Factor factor, std::pair<double, double> value_range, std::string name)
    : Layer("RandomContrast", std::move(name)), value_range_(value_range) {
  check_factor(factor, 0, 1, false, "factor", "RandomContrast");
  // Keras's _set_factor with bounds (0, 1): a bare f gives (max(-f, 0), f) = (0, f).
  lower_ = factor.pair ? factor.lower : 0.0;
  upper_ = factor.upper;
}

Tensor RandomContrast::call(const Tensor& x, bool training) {
  check_images(x, name());
  if (!training) return x;
  const std::int64_t b = x.shape()[0];
  const std::vector<double> c = uniform({b}, generator(), 1 - lower_, 1 + upper_, kFloat64).to_vector<double>();
  const Tensor factor = tensor(c, {b, 1, 1, 1}, x.dtype(), x.device());
  const Tensor m = mean(x, {1, 2}, true);  // [b, 1, 1, c]
  return clip((x - m) * factor + m, value_range_.first, value_range_.second);
}

// The augmentations keep the images' shape (compute_output_shape), after call()'s rank check.
Shape RandomFlip::compute_output_shape(const Shape& s) const {
  check_image_rank(s, detail::label(*this));
  return s;
}

Shape AffineAugmentation::compute_output_shape(const Shape& s) const {
  check_image_rank(s, detail::label(*this));
  return s;
}

Shape RandomContrast::compute_output_shape(const Shape& s) const {
  check_image_rank(s, detail::label(*this));
  return s;
}

}  // namespace layers
}  // namespace tapeflow
