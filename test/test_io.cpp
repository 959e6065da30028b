// IDX reading: raw and gzip files written here, damaged files, and the real Fashion-MNIST
// when Debian's dataset-fashion-mnist is installed.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tapeflow/core.hpp"
#include "temp_dir.hpp"

using namespace tapeflow;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<unsigned char>;

void put_be(Bytes& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

// Header of an IDX file: 0, 0, type, rank, big-endian dims.
Bytes idx_header(std::uint8_t type, const std::vector<std::uint32_t>& dims) {
  Bytes out{0, 0, type, static_cast<unsigned char>(dims.size())};
  for (auto d : dims) put_be(out, d, 4);
  return out;
}

Bytes idx_ubyte(const std::vector<std::uint32_t>& dims, const Bytes& data) {
  Bytes out = idx_header(0x08, dims);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_raw(const std::string& path, const Bytes& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!bytes.empty()) REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

Bytes read_raw(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The message of the IOError `call` raises (`what` names the call when it raises none).
template <class F>
std::string io_error(F&& call, const std::string& what) {
  try {
    call();
  } catch (const IOError& e) {
    return e.what();
  }
  FAIL(what << " did not throw IOError");
  return {};
}

// The message of the IOError read_idx raises for `path`, and load_mnist for `dir`.
std::string idx_error(const std::string& path) {
  return io_error([&] { read_idx(path); }, "read_idx('" + path + "')");
}
std::string mnist_error(const std::string& dir) {
  return io_error([&] { load_mnist(dir); }, "load_mnist('" + dir + "')");
}

// A folder load_mnist reads: the training files given, and one black test image labelled 0.
void write_mnist(const TempDir& dir, const Bytes& train_images, const Bytes& train_labels) {
  write_raw(dir.file("train-images-idx3-ubyte"), train_images);
  write_raw(dir.file("train-labels-idx1-ubyte"), train_labels);
  write_raw(dir.file("t10k-images-idx3-ubyte"), idx_ubyte({1, 28, 28}, Bytes(28 * 28, 0)));
  write_raw(dir.file("t10k-labels-idx1-ubyte"), idx_ubyte({1}, {0}));
}

// An IDX file of float32 (type 0x0d) or float64 (0x0e) values.
Bytes idx_floats(std::uint8_t type, const std::vector<std::uint32_t>& dims, const std::vector<double>& values) {
  Bytes out = idx_header(type, dims);
  for (double v : values) {
    if (type == 0x0D) {
      const float f = static_cast<float>(v);
      std::uint32_t bits;
      std::memcpy(&bits, &f, 4);
      put_be(out, bits, 4);
    } else {
      std::uint64_t bits;
      std::memcpy(&bits, &v, 8);
      put_be(out, bits, 8);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("read_idx: raw unsigned bytes give int32 of the header's shape", "[io]") {
  TempDir dir("tapeflow_test_io");
  const std::string path = dir.file("small-idx2-ubyte");
  write_raw(path, idx_ubyte({2, 3}, {0, 1, 127, 128, 254, 255}));
  const Tensor t = read_idx(path);
  CHECK(t.dtype() == kInt32);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 1, 127, 128, 254, 255});
}

TEST_CASE("read_idx: gzip files are detected from their content", "[io]") {
  TempDir dir("tapeflow_test_io");
  Bytes data(2 * 4 * 5);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 7);
  const Bytes file = idx_ubyte({2, 4, 5}, data);
  write_gz(dir.file("a.gz"), file);
  write_gz(dir.file("no-suffix"), file);  // detection does not rely on the name
  write_raw(dir.file("raw.gz"), file);    // nor does a misleading one fool it
  for (const char* name : {"a.gz", "no-suffix", "raw.gz"}) {
    INFO(name);
    const Tensor t = read_idx(dir.file(name));
    CHECK(t.shape() == Shape{2, 4, 5});
    const auto v = t.to_vector<std::int32_t>();
    CHECK(std::equal(v.begin(), v.end(), data.begin(), data.end()));
  }
}

TEST_CASE("read_idx: signed, short, int, float and double data", "[io]") {
  TempDir dir("tapeflow_test_io");
  SECTION("sbyte") {
    Bytes f = idx_header(0x09, {3});
    f.insert(f.end(), {0xff, 0x80, 0x7f});
    write_raw(dir.file("f"), f);
    const Tensor t = read_idx(dir.file("f"));
    CHECK(t.dtype() == kInt32);
    CHECK(t.to_vector<std::int32_t>() == std::vector<std::int32_t>{-1, -128, 127});
  }
  SECTION("short") {
    Bytes f = idx_header(0x0B, {2});
    put_be(f, 0xfffe, 2);
    put_be(f, 300, 2);
    write_gz(dir.file("f"), f);
    CHECK(read_idx(dir.file("f")).to_vector<std::int32_t>() == std::vector<std::int32_t>{-2, 300});
  }
  SECTION("int") {
    Bytes f = idx_header(0x0C, {1, 2});
    put_be(f, 0x80000000u, 4);
    put_be(f, 123456789, 4);
    write_raw(dir.file("f"), f);
    const Tensor t = read_idx(dir.file("f"));
    CHECK(t.shape() == Shape{1, 2});
    CHECK(t.to_vector<std::int32_t>() == std::vector<std::int32_t>{INT32_MIN, 123456789});
  }
  SECTION("float") {
    Bytes f = idx_header(0x0D, {2});
    for (float v : {1.5f, -0.25f}) {
      std::uint32_t bits;
      std::memcpy(&bits, &v, 4);
      put_be(f, bits, 4);
    }
    write_gz(dir.file("f"), f);
    const Tensor t = read_idx(dir.file("f"));
    CHECK(t.dtype() == kFloat32);
    CHECK(t.to_vector<float>() == std::vector<float>{1.5f, -0.25f});
  }
  SECTION("double") {
    Bytes f = idx_header(0x0E, {1});
    const double v = 0.1;
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    put_be(f, bits, 8);
    write_raw(dir.file("f"), f);
    const Tensor t = read_idx(dir.file("f"));
    CHECK(t.dtype() == kFloat64);
    CHECK(t.to_vector<double>() == std::vector<double>{0.1});
  }
}

TEST_CASE("read_idx: a zero-length dimension gives an empty tensor", "[io]") {
  TempDir dir("tapeflow_test_io");
  write_raw(dir.file("empty"), idx_ubyte({0, 28}, {}));
  const Tensor t = read_idx(dir.file("empty"));
  CHECK(t.shape() == Shape{0, 28});
  CHECK(t.size() == 0);
}

TEST_CASE("read_idx: damaged files raise IOError naming the file", "[io]") {
  TempDir dir("tapeflow_test_io");
  const Bytes good = idx_ubyte({2, 3}, {1, 2, 3, 4, 5, 6});

  SECTION("missing file") {
    const std::string path = dir.file("does-not-exist-idx1-ubyte");
    CHECK_THROWS_AS(read_idx(path), IOError);
    const std::string msg = idx_error(path);
    CHECK_THAT(msg, Catch::Contains(path) && Catch::Contains("No such file"));
  }
  SECTION("bad magic") {
    Bytes f = good;
    f[0] = 0x1e;
    write_raw(dir.file("bad-magic"), f);
    CHECK_THAT(idx_error(dir.file("bad-magic")), Catch::Contains(dir.file("bad-magic")) && Catch::Contains("magic"));
  }
  SECTION("unsupported type code") {
    Bytes f = good;
    f[2] = 0x0A;
    write_raw(dir.file("bad-type"), f);
    CHECK_THAT(idx_error(dir.file("bad-type")),
               Catch::Contains(dir.file("bad-type")) && Catch::Contains("unsupported type code 0x0a"));
  }
  SECTION("zero dimensions") {
    write_raw(dir.file("rank0"), Bytes{0, 0, 0x08, 0, 42});
    CHECK_THAT(idx_error(dir.file("rank0")), Catch::Contains(dir.file("rank0")) && Catch::Contains("0 dimensions"));
  }
  SECTION("more than 16 dimensions") {
    write_raw(dir.file("rank17"), idx_ubyte(std::vector<std::uint32_t>(17, 1), {7}));
    CHECK_THAT(idx_error(dir.file("rank17")), Catch::Contains("17 dimensions"));
  }
  SECTION("shorter than the header") {
    write_raw(dir.file("tiny"), Bytes{0, 0});
    CHECK_THAT(idx_error(dir.file("tiny")), Catch::Contains(dir.file("tiny")) && Catch::Contains("header"));
    write_raw(dir.file("nothing"), Bytes{});
    CHECK_THAT(idx_error(dir.file("nothing")), Catch::Contains(dir.file("nothing")));
  }
  SECTION("truncated dimensions") {
    Bytes f = idx_header(0x08, {2, 3});
    f.resize(9);
    write_raw(dir.file("cut-dims"), f);
    CHECK_THAT(idx_error(dir.file("cut-dims")), Catch::Contains(dir.file("cut-dims")) && Catch::Contains("truncated"));
  }
  SECTION("truncated data, raw") {
    Bytes f = good;
    f.pop_back();
    write_raw(dir.file("cut"), f);
    CHECK_THAT(idx_error(dir.file("cut")), Catch::Contains(dir.file("cut")) && Catch::Contains("truncated") &&
                                               Catch::Contains("needs 6 bytes of data, found 5"));
  }
  SECTION("truncated data, gzip member complete") {
    Bytes f = good;
    f.resize(f.size() - 2);
    write_gz(dir.file("cut.gz"), f);
    CHECK_THAT(idx_error(dir.file("cut.gz")), Catch::Contains("needs 6 bytes of data, found 4"));
  }
  SECTION("truncated gzip stream") {
    // Pseudo-random pixels barely compress, so half the gzip file holds about half the data.
    Bytes pixels(10000);
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>((i * 2654435761u) >> 13);
    write_gz(dir.file("full.gz"), idx_ubyte({100, 100}, pixels));
    Bytes gz = read_raw(dir.file("full.gz"));
    gz.resize(gz.size() / 2);
    write_raw(dir.file("half.gz"), gz);
    const std::string msg = idx_error(dir.file("half.gz"));
    CHECK_THAT(msg, Catch::Contains(dir.file("half.gz")) && Catch::Contains("truncated") &&
                        Catch::Contains("needs 10000 bytes"));
  }
  SECTION("trailing bytes") {
    Bytes f = good;
    f.push_back(9);
    f.push_back(9);
    write_raw(dir.file("long"), f);
    CHECK_THAT(idx_error(dir.file("long")), Catch::Contains(dir.file("long")) && Catch::Contains("2 unexpected bytes"));
    write_gz(dir.file("long.gz"), f);
    CHECK_THAT(idx_error(dir.file("long.gz")), Catch::Contains("2 unexpected bytes"));
  }
  SECTION("a directory") {
    CHECK_THROWS_AS(read_idx(dir.str()), IOError);
  }
}

TEST_CASE("load_mnist: small files in a folder", "[io]") {
  TempDir dir("tapeflow_test_io");
  const std::uint32_t n = 3;
  Bytes pixels(n * 28 * 28);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(i % 256);
  // Training files compressed, test files raw: both are found.
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_ubyte({n, 28, 28}, pixels));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_ubyte({n}, {9, 0, 4}));
  write_raw(dir.file("t10k-images-idx3-ubyte"), idx_ubyte({1, 28, 28}, Bytes(28 * 28, 255)));
  write_raw(dir.file("t10k-labels-idx1-ubyte"), idx_ubyte({1}, {7}));

  const MnistData data = load_mnist(dir.str());
  CHECK(data.train_images.shape() == Shape{3, 28, 28});
  CHECK(data.train_images.dtype() == kFloat32);
  CHECK(data.train_labels.dtype() == kInt64);
  CHECK(data.train_labels.to_vector<std::int64_t>() == std::vector<std::int64_t>{9, 0, 4});
  const auto v = data.train_images.to_vector<float>();
  for (std::size_t i : {0u, 1u, 255u, 1000u, 2351u}) CHECK(v[i] == static_cast<float>(pixels[i]) / 255.f);
  CHECK(data.test_images.shape() == Shape{1, 28, 28});
  CHECK(data.test_images.to_vector<float>()[0] == 1.f);
  CHECK(data.test_labels.to_vector<std::int64_t>() == std::vector<std::int64_t>{7});

  SECTION("counts that disagree") {
    write_raw(dir.file("t10k-labels-idx1-ubyte"), idx_ubyte({2}, {7, 1}));
    try {
      load_mnist(dir.str());
      FAIL("load_mnist did not throw");
    } catch (const IOError& e) {
      CHECK_THAT(e.what(), Catch::Contains("1 images") && Catch::Contains("2 labels") &&
                               Catch::Contains("t10k-labels-idx1-ubyte"));
    }
  }
  SECTION("a missing file") {
    fs::remove(dir.file("t10k-images-idx3-ubyte"));
    CHECK_THROWS_WITH(load_mnist(dir.str()), Catch::Contains("t10k-images-idx3-ubyte") && Catch::Contains(dir.str()));
  }
  SECTION("a missing folder") {
    CHECK_THROWS_AS(load_mnist(dir.file("nowhere")), IOError);
  }
}

TEST_CASE("read_idx: a gzip file ends with a whole member, and nothing but members follow it", "[io]") {
  TempDir dir("tapeflow_test_io");
  Bytes labels(1000);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<unsigned char>(i % 10);
  const Bytes file = idx_ubyte({1000}, labels);
  write_gz(dir.file("whole.gz"), file);
  const Bytes gz = read_raw(dir.file("whole.gz"));
  REQUIRE(read_idx(dir.file("whole.gz")).shape() == Shape{1000});

  SECTION("the CRC and size trailer cut off, the data complete") {
    for (std::size_t cut : {8u, 4u, 1u}) {
      INFO("without the last " << cut << " bytes");
      write_raw(dir.file("cut.gz"), Bytes(gz.begin(), gz.end() - static_cast<std::ptrdiff_t>(cut)));
      CHECK_THAT(idx_error(dir.file("cut.gz")), Catch::Contains(dir.file("cut.gz")) && Catch::Contains("truncated") &&
                                                    Catch::Contains("CRC/size trailer"));
    }
  }
  SECTION("a wrong CRC or size in the trailer") {
    Bytes bad_crc = gz;
    bad_crc[bad_crc.size() - 8] ^= 0x01;
    write_raw(dir.file("crc.gz"), bad_crc);
    CHECK_THAT(idx_error(dir.file("crc.gz")),
               Catch::Contains(dir.file("crc.gz")) && Catch::Contains("corrupt") && Catch::Contains("incorrect data check"));
    Bytes bad_size = gz;
    bad_size[bad_size.size() - 4] ^= 0x01;
    write_raw(dir.file("size.gz"), bad_size);
    CHECK_THAT(idx_error(dir.file("size.gz")), Catch::Contains(dir.file("size.gz")) && Catch::Contains("incorrect length check"));
  }
  SECTION("bytes after the gzip stream, as after a raw file's data") {
    Bytes garbage = gz;
    for (char c : std::string("garbage!")) garbage.push_back(static_cast<unsigned char>(c));
    write_raw(dir.file("garbage.gz"), garbage);
    CHECK_THAT(idx_error(dir.file("garbage.gz")),
               Catch::Contains(dir.file("garbage.gz")) &&
                   Catch::Contains("8 unexpected bytes after the gzip stream (from byte " + std::to_string(gz.size())));
    // zero padding is skipped, as gzip and Python skip it; not once other bytes follow
    Bytes zeros = gz;
    zeros.insert(zeros.end(), 16, 0);
    write_raw(dir.file("zeros.gz"), zeros);
    CHECK(read_idx(dir.file("zeros.gz")).to_vector<std::int32_t>() == read_idx(dir.file("whole.gz")).to_vector<std::int32_t>());
    zeros.push_back(7);
    write_raw(dir.file("zeros7.gz"), zeros);
    CHECK_THAT(idx_error(dir.file("zeros7.gz")), Catch::Contains("17 unexpected bytes after the gzip stream"));
    // one stray byte: too short even for another member's magic
    Bytes one = gz;
    one.push_back(0x1f);
    write_raw(dir.file("one.gz"), one);
    CHECK_THAT(idx_error(dir.file("one.gz")), Catch::Contains("1 unexpected bytes after the gzip stream"));
  }
  SECTION("concatenated members read as their concatenation, as gzip and Python read them") {
    const auto half = static_cast<std::ptrdiff_t>(file.size() / 2);
    write_gz(dir.file("first.gz"), Bytes(file.begin(), file.begin() + half));
    write_gz(dir.file("second.gz"), Bytes(file.begin() + half, file.end()));
    write_gz(dir.file("nothing.gz"), Bytes{});
    Bytes two = read_raw(dir.file("first.gz"));
    for (const char* name : {"second.gz", "nothing.gz"}) {
      const Bytes member = read_raw(dir.file(name));
      two.insert(two.end(), member.begin(), member.end());
    }
    write_raw(dir.file("members.gz"), two);
    const Tensor t = read_idx(dir.file("members.gz"));
    CHECK(t.shape() == Shape{1000});
    const auto v = t.to_vector<std::int32_t>();
    CHECK(std::equal(v.begin(), v.end(), labels.begin(), labels.end()));
    // a further member cut short is a truncated file; one with a bad header a corrupt one
    Bytes cut = two;
    cut.resize(cut.size() - 5);
    write_raw(dir.file("members-cut.gz"), cut);
    CHECK_THAT(idx_error(dir.file("members-cut.gz")), Catch::Contains(dir.file("members-cut.gz")) &&
                                                          Catch::Contains("truncated"));
    Bytes bad = two;
    bad.insert(bad.end(), {0x1f, 0x8b, 0x00, 0x00});
    write_raw(dir.file("members-bad.gz"), bad);
    CHECK_THAT(idx_error(dir.file("members-bad.gz")), Catch::Contains(dir.file("members-bad.gz")) &&
                                                          Catch::Contains("corrupt"));
  }
}

TEST_CASE("load_mnist: a label outside [0, 10) raises IOError naming the file, the label and its index", "[io]") {
  TempDir dir("tapeflow_test_io");
  const Bytes images = idx_ubyte({3, 2, 2}, Bytes(12, 7));
  SECTION("too large") {
    write_mnist(dir, images, idx_ubyte({3}, {3, 200, 11}));
    CHECK_THAT(mnist_error(dir.str()), Catch::Contains(dir.file("train-labels-idx1-ubyte")) &&
                                           Catch::Contains("label 200 at index 1 is outside [0, 10)"));
  }
  SECTION("10, just past the last class") {
    write_mnist(dir, images, idx_ubyte({3}, {9, 0, 10}));
    CHECK_THAT(mnist_error(dir.str()), Catch::Contains("label 10 at index 2"));
  }
  SECTION("negative, from signed bytes") {
    Bytes labels = idx_header(0x09, {3});
    labels.insert(labels.end(), {0xff, 1, 2});
    write_mnist(dir, images, labels);
    CHECK_THAT(mnist_error(dir.str()), Catch::Contains("label -1 at index 0"));
  }
  SECTION("not integers") {
    write_mnist(dir, images, idx_floats(0x0D, {3}, {1, 2.5, 3}));
    CHECK_THAT(mnist_error(dir.str()), Catch::Contains(dir.file("train-labels-idx1-ubyte")) &&
                                           Catch::Contains("float32 labels, expected an integer type"));
  }
  SECTION("every class from 0 to 9 loads") {
    write_mnist(dir, idx_ubyte({10, 1, 1}, Bytes(10, 0)), idx_ubyte({10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    CHECK(load_mnist(dir.str()).train_labels.to_vector<std::int64_t>() ==
          std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  }
}

TEST_CASE("load_mnist: integer pixels are divided by 255, float and double pixels come as stored", "[io]") {
  TempDir dir("tapeflow_test_io");
  const Bytes labels = idx_ubyte({2}, {1, 2});
  SECTION("ubyte: [0, 1]") {
    write_mnist(dir, idx_ubyte({2, 1, 2}, {0, 51, 255, 102}), labels);
    const Tensor images = load_mnist(dir.str()).train_images;
    CHECK(images.dtype() == kFloat32);
    CHECK(images.to_vector<float>() == std::vector<float>{0.f, 51 / 255.f, 1.f, 102 / 255.f});
  }
  SECTION("short: divided by 255 too") {
    Bytes f = idx_header(0x0B, {2, 1, 1});
    put_be(f, 510, 2);
    put_be(f, 51, 2);
    write_mnist(dir, f, labels);
    const Tensor images = load_mnist(dir.str()).train_images;
    CHECK(images.dtype() == kFloat32);
    CHECK(images.to_vector<float>() == std::vector<float>{2.f, 51 / 255.f});
  }
  SECTION("float32: as stored") {
    write_mnist(dir, idx_floats(0x0D, {2, 1, 2}, {0, 255, 0.5, -3}), labels);
    const Tensor images = load_mnist(dir.str()).train_images;
    CHECK(images.dtype() == kFloat32);
    CHECK(images.to_vector<float>() == std::vector<float>{0.f, 255.f, 0.5f, -3.f});
  }
  SECTION("float64: as stored, in float32") {
    write_mnist(dir, idx_floats(0x0E, {2, 1, 2}, {0, 255, 0.5, -3}), labels);
    const Tensor images = load_mnist(dir.str()).train_images;
    CHECK(images.dtype() == kFloat32);
    CHECK(images.to_vector<float>() == std::vector<float>{0.f, 255.f, 0.5f, -3.f});
  }
}

TEST_CASE("load_mnist: the real Fashion-MNIST", "[io][dataset]") {
  if (!fs::exists(kFashionMnistDir)) {
    WARN("skipped: " << kFashionMnistDir << " not found (Debian package dataset-fashion-mnist)");
    SUCCEED();
    return;
  }
  const MnistData data = load_mnist();
  CHECK(data.train_images.shape() == Shape{60000, 28, 28});
  CHECK(data.train_labels.shape() == Shape{60000});
  CHECK(data.test_images.shape() == Shape{10000, 28, 28});
  CHECK(data.test_labels.shape() == Shape{10000});
  CHECK(data.train_images.dtype() == kFloat32);
  CHECK(data.train_labels.dtype() == kInt64);
  for (const Tensor& labels : {data.train_labels, data.test_labels}) {
    CHECK(min(labels).item<std::int64_t>() == 0);
    CHECK(max(labels).item<std::int64_t>() == 9);
  }
  for (const Tensor& images : {data.train_images, data.test_images}) {
    CHECK(min(images).item<float>() == 0.f);
    CHECK(max(images).item<float>() == 1.f);
  }
  // Fashion-MNIST is balanced: 6000 training images per class.
  CHECK(sum((data.train_labels == 3.0).astype(kInt64)).item<std::int64_t>() == 6000);
}

TEST_CASE("read_idx: a tiny file announcing TiBs raises IOError before allocating them", "[io][overflow]") {
  TempDir dir("tapeflow_test_io");
  // the audit's 28-byte file: doubles, dims [2^20, 2^20] (8 TiB of data), nothing after the header
  const Bytes huge = idx_header(0x0E, {1u << 20, 1u << 20});
  write_raw(dir.file("huge"), huge);
  CHECK_THROWS_AS(read_idx(dir.file("huge")), IOError);
  CHECK_THAT(idx_error(dir.file("huge")), Catch::Contains(dir.file("huge")) && Catch::Contains("truncated") &&
                                              Catch::Contains("needs 8796093022208 bytes of data, found 0"));
  // [65536, 65536, 256] doubles with a few bytes of data; gzip-compressed the same
  Bytes some = idx_header(0x0E, {65536, 65536, 256});
  some.insert(some.end(), 20, 0);
  write_raw(dir.file("some"), some);
  CHECK_THAT(idx_error(dir.file("some")), Catch::Contains("truncated") && Catch::Contains("found 20"));
  write_gz(dir.file("some.gz"), some);
  CHECK_THAT(idx_error(dir.file("some.gz")), Catch::Contains(dir.file("some.gz")) && Catch::Contains("truncated") &&
                                                 Catch::Contains("found 20"));
  write_gz(dir.file("huge.gz"), huge);
  CHECK_THAT(idx_error(dir.file("huge.gz")), Catch::Contains("truncated") && Catch::Contains("found 0"));
  // a gzip file larger than the first chunk still reads whole (chunks grow as data arrives)
  Bytes pixels(3u << 20);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(i * 7 + (i >> 11));
  write_gz(dir.file("big.gz"), idx_ubyte({3, 1024, 1024}, pixels));
  const Tensor t = read_idx(dir.file("big.gz"));
  CHECK(t.shape() == Shape{3, 1024, 1024});
  const auto v = t.to_vector<std::int32_t>();
  bool same = true;
  for (std::size_t i = 0; i < pixels.size(); ++i) same = same && v[i] == pixels[i];
  CHECK(same);
}

TEST_CASE("read_idx: a 0 dimension beside huge ones raises IOError (no stride overflow)", "[io][overflow]") {
  TempDir dir("tapeflow_test_io");
  write_raw(dir.file("zero-huge"), idx_header(0x08, {0, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}));
  CHECK_THROWS_AS(read_idx(dir.file("zero-huge")), IOError);
  CHECK_THAT(idx_error(dir.file("zero-huge")), Catch::Contains(dir.file("zero-huge")) &&
                                                   Catch::Contains("[0, 4294967295, 4294967295, 4294967295] are too large"));
  // zeros beside moderate sizes stay empty tensors
  write_raw(dir.file("zero-ok"), idx_header(0x08, {0, 0xFFFFFFFFu, 2}));
  CHECK(read_idx(dir.file("zero-ok")).shape() == Shape{0, 0xFFFFFFFFll, 2});
}
