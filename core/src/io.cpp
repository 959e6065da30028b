// IDX files (the format of MNIST and Fashion-MNIST), raw or gzip-compressed.
//
// Layout: two zero bytes, a type code, the number of dimensions n, then n big-endian uint32
// dimensions and the data in row-major order, multi-byte values big-endian.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tapeflow/io.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow {
namespace {

struct IdxType {
  const char* name;
  std::size_t bytes;  // per element in the file
  DType dtype;        // of the tensor returned
};

bool idx_type(std::uint8_t code, IdxType& out) {
  switch (code) {
    case 0x08: out = {"ubyte", 1, kInt32}; return true;
    case 0x09: out = {"sbyte", 1, kInt32}; return true;
    case 0x0B: out = {"short", 2, kInt32}; return true;
    case 0x0C: out = {"int", 4, kInt32}; return true;
    case 0x0D: out = {"float", 4, kFloat32}; return true;
    case 0x0E: out = {"double", 8, kFloat64}; return true;
    default: return false;
  }
}

std::uint64_t big_endian(const unsigned char* p, std::size_t bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// gzFile that closes itself. zlib reads files without the gzip magic unchanged ("transparent"
// mode), so one reader serves raw and compressed files alike.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    errno = 0;
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) {
      const char* why = errno ? std::strerror(errno) : "out of memory";
      throw IOError(fmt::format("read_idx: cannot open '{}': {}", path, why));
    }
    // 256 KiB instead of zlib's 8 KiB default: fewer calls on the 26 MB training images.
    gzbuffer(file_, 1 << 18);
  }
  ~GzReader() { gzclose(file_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; fewer only at the end of the data or where a gzip stream is cut short
  // (then cut_short() is true). Corrupt data raise IOError naming `what` was being read.
  std::size_t read(void* dst, std::size_t n, const char* what) {
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t done = 0;
    while (done < n) {
      // gzread takes an unsigned count: read in chunks of 1 GiB.
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, std::size_t{1} << 30));
      const int got = gzread(file_, out + done, chunk);
      if (got < 0) fail(what, done);
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    // zlib reports a gzip stream that ends early as Z_BUF_ERROR after a short read, not as -1.
    int code = Z_OK;
    gzerror(file_, &code);
    if (code == Z_BUF_ERROR)
      cut_short_ = true;
    else if (code != Z_OK)
      fail(what, done);
    return done;
  }

  bool cut_short() const { return cut_short_; }
  // True for a file read as it is (no gzip magic); valid once reading has started.
  bool raw() const { return gzdirect(file_) == 1; }

  // Counts the bytes left until the end of the data.
  std::uint64_t remaining() {
    std::vector<unsigned char> buf(1 << 16);
    std::uint64_t total = 0;
    for (std::size_t got; (got = read(buf.data(), buf.size(), "trailing bytes")) > 0;) total += got;
    return total;
  }

 private:
  [[noreturn]] void fail(const char* what, std::size_t done) {
    int code = Z_OK;
    const char* msg = gzerror(file_, &code);
    throw IOError(fmt::format("read_idx: '{}': cannot read the {} after {} bytes: {}", path_, what, done,
                              code == Z_ERRNO ? std::strerror(errno) : msg));
  }

  std::string path_;
  gzFile file_ = nullptr;
  bool cut_short_ = false;
};

// Converts n big-endian file values of `type` into the tensor's buffer.
void convert(const unsigned char* src, std::size_t n, std::uint8_t code, void* dst) {
  switch (code) {
    case 0x08: {
      auto* out = static_cast<std::int32_t*>(dst);
      for (std::size_t i = 0; i < n; ++i) out[i] = src[i];
      break;
    }
    case 0x09: {
      auto* out = static_cast<std::int32_t*>(dst);
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::int8_t>(src[i]);
      break;
    }
    case 0x0B: {
      auto* out = static_cast<std::int32_t*>(dst);
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<std::int16_t>(static_cast<std::uint16_t>(big_endian(src + 2 * i, 2)));
      break;
    }
    case 0x0C: {
      auto* out = static_cast<std::int32_t*>(dst);
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<std::int32_t>(static_cast<std::uint32_t>(big_endian(src + 4 * i, 4)));
      break;
    }
    case 0x0D: {
      auto* out = static_cast<float*>(dst);
      for (std::size_t i = 0; i < n; ++i) {
        const auto bits = static_cast<std::uint32_t>(big_endian(src + 4 * i, 4));
        std::memcpy(&out[i], &bits, 4);
      }
      break;
    }
    case 0x0E: {
      auto* out = static_cast<double*>(dst);
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t bits = big_endian(src + 8 * i, 8);
        std::memcpy(&out[i], &bits, 8);
      }
      break;
    }
    default: break;
  }
}

// read_idx, or with unit_floats: unsigned bytes decoded straight to float32 / 255 (images),
// so loading never holds an int32 copy of the data beside the float32 one.
Tensor read_idx_impl(const std::string& path, bool unit_floats) {
  GzReader in(path);

  unsigned char header[4];
  const std::size_t got_header = in.read(header, 4, "header");
  if (got_header < 4)
    throw IOError(fmt::format("read_idx: '{}' is not an IDX file: {} bytes, shorter than the 4-byte header",
                              path, got_header));
  if (header[0] != 0 || header[1] != 0)
    throw IOError(fmt::format("read_idx: '{}' is not an IDX file: bad magic {:02x} {:02x} {:02x} {:02x} "
                              "(expected 00 00 <type> <rank>)",
                              path, header[0], header[1], header[2], header[3]));
  IdxType type{};
  if (!idx_type(header[2], type))
    throw IOError(fmt::format("read_idx: '{}': unsupported type code 0x{:02x} (expected 0x08 ubyte, 0x09 sbyte, "
                              "0x0b short, 0x0c int, 0x0d float or 0x0e double)",
                              path, header[2]));
  const unsigned rank = header[3];
  if (rank < 1 || rank > 16)
    throw IOError(fmt::format("read_idx: '{}': {} dimensions in the header (expected 1 to 16)", path, rank));

  std::vector<unsigned char> dims_raw(4 * rank);
  const std::size_t got_dims = in.read(dims_raw.data(), dims_raw.size(), "dimensions");
  if (got_dims < dims_raw.size())
    throw IOError(fmt::format("read_idx: '{}' is truncated: the header announces {} dimensions ({} bytes) "
                              "but only {} bytes follow",
                              path, rank, dims_raw.size(), got_dims));
  Shape shape(rank);
  // Checked in 64 bits: 16 dimensions of up to 2^32 - 1 overflow anything. The product of the
  // non-zero dimensions too: a tensor's strides need it even when a 0 makes it empty.
  std::uint64_t count = 1, nonzero = 1;
  bool overflow = false;
  for (unsigned i = 0; i < rank; ++i) {
    shape[i] = static_cast<std::int64_t>(big_endian(&dims_raw[4 * i], 4));
    const auto d = static_cast<std::uint64_t>(shape[i]);
    if (d == 0) {
      count = 0;
      continue;
    }
    if (nonzero > (std::numeric_limits<std::uint64_t>::max() >> 4) / d) overflow = true;
    nonzero *= d;
    count *= d;
  }
  if (overflow || count > (std::uint64_t{1} << 40))
    throw IOError(fmt::format("read_idx: '{}': dimensions {} are too large", path, shape_str(shape)));

  // Never allocate much more than the file holds (a 28-byte file may announce TiBs): a raw
  // file's size is known; a gzip stream's data is read in chunks as it comes.
  const std::size_t expected = static_cast<std::size_t>(count) * type.bytes;
  const std::size_t header_bytes = 4 + dims_raw.size();
  std::size_t got = 0;
  std::vector<unsigned char> raw;
  std::error_code size_error;
  const std::uintmax_t file_bytes = in.raw() ? std::filesystem::file_size(path, size_error) : 0;
  if (in.raw() && !size_error) {
    if (file_bytes - header_bytes < expected) {
      got = static_cast<std::size_t>(file_bytes - header_bytes);
    } else {
      raw.resize(expected);
      got = in.read(raw.data(), expected, "data");
    }
  } else {
    constexpr std::size_t kChunk = std::size_t{1} << 20;
    while (got < expected) {
      const std::size_t n = std::min(expected - got, std::max(kChunk, got));  // doubling: O(n) copies
      raw.resize(got + n);
      const std::size_t more = in.read(raw.data() + got, n, "data");
      got += more;
      if (more < n) break;
    }
  }
  if (got < expected)
    throw IOError(fmt::format("read_idx: '{}' is truncated: shape {} of {} needs {} bytes of data, found {}{}",
                              path, shape_str(shape), type.name, expected, got,
                              in.cut_short() ? " (the gzip stream ends early)" : ""));
  const std::uint64_t extra = in.remaining();
  if (extra > 0)
    throw IOError(fmt::format("read_idx: '{}': {} unexpected bytes after the {} bytes of data of shape {} of {}",
                              path, extra, expected, shape_str(shape), type.name));

  if (unit_floats && header[2] == 0x08) {
    Tensor out = empty(shape, kFloat32);
    float* p = out.data<float>();
    for (std::size_t i = 0; i < count; ++i) p[i] = static_cast<float>(raw[i]) / 255.0f;
    return out;
  }
  Tensor out = empty(shape, type.dtype);
  convert(raw.data(), static_cast<std::size_t>(count), header[2], out.data_ptr());
  return out;
}

}  // namespace

Tensor read_idx(const std::string& path) { return read_idx_impl(path, false); }

namespace {

// `name` in `dir`, raw or gzip-compressed; the raw file wins when both exist (no inflating).
std::string find_idx(const std::filesystem::path& dir, const std::string& name) {
  for (const std::string& candidate : {name, name + ".gz"}) {
    const auto path = dir / candidate;
    if (std::filesystem::is_regular_file(path)) return path.string();
  }
  throw IOError(fmt::format("load_mnist: neither '{}' nor '{}.gz' found in '{}'", name, name, dir.string()));
}

// images: [n, rows, cols] int32 in 0..255 -> float32 in [0, 1]; labels: [n] -> int64.
void load_split(const std::filesystem::path& dir, const std::string& images_name, const std::string& labels_name,
                Tensor& images, Tensor& labels) {
  const std::string images_path = find_idx(dir, images_name);
  const std::string labels_path = find_idx(dir, labels_name);
  const Tensor raw_images = read_idx_impl(images_path, true);
  const Tensor raw_labels = read_idx(labels_path);
  if (raw_images.rank() != 3)
    throw IOError(fmt::format("load_mnist: '{}' has shape {}, expected [count, rows, cols]", images_path,
                              shape_str(raw_images.shape())));
  if (raw_labels.rank() != 1)
    throw IOError(fmt::format("load_mnist: '{}' has shape {}, expected [count]", labels_path,
                              shape_str(raw_labels.shape())));
  if (raw_images.dim(0) != raw_labels.dim(0))
    throw IOError(fmt::format("load_mnist: '{}' holds {} images but '{}' holds {} labels", images_path,
                              raw_images.dim(0), labels_path, raw_labels.dim(0)));
  // ubyte files arrive as float32 / 255 already; other integer types are scaled here
  images = raw_images.dtype() == kFloat32 ? raw_images : raw_images.astype(kFloat32) / 255.0;
  labels = raw_labels.astype(kInt64);
}

}  // namespace

MnistData load_mnist(const std::string& dir_in) {
  std::string dir = dir_in;
  if (dir == kFashionMnistDir) {
    if (const char* env = std::getenv("TAPEFLOW_FASHION_MNIST_DIR"); env != nullptr && *env != '\0') dir = env;
  }
  if (!std::filesystem::is_directory(dir))
    throw IOError(fmt::format("load_mnist: '{}' is not a directory", dir));
  MnistData data;
  load_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", data.train_images, data.train_labels);
  load_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", data.test_images, data.test_labels);
  return data;
}

}  // namespace tapeflow
