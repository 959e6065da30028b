#pragma once
/// Weights on disk in the safetensors format (Hugging Face), which PyTorch, JAX and NumPy
/// users read with the `safetensors` package.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON
///   {"__metadata__": {"k": "v", ...}, "name": {"dtype": "F32", "shape": [2, 3],
///    "data_offsets": [begin, end]}, ...}
/// padded with spaces so that the data starts at a multiple of 8, then the tensors' bytes,
/// little-endian, row-major, offsets relative to the start of the data. tapeflow reads and
/// writes the dtypes BOOL, I32, I64, F32 and F64.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tapeflow/tensor.hpp"

namespace tapeflow {

/// Tensors with their names, in order.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// Writes `tensors` (any layout: views are written in logical order; a tensor on a GPU is
/// copied to the host first) and `metadata` to `path`. The file is first written to
/// `path + ".tmp.<pid>"`, flushed to disk and then renamed over `path`, so a reader sees the old
/// file or the new one, never a part. Names must be unique and not "__metadata__" (ValueError);
/// a failed write raises IOError naming the file and leaves `path` as it was.
/// The header lists the tensors in the given order; their data are laid out widest dtype
/// first so that every tensor starts at a multiple of its item size.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Reads every tensor of a safetensors file, in the order of its header. The whole file is
/// validated first: header length, JSON syntax, dtypes, shapes against byte counts, offsets
/// that tile the data exactly (no overlap, gap or trailing byte), bool bytes 0 or 1. A missing,
/// truncated or corrupt file raises IOError naming the file and what is wrong.
NamedTensors load_safetensors(const std::string& path);

/// The same tensors looked up by name.
std::map<std::string, Tensor> load_safetensors_map(const std::string& path);

/// The "__metadata__" of a safetensors file (empty when it has none). The header is validated
/// as by load_safetensors; the tensor data are not read.
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

}  // namespace tapeflow
