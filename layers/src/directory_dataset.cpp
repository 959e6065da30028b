// Keras's index_directory, shared by text_dataset_from_directory and
// image_dataset_from_directory: classes, files, the seeded shuffle and the validation split.
#include "directory_dataset.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <numeric>
#include <utility>

#include "tapeflow/data.hpp"
#include "tapeflow/error.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow::detail {

namespace fs = std::filesystem;

namespace {

bool has_extension(std::string name, const std::vector<std::string>& extensions) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  return std::any_of(extensions.begin(), extensions.end(), [&](const std::string& e) {
    return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
  });
}

// Keras's iter_valid_files: every file with one of the extensions under dir, sorted by folder,
// then by name
std::vector<fs::path> valid_files(const char* op, const fs::path& dir, const std::vector<std::string>& extensions) {
  std::vector<std::pair<std::string, std::string>> found;  // (folder, file name)
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory() && has_extension(it->path().filename().string(), extensions)) {
      found.emplace_back(it->path().parent_path().string(), it->path().filename().string());
    }
  }
  if (ec) throw IOError(fmt::format("{}: cannot list {}: {}", op, dir.string(), ec.message()));
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (const auto& [folder, name] : found) out.push_back(fs::path(folder) / name);
  return out;
}

void check_settings(const char* op, const DirectorySettings& o) {
  if (o.label_mode != "int" && o.label_mode != "categorical" && o.label_mode != "binary" && o.label_mode != "none") {
    throw ValueError(fmt::format(
        "{}: unknown label_mode \"{}\" (known: \"int\", \"categorical\", \"binary\", \"none\")", op, o.label_mode));
  }
  if (o.validation_split != 0 && !(o.validation_split > 0 && o.validation_split < 1)) {
    throw ValueError(fmt::format("{}: validation_split must be in (0, 1), got {}", op, o.validation_split));
  }
  if (o.validation_split != 0 && o.subset != "training" && o.subset != "validation") {
    throw ValueError(fmt::format("{}: with validation_split {}, subset must be \"training\" or \"validation\", got \"{}\"",
                                 op, o.validation_split, o.subset));
  }
  if (o.validation_split == 0 && !o.subset.empty()) {
    throw ValueError(fmt::format("{}: subset \"{}\" needs a validation_split", op, o.subset));
  }
}

}  // namespace

DirectoryListing list_directory(const char* op, const std::string& directory, const DirectorySettings& o,
                                const std::vector<std::string>& extensions, const char* kind) {
  check_settings(op, o);
  const fs::path root(directory);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw IOError(fmt::format("{}: {} is not a directory (or does not exist)", op, directory));
  }
  std::vector<std::string> subdirs;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_directory() && name.rfind('.', 0) != 0) subdirs.push_back(name);
  }
  if (ec) throw IOError(fmt::format("{}: cannot list {}: {}", op, directory, ec.message()));
  std::sort(subdirs.begin(), subdirs.end());
  if (subdirs.empty()) {
    throw ValueError(
        fmt::format("{}: {} holds no class subdirectory (one per class, each with {} files)", op, directory, kind));
  }
  DirectoryListing all;
  all.class_names = subdirs;
  if (!o.class_names.empty()) {
    for (const auto& name : o.class_names) {
      if (!std::binary_search(subdirs.begin(), subdirs.end(), name)) {
        throw ValueError(fmt::format("{}: class_names has \"{}\", which is not a subdirectory of {} (those are: {})",
                                     op, name, directory, fmt::join(subdirs, ", ")));
      }
    }
    all.class_names = o.class_names;  // in the order given, as Keras
  }
  const auto num_classes = static_cast<std::int64_t>(all.class_names.size());
  if (o.label_mode == "binary" && num_classes != 2) {
    throw ValueError(fmt::format("{}: label_mode \"binary\" needs exactly 2 classes, {} has {} ({})", op, directory,
                                 num_classes, fmt::join(all.class_names, ", ")));
  }

  for (std::int64_t c = 0; c < num_classes; ++c) {
    for (auto& p : valid_files(op, root / all.class_names[c], extensions)) {
      all.paths.push_back(std::move(p));
      all.labels.push_back(static_cast<std::int32_t>(c));
    }
  }
  const auto n = static_cast<std::int64_t>(all.paths.size());
  if (n == 0) {
    throw ValueError(fmt::format("{}: no {} files found in the class subdirectories of {}", op, kind, directory));
  }

  std::vector<std::int64_t> order(all.paths.size());
  std::iota(order.begin(), order.end(), 0);
  if (o.shuffle) {
    Generator gen(o.seed);
    order = random_permutation(n, gen).to_vector<std::int64_t>();
  }
  if (o.validation_split != 0) {
    // Keras: int(validation_split * n) files for validation, the last ones
    const auto num_val = static_cast<std::int64_t>(o.validation_split * static_cast<double>(n));
    if (o.subset == "training") {
      order.resize(static_cast<std::size_t>(n - num_val));
    } else {
      order.erase(order.begin(), order.begin() + (n - num_val));
    }
  }
  DirectoryListing out;
  out.class_names = all.class_names;
  for (std::int64_t i : order) {
    out.paths.push_back(all.paths[i]);
    out.labels.push_back(all.labels[i]);
  }
  return out;
}

std::string read_bytes(const char* op, const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError(fmt::format("{}: cannot open {}", op, path.string()));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw IOError(fmt::format("{}: cannot read {}", op, path.string()));
  return s.str();
}

Tensor directory_labels(const DirectoryListing& listing, const std::string& label_mode) {
  const auto n = static_cast<std::int64_t>(listing.labels.size());
  const auto num_classes = static_cast<std::int64_t>(listing.class_names.size());
  if (label_mode == "int") return tensor(listing.labels, Shape{n}, kInt32);
  if (label_mode == "binary") return tensor(listing.labels, Shape{n, 1}, kFloat32);
  if (label_mode == "categorical") return one_hot(tensor(listing.labels, Shape{n}, kInt64), num_classes, kFloat32);
  return Tensor();
}

}  // namespace tapeflow::detail
