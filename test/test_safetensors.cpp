// Safetensors: byte layouts worked out by hand, bit-exact round trips of every dtype and
// layout, damaged files, and the atomic write.
//
// scripts/check_safetensors.py opens a file written here with the Python `safetensors`
// package: set TAPEFLOW_SAFETENSORS_KEEP=<path> to keep the round-trip file at <path>.
#include <catch2/catch.hpp>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "tapeflow/core.hpp"
#include "tapeflow/safetensors.hpp"

using namespace tapeflow;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<unsigned char>;

// A fresh folder under the system's temp dir, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    static int count = 0;
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = fs::temp_directory_path() /
            ("tapeflow_test_safetensors_" + std::to_string(::getpid()) + "_" + std::to_string(stamp) + "_" +
             std::to_string(count++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }
  // Names of the entries in the folder.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

Bytes read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

Bytes le64(std::uint64_t v) {
  Bytes out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
  return out;
}

// The pieces one after the other.
Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes text_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// A file with this header text (padded with spaces to a multiple of 8) and data.
Bytes make_file(const std::string& header, const Bytes& data) {
  std::string h = header;
  h.append((8 - h.size() % 8) % 8, ' ');
  return concat({le64(h.size()), text_bytes(h), data});
}

// The tensor's elements as bytes, in logical (row-major) order.
Bytes logical_bytes(const Tensor& t) {
  const Tensor c = t.contiguous();
  const auto* p = static_cast<const unsigned char*>(c.nbytes() ? c.data_ptr() : nullptr);
  return p ? Bytes(p, p + c.nbytes()) : Bytes{};
}

// A tensor of `shape` holding exactly these bytes.
Tensor from_bytes(const Shape& shape, DType dtype, const Bytes& bytes) {
  Tensor t = empty(shape, dtype);
  REQUIRE(t.nbytes() == bytes.size());
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

template <class T>
Bytes bytes_of(const std::vector<T>& values) {
  Bytes out(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

template <class T, class U>
T bits_as(U bits) {
  static_assert(sizeof(T) == sizeof(U));
  T v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// Loading `path` raises IOError whose message names the file and contains `fragment`.
void require_load_error(const std::string& path, const std::string& fragment) {
  INFO("expecting an IOError with \"" << fragment << "\"");
  try {
    load_safetensors(path);
    FAIL("load_safetensors accepted a damaged file");
  } catch (const IOError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find(fragment) != std::string::npos);
  }
}

void require_same(const NamedTensors& a, const NamedTensors& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("tensor " << a[i].first);
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.dtype() == b[i].second.dtype());
    CHECK(a[i].second.shape() == b[i].second.shape());
    CHECK(logical_bytes(a[i].second) == logical_bytes(b[i].second));
  }
}

// One tensor of every dtype and rank 0 to 3, including zero-size ones, with values whose bits
// a lossy path would change: NaN payloads, -0.0, denormals, infinities, integer extremes.
NamedTensors every_dtype() {
  const float f_nan_payload = bits_as<float>(std::uint32_t{0x7FC12345});
  const float f_signalling = bits_as<float>(std::uint32_t{0x7F800001});
  const float f_neg_nan = bits_as<float>(std::uint32_t{0xFFC00001});
  const float f_denormal = bits_as<float>(std::uint32_t{0x00000001});
  const float f_neg_denormal = bits_as<float>(std::uint32_t{0x807FFFFF});
  const double d_nan_payload = bits_as<double>(std::uint64_t{0x7FF8DEADBEEF0001});
  const double d_signalling = bits_as<double>(std::uint64_t{0x7FF0000000000001});
  const double d_denormal = bits_as<double>(std::uint64_t{0x0000000000000001});
  const double inf = std::numeric_limits<double>::infinity();
  return {
      {"f32", from_bytes({2, 4}, kFloat32,
                         bytes_of<float>({f_nan_payload, f_signalling, f_neg_nan, -0.0f, f_denormal, f_neg_denormal,
                                          std::numeric_limits<float>::infinity(), -3.4028235e38f}))},
      {"f64", from_bytes({2, 2, 2}, kFloat64,
                         bytes_of<double>({d_nan_payload, d_signalling, -0.0, d_denormal, -d_denormal, inf, -inf,
                                           0.1}))},
      {"i32", from_bytes({5}, kInt32,
                         bytes_of<std::int32_t>({std::numeric_limits<std::int32_t>::min(), -1, 0, 1,
                                                 std::numeric_limits<std::int32_t>::max()}))},
      {"i64", from_bytes({3}, kInt64,
                         bytes_of<std::int64_t>({std::numeric_limits<std::int64_t>::min(), 42,
                                                 std::numeric_limits<std::int64_t>::max()}))},
      {"bool", from_bytes({2, 2}, kBool, Bytes{1, 0, 0, 1})},
      {"f32_scalar", from_bytes({}, kFloat32, bytes_of<float>({-0.0f}))},
      {"i64_scalar", from_bytes({}, kInt64, bytes_of<std::int64_t>({-7}))},
      {"bool_scalar", from_bytes({}, kBool, Bytes{1})},
      {"f64_empty", empty({0}, kFloat64)},
      {"i32_empty", empty({2, 0, 3}, kInt32)},
      {"bool_empty", empty({0, 1}, kBool)},
  };
}

}  // namespace

TEST_CASE("safetensors: a tiny file has the byte layout worked out by hand", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("tiny.safetensors");
  save_safetensors(path, {{"a", tensor<float>({1.0f, -2.0f})}});

  // {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 54 characters; 2 spaces pad it to
  // 56 = 0x38 so that the data start at byte 64. 1.0f = 0x3F800000, -2.0f = 0xC0000000,
  // little-endian.
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"
                             "  ";
  const Bytes expected = concat({{0x38, 0, 0, 0, 0, 0, 0, 0}, text_bytes(header),
                                 {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0}});
  CHECK(expected.size() == 72);
  CHECK(read_bytes(path) == expected);
}

TEST_CASE("safetensors: metadata first, widest dtype's data first, header in the given order", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("meta.safetensors");
  save_safetensors(path,
                   {{"flag", tensor<bool>({true, false, true})}, {"step", tensor<std::int64_t>({7}, Shape{})}},
                   {{"format", "pt"}});

  // The header is 145 characters; 7 spaces pad it to 152 = 0x98. The int64 scalar (8 bytes)
  // comes first in the data so that it is 8-aligned; the 3 bool bytes follow at [8, 11).
  const std::string header =
      R"({"__metadata__":{"format":"pt"},)"
      R"("flag":{"dtype":"BOOL","shape":[3],"data_offsets":[8,11]},)"
      R"("step":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})"
      "       ";
  const Bytes expected =
      concat({{0x98, 0, 0, 0, 0, 0, 0, 0}, text_bytes(header), {7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}});
  CHECK(expected.size() == 171);
  CHECK(read_bytes(path) == expected);

  const NamedTensors back = load_safetensors(path);
  REQUIRE(back.size() == 2);
  CHECK(back[0].first == "flag");
  CHECK(back[1].first == "step");
  CHECK(back[0].second.to_vector<bool>() == std::vector<bool>{true, false, true});
  CHECK(back[1].second.rank() == 0);
  CHECK(back[1].second.item<std::int64_t>() == 7);
  CHECK(load_safetensors_metadata(path) == std::map<std::string, std::string>{{"format", "pt"}});
}

TEST_CASE("safetensors: every dtype, rank 0 and zero-size round-trips bit-exactly", "[safetensors]") {
  TempDir dir;
  std::string path = dir.file("all.safetensors");
  if (const char* keep = std::getenv("TAPEFLOW_SAFETENSORS_KEEP")) path = keep;
  const NamedTensors tensors = every_dtype();
  const std::map<std::string, std::string> metadata = {{"format", "np"}, {"written_by", "tapeflow test"}};
  save_safetensors(path, tensors, metadata);

  const NamedTensors back = load_safetensors(path);
  require_same(back, tensors);
  CHECK(load_safetensors_metadata(path) == metadata);

  const auto by_name = load_safetensors_map(path);
  REQUIRE(by_name.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    REQUIRE(by_name.count(name) == 1);
    CHECK(logical_bytes(by_name.at(name)) == logical_bytes(t));
  }

  // Saving what was loaded gives the same file byte for byte.
  const std::string again = dir.file("again.safetensors");
  save_safetensors(again, back, metadata);
  CHECK(read_bytes(again) == read_bytes(path));
}

TEST_CASE("safetensors: views are written in logical order", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("views.safetensors");
  const Tensor base = arange(0, 24, 1, kFloat32).reshape({4, 6});
  const Tensor transposed = base.transpose();                          // [6, 4]
  const Tensor strided = base(Slice(1, none, 2), Slice(none, none, -3));  // [2, 2], negative step
  const Tensor broadcast = tensor<std::int32_t>({1, 2, 3}).broadcast_to({2, 3});
  const Tensor offset_row = base[2];  // a view at an offset
  REQUIRE_FALSE(transposed.is_contiguous());
  REQUIRE_FALSE(strided.is_contiguous());
  REQUIRE_FALSE(broadcast.is_contiguous());
  save_safetensors(path, {{"t", transposed}, {"s", strided}, {"b", broadcast}, {"r", offset_row}});

  const auto back = load_safetensors_map(path);
  CHECK(back.at("t").shape() == Shape{6, 4});
  CHECK(back.at("t").to_vector<float>() == transposed.to_vector<float>());
  CHECK(back.at("s").to_vector<float>() == std::vector<float>{11, 8, 23, 20});
  CHECK(back.at("b").to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 2, 3, 1, 2, 3});
  CHECK(back.at("r").to_vector<float>() == std::vector<float>{12, 13, 14, 15, 16, 17});
  for (const auto& [name, t] : back) CHECK(t.is_contiguous());
}

TEST_CASE("safetensors: names and metadata with characters JSON must escape", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("names.safetensors");
  const std::vector<std::string> names = {"layer.0/kernel:0", "quote\"back\\slash", "tab\tnew\nline",
                                          "ctrl\x01\x1f", "utf8 \xC2\xB5 \xE2\x82\xAC \xF0\x9F\x98\x80", ""};
  NamedTensors tensors;
  for (std::size_t i = 0; i < names.size(); ++i) tensors.emplace_back(names[i], full({1}, double(i), kFloat32));
  const std::map<std::string, std::string> metadata = {{"k\"1", "v\\1\n"}, {"\xC2\xB5", "\x7f"}};
  save_safetensors(path, tensors, metadata);
  require_same(load_safetensors(path), tensors);
  CHECK(load_safetensors_metadata(path) == metadata);
}

TEST_CASE("safetensors: the reader accepts what other writers may produce", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("other.safetensors");
  const Bytes i32_data = {1, 0, 0, 0, 2, 0, 0, 0};

  SECTION("whitespace, escapes and data in an order unlike the header") {
    write_bytes(path, make_file(" {\n \"b\" : {\"shape\": [ 1 ], \"dtype\": \"I32\", \"data_offsets\": [4, 8]},\r\n"
                                "\t\"\\u0061\\/\\ud83d\\ude00\": {\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                "\"__metadata__\": {}}",
                                i32_data));
    const NamedTensors back = load_safetensors(path);
    REQUIRE(back.size() == 2);
    CHECK(back[0].first == "b");
    CHECK(back[0].second.to_vector<std::int32_t>() == std::vector<std::int32_t>{2});
    CHECK(back[1].first == "a/\xF0\x9F\x98\x80");
    CHECK(back[1].second.to_vector<std::int32_t>() == std::vector<std::int32_t>{1});
  }
  SECTION("an empty file of tensors") {
    write_bytes(path, make_file("{}", {}));
    CHECK(load_safetensors(path).empty());
    CHECK(load_safetensors_metadata(path).empty());
  }
  SECTION("zero-size tensors sharing an offset") {
    write_bytes(path, make_file(R"({"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                                R"("x":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},)"
                                R"("f":{"dtype":"F64","shape":[0,2],"data_offsets":[4,4]},)"
                                R"("y":{"dtype":"I32","shape":[],"data_offsets":[4,8]}})",
                                i32_data));
    const auto back = load_safetensors_map(path);
    CHECK(back.at("e").shape() == Shape{0});
    CHECK(back.at("f").shape() == Shape{0, 2});
    CHECK(back.at("y").item<std::int32_t>() == 2);
  }
}

TEST_CASE("safetensors: damaged files raise IOError naming the file and the fault", "[safetensors]") {
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  save_safetensors(good, {{"w", tensor<float>({1, 2, 3, 4}, {2, 2})}, {"b", tensor<float>({5, 6})}});
  const Bytes good_bytes = read_bytes(good);
  REQUIRE(good_bytes.size() > 24);
  const std::string path = dir.file("bad.safetensors");
  const Bytes f32x2 = bytes_of<float>({1, 2});
  const Bytes f32x3 = bytes_of<float>({1, 2, 3});

  SECTION("missing file") { require_load_error(dir.file("absent.safetensors"), "No such file"); }
  SECTION("a directory") { require_load_error(dir.path().string(), "not a regular file"); }
  SECTION("empty file") {
    write_bytes(path, {});
    require_load_error(path, "too short for the 8-byte header length");
  }
  SECTION("truncated data") {
    write_bytes(path, Bytes(good_bytes.begin(), good_bytes.end() - 3));
    require_load_error(path, "reach past the end of the data");
    require_load_error(path, "truncated");
  }
  SECTION("truncated header") {
    write_bytes(path, Bytes(good_bytes.begin(), good_bytes.begin() + 20));
    require_load_error(path, "larger than the 12 bytes after it");
  }
  SECTION("header length larger than the file") {
    Bytes b = good_bytes;
    const Bytes n = le64(good_bytes.size());
    std::copy(n.begin(), n.end(), b.begin());
    write_bytes(path, b);
    require_load_error(path, "header length " + std::to_string(good_bytes.size()) + " is larger than");
  }
  SECTION("absurd header length") {
    Bytes b = good_bytes;
    const Bytes n = le64(std::uint64_t{1} << 40);
    std::copy(n.begin(), n.end(), b.begin());
    write_bytes(path, b);
    require_load_error(path, "over the limit");
  }
  SECTION("trailing bytes") {
    Bytes b = good_bytes;
    b.insert(b.end(), {0, 0, 0, 0});
    write_bytes(path, b);
    require_load_error(path, "4 trailing bytes");
  }
  SECTION("bad JSON") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", "expected '}' but the header ends"},
        {R"({"x";{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "expected ':'"},
        {R"({"x":{"dtype":"F32","shape":[2,],"data_offsets":[0,8]}})", "expected an object, array, string or integer"},
        {R"({"x":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}})", "leading zeros"},
        {R"({"x":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", "must be integers"},
        {R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}x)", "unexpected characters after"},
        {R"({"x":{"dtype":"F\32","shape":[2],"data_offsets":[0,8]}})", "unknown escape"},
        {R"({"x":{"dtype":"F32","shape":[true],"data_offsets":[0,8]}})", "found 't'"},
        {"{\"x\n\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "raw control character"},
        {R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"x":{}})", "duplicate key \"x\""},
        {R"({"\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "surrogate"},
        {"{\"\xC0\xAF\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "not valid UTF-8"},
        {R"({"x":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}})", "integer too large"},
        {std::string(40, '[') + std::string(40, ']'), "nested deeper"},
        {"", "expected a value but the header ends"},
        {R"(["x"])", "the header is an array, not an object"},
    };
    for (const auto& [header, fragment] : cases) {
      INFO("header: " << header);
      write_bytes(path, make_file(header, f32x2));
      require_load_error(path, fragment);
    }
  }
  SECTION("wrong entries") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"({"x":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", "dtype \"F16\""},
        {R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "needs 12 bytes but data_offsets [0, 8] hold 8"},
        {R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "must hold non-negative integers"},
        {R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", "end before they begin"},
        {R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", "must be an array [begin, end]"},
        {R"({"x":{"dtype":"F32","shape":[2]}})", "lacks \"data_offsets\""},
        {R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", "unknown field \"extra\""},
        {R"({"x":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", "\"dtype\" must be a string"},
        {R"({"x":[]})", "tensor \"x\" is an array, not an object"},
        {R"({"__metadata__":{"k":1},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "is an integer, not a string"},
        {R"({"__metadata__":"v","x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "\"__metadata__\" is a string"},
        {R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", "more than 2^64"},
    };
    for (const auto& [header, fragment] : cases) {
      INFO("header: " << header);
      write_bytes(path, make_file(header, f32x2));
      require_load_error(path, fragment);
    }
  }
  SECTION("offsets out of range, overlapping or leaving gaps") {
    write_bytes(path, make_file(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", f32x2));
    require_load_error(path, "tensor \"x\": data_offsets [0, 16] reach past the end of the data (8 bytes");

    write_bytes(path, make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                f32x3));
    require_load_error(path, "tensor \"b\" (bytes [4, 8)) overlaps tensor \"a\" (bytes [0, 8))");

    write_bytes(path, make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                f32x3));
    require_load_error(path, "bytes [4, 8) of the data belong to no tensor");

    write_bytes(path, make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", f32x3));
    require_load_error(path, "bytes [0, 4) of the data belong to no tensor");

    write_bytes(path, make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                f32x2));
    require_load_error(path, "overlaps");
  }
  SECTION("bool bytes other than 0 and 1") {
    write_bytes(path, make_file(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", Bytes{1, 0, 2}));
    require_load_error(path, "holds byte 2 at element 2");
  }
  SECTION("the metadata reader validates the header too") {
    write_bytes(path, Bytes(good_bytes.begin(), good_bytes.end() - 1));
    CHECK_THROWS_AS(load_safetensors_metadata(path), IOError);
    CHECK_THROWS_AS(load_safetensors_map(path), IOError);
  }
}

TEST_CASE("safetensors: bad arguments to save raise before anything is written", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("args.safetensors");
  const Tensor t = tensor<float>({1, 2});
  CHECK_THROWS_AS(save_safetensors(path, {{"a", t}, {"b", t}, {"a", t}}), ValueError);
  CHECK_THROWS_WITH(save_safetensors(path, {{"a", t}, {"b", t}, {"a", t}}),
                    Catch::Contains("the name \"a\" is used by tensors 0 and 2"));
  CHECK_THROWS_WITH(save_safetensors(path, {{"__metadata__", t}}), Catch::Contains("reserved"));
  CHECK_THROWS_AS(save_safetensors(path, {{"__metadata__", t}}), ValueError);
  CHECK_THROWS_AS(save_safetensors(path, {{"u", Tensor()}}), ValueError);
  CHECK_THROWS_WITH(save_safetensors(path, {{"a", t}, {"bad\xff", t}}), Catch::Contains("tensor 1 is not valid UTF-8"));
  CHECK_THROWS_AS(save_safetensors(path, {{"a", t}}, {{"k", "\xC0\xAF"}}), ValueError);
  CHECK(dir.entries().empty());
}

TEST_CASE("safetensors: the write is atomic", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  const NamedTensors old_tensors = {{"w", tensor<float>({1, 2, 3})}};
  save_safetensors(path, old_tensors);
  const Bytes old_bytes = read_bytes(path);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());

  SECTION("a save leaves only the target, and a second save replaces it") {
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
    const NamedTensors new_tensors = {{"w", tensor<float>({4, 5})}, {"b", tensor<std::int64_t>({6})}};
    save_safetensors(path, new_tensors);
    require_same(load_safetensors(path), new_tensors);
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
  }
  SECTION("the temporary file cannot be created") {
    fs::create_directory(tmp);  // open() on a directory fails, for root too
    try {
      save_safetensors(path, {{"w", tensor<float>({9})}});
      FAIL("save_safetensors did not fail");
    } catch (const IOError& e) {
      CHECK_THAT(std::string(e.what()), Catch::Contains(path) && Catch::Contains("creating") && Catch::Contains(tmp));
    }
    CHECK(read_bytes(path) == old_bytes);
    fs::remove(tmp);
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
  }
  SECTION("the disk fills up half way through the data") {
    // A file size limit makes write() fail with EFBIG after the first 4 KiB, as a full disk
    // would: the half-written temporary file must go and the old file stay.
    struct rlimit saved {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string error;
    try {
      save_safetensors(path, {{"big", zeros({1 << 16}, kFloat32)}});
    } catch (const IOError& e) {
      error = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
    CHECK_THAT(error, Catch::Contains(path) && Catch::Contains("writing") && Catch::Contains("File too large"));
    CHECK(read_bytes(path) == old_bytes);
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
  }
  SECTION("the rename fails: the target is a folder") {
    const std::string folder = dir.file("folder.safetensors");
    fs::create_directories(fs::path(folder) / "inside");
    CHECK_THROWS_WITH(save_safetensors(folder, old_tensors), Catch::Contains(folder) && Catch::Contains("renaming"));
    CHECK(fs::is_directory(fs::path(folder) / "inside"));
    CHECK(dir.entries() == std::vector<std::string>{"folder.safetensors", "model.safetensors"});
  }
  SECTION("a folder that does not exist") {
    const std::string nowhere = dir.file("no/such/folder.safetensors");
    CHECK_THROWS_WITH(save_safetensors(nowhere, old_tensors),
                      Catch::Contains(nowhere) && Catch::Contains("No such file or directory"));
  }
  SECTION("a read-only folder") {
    fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec, fs::perm_options::replace);
    if (::geteuid() == 0) {
      // Permissions do not stop root; the sections above cover the failure paths for root.
      WARN("running as root: the read-only folder check is skipped");
      CHECK(read_bytes(path) == old_bytes);
    } else {
      CHECK_THROWS_WITH(save_safetensors(path, {{"w", tensor<float>({9})}}),
                        Catch::Contains(path) && Catch::Contains("Permission denied"));
      CHECK(read_bytes(path) == old_bytes);
      CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
    }
    fs::permissions(dir.path(), fs::perms::owner_all, fs::perm_options::replace);
  }
}

TEST_CASE("safetensors: shapes no tensor can have raise IOError, not a crash", "[safetensors][overflow]") {
  TempDir dir;
  const std::string path = dir.file("hostile.safetensors");
  // a 0 makes the element count 0 and the byte count match, but the strides of
  // [0, 2^63 - 1, 2^63 - 1] overflow int64
  write_bytes(path, make_file(R"({"t":{"dtype":"F32","shape":[0,9223372036854775807,9223372036854775807],)"
                              R"("data_offsets":[0,0]}})",
                              Bytes{}));
  require_load_error(path, "tensor \"t\": shape [0, 9223372036854775807, 9223372036854775807] has more elements "
                           "(zeros aside) than an int64 can count");
  CHECK_THROWS_AS(load_safetensors_map(path), IOError);
  // 17 dimensions: more than a tensor may have
  write_bytes(path, make_file(R"({"t":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})",
                              bytes_of<float>({1})));
  require_load_error(path, "has 17 dimensions; tapeflow tensors have at most 16");
  // zeros beside sizes whose product fits load as empty tensors
  write_bytes(path, make_file(R"({"t":{"dtype":"F32","shape":[0,4294967296,2],"data_offsets":[0,0]}})", Bytes{}));
  const NamedTensors loaded = load_safetensors(path);
  REQUIRE(loaded.size() == 1);
  CHECK(loaded[0].second.shape() == Shape{0, 4294967296, 2});
}
