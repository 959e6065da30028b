// IDX files (the format of MNIST and Fashion-MNIST), raw or gzip-compressed.
//
// Layout: two zero bytes, a type code, the number of dimensions n, then n big-endian uint32
// dimensions and the data in row-major order, multi-byte values big-endian.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

// An IDX file as it is or, when it starts with the gzip magic 1f 8b, inflated. A gzip file is
// one or more complete members (`cat a.gz b.gz` holds the concatenation, as gzip and Python
// read it), maybe followed by zero bytes (padding, which both skip); a member cut short, a
// failed CRC or size check, and other bytes after the last member raise IOError, as trailing
// bytes after a raw file's data do.
class IdxReader {
 public:
  explicit IdxReader(const std::string& path) : path_(path), buffer_(std::size_t{1} << 18) {
    errno = 0;
    file_.reset(std::fopen(path.c_str(), "rb"));
    if (!file_) {
      const char* why = errno ? std::strerror(errno) : "unknown error";
      throw IOError(fmt::format("read_idx: cannot open '{}': {}", path, why));
    }
    refill("header");
    if (avail_ >= 2 && next_[0] == 0x1f && next_[1] == 0x8b) {
      // 16 + MAX_WBITS: a gzip wrapper only; inflate checks the CRC-32 and size in its trailer.
      if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK)
        throw IOError(fmt::format("read_idx: '{}': cannot start inflating: out of memory", path));
      gzip_ = true;
    }
  }
  ~IdxReader() {
    if (gzip_) inflateEnd(&stream_);
  }
  IdxReader(const IdxReader&) = delete;
  IdxReader& operator=(const IdxReader&) = delete;

  // Reads up to n bytes; fewer only at the end of the data or where a gzip stream is cut short
  // (then cut_short() is true). Unreadable or corrupt data raise IOError naming `what` was read.
  std::size_t read(void* dst, std::size_t n, const char* what) {
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t done = 0;
    while (done < n) {
      if (gzip_ && member_ended_ && !next_member(what)) break;
      if (avail_ == 0) refill(what);
      if (!gzip_) {
        if (avail_ == 0) break;
        const std::size_t k = std::min(avail_, n - done);
        std::memcpy(out + done, next_, k);
        next_ += k;
        avail_ -= k;
        done += k;
        continue;
      }
      // avail_ never exceeds the 256 KiB buffer; the output is offered in chunks of 1 GiB.
      stream_.next_in = const_cast<Bytef*>(next_);
      stream_.avail_in = static_cast<uInt>(avail_);
      stream_.next_out = out + done;
      stream_.avail_out = static_cast<uInt>(std::min<std::size_t>(n - done, std::size_t{1} << 30));
      const uInt out_before = stream_.avail_out;
      const int code = inflate(&stream_, Z_NO_FLUSH);
      const std::size_t consumed = avail_ - stream_.avail_in;
      next_ += consumed;
      avail_ -= consumed;
      done += out_before - stream_.avail_out;
      inflated_ += out_before - stream_.avail_out;
      if (code == Z_STREAM_END) {
        member_ended_ = true;
      } else if (code == Z_BUF_ERROR && avail_ == 0 && eof_) {
        // no progress without more input, and the file has none: the member is cut short
        cut_short_ = true;
        break;
      } else if (code != Z_OK) {
        corrupt(what, code);
      }
    }
    return done;
  }

  bool cut_short() const { return cut_short_; }
  // True for a file read as it is (no gzip magic).
  bool raw() const { return !gzip_; }

  // Counts the bytes left until the end of the data.
  std::uint64_t remaining() {
    std::vector<unsigned char> buf(1 << 16);
    std::uint64_t total = 0;
    for (std::size_t got; (got = read(buf.data(), buf.size(), "end of the file")) > 0;) total += got;
    return total;
  }

 private:
  struct CloseFile {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };

  // Moves the unread bytes to the front of the buffer and reads more after them; false at the
  // end of the file with nothing unread.
  bool refill(const char* what) {
    if (avail_ > 0 && next_ != buffer_.data()) std::memmove(buffer_.data(), next_, avail_);
    next_ = buffer_.data();
    if (!eof_) {
      errno = 0;
      const std::size_t want = buffer_.size() - avail_;
      const std::size_t got = std::fread(buffer_.data() + avail_, 1, want, file_.get());
      if (got < want) {
        if (std::ferror(file_.get()))
          throw IOError(fmt::format("read_idx: '{}': cannot read the {}: {}", path_, what,
                                    errno ? std::strerror(errno) : "read error"));
        eof_ = true;
      }
      offset_ += got;
      avail_ += got;
    }
    return avail_ > 0;
  }

  // After a gzip member: false at the end of the file, true once the next member has begun.
  bool next_member(const char* what) {
    while (avail_ < 2 && !eof_) refill(what);
    if (avail_ == 0) return false;
    if (avail_ < 2 || next_[0] != 0x1f || next_[1] != 0x8b) {
      // zero bytes to the end are padding (tape blocks), which gzip and Python skip too
      const std::uint64_t at = offset_ - avail_;
      std::uint64_t extra = 0;
      bool zeros = true;
      do {
        zeros = zeros && std::all_of(next_, next_ + avail_, [](unsigned char b) { return b == 0; });
        extra += avail_;
        avail_ = 0;
      } while (refill(what));
      if (zeros) return false;
      throw IOError(fmt::format("read_idx: '{}': {} unexpected bytes after the gzip stream (from byte {} of the "
                                "file, which does not start another gzip member)",
                                path_, extra, at));
    }
    inflateReset(&stream_);
    member_ended_ = false;
    return true;
  }

  [[noreturn]] void corrupt(const char* what, int code) {
    const char* why = stream_.msg ? stream_.msg : code == Z_MEM_ERROR ? "out of memory" : zError(code);
    throw IOError(fmt::format("read_idx: '{}': cannot read the {}: the gzip stream is corrupt after {} bytes of data: {}",
                              path_, what, inflated_, why));
  }

  std::string path_;
  std::unique_ptr<std::FILE, CloseFile> file_;
  std::vector<unsigned char> buffer_;
  const unsigned char* next_ = nullptr;  // the unread bytes: [next_, next_ + avail_)
  std::size_t avail_ = 0;
  std::uint64_t offset_ = 0;  // bytes read from the file so far
  bool eof_ = false;
  bool gzip_ = false;
  z_stream stream_{};
  bool member_ended_ = false;
  std::uint64_t inflated_ = 0;  // bytes of data the gzip stream gave so far
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
  IdxReader in(path);

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
  if (in.cut_short())
    throw IOError(fmt::format("read_idx: '{}' is truncated: the gzip stream ends before its end-of-stream marker "
                              "and CRC/size trailer (after {} bytes of data)",
                              path, expected + extra));
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

// images: [n, rows, cols] -> float32: integer pixels (0..255 in the standard ubyte files) / 255,
// float and double pixels as stored; labels: [n] of an integer type, each in [0, 10) -> int64.
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
  if (raw_labels.dtype() != kInt32)
    throw IOError(fmt::format("load_mnist: '{}' holds {} labels, expected an integer type", labels_path,
                              dtype_name(raw_labels.dtype())));
  // A label out of range would only fail at the first loss, far from the file.
  const std::int32_t* label = raw_labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < raw_labels.dim(0); ++i) {
    if (label[i] < 0 || label[i] >= 10)
      throw IOError(fmt::format("load_mnist: '{}': label {} at index {} is outside [0, 10)", labels_path, label[i], i));
  }
  // ubyte files arrive as float32 / 255 already (read_idx_impl), float32 ones as stored
  if (raw_images.dtype() == kInt32)
    images = raw_images.astype(kFloat32) / 255.0;
  else if (raw_images.dtype() == kFloat64)
    images = raw_images.astype(kFloat32);
  else
    images = raw_images;
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
