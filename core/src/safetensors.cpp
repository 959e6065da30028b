// Safetensors reading and writing, with the small strict JSON parser the header needs.
//
// File: [u64 little-endian N][N bytes of JSON, space-padded][data]. Every tensor's bytes lie
// at [begin, end) of the data; the ranges tile the data exactly, in any order of the header.
#include "tapeflow/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tapeflow/kernels/layout.hpp"
#include "tapeflow/ops.hpp"

// The data are written and read as the host's bytes: little-endian hosts only.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace tapeflow {
namespace {

// The limit of the reference implementation: a larger header is corrupt, not real.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
// Deeper JSON than any header needs is corrupt (and would exhaust the parser's stack).
constexpr int kMaxJsonDepth = 32;

// ------------------------------------------------------------------ dtypes

const char* safetensors_dtype(DType d) {
  switch (d) {
    case DType::Bool: return "BOOL";
    case DType::Int32: return "I32";
    case DType::Int64: return "I64";
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
  }
  return "?";
}

bool parse_dtype(const std::string& s, DType& out) {
  for (DType d : {DType::Bool, DType::Int32, DType::Int64, DType::Float32, DType::Float64}) {
    if (s == safetensors_dtype(d)) {
      out = d;
      return true;
    }
  }
  return false;
}

// ------------------------------------------------------------------ JSON

// The subset of JSON a header uses: objects (keys kept in order), arrays, strings, integers.
struct Json {
  enum class Kind { Object, Array, String, Integer };
  Kind kind = Kind::Object;
  std::vector<std::pair<std::string, Json>> members;  // Object
  std::vector<Json> items;                            // Array
  std::string text;                                   // String
  bool negative = false;                              // Integer: -magnitude if negative
  std::uint64_t magnitude = 0;
};

const char* kind_name(Json::Kind k) {
  switch (k) {
    case Json::Kind::Object: return "an object";
    case Json::Kind::Array: return "an array";
    case Json::Kind::String: return "a string";
    case Json::Kind::Integer: return "an integer";
  }
  return "?";
}

struct JsonError {
  std::string what;
};

// Strict RFC 8259 for the subset: no trailing commas, no leading zeros, no duplicate keys,
// no raw control characters in strings. Errors are JsonErrors naming the byte offset.
class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : s_(text) {}

  Json parse_document() {
    skip_ws();
    Json v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected characters after the header object");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw JsonError{fmt::format("invalid JSON at byte {} of the header: {}", pos_, what)};
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void expect(char c) {
    if (pos_ >= s_.size()) fail(fmt::format("expected '{}' but the header ends", c));
    if (s_[pos_] != c) fail(fmt::format("expected '{}', found {}", c, describe(s_[pos_])));
    ++pos_;
  }
  static std::string describe(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) return fmt::format("'{}'", c);
    return fmt::format("byte 0x{:02X}", u);
  }

  Json parse_value(int depth) {
    if (depth > kMaxJsonDepth) fail(fmt::format("nested deeper than {} levels", kMaxJsonDepth));
    if (pos_ >= s_.size()) fail("expected a value but the header ends");
    const char c = s_[pos_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') {
      Json v;
      v.kind = Json::Kind::String;
      v.text = parse_string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_integer();
    fail(fmt::format("expected an object, array, string or integer, found {}", describe(c)));
  }

  Json parse_object(int depth) {
    Json v;
    v.kind = Json::Kind::Object;
    std::unordered_set<std::string> keys;
    expect('{');
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      return v;
    }
    for (;;) {
      skip_ws();
      if (peek() != '"') fail(pos_ < s_.size() ? "expected a string key" : "expected a key but the header ends");
      const std::size_t key_pos = pos_;
      std::string key = parse_string();
      if (!keys.insert(key).second) {
        pos_ = key_pos;
        fail(fmt::format("duplicate key \"{}\"", key));
      }
      skip_ws();
      expect(':');
      skip_ws();
      Json value = parse_value(depth + 1);
      v.members.emplace_back(std::move(key), std::move(value));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      return v;
    }
  }

  Json parse_array(int depth) {
    Json v;
    v.kind = Json::Kind::Array;
    expect('[');
    skip_ws();
    if (peek() == ']') {
      ++pos_;
      return v;
    }
    for (;;) {
      skip_ws();
      v.items.push_back(parse_value(depth + 1));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(']');
      return v;
    }
  }

  Json parse_integer() {
    Json v;
    v.kind = Json::Kind::Integer;
    if (peek() == '-') {
      v.negative = true;
      ++pos_;
    }
    if (!(peek() >= '0' && peek() <= '9')) fail("expected a digit");
    if (peek() == '0' && pos_ + 1 < s_.size() && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9') {
      fail("numbers must not have leading zeros");
    }
    while (peek() >= '0' && peek() <= '9') {
      const auto digit = static_cast<std::uint64_t>(peek() - '0');
      if (v.magnitude > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) fail("integer too large");
      v.magnitude = v.magnitude * 10 + digit;
      ++pos_;
    }
    if (peek() == '.' || peek() == 'e' || peek() == 'E') fail("numbers in a safetensors header must be integers");
    return v;
  }

  unsigned hex4() {
    if (s_.size() - pos_ < 4) fail("\\u needs four hex digits");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else fail("\\u needs four hex digits");
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // The header was checked to be valid UTF-8 before parsing, so bytes >= 0x80 are copied as is.
  std::string parse_string() {
    expect('"');
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail(fmt::format("raw control character {} in a string", describe(c)));
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) fail("unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(pos_, 2) != "\\u") fail("high surrogate not followed by a low surrogate");
            pos_ += 2;
            const unsigned lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("high surrogate not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: --pos_; fail(fmt::format("unknown escape \\{}", e));
      }
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

// Offset of the first byte that breaks UTF-8 (overlongs, surrogates and > U+10FFFF included),
// or npos.
std::size_t invalid_utf8_at(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len;
    std::uint32_t cp, min;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return i;
    if (s.size() - i < len) return i;
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        else out += c;
    }
  }
  out += '"';
}

// ------------------------------------------------------------------ header

struct TensorEntry {
  std::string name;
  DType dtype = DType::Float32;
  Shape shape;
  std::uint64_t begin = 0, end = 0;  // relative to the start of the data
};

struct Header {
  std::vector<TensorEntry> tensors;  // in the header's order
  std::map<std::string, std::string> metadata;
  std::uint64_t data_start = 0;  // 8 + N
};

// An open file descriptor that closes itself.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, returning close()'s result (a deferred write error shows up here).
  int close() {
    const int r = ::close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  int fd_;
};

class Reader {
 public:
  explicit Reader(const std::string& path, const char* op) : path_(path), op_(op), fd_(open_or_throw()) {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) fail(fmt::format("cannot stat: {}", std::strerror(errno)));
    if (!S_ISREG(st.st_mode)) fail("is not a regular file");
    size_ = static_cast<std::uint64_t>(st.st_size);
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw IOError(fmt::format("{}: '{}' {}", op_, path_, what));
  }
  [[noreturn]] void corrupt(const std::string& what) const { fail("is not a valid safetensors file: " + what); }

  std::uint64_t size() const { return size_; }

  // Reads exactly n bytes at `offset`.
  void read_at(void* dst, std::uint64_t n, std::uint64_t offset, const char* what) const {
    auto* out = static_cast<char*>(dst);
    while (n > 0) {
      const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(n, std::uint64_t{1} << 30));
      const ssize_t got = ::pread(fd_.get(), out, chunk, static_cast<off_t>(offset));
      if (got < 0) {
        if (errno == EINTR) continue;
        fail(fmt::format("cannot read {}: {}", what, std::strerror(errno)));
      }
      if (got == 0) fail(fmt::format("ends early while reading {} (truncated file?)", what));
      out += got;
      offset += static_cast<std::uint64_t>(got);
      n -= static_cast<std::uint64_t>(got);
    }
  }

  Header read_header() const {
    if (size_ < 8) {
      corrupt(fmt::format("the file is {} bytes long, too short for the 8-byte header length (truncated file?)", size_));
    }
    unsigned char len_bytes[8];
    read_at(len_bytes, 8, 0, "the header length");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
    if (n >= kMaxHeaderBytes) corrupt(fmt::format("header length {} is over the limit of {} bytes", n, kMaxHeaderBytes));
    if (n > size_ - 8) {
      corrupt(fmt::format("header length {} is larger than the {} bytes after it (truncated file?)", n, size_ - 8));
    }
    std::string text(static_cast<std::size_t>(n), '\0');
    read_at(text.data(), n, 8, "the header");
    if (const auto bad = invalid_utf8_at(text); bad != std::string_view::npos) {
      corrupt(fmt::format("the header is not valid UTF-8 (byte {})", bad));
    }
    Json root;
    try {
      root = JsonParser(text).parse_document();
    } catch (const JsonError& e) {
      corrupt(e.what);
    }
    if (root.kind != Json::Kind::Object) corrupt(fmt::format("the header is {}, not an object", kind_name(root.kind)));

    Header h;
    h.data_start = 8 + n;
    for (const auto& [name, value] : root.members) {
      if (name == "__metadata__") {
        h.metadata = parse_metadata(value);
      } else {
        h.tensors.push_back(parse_entry(name, value));
      }
    }
    check_offsets(h.tensors, size_ - h.data_start);
    return h;
  }

 private:
  int open_or_throw() const {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(fmt::format("cannot be opened: {}", std::strerror(errno)));
    return fd;
  }

  std::map<std::string, std::string> parse_metadata(const Json& v) const {
    if (v.kind != Json::Kind::Object) corrupt(fmt::format("\"__metadata__\" is {}, not an object", kind_name(v.kind)));
    std::map<std::string, std::string> out;
    for (const auto& [key, value] : v.members) {
      if (value.kind != Json::Kind::String) {
        corrupt(fmt::format("\"__metadata__\" entry \"{}\" is {}, not a string", key, kind_name(value.kind)));
      }
      out[key] = value.text;
    }
    return out;
  }

  std::uint64_t non_negative(const Json& v, const std::string& name, const char* field) const {
    if (v.kind != Json::Kind::Integer || (v.negative && v.magnitude != 0)) {
      corrupt(fmt::format("tensor \"{}\": {} must hold non-negative integers", name, field));
    }
    return v.magnitude;
  }

  TensorEntry parse_entry(const std::string& name, const Json& v) const {
    if (v.kind != Json::Kind::Object) corrupt(fmt::format("tensor \"{}\" is {}, not an object", name, kind_name(v.kind)));
    const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (const auto& [key, field] : v.members) {
      if (key == "dtype") dtype = &field;
      else if (key == "shape") shape = &field;
      else if (key == "data_offsets") offsets = &field;
      else corrupt(fmt::format("tensor \"{}\" has an unknown field \"{}\"", name, key));
    }
    if (!dtype || !shape || !offsets) {
      corrupt(fmt::format("tensor \"{}\" lacks \"{}\"", name, !dtype ? "dtype" : !shape ? "shape" : "data_offsets"));
    }
    TensorEntry e;
    e.name = name;
    if (dtype->kind != Json::Kind::String) corrupt(fmt::format("tensor \"{}\": \"dtype\" must be a string", name));
    if (!parse_dtype(dtype->text, e.dtype)) {
      corrupt(fmt::format("tensor \"{}\" has dtype \"{}\"; tapeflow reads BOOL, I32, I64, F32 and F64", name,
                          dtype->text));
    }
    if (shape->kind != Json::Kind::Array) corrupt(fmt::format("tensor \"{}\": \"shape\" must be an array", name));
    // Element count with overflow checks: a shape whose bytes exceed the file fails below anyway.
    // The product of the non-zero sizes is checked too: a tensor's strides need it in an int64
    // even when a 0 makes it empty ([0, 2^63 - 1, 2^63 - 1]).
    constexpr auto kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::uint64_t count = 1, nonzero = 1;
    bool overflow = false, too_big = false;
    for (const auto& d : shape->items) {
      const std::uint64_t dim = non_negative(d, name, "\"shape\"");
      if (dim > kInt64Max) overflow = true;
      e.shape.push_back(static_cast<std::int64_t>(dim));
      if (dim != 0 && count > std::numeric_limits<std::uint64_t>::max() / dim) overflow = true;
      count *= dim;
      if (dim != 0) {
        if (nonzero > kInt64Max / dim) too_big = true;
        nonzero *= dim;
      }
    }
    if (offsets->kind != Json::Kind::Array || offsets->items.size() != 2) {
      corrupt(fmt::format("tensor \"{}\": \"data_offsets\" must be an array [begin, end]", name));
    }
    e.begin = non_negative(offsets->items[0], name, "\"data_offsets\"");
    e.end = non_negative(offsets->items[1], name, "\"data_offsets\"");
    if (e.end < e.begin) corrupt(fmt::format("tensor \"{}\": data_offsets [{}, {}] end before they begin", name, e.begin, e.end));
    const std::uint64_t item = itemsize(e.dtype);
    if (count > std::numeric_limits<std::uint64_t>::max() / item) overflow = true;
    if (overflow || count * item != e.end - e.begin) {
      corrupt(fmt::format("tensor \"{}\": shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {}", name,
                          shape_str(e.shape), dtype->text,
                          overflow ? std::string("more than 2^64") : std::to_string(count * item), e.begin, e.end,
                          e.end - e.begin));
    }
    if (e.shape.size() > static_cast<std::size_t>(kernels::kMaxRank)) {
      corrupt(fmt::format("tensor \"{}\": shape {} has {} dimensions; tapeflow tensors have at most {}", name,
                          shape_str(e.shape), e.shape.size(), kernels::kMaxRank));
    }
    if (too_big) {
      corrupt(fmt::format("tensor \"{}\": shape {} has more elements (zeros aside) than an int64 can count", name,
                          shape_str(e.shape)));
    }
    return e;
  }

  // The ranges must tile [0, data_size) exactly: sorted by offset, each begins where the last ended.
  void check_offsets(const std::vector<TensorEntry>& tensors, std::uint64_t data_size) const {
    std::vector<const TensorEntry*> order;
    for (const auto& t : tensors) order.push_back(&t);
    std::stable_sort(order.begin(), order.end(), [](const TensorEntry* a, const TensorEntry* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    std::uint64_t covered = 0;
    const TensorEntry* last = nullptr;
    for (const TensorEntry* t : order) {
      if (t->end > data_size) {
        corrupt(fmt::format("tensor \"{}\": data_offsets [{}, {}] reach past the end of the data ({} bytes; truncated file?)",
                            t->name, t->begin, t->end, data_size));
      }
      if (t->begin < covered) {
        corrupt(fmt::format("tensor \"{}\" (bytes [{}, {})) overlaps tensor \"{}\" (bytes [{}, {}))", t->name, t->begin,
                            t->end, last->name, last->begin, last->end));
      }
      if (t->begin > covered) corrupt(fmt::format("bytes [{}, {}) of the data belong to no tensor", covered, t->begin));
      covered = t->end;
      if (t->end > t->begin || !last) last = t;
    }
    if (covered < data_size) {
      corrupt(fmt::format("{} trailing bytes after the last tensor's data (the data is {} bytes, tensors cover {})",
                          data_size - covered, data_size, covered));
    }
  }

  std::string path_;
  const char* op_;
  Fd fd_;
  std::uint64_t size_ = 0;
};

NamedTensors load(const std::string& path, const char* op) {
  Reader r(path, op);
  const Header h = r.read_header();
  NamedTensors out;
  out.reserve(h.tensors.size());
  for (const auto& e : h.tensors) {
    Tensor t = empty(e.shape, e.dtype);
    const std::uint64_t n = e.end - e.begin;
    if (n > 0) {
      const std::string what = fmt::format("tensor \"{}\"", e.name);
      r.read_at(t.data_ptr(), n, h.data_start + e.begin, what.c_str());
    }
    if (e.dtype == DType::Bool) {
      // Any byte but 0 or 1 would be an invalid C++ bool.
      const auto* bytes = static_cast<const unsigned char*>(t.data_ptr());
      for (std::uint64_t i = 0; i < n; ++i) {
        if (bytes[i] > 1) {
          r.corrupt(fmt::format("bool tensor \"{}\" holds byte {} at element {}; expected 0 or 1", e.name, bytes[i], i));
        }
      }
    }
    out.emplace_back(e.name, std::move(t));
  }
  return out;
}

// ------------------------------------------------------------------ writing

[[noreturn]] void write_failed(const std::string& path, const std::string& tmp, const std::string& what, int err) {
  throw IOError(fmt::format("save_safetensors: cannot write '{}': {} '{}': {}", path, what, tmp, std::strerror(err)));
}

void write_all(int fd, const void* src, std::size_t n, const std::string& path, const std::string& tmp) {
  const auto* p = static_cast<const char*>(src);
  while (n > 0) {
    const ssize_t put = ::write(fd, p, std::min<std::size_t>(n, std::size_t{1} << 30));
    if (put < 0) {
      if (errno == EINTR) continue;
      write_failed(path, tmp, "writing", errno);
    }
    p += put;
    n -= static_cast<std::size_t>(put);
  }
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Validate everything before touching the disk.
  std::vector<Tensor> data;
  data.reserve(tensors.size());
  std::unordered_map<std::string, std::size_t> seen;  // name -> first index
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    if (name == "__metadata__") throw ValueError("save_safetensors: \"__metadata__\" is reserved and cannot name a tensor");
    if (const auto [it, fresh] = seen.emplace(name, i); !fresh) {
      throw ValueError(fmt::format("save_safetensors: the name \"{}\" is used by tensors {} and {}", name, it->second, i));
    }
    if (invalid_utf8_at(name) != std::string_view::npos) {
      throw ValueError(fmt::format("save_safetensors: the name of tensor {} is not valid UTF-8", i));
    }
    if (!t.defined()) throw ValueError(fmt::format("save_safetensors: tensor \"{}\" is undefined", name));
    data.push_back(t.to(Device::cpu()).contiguous());  // a CUDA tensor is copied to the host
  }

  for (const auto& [key, value] : metadata) {
    if (invalid_utf8_at(key) != std::string_view::npos || invalid_utf8_at(value) != std::string_view::npos) {
      throw ValueError("save_safetensors: metadata keys and values must be valid UTF-8");
    }
  }

  // Widest dtype first (stable), so each tensor starts at a multiple of its item size: the
  // data start at a multiple of 8 and every size before a tensor is a multiple of its own.
  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return itemsize(data[a].dtype()) > itemsize(data[b].dtype()); });
  std::vector<std::uint64_t> begin(tensors.size());
  std::uint64_t total = 0;
  for (const std::size_t i : order) {
    begin[i] = total;
    total += data[i].nbytes();
  }

  std::string header = "{";
  if (!metadata.empty()) {
    append_json_string(header, "__metadata__");
    header += ":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) header += ',';
      first = false;
      append_json_string(header, key);
      header += ':';
      append_json_string(header, value);
    }
    header += "}";
  }
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (header.size() > 1) header += ',';
    append_json_string(header, tensors[i].first);
    header += fmt::format(":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                          safetensors_dtype(data[i].dtype()), fmt::join(data[i].shape(), ","), begin[i],
                          begin[i] + data[i].nbytes());
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');

  std::string file_start(8, '\0');
  for (int b = 0; b < 8; ++b) file_start[b] = static_cast<char>(static_cast<std::uint64_t>(header.size()) >> (8 * b));
  file_start += header;

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) write_failed(path, tmp, "creating", errno);
  try {
    write_all(fd.get(), file_start.data(), file_start.size(), path, tmp);
    for (const std::size_t i : order) {
      if (data[i].nbytes() > 0) write_all(fd.get(), data[i].data_ptr(), data[i].nbytes(), path, tmp);
    }
    // On disk before the rename, so a crash cannot leave `path` naming a file without its data.
    if (::fsync(fd.get()) != 0) write_failed(path, tmp, "flushing", errno);
    if (fd.close() != 0) write_failed(path, tmp, "closing", errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      throw IOError(fmt::format("save_safetensors: cannot write '{}': renaming '{}' over it: {}", path, tmp,
                                std::strerror(err)));
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

NamedTensors load_safetensors(const std::string& path) { return load(path, "load_safetensors"); }

std::map<std::string, Tensor> load_safetensors_map(const std::string& path) {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : load(path, "load_safetensors_map")) out.emplace(name, std::move(t));
  return out;
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  return Reader(path, "load_safetensors_metadata").read_header().metadata;
}

}  // namespace tapeflow
