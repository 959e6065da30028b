#pragma once
/// Keras's image loading and resizing (Deep Learning with Python, chapter 8: cats vs dogs from
/// a folder): load_img, image_dataset_from_directory, and the Resizing and CenterCrop layers.
///
///     ImageDatasetOptions o;
///     o.image_size = {180, 180};
///     ImageDataset train = image_dataset_from_directory("cats_vs_dogs_small/train", o);
///     model.fit(train.images, train.labels, fit_options);     // images float32 [n, 180, 180, 3], 0..255
///
/// Files are decoded by stb_image (JPEG, PNG, BMP, GIF; Debian's libstb-dev). Images are
/// float32 [height, width, channels] with values 0..255 (Keras's img_to_array).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tapeflow/layers.hpp"
#include "tapeflow/tensor.hpp"

namespace tapeflow {

/// load_img's settings; their defaults are Keras's.
struct LoadImgOptions {
  /// "rgb" (3 channels), "grayscale" (1: PIL's L = (R * 19595 + G * 38470 + B * 7471 + 32768)
  /// >> 16, R*299/1000 + G*587/1000 + B*114/1000 rounded) or "rgba" (4; alpha 255 where the
  /// file has none).
  std::string color_mode = "rgb";
  /// {height, width} to resize to; {0, 0} (Keras's None): the file's size.
  std::pair<std::int64_t, std::int64_t> target_size{0, 0};
  /// "bilinear" or "nearest" (Keras's default for load_img is "nearest").
  std::string interpolation = "nearest";
  /// Crop the largest centred box of the target's aspect ratio before resizing.
  bool keep_aspect_ratio = false;
};

/// Keras's img_to_array(load_img(path, ...)): the image at `path` as float32 [h, w, c],
/// values 0..255. IOError naming the path when it cannot be read or decoded (with stb's
/// reason); ValueError for a bad option.
///
/// Where we differ from Keras 3.15 (PIL): target_size resizes as tf.image.resize (half-pixel
/// centres, no antialiasing; see Resizing), not with PIL's filters (which antialias when
/// shrinking); JPEGs are decoded by stb_image, whose IDCT and chroma upsampling differ from
/// libjpeg-turbo's by a few levels; 16-bit PNGs are reduced to 8 bits (PIL keeps 16-bit
/// grayscale as "I;16"); GIFs give their first frame.
Tensor load_img(const std::string& path, const LoadImgOptions& options = {});

/// image_dataset_from_directory's settings; their defaults are Keras's (but for seed).
struct ImageDatasetOptions {
  /// As TextDatasetOptions: "int", "categorical", "binary" or "none".
  std::string label_mode = "int";
  std::vector<std::string> class_names;
  /// "rgb", "grayscale" or "rgba", as load_img.
  std::string color_mode = "rgb";
  /// {height, width} every image is resized to.
  std::pair<std::int64_t, std::int64_t> image_size{256, 256};
  /// "bilinear" or "nearest".
  std::string interpolation = "bilinear";
  /// Crop the largest centred box of image_size's aspect ratio before resizing (Keras's
  /// smart_resize), instead of stretching.
  bool crop_to_aspect_ratio = false;
  bool shuffle = true;
  std::uint64_t seed = 0;
  double validation_split = 0;
  std::string subset;
};

/// The images image_dataset_from_directory read, in their (shuffled) order.
struct ImageDataset {
  /// float32 [n, height, width, channels], values 0..255.
  Tensor images;
  /// As label_mode says; undefined with "none".
  Tensor labels;
  std::vector<std::string> class_names;
  std::vector<std::string> file_paths;
};

/// Keras's keras.utils.image_dataset_from_directory with labels="inferred": every file whose
/// name ends in .jpeg, .jpg, .png, .bmp or .gif (any case) under a class subdirectory, at any
/// depth, is one example of that class, decoded and resized to image_size as tf.image.resize
/// does (bilinear or nearest, half-pixel centres, no antialiasing). Classes, order, shuffle,
/// split and errors are text_dataset_from_directory's (see text.hpp), with "image files" in
/// place of ".txt files"; IOError naming a file that cannot be decoded; ValueError for a bad
/// color_mode, interpolation or image_size.
///
/// Where we differ from Keras 3.15: the whole dataset comes back in memory as one tensor, not as
/// a batched tf.data.Dataset; the shuffle is tapeflow's seeded permutation (see
/// text_dataset_from_directory); decoding is stb_image's (see load_img; TensorFlow's own
/// grayscale conversion of colour files may differ from PIL's formula by a level); no
/// pad_to_aspect_ratio, subset "both", data_format or explicit labels.
ImageDataset image_dataset_from_directory(const std::string& directory, const ImageDatasetOptions& options = {});

namespace layers {

/// Keras's layers.Resizing: images [batch, h, w, c] or [h, w, c] (floating) resized to
/// [..., height, width, c] as tf.image.resize (half-pixel centres, no antialiasing), with
/// "bilinear" or "nearest" interpolation; crop_to_aspect_ratio first crops the largest centred
/// box of the target's aspect ratio. Built from take and arithmetic: it has gradients and runs
/// on every device. Does not support masking, as Keras. Keras's pad_to_aspect_ratio, antialias,
/// fill_mode and integer inputs are not offered (DTypeError for those).
class Resizing : public Layer {
 public:
  Resizing(std::int64_t height, std::int64_t width, std::string interpolation = "bilinear",
           bool crop_to_aspect_ratio = false, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  std::int64_t height_, width_;
  Interpolation interpolation_;
  bool crop_to_aspect_ratio_;
};

/// Keras's layers.CenterCrop: images [batch, h, w, c] or [h, w, c] (floating), the centred
/// height x width window when the image is at least that large on both axes; otherwise the
/// largest centred box of the target's aspect ratio resized (bilinear) to it, as Keras's
/// smart_resize. Differentiable, on every device; no masking, as Keras.
class CenterCrop : public Layer {
 public:
  CenterCrop(std::int64_t height, std::int64_t width, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  std::int64_t height_, width_;
};

}  // namespace layers
}  // namespace tapeflow
