// Build-time tool of TAPEFLOW_CUDA=EMU: copies one CUDA source, turning every kernel launch
// `kernel<Args><<<grid, block, shared, stream>>>(arguments)` into
// `::tapeflow_emu::launch(&kernel<Args>, "kernel<Args>", grid, block, shared, stream)(arguments)`,
// which g++ compiles against kernels/cuda/emu, and every `__shared__ T name[...];` into a
// reference to the running block's own copy of the variable (tapeflow_emu::shared_memory).
// Nothing else changes: the line count stays the same and a #line directive names the
// original file, so diagnostics, __FILE__ and __LINE__ point into kernels/cuda/src.
//
//   rewrite_launches INPUT OUTPUT NAME   (NAME: the path __FILE__ should give)
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace {

bool is_ident(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ':'; }

// Start of the kernel expression that ends just before `end` (an identifier, optionally
// qualified, optionally with balanced template arguments), or npos.
std::size_t kernel_start(const std::string& s, std::size_t end) {
  std::size_t i = end;
  while (i > 0 && std::isspace(static_cast<unsigned char>(s[i - 1])) != 0) --i;
  if (i > 0 && s[i - 1] == '>') {
    int depth = 0;
    while (i > 0) {
      const char c = s[--i];
      if (c == '>') ++depth;
      if (c == '<' && --depth == 0) break;
    }
    if (depth != 0) return std::string::npos;
    while (i > 0 && std::isspace(static_cast<unsigned char>(s[i - 1])) != 0) --i;
  }
  const std::size_t name_end = i;
  while (i > 0 && is_ident(s[i - 1])) --i;
  return i == name_end ? std::string::npos : i;
}

std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (const char c : s) {
    if (c == '\n') q += ' ';
    else if (c == '"' || c == '\\') (q += '\\') += c;
    else q += c;
  }
  return q + '"';
}

// Turns each `__shared__ T name[...];` of `src` (one declaration per statement, not inside a
// comment) into a reference to the block's own copy:
//   static char tapeflow_emu_shared_name;
//   T (&name)[...] = ::tapeflow_emu::shared_memory<T[...]>(&tapeflow_emu_shared_name);
// on the same line; false (with a message) for one it cannot read.
bool rewrite_shared(const std::string& src, std::string& out, const char* file) {
  const std::string key = "__shared__";
  std::size_t pos = 0;
  for (std::size_t at = src.find(key); at != std::string::npos; at = src.find(key, at + key.size())) {
    const std::size_t nl = src.rfind('\n', at);
    const std::size_t line_start = nl == std::string::npos ? 0 : nl + 1;
    const bool word = (at == 0 || !is_ident(src[at - 1])) &&
                      (at + key.size() >= src.size() || !is_ident(src[at + key.size()]));
    if (!word || src.substr(line_start, at - line_start).find("//") != std::string::npos) continue;
    const std::size_t semi = src.find(';', at);
    const std::size_t eol = src.find('\n', at);
    if (semi == std::string::npos || (eol != std::string::npos && eol < semi)) {
      std::cerr << file << ": a __shared__ declaration that does not end on its line\n";
      return false;
    }
    const std::string decl = src.substr(at + key.size(), semi - at - key.size());
    const std::size_t dims = decl.find('[');
    std::size_t end = dims == std::string::npos ? decl.size() : dims;
    while (end > 0 && std::isspace(static_cast<unsigned char>(decl[end - 1])) != 0) --end;
    std::size_t begin = end;
    while (begin > 0 && is_ident(decl[begin - 1]) && decl[begin - 1] != ':') --begin;
    int depth = 0;
    bool several = false;  // `__shared__ T a[4], b[4];`: a comma outside template arguments
    for (const char c : decl) {
      depth += c == '<' ? 1 : c == '>' ? -1 : 0;
      several = several || (c == ',' && depth == 0);
    }
    const std::string type = decl.substr(0, begin);
    if (begin == end || several || decl.find('=') != std::string::npos ||
        type.find_first_not_of(" \t") == std::string::npos) {
      std::cerr << file << ": a __shared__ declaration this tool cannot read: __shared__" << decl << ";\n";
      return false;
    }
    const std::string name = decl.substr(begin, end - begin);
    const std::string extents = dims == std::string::npos ? "" : decl.substr(dims);
    out.append(src, pos, at - pos);
    out += "static char tapeflow_emu_shared_" + name + ";" + type + "(&" + name + ")" + extents +
           " = ::tapeflow_emu::shared_memory<" + type + extents + ">(&tapeflow_emu_shared_" + name + ")";
    pos = semi;
  }
  out.append(src, pos, std::string::npos);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: rewrite_launches INPUT OUTPUT NAME\n";
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::cerr << "rewrite_launches: cannot read " << argv[1] << "\n";
    return 1;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  std::string src;
  if (!rewrite_shared(buf.str(), src, argv[1])) return 1;
  std::string out = "#line 1 \"" + std::string(argv[3]) + "\"\n";
  std::size_t pos = 0;
  for (std::size_t open = src.find("<<<"); open != std::string::npos; open = src.find("<<<", pos)) {
    const std::size_t close = src.find(">>>", open + 3);
    const std::size_t start = kernel_start(src, open);
    if (close == std::string::npos || start == std::string::npos || start < pos) {
      std::cerr << argv[1] << ": a <<< that is no kernel launch this tool understands\n";
      return 1;
    }
    // the kernel's newlines stay in place (they are whitespace inside the call)
    const std::string kernel = src.substr(start, open - start);
    out.append(src, pos, start - pos);
    out += "::tapeflow_emu::launch(&" + kernel + ", " + quoted(kernel) + ", ";
    out.append(src, open + 3, close - open - 3);
    out += ")";
    pos = close + 3;
  }
  out.append(src, pos, std::string::npos);
  std::ofstream o(argv[2], std::ios::binary);
  o << out;
  if (!o) {
    std::cerr << "rewrite_launches: cannot write " << argv[2] << "\n";
    return 1;
  }
  return 0;
}
