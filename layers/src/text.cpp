// Keras's text preprocessing: TextVectorization and StringLookup on a shared IndexLookup, and
// text_dataset_from_directory.
#include "tapeflow/text.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "tapeflow/data.hpp"
#include "tapeflow/error.hpp"
#include "tapeflow/ops.hpp"

#include "directory_dataset.hpp"

namespace tapeflow {
namespace layers {
namespace {

const char* const kOp = "TextVectorization";
const char* const kLookupOp = "StringLookup";
const char* const kMask = "";
const char* const kOov = "[UNK]";

// Keras's regex [!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~']: all of ASCII's punctuation
constexpr std::string_view kPunctuation = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'";

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// TensorFlow's tf.strings.split(): ASCII whitespace separates, runs of it count once
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

std::vector<std::string> split_whitespace(const std::string& s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    std::size_t j = i;
    while (j < s.size() && !is_space(s[j])) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// The length of the UTF-8 character starting at s[i]: 1 for a byte that does not start a
// valid sequence (TensorFlow would give U+FFFD instead).
std::size_t utf8_length(const std::string& s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 1;
  for (std::size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 1;
  }
  return n;
}

std::vector<std::string> split_characters(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_length(s, i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

// tf.strings.ngrams(tokens, ngram_width=(1, ..., n), separator=" "): every width in turn
std::vector<std::string> make_ngrams(const std::vector<std::string>& tokens, std::int64_t n) {
  if (n == 1) return tokens;
  std::vector<std::string> out;
  for (std::size_t width = 1; width <= static_cast<std::size_t>(n); ++width) {
    for (std::size_t i = 0; i + width <= tokens.size(); ++i) {
      std::string gram = tokens[i];
      for (std::size_t k = 1; k < width; ++k) gram += " " + tokens[i + k];
      out.push_back(std::move(gram));
    }
  }
  return out;
}

void check_one_of(const char* op, const char* option, const std::string& value, const std::vector<const char*>& known) {
  if (std::find(known.begin(), known.end(), value) != known.end()) return;
  std::string list;
  for (const char* k : known) list += fmt::format("{}\"{}\"", list.empty() ? "" : ", ", k);
  throw ValueError(fmt::format("{}: unknown {} \"{}\" (known: {})", op, option, value, list));
}

// Keras's checks: max_tokens > 1 when set, and pad_to_max_tokens only with max_tokens.
void check_max_tokens(const char* op, std::int64_t max_tokens, bool pad_to_max_tokens) {
  if (max_tokens != -1 && max_tokens <= 1) {
    throw ValueError(fmt::format("{}: max_tokens must be greater than 1 (or -1: no limit), got {}", op, max_tokens));
  }
  if (pad_to_max_tokens && max_tokens == -1) {
    throw ValueError(fmt::format("{}: pad_to_max_tokens needs max_tokens to be set (max_tokens is -1)", op));
  }
}

// Adds one sample's bag of token indices into row[width]: 1 per index present (multi_hot),
// counts (count), counts times idf (tf_idf); indices < 0 (a mask) have no column.
void encode_bag(const std::vector<std::int64_t>& ids, const std::string& mode, const std::vector<double>& idf,
                float* row, std::int64_t width) {
  for (std::int64_t id : ids) {
    if (id < 0) continue;
    if (mode == "count" || mode == "tf_idf") {
      row[id] += 1.0f;
    } else {
      row[id] = 1.0f;
    }
  }
  if (mode == "tf_idf") {
    for (std::int64_t i = 0; i < width; ++i) row[i] = static_cast<float>(row[i] * idf[i]);
  }
}

}  // namespace

// ---------------------------------------------------------------- IndexLookup

namespace detail {

void IndexLookup::adapt(std::size_t num_documents,
                        const std::function<std::vector<std::string>(std::size_t)>& document) {
  std::unordered_map<std::string, std::int64_t> counts, doc_counts;
  for (std::size_t d = 0; d < num_documents; ++d) {
    const auto tokens = document(d);
    for (const auto& t : tokens) ++counts[t];
    if (config_.tf_idf) {
      for (const auto& t : std::set<std::string>(tokens.begin(), tokens.end())) ++doc_counts[t];
    }
  }
  if (config_.empty_is_mask) counts.erase(kMask);  // Keras removes its special tokens from the counts
  counts.erase(kOov);
  std::vector<std::pair<std::string, std::int64_t>> sorted(counts.begin(), counts.end());
  // np.lexsort((tokens, counts))[::-1]: the most frequent first, ties by descending bytes
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first > b.first;
  });
  if (config_.max_tokens != -1) {
    const auto keep = static_cast<std::size_t>(std::max<std::int64_t>(0, config_.max_tokens - token_start()));
    if (sorted.size() > keep) sorted.resize(keep);
  }
  std::vector<std::string> tokens;
  std::vector<double> idf;
  for (auto& [token, count] : sorted) {
    if (config_.tf_idf) {
      idf.push_back(std::log(1.0 + static_cast<double>(num_documents) / (1.0 + doc_counts[token])));
    }
    tokens.push_back(std::move(token));
  }
  if (config_.tf_idf) {
    // [UNK]'s weight is the mean of the others (Keras cannot count unknown tokens' documents)
    const double mean = idf.empty() ? 0.0 : std::accumulate(idf.begin(), idf.end(), 0.0) / idf.size();
    idf.insert(idf.begin(), mean);
  }
  set_tokens(std::move(tokens), std::move(idf));
}

void IndexLookup::set_vocabulary(const std::vector<std::string>& vocabulary, const std::vector<double>& idf_weights) {
  const char* op = config_.owner;
  if (config_.tf_idf && idf_weights.empty()) {
    throw ValueError(fmt::format("{}: idf_weights must be set with output_mode \"tf_idf\"", op));
  }
  if (!config_.tf_idf && !idf_weights.empty()) {
    throw ValueError(fmt::format("{}: idf_weights ({} of them) are only for output_mode \"tf_idf\", not \"{}\"", op,
                                 idf_weights.size(), config_.output_mode));
  }
  if (vocabulary.empty()) throw ValueError(fmt::format("{}: cannot set an empty vocabulary", op));
  std::vector<std::string> special;
  if (config_.mask_index) special.push_back(kMask);
  special.push_back(kOov);
  const bool found_special =
      vocabulary.size() >= special.size() && std::equal(special.begin(), special.end(), vocabulary.begin());
  const std::size_t first = found_special ? special.size() : 0;
  std::vector<std::string> tokens(vocabulary.begin() + first, vocabulary.end());
  std::set<std::string> seen;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (!seen.insert(tokens[i]).second) {
      throw ValueError(fmt::format("{}: the vocabulary repeats the token \"{}\"", op, tokens[i]));
    }
    if (config_.empty_is_mask && tokens[i] == kMask) {
      throw ValueError(fmt::format(
          "{}: the vocabulary holds the pad token \"\" at index {}; special tokens may only open it, in this order: {}",
          op, i + first, config_.mask_index ? "\"\", \"[UNK]\"" : "\"[UNK]\""));
    }
  }
  const auto size = static_cast<std::int64_t>(special.size() + tokens.size());
  if (config_.max_tokens != -1 && size > config_.max_tokens) {
    throw ValueError(
        fmt::format("{}: a vocabulary of {} entries (special tokens included) is larger than max_tokens {}", op, size,
                    config_.max_tokens));
  }
  std::vector<double> idf;
  if (config_.tf_idf) {
    if (idf_weights.size() != vocabulary.size()) {
      throw ValueError(fmt::format("{}: idf_weights has {} weights but the vocabulary {} tokens", op,
                                   idf_weights.size(), vocabulary.size()));
    }
    idf = idf_weights;
    if (!found_special) {
      // Keras: [UNK] gets the mean of the weights given
      idf.insert(idf.begin(), std::accumulate(idf.begin(), idf.end(), 0.0) / idf.size());
    }
  }
  set_tokens(std::move(tokens), std::move(idf));
}

void IndexLookup::set_tokens(std::vector<std::string> tokens, std::vector<double> idf) {
  vocabulary_.clear();
  if (config_.mask_index) vocabulary_.push_back(kMask);
  vocabulary_.push_back(kOov);
  vocabulary_.insert(vocabulary_.end(), std::make_move_iterator(tokens.begin()), std::make_move_iterator(tokens.end()));
  index_.clear();
  for (std::size_t i = static_cast<std::size_t>(token_start()); i < vocabulary_.size(); ++i) {
    index_.emplace(vocabulary_[i], static_cast<std::int64_t>(i));
  }
  idf_ = std::move(idf);
  if (config_.tf_idf) idf_.resize(static_cast<std::size_t>(width()), 0.0);  // pad_to_max_tokens: zeros
}

std::vector<std::string> IndexLookup::get_vocabulary(bool include_special_tokens) const {
  if (include_special_tokens || vocabulary_.empty()) return vocabulary_;
  return {vocabulary_.begin() + token_start(), vocabulary_.end()};
}

std::int64_t IndexLookup::width() const {
  return config_.pad_to_max_tokens ? std::max(config_.max_tokens, size()) : size();
}

std::int64_t IndexLookup::lookup(const std::string& token) const {
  if (config_.empty_is_mask && token.empty()) return config_.mask_index ? 0 : -1;
  const auto it = index_.find(token);
  return it == index_.end() ? token_start() - 1 : it->second;
}

void IndexLookup::check_ready() const {
  if (vocabulary_.empty()) {
    throw ValueError(fmt::format("{}: no vocabulary yet: call adapt() or set_vocabulary() first", config_.owner));
  }
}

}  // namespace detail

// ---------------------------------------------------------------- TextVectorization

TextVectorization::TextVectorization(TextVectorizationOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  if (!o.standardize_fn) {
    check_one_of(kOp, "standardize", o.standardize,
                 {"lower_and_strip_punctuation", "lower", "strip_punctuation", "none"});
  }
  if (!o.split_fn) check_one_of(kOp, "split", o.split, {"whitespace", "character", "none"});
  check_one_of(kOp, "output_mode", o.output_mode, {"int", "multi_hot", "binary", "count", "tf_idf"});
  if (options_.output_mode == "binary") options_.output_mode = "multi_hot";
  check_max_tokens(kOp, o.max_tokens, o.pad_to_max_tokens);
  if (o.ngrams < 1) throw ValueError(fmt::format("{}: ngrams must be >= 1, got {}", kOp, o.ngrams));
  if (o.output_sequence_length < -1) {
    throw ValueError(fmt::format("{}: output_sequence_length must be >= 0 (or -1: the longest row), got {}", kOp,
                                 o.output_sequence_length));
  }
  if (o.output_sequence_length != -1 && o.output_mode != "int") {
    throw ValueError(
        fmt::format("{}: output_sequence_length ({}) must not be set when output_mode is \"{}\" (only \"int\")", kOp,
                    o.output_sequence_length, o.output_mode));
  }
  detail::IndexLookupConfig config;
  config.owner = kOp;
  config.output_mode = o.output_mode;
  config.tf_idf = o.output_mode == "tf_idf";
  config.mask_index = o.output_mode == "int";
  config.empty_is_mask = true;  // Keras's TextVectorization passes mask_token="" to its StringLookup
  config.max_tokens = o.max_tokens;
  config.pad_to_max_tokens = o.pad_to_max_tokens;
  lookup_ = detail::IndexLookup(std::move(config));
  if (!o.vocabulary.empty()) {
    set_vocabulary(o.vocabulary, o.idf_weights);
  } else if (!o.idf_weights.empty()) {
    throw ValueError(fmt::format("{}: idf_weights ({} of them) given without a vocabulary", kOp, o.idf_weights.size()));
  }
}

std::vector<std::string> TextVectorization::tokenize(const std::string& text) const {
  std::string s;
  if (options_.standardize_fn) {
    s = options_.standardize_fn(text);
  } else {
    const bool lower = options_.standardize == "lower" || options_.standardize == "lower_and_strip_punctuation";
    const bool strip =
        options_.standardize == "strip_punctuation" || options_.standardize == "lower_and_strip_punctuation";
    s.reserve(text.size());
    for (char c : text) {
      if (strip && kPunctuation.find(c) != std::string_view::npos) continue;
      // tf.strings.lower without an encoding: ASCII letters only, whatever the C locale says
      s += lower ? ascii_lower(c) : c;
    }
  }
  std::vector<std::string> tokens;
  if (options_.split_fn) {
    tokens = options_.split_fn(s);
  } else if (options_.split == "whitespace") {
    tokens = split_whitespace(s);
  } else if (options_.split == "character") {
    tokens = split_characters(s);
  } else {
    tokens.push_back(std::move(s));
  }
  return make_ngrams(tokens, options_.ngrams);
}

void TextVectorization::adapt(const std::vector<std::string>& texts) {
  if (!options_.vocabulary.empty()) {
    throw ValueError(
        fmt::format("{}: cannot adapt after a vocabulary was set in the options (Keras refuses too)", kOp));
  }
  lookup_.adapt(texts.size(), [&](std::size_t i) { return tokenize(texts[i]); });
}

void TextVectorization::set_vocabulary(const std::vector<std::string>& vocabulary,
                                       const std::vector<double>& idf_weights) {
  lookup_.set_vocabulary(vocabulary, idf_weights);
}

std::vector<std::string> TextVectorization::get_vocabulary(bool include_special_tokens) const {
  return lookup_.get_vocabulary(include_special_tokens);
}

Tensor TextVectorization::operator()(const std::vector<std::string>& texts) const {
  lookup_.check_ready();
  const auto batch = static_cast<std::int64_t>(texts.size());
  std::vector<std::vector<std::int64_t>> rows;
  rows.reserve(texts.size());
  for (const auto& text : texts) {
    std::vector<std::int64_t> ids;
    for (const auto& token : tokenize(text)) ids.push_back(lookup_.lookup(token));
    rows.push_back(std::move(ids));
  }
  if (options_.output_mode == "int") {
    std::int64_t length = options_.output_sequence_length;
    if (length == -1) {
      length = 0;
      for (const auto& r : rows) length = std::max<std::int64_t>(length, r.size());
    }
    std::vector<std::int64_t> out(static_cast<std::size_t>(batch * length), 0);
    for (std::int64_t b = 0; b < batch; ++b) {
      const auto& r = rows[b];
      std::copy_n(r.begin(), std::min<std::int64_t>(length, r.size()), out.begin() + b * length);
    }
    return tensor(out, Shape{batch, length}, kInt64);
  }
  const std::int64_t width = lookup_.width();
  std::vector<float> out(static_cast<std::size_t>(batch * width), 0.0f);
  for (std::int64_t b = 0; b < batch; ++b) {
    encode_bag(rows[b], options_.output_mode, lookup_.idf(), out.data() + b * width, width);
  }
  return tensor(out, Shape{batch, width}, kFloat32);
}

// ---------------------------------------------------------------- StringLookup

StringLookup::StringLookup(StringLookupOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  check_one_of(kLookupOp, "output_mode", o.output_mode, {"int", "one_hot", "multi_hot", "count"});
  check_max_tokens(kLookupOp, o.max_tokens, o.pad_to_max_tokens);
  detail::IndexLookupConfig config;
  config.owner = kLookupOp;
  config.output_mode = o.output_mode;
  config.max_tokens = o.max_tokens;
  config.pad_to_max_tokens = o.pad_to_max_tokens;
  lookup_ = detail::IndexLookup(std::move(config));
  if (!o.vocabulary.empty()) set_vocabulary(o.vocabulary);
}

void StringLookup::adapt(const std::vector<std::string>& tokens) {
  lookup_.adapt(1, [&](std::size_t) { return tokens; });
}

void StringLookup::adapt(const std::vector<std::vector<std::string>>& rows) {
  lookup_.adapt(rows.size(), [&](std::size_t i) { return rows[i]; });
}

Tensor StringLookup::operator()(const std::vector<std::string>& tokens) const {
  lookup_.check_ready();
  const auto n = static_cast<std::int64_t>(tokens.size());
  std::vector<std::int64_t> ids;
  for (const auto& t : tokens) ids.push_back(lookup_.lookup(t));
  if (options_.output_mode == "int") return tensor(ids, Shape{n}, kInt64);
  const std::int64_t width = lookup_.width();
  if (options_.output_mode == "one_hot") return one_hot(tensor(ids, Shape{n}, kInt64), width, kFloat32);
  std::vector<float> out(static_cast<std::size_t>(width), 0.0f);
  encode_bag(ids, options_.output_mode, {}, out.data(), width);
  return tensor(out, Shape{width}, kFloat32);
}

Tensor StringLookup::operator()(const std::vector<std::vector<std::string>>& rows) const {
  lookup_.check_ready();
  const auto batch = static_cast<std::int64_t>(rows.size());
  const auto n = rows.empty() ? std::int64_t{0} : static_cast<std::int64_t>(rows[0].size());
  for (std::size_t b = 0; b < rows.size(); ++b) {
    if (static_cast<std::int64_t>(rows[b].size()) != n) {
      throw ShapeError(
          fmt::format("{}: every row must have the same length (as a dense [batch, n] input): row 0 has "
                      "{} tokens, row {} has {}",
                      kLookupOp, n, b, rows[b].size()));
    }
  }
  std::vector<std::int64_t> ids;
  for (const auto& row : rows) {
    for (const auto& t : row) ids.push_back(lookup_.lookup(t));
  }
  const std::int64_t width = lookup_.width();
  if (options_.output_mode == "int") return tensor(ids, Shape{batch, n}, kInt64);
  if (options_.output_mode == "one_hot") {
    // Keras drops a last axis of size 1 first: [batch, 1] -> [batch, width]
    const Shape shape = n == 1 ? Shape{batch} : Shape{batch, n};
    return one_hot(tensor(ids, shape, kInt64), width, kFloat32);
  }
  std::vector<float> out(static_cast<std::size_t>(batch * width), 0.0f);
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::vector<std::int64_t> row(ids.begin() + b * n, ids.begin() + (b + 1) * n);
    encode_bag(row, options_.output_mode, {}, out.data() + b * width, width);
  }
  return tensor(out, Shape{batch, width}, kFloat32);
}

}  // namespace layers

// ================================================================ text_dataset_from_directory
namespace {
const char* const kDirOp = "text_dataset_from_directory";
}  // namespace

TextDataset text_dataset_from_directory(const std::string& directory, const TextDatasetOptions& options) {
  const detail::DirectoryListing files =
      detail::list_directory(kDirOp, directory, detail::directory_settings(options), {".txt"}, ".txt");
  TextDataset ds;
  ds.class_names = files.class_names;
  for (const auto& path : files.paths) {
    std::string text = detail::read_bytes(kDirOp, path);
    if (options.max_length >= 0 && static_cast<std::int64_t>(text.size()) > options.max_length) {
      text.resize(options.max_length);
    }
    ds.texts.push_back(std::move(text));
    ds.file_paths.push_back(path.string());
  }
  ds.labels = detail::directory_labels(files, options.label_mode);
  return ds;
}

}  // namespace tapeflow
