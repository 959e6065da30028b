#pragma once
/// Reading datasets from files (never downloaded at run time).
#include <string>

#include "tapeflow/tensor.hpp"

namespace tapeflow {

/// Reads an IDX file (MNIST's format), raw or gzip-compressed (detected from the content).
/// The header's dimensions give the shape; ubyte, sbyte, short and int data give an int32
/// tensor, float data float32 and double data float64, values as stored. A gzip file may hold
/// several complete members (read as their concatenation, as gzip does), maybe followed by
/// zero bytes (padding, skipped as gzip and Python skip it).
/// A missing, truncated or malformed file raises IOError naming the file and what is wrong; so
/// do a gzip stream cut short (its CRC/size trailer included), a failed CRC or size check, and
/// other bytes after the data or after the last gzip member.
Tensor read_idx(const std::string& path);

/// Fashion-MNIST / MNIST in the four standard IDX files of a folder.
struct MnistData {
  Tensor train_images;  ///< [60000, 28, 28] float32; ubyte pixels / 255, in [0, 1] (see load_mnist)
  Tensor train_labels;  ///< [60000] int64 in [0, 10)
  Tensor test_images;   ///< [10000, 28, 28] float32; ubyte pixels / 255, in [0, 1] (see load_mnist)
  Tensor test_labels;   ///< [10000] int64 in [0, 10)
};

/// Where Debian's dataset-fashion-mnist installs the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Loads train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-... from `dir`.
/// Images [count, rows, cols] come back as float32: integer pixels (the standard files' ubyte,
/// 0 to 255) divided by 255, so in [0, 1]; float and double pixels as stored, not rescaled.
/// Labels [count] must be of an integer type and in [0, 10): anything else, or image and label
/// counts that differ, raise IOError naming the file (and the first bad label and its index).
/// With the default `dir`, the environment variable TAPEFLOW_FASHION_MNIST_DIR, where set,
/// names the folder instead (a package unpacked into a prefix, as on the GPU machine).
MnistData load_mnist(const std::string& dir = kFashionMnistDir);

}  // namespace tapeflow
