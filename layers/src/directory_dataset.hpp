#pragma once
// The part of Keras's text_ / image_dataset_from_directory they share (Keras's
// dataset_utils.index_directory): the class subdirectories, the files of each, the seeded
// shuffle and the validation split, the labels tensor. The checks and messages name `op`.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tapeflow/tensor.hpp"

namespace tapeflow::detail {

/// The options both datasets have, with their meaning there (see TextDatasetOptions).
struct DirectorySettings {
  std::string label_mode;
  std::vector<std::string> class_names;
  bool shuffle = true;
  std::uint64_t seed = 0;
  double validation_split = 0;
  std::string subset;
};

template <class Options>
DirectorySettings directory_settings(const Options& o) {
  DirectorySettings s;
  s.label_mode = o.label_mode;
  s.class_names = o.class_names;
  s.shuffle = o.shuffle;
  s.seed = o.seed;
  s.validation_split = o.validation_split;
  s.subset = o.subset;
  return s;
}

/// The files a dataset reads, in its order (shuffled, then split).
struct DirectoryListing {
  std::vector<std::string> class_names;
  std::vector<std::filesystem::path> paths;
  std::vector<std::int32_t> labels;  // the class of each path
};

/// Checks the settings, lists every file under each class subdirectory (at any depth) whose
/// name ends in one of `extensions` (lower case; the name is compared in any case), shuffles
/// and splits them. `kind` names the files in messages (".txt", "image"). Errors as
/// text_dataset_from_directory documents them.
DirectoryListing list_directory(const char* op, const std::string& directory, const DirectorySettings& settings,
                                const std::vector<std::string>& extensions, const char* kind);

/// The bytes of a file; IOError naming `op` and the path when it cannot be read.
std::string read_bytes(const char* op, const std::filesystem::path& path);

/// The labels of `label_mode` for the listing's files: int32 [n], float32 [n, 1] ("binary"),
/// float32 one-hot [n, classes] ("categorical"), or undefined ("none").
Tensor directory_labels(const DirectoryListing& listing, const std::string& label_mode);

}  // namespace tapeflow::detail
