#pragma once
/// Reading datasets from files (never downloaded at run time).
#include <string>

#include "tapeflow/tensor.hpp"

namespace tapeflow {

/// Reads an IDX file (MNIST's format), raw or gzip-compressed (detected from the content).
/// Unsigned-byte data give an int32 tensor; the header's dimensions give the shape.
/// A missing, truncated or malformed file raises IOError naming the file and what is wrong.
Tensor read_idx(const std::string& path);

/// Fashion-MNIST / MNIST in the four standard IDX files of a folder.
struct MnistData {
  Tensor train_images;  ///< [60000, 28, 28] float32 in [0, 1]
  Tensor train_labels;  ///< [60000] int64
  Tensor test_images;   ///< [10000, 28, 28] float32 in [0, 1]
  Tensor test_labels;   ///< [10000] int64
};

/// Where Debian's dataset-fashion-mnist installs the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Loads train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-... from `dir`.
/// With the default `dir`, the environment variable TAPEFLOW_FASHION_MNIST_DIR, where set,
/// names the folder instead (a package unpacked into a prefix, as on the GPU machine).
MnistData load_mnist(const std::string& dir = kFashionMnistDir);

}  // namespace tapeflow
