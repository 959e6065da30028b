// Keras's image loading (load_img, image_dataset_from_directory) on stb_image, and the Resizing
// and CenterCrop layers: tf.image.resize's half-pixel sampling written with take and
// arithmetic, so the layers have gradients and run on every device.
#include "tapeflow/image.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "tapeflow/error.hpp"
#include "tapeflow/ops.hpp"

#include "directory_dataset.hpp"
#include "image_decode.hpp"
#include "shape_rules.hpp"

namespace tapeflow {
namespace {

const char* const kLoadOp = "load_img";
const char* const kDirOp = "image_dataset_from_directory";

// Keras's ALLOWLIST_FORMATS
const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> e = {".bmp", ".gif", ".jpeg", ".jpg", ".png"};
  return e;
}

// tf.image.resize (half_pixel_centers, no antialias) along one axis of x, `out` long.
Tensor resize_axis(const Tensor& x, std::int64_t axis, std::int64_t out, layers::Interpolation interpolation) {
  const std::int64_t in = x.dim(axis);
  if (in == out) return x;  // half-pixel sampling at scale 1 reads each pixel as it is
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const auto n = static_cast<std::size_t>(out);
  if (interpolation == layers::Interpolation::Nearest) {
    // TensorFlow's resize_nearest_neighbor: floor((i + 0.5) * scale), clamped
    std::vector<std::int64_t> idx(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto v = static_cast<std::int64_t>(std::floor((static_cast<float>(i) + 0.5f) * scale));
      idx[i] = std::clamp<std::int64_t>(v, 0, in - 1);
    }
    return take(x, tensor(idx, Shape{out}, kInt64, x.device()), axis, IndexMode::Clip);
  }
  // TensorFlow's compute_interpolation_weights: v = (i + 0.5) * scale - 0.5 between
  // max(floor(v), 0) and min(ceil(v), in - 1), weight v - floor(v) on the upper one
  std::vector<std::int64_t> lower(n), upper(n);
  std::vector<double> lerp(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float v = (static_cast<float>(i) + 0.5f) * scale - 0.5f;
    const float f = std::floor(v);
    lower[i] = std::max<std::int64_t>(static_cast<std::int64_t>(f), 0);
    upper[i] = std::min<std::int64_t>(static_cast<std::int64_t>(std::ceil(v)), in - 1);
    lerp[i] = v - f;
  }
  Shape wshape(static_cast<std::size_t>(x.rank()), 1);
  wshape[static_cast<std::size_t>(axis)] = out;
  // lower and upper are clamped into [0, in) above: clip mode reads no index back from a GPU
  const Tensor a = take(x, tensor(lower, Shape{out}, kInt64, x.device()), axis, IndexMode::Clip);
  const Tensor b = take(x, tensor(upper, Shape{out}, kInt64, x.device()), axis, IndexMode::Clip);
  return a + (b - a) * tensor(lerp, wshape, x.dtype(), x.device());
}

// images [..., h, w, c] -> [..., height, width, c]; width first, then height, as TensorFlow
// interpolates (top and bottom rows along x, then between them along y).
Tensor resize_images(const Tensor& x, std::int64_t height, std::int64_t width, layers::Interpolation interpolation) {
  const std::int64_t r = x.rank();
  return resize_axis(resize_axis(x, r - 2, width, interpolation), r - 3, height, interpolation);
}

// Keras's smart_resize / crop_to_aspect_ratio crop: the largest centred box of the target's
// aspect ratio (float32 arithmetic, truncated, as Keras's TensorFlow code)
Tensor crop_to_aspect(const Tensor& x, std::int64_t height, std::int64_t width) {
  const std::int64_t h = x.dim(x.rank() - 3), w = x.dim(x.rank() - 2);
  auto crop_h = static_cast<std::int64_t>(static_cast<float>(w * height) / static_cast<float>(width));
  crop_h = std::max<std::int64_t>(std::min(h, crop_h), 1);
  auto crop_w = static_cast<std::int64_t>(static_cast<float>(h * width) / static_cast<float>(height));
  crop_w = std::max<std::int64_t>(std::min(w, crop_w), 1);
  const auto h0 = static_cast<std::int64_t>(static_cast<float>(h - crop_h) / 2);
  const auto w0 = static_cast<std::int64_t>(static_cast<float>(w - crop_w) / 2);
  return x.index({ellipsis, Slice(h0, h0 + crop_h), Slice(w0, w0 + crop_w), all});
}

void check_size(const char* op, const char* option, std::int64_t height, std::int64_t width) {
  if (height <= 0 || width <= 0) {
    throw ValueError(fmt::format("{}: {} must be positive, got ({}, {})", op, option, height, width));
  }
}

std::int64_t channels_of(const char* op, const std::string& color_mode) {
  if (color_mode == "rgb") return 3;
  if (color_mode == "grayscale") return 1;
  if (color_mode == "rgba") return 4;
  throw ValueError(fmt::format("{}: unknown color_mode \"{}\" (known: \"rgb\", \"grayscale\", \"rgba\")", op,
                               color_mode));
}

// The file at `path` decoded as float32 [h, w, channels], 0..255: grayscale is PIL's
// convert("L") (ITU-R 601-2 luma in 16-bit fixed point, rounded; alpha ignored).
Tensor decode_file(const char* op, const std::string& path, std::int64_t channels) {
  std::string error;
  detail::DecodedImage img;
  if (!detail::decode_image(detail::read_bytes(op, path), img, error)) {
    throw IOError(fmt::format("{}: cannot decode {}: {}", op, path, error));
  }
  const std::int64_t pixels = img.height * img.width;
  std::vector<float> v(static_cast<std::size_t>(pixels * channels));
  for (std::int64_t p = 0; p < pixels; ++p) {
    const std::uint8_t* px = &img.rgba[static_cast<std::size_t>(p * 4)];
    float* o = &v[static_cast<std::size_t>(p * channels)];
    if (channels == 1) {
      o[0] = static_cast<float>((px[0] * 19595u + px[1] * 38470u + px[2] * 7471u + 0x8000u) >> 16);
    } else {
      for (std::int64_t c = 0; c < channels; ++c) o[c] = px[c];
    }
  }
  return tensor(v, Shape{img.height, img.width, channels}, kFloat32);
}

}  // namespace

Tensor load_img(const std::string& path, const LoadImgOptions& options) {
  const std::int64_t channels = channels_of(kLoadOp, options.color_mode);
  const layers::Interpolation interpolation = layers::detail::interpolation_from_name(options.interpolation, kLoadOp);
  const auto [height, width] = options.target_size;
  const bool resize = height != 0 || width != 0;
  if (resize) check_size(kLoadOp, "target_size", height, width);
  Tensor x = decode_file(kLoadOp, path, channels);
  if (!resize) return x;
  if (options.keep_aspect_ratio) x = crop_to_aspect(x, height, width);
  return resize_images(x, height, width, interpolation).contiguous();
}

ImageDataset image_dataset_from_directory(const std::string& directory, const ImageDatasetOptions& options) {
  const std::int64_t channels = channels_of(kDirOp, options.color_mode);
  const layers::Interpolation interpolation = layers::detail::interpolation_from_name(options.interpolation, kDirOp);
  const auto [height, width] = options.image_size;
  check_size(kDirOp, "image_size", height, width);
  const detail::DirectoryListing files =
      detail::list_directory(kDirOp, directory, detail::directory_settings(options), image_extensions(), "image");
  ImageDataset ds;
  ds.class_names = files.class_names;
  const auto n = static_cast<std::int64_t>(files.paths.size());
  std::vector<float> pixels;
  pixels.reserve(static_cast<std::size_t>(n * height * width * channels));
  for (const auto& path : files.paths) {
    Tensor x = decode_file(kDirOp, path.string(), channels);
    if (options.crop_to_aspect_ratio) x = crop_to_aspect(x, height, width);
    const auto v = resize_images(x, height, width, interpolation).to_vector<float>();
    pixels.insert(pixels.end(), v.begin(), v.end());
    ds.file_paths.push_back(path.string());
  }
  ds.images = tensor(pixels, Shape{n, height, width, channels}, kFloat32);
  ds.labels = detail::directory_labels(files, options.label_mode);
  return ds;
}

namespace layers {
namespace {

// ValueError unless `shape` is [batch, h, w, c] or [h, w, c].
void check_image_shape(const Shape& shape, const std::string& layer) {
  if (shape.size() != 3 && shape.size() != 4) {
    throw ValueError(fmt::format("{}: expected images [batch, height, width, channels] or [height, width, channels], "
                                 "got shape {}",
                                 layer, shape_str(shape)));
  }
}

void check_images(const Tensor& x, const std::string& layer) {
  check_image_shape(x.shape(), layer);
  if (!is_floating(x.dtype())) {
    throw DTypeError(fmt::format("{}: expected floating images, got {} (shape {})", layer, dtype_name(x.dtype()),
                                 shape_str(x.shape())));
  }
}

// The input's shape with height and width replaced.
Shape resized_shape(Shape s, std::int64_t height, std::int64_t width) {
  s[s.size() - 3] = height;
  s[s.size() - 2] = width;
  return s;
}

}  // namespace

Resizing::Resizing(std::int64_t height, std::int64_t width, std::string interpolation, bool crop_to_aspect_ratio,
                   std::string name)
    : Layer("Resizing", std::move(name)),
      height_(height),
      width_(width),
      interpolation_(detail::interpolation_from_name(interpolation, "Resizing")),
      crop_to_aspect_ratio_(crop_to_aspect_ratio) {
  check_size("Resizing", "(height, width)", height, width);
}

Tensor Resizing::call(const Tensor& x, bool /*training*/) {
  check_images(x, detail::label(*this));
  const Tensor in = crop_to_aspect_ratio_ ? crop_to_aspect(x, height_, width_) : x;
  return resize_images(in, height_, width_, interpolation_);
}

Shape Resizing::compute_output_shape(const Shape& s) const {
  check_image_shape(s, detail::label(*this));
  return resized_shape(s, height_, width_);
}

CenterCrop::CenterCrop(std::int64_t height, std::int64_t width, std::string name)
    : Layer("CenterCrop", std::move(name)), height_(height), width_(width) {
  check_size("CenterCrop", "(height, width)", height, width);
}

Tensor CenterCrop::call(const Tensor& x, bool /*training*/) {
  check_images(x, detail::label(*this));
  const std::int64_t h_diff = x.dim(x.rank() - 3) - height_, w_diff = x.dim(x.rank() - 2) - width_;
  if (h_diff >= 0 && w_diff >= 0) {
    const std::int64_t h0 = h_diff / 2, w0 = w_diff / 2;
    return x.index({ellipsis, Slice(h0, h0 + height_), Slice(w0, w0 + width_), all});
  }
  // smaller on an axis: Keras's smart_resize (bilinear)
  return resize_images(crop_to_aspect(x, height_, width_), height_, width_, Interpolation::Bilinear);
}

Shape CenterCrop::compute_output_shape(const Shape& s) const {
  check_image_shape(s, detail::label(*this));
  return resized_shape(s, height_, width_);
}

}  // namespace layers
}  // namespace tapeflow
