#pragma once
/// Keras's text preprocessing (Deep Learning with Python, chapter 11): TextVectorization and
/// StringLookup turn std::string inputs into token indices or bag-of-words vectors, and
/// text_dataset_from_directory reads a folder of .txt files, one subfolder per class.
///
/// Tensors have no string dtype, so these are preprocessing classes called on
/// std::vector<std::string> outside a model, not Layers inside one (Keras's book code maps the
/// layer over a tf.data dataset before training, which amounts to the same):
///
///     auto train = text_dataset_from_directory("aclImdb/train", o);   // o.subset = "training"...
///     layers::TextVectorizationOptions tvo;
///     tvo.max_tokens = 20000;
///     tvo.output_mode = "multi_hot";
///     layers::TextVectorization vectorize(tvo);
///     vectorize.adapt(train.texts);
///     model.fit(vectorize(train.texts), train.labels, fit_options);
///
/// Strings are byte strings, taken as UTF-8 where it matters (character splitting); as Keras's
/// TensorFlow ops, lowercasing changes ASCII letters only ("ÉLAN" -> "Élan") and punctuation
/// stripping removes ASCII punctuation only; every other byte is kept as is.
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tapeflow/tensor.hpp"

namespace tapeflow {
namespace layers {

namespace detail {

/// How an IndexLookup treats its tokens (set by its owner).
struct IndexLookupConfig {
  const char* owner = "";      // the class named in errors
  std::string output_mode;     // named in errors
  bool tf_idf = false;         // keeps idf weights
  bool mask_index = false;     // the pad "" is index 0, before [UNK]
  bool empty_is_mask = false;  // "" is never learnt and looks up as 0 (mask_index) or as no index (-1)
  std::int64_t max_tokens = -1;
  bool pad_to_max_tokens = false;
};

/// Keras's IndexLookup, the vocabulary behind TextVectorization and StringLookup: the special
/// tokens ("" with mask_index, then "[UNK]"), then the learnt or given tokens.
class IndexLookup {
 public:
  IndexLookup() = default;
  explicit IndexLookup(IndexLookupConfig config) : config_(std::move(config)) {}
  /// Keras's adapt over documents 0 .. num_documents - 1 (document(i) gives one's tokens).
  void adapt(std::size_t num_documents, const std::function<std::vector<std::string>(std::size_t)>& document);
  /// Keras's set_vocabulary (see TextVectorization::set_vocabulary).
  void set_vocabulary(const std::vector<std::string>& vocabulary, const std::vector<double>& idf_weights);
  /// A token's index: [UNK]'s when unknown, -1 for a mask that has no index.
  std::int64_t lookup(const std::string& token) const;
  std::vector<std::string> get_vocabulary(bool include_special_tokens) const;
  std::int64_t size() const { return static_cast<std::int64_t>(vocabulary_.size()); }
  /// The columns of a bag-of-tokens output: size(), or max_tokens with pad_to_max_tokens.
  std::int64_t width() const;
  /// tf_idf: width() weights; otherwise empty.
  const std::vector<double>& idf() const { return idf_; }
  /// ValueError naming the owner before adapt() or a vocabulary.
  void check_ready() const;

 private:
  std::int64_t token_start() const { return config_.mask_index ? 2 : 1; }
  void set_tokens(std::vector<std::string> tokens, std::vector<double> idf);

  IndexLookupConfig config_;
  std::vector<std::string> vocabulary_;  // special tokens first
  std::unordered_map<std::string, std::int64_t> index_;
  std::vector<double> idf_;
};

}  // namespace detail

/// TextVectorization's settings; their defaults are Keras's.
struct TextVectorizationOptions {
  /// The largest vocabulary adapt() keeps, special tokens included (in "int" mode the pad ""
  /// and "[UNK]", otherwise "[UNK]" alone), as Keras; -1: no limit. Keras's rule: > 1 if set.
  std::int64_t max_tokens = -1;
  /// "lower_and_strip_punctuation", "lower", "strip_punctuation" or "none" (Keras's None).
  /// Punctuation is Keras's regex [!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~'], every ASCII
  /// punctuation character.
  std::string standardize = "lower_and_strip_punctuation";
  /// A custom standardization (Keras's callable), applied to each whole text instead of
  /// `standardize` (Keras's callable gets a tensor of strings; this one gets one string).
  std::function<std::string(const std::string&)> standardize_fn;
  /// "whitespace" (runs of ASCII spaces, tabs, newlines, \v, \f and \r separate tokens; as
  /// TensorFlow's tf.strings.split), "character" (UTF-8 characters) or "none" (the whole
  /// standardized text is one token).
  std::string split = "whitespace";
  /// A custom split (Keras's callable), used instead of `split`.
  std::function<std::vector<std::string>(const std::string&)> split_fn;
  /// N > 1: the tokens are every 1-, 2-, ..., N-gram of the split tokens, joined with a space,
  /// all unigrams first, then all bigrams... (Keras's ngrams=N; its tuple form is not offered).
  std::int64_t ngrams = 1;
  /// "int" (token indices, int64 [batch, length]) or "multi_hot" ("binary" is the same),
  /// "count" or "tf_idf" (float32 [batch, vocabulary]). Keras's "one_hot" is not offered.
  std::string output_mode = "int";
  /// "int" mode only: pad with 0 or truncate every row to this length (Keras's
  /// output_sequence_length); -1: pad to the longest row of the batch (Keras's None).
  std::int64_t output_sequence_length = -1;
  /// Non-"int" modes with max_tokens set: outputs (and idf weights) are max_tokens wide even
  /// when the vocabulary is smaller.
  bool pad_to_max_tokens = false;
  /// A preset vocabulary, as set_vocabulary(vocabulary, idf_weights); empty: call adapt().
  std::vector<std::string> vocabulary;
  std::vector<double> idf_weights;
};

/// Keras 3's keras.layers.TextVectorization: standardize, split, make n-grams, then look the
/// tokens up in a vocabulary learnt by adapt() or set by set_vocabulary().
///
/// In "int" mode index 0 is the pad token "" and 1 is "[UNK]", every unknown token; in the
/// other modes index 0 is "[UNK]". adapt() orders the vocabulary by frequency, ties by the
/// token's bytes in *descending* order (Keras's np.lexsort(...)[::-1]), then keeps the first
/// max_tokens. ValueError naming the option and its value for a bad option, as Keras checks
/// them: an unknown standardize, split or output_mode, max_tokens <= 1 (but -1), ngrams < 1,
/// output_sequence_length < -1 or set outside "int" mode, pad_to_max_tokens without
/// max_tokens.
///
/// Where we differ from Keras 3.15: multi_hot and count outputs are float32, like tf_idf's
/// (Keras's TensorFlow backend gives int64), so they feed a Dense as they are; calling the
/// vectorizer before adapt() or a vocabulary is a ValueError (Keras outputs only [UNK] / pad
/// indices); with split "none", "int" outputs are [batch, 1] (Keras: [batch]); invalid UTF-8
/// bytes are single characters for split "character" (TensorFlow replaces them with U+FFFD);
/// no one_hot mode, ragged or sparse outputs, or vocabulary files.
class TextVectorization {
 public:
  /// ValueError for a bad option (see above) or a bad preset vocabulary (as set_vocabulary).
  explicit TextVectorization(TextVectorizationOptions options = {});

  /// Learns the vocabulary from `texts` (Keras's adapt on a list of strings), replacing the
  /// current one. tf_idf also learns idf = log(1 + num_texts / (1 + texts holding the token))
  /// per token, and gives [UNK] the mean of those weights, as Keras. Tokens equal to "" or
  /// "[UNK]" are not counted. ValueError when a vocabulary was preset in the options (Keras).
  void adapt(const std::vector<std::string>& texts);

  /// Int mode: int64 [batch, length], each row's token indices padded with 0 (or truncated);
  /// other modes: float32 [batch, width], width = vocabulary_size() (max_tokens with
  /// pad_to_max_tokens): multi_hot 1 for every index present, count its count, tf_idf its
  /// count times its idf weight. A token "" (from split "none" or a custom split) is the pad 0
  /// in int mode and counts nowhere in the others, as Keras's mask token. ValueError naming
  /// TextVectorization without a vocabulary.
  Tensor operator()(const std::vector<std::string>& texts) const;

  /// The tokens a text becomes before the lookup (standardized, split, n-grams): what adapt()
  /// counts.
  std::vector<std::string> tokenize(const std::string& text) const;

  /// The vocabulary, index order, special tokens first ("", "[UNK]" in int mode; "[UNK]"
  /// otherwise); without them when include_special_tokens is false.
  std::vector<std::string> get_vocabulary(bool include_special_tokens = true) const;
  /// Sets the vocabulary, as Keras: special tokens at its start in the mode's order are taken
  /// as such, otherwise they are added in front. tf_idf needs idf_weights of the vocabulary's
  /// length (without special tokens, [UNK] gets their mean); other modes refuse them.
  /// ValueError for an empty vocabulary, a repeated token, a "" elsewhere than at the start,
  /// more than max_tokens entries, or idf weights missing, unexpected or of another length.
  void set_vocabulary(const std::vector<std::string>& vocabulary, const std::vector<double>& idf_weights = {});
  /// The vocabulary's size, special tokens included (0 before adapt() or a vocabulary).
  std::int64_t vocabulary_size() const { return lookup_.size(); }
  /// tf_idf: the weight of each output column (vocabulary_size() or max_tokens long);
  /// empty in the other modes.
  const std::vector<double>& idf_weights() const { return lookup_.idf(); }
  const TextVectorizationOptions& options() const { return options_; }

 private:
  TextVectorizationOptions options_;
  detail::IndexLookup lookup_;
};

/// StringLookup's settings; their defaults are Keras's.
struct StringLookupOptions {
  /// The largest vocabulary adapt() keeps, "[UNK]" included; -1: no limit (> 1 if set).
  std::int64_t max_tokens = -1;
  /// "int" (indices, int64), "one_hot", "multi_hot" or "count" (float32); see operator().
  std::string output_mode = "int";
  /// Non-"int" modes with max_tokens set: max_tokens columns even for a smaller vocabulary.
  bool pad_to_max_tokens = false;
  /// A preset vocabulary, as set_vocabulary(); empty: call adapt().
  std::vector<std::string> vocabulary;
};

/// Keras 3's keras.layers.StringLookup with its defaults num_oov_indices=1, mask_token=None,
/// oov_token="[UNK]" and invert=False: index 0 is "[UNK]", every unknown token (and "", unless
/// the vocabulary holds it), the vocabulary's tokens follow from 1. adapt() orders by count,
/// ties by descending bytes, as TextVectorization. ValueError naming StringLookup for an
/// unknown output_mode, max_tokens <= 1 (but -1), pad_to_max_tokens without max_tokens, a call
/// before adapt() or a vocabulary, and a bad vocabulary (as TextVectorization::set_vocabulary).
///
/// Where we differ from Keras 3.15: multi_hot, count and one_hot outputs are float32 (Keras's
/// TensorFlow backend gives int64); no tf_idf mode, invert, other mask / OOV settings or
/// vocabulary files; inputs are one list of tokens or a batch of equal-length rows (Keras: any
/// dense or ragged string tensor).
class StringLookup {
 public:
  explicit StringLookup(StringLookupOptions options = {});

  /// Learns the vocabulary from tokens (Keras's adapt on a list of strings), replacing it.
  void adapt(const std::vector<std::string>& tokens);
  /// The same, over rows of tokens.
  void adapt(const std::vector<std::vector<std::string>>& rows);

  /// tokens [n]: int -> int64 [n]; one_hot -> float32 [n, width]; multi_hot and count ->
  /// float32 [width], the tokens taken as one sample (as Keras encodes a rank-1 input).
  /// width = vocabulary_size(), or max_tokens with pad_to_max_tokens.
  Tensor operator()(const std::vector<std::string>& tokens) const;
  /// rows [batch, n] (ShapeError naming StringLookup unless every row has n tokens): int ->
  /// int64 [batch, n]; one_hot -> float32 [batch, n, width] ([batch, width] when n is 1, as
  /// Keras); multi_hot and count -> float32 [batch, width].
  Tensor operator()(const std::vector<std::vector<std::string>>& rows) const;

  /// The vocabulary in index order, "[UNK]" first unless include_special_tokens is false.
  std::vector<std::string> get_vocabulary(bool include_special_tokens = true) const {
    return lookup_.get_vocabulary(include_special_tokens);
  }
  /// As Keras: a leading "[UNK]" is taken as the OOV token, otherwise it is added in front.
  void set_vocabulary(const std::vector<std::string>& vocabulary) { lookup_.set_vocabulary(vocabulary, {}); }
  std::int64_t vocabulary_size() const { return lookup_.size(); }

 private:
  StringLookupOptions options_;
  detail::IndexLookup lookup_;
};

}  // namespace layers

/// text_dataset_from_directory's settings; their defaults are Keras's (but for seed).
struct TextDatasetOptions {
  /// "int" (labels int32 [n]), "categorical" (float32 one-hot [n, classes]), "binary"
  /// (float32 [n, 1], exactly two classes) or "none" (no labels: an undefined Tensor).
  std::string label_mode = "int";
  /// The classes, in label order: a subset of the subdirectories (Keras's class_names);
  /// empty: every subdirectory not starting with '.', sorted by name.
  std::vector<std::string> class_names;
  /// Shuffle the files (before any split) with a permutation drawn from seed.
  bool shuffle = true;
  std::uint64_t seed = 0;
  /// The fraction of the files (after shuffling) kept for validation: the last
  /// int(validation_split * n) ones. 0: no split. Needs subset, as Keras.
  double validation_split = 0;
  /// "training" or "validation" with validation_split; empty otherwise.
  std::string subset;
  /// Keep at most this many bytes of each text; -1: all.
  std::int64_t max_length = -1;
};

/// The examples text_dataset_from_directory read, in their (shuffled) order.
struct TextDataset {
  std::vector<std::string> texts;
  /// As label_mode says; undefined with "none".
  Tensor labels;
  std::vector<std::string> class_names;
  /// Where each text came from.
  std::vector<std::string> file_paths;
};

/// Keras's keras.utils.text_dataset_from_directory with labels="inferred": every file whose
/// name ends in ".txt" (any case) under a class subdirectory, at any depth, is one example of
/// that class, read as raw bytes. Files are listed class by class, each class's by folder then
/// file name (as Keras), then shuffled and split.
///
///     TextDatasetOptions o;
///     o.validation_split = 0.2;
///     o.subset = "training";
///     o.seed = 1337;
///     TextDataset train = text_dataset_from_directory("aclImdb/train", o);
///     o.subset = "validation";
///     TextDataset val = text_dataset_from_directory("aclImdb/train", o);  // the other 20%
///
/// IOError naming the path for a directory that does not exist or a file that cannot be read;
/// ValueError naming it when it holds no class subdirectory or no .txt file, and for bad
/// options (named with their value), as Keras: label_mode, validation_split outside (0, 1),
/// subset without validation_split or the reverse, class_names not among the
/// subdirectories, "binary" without exactly two classes.
///
/// Where we differ from Keras 3.15: the whole dataset comes back in memory, not as a batched
/// tf.data.Dataset (batch it with BatchIterator or ArrayDataset after vectorizing); the
/// shuffle is tapeflow's seeded permutation (random_permutation), not NumPy's, so the order
/// differs from Keras's for the same seed, and it is drawn once (Keras's tf.data also
/// reshuffles the training files every epoch); seed has a default (Keras draws a random one
/// and requires it with validation_split and shuffle); when int(validation_split * n) is 0
/// the training subset has every file and the validation subset none (Keras's slicing gives
/// the reverse); no subset "both", explicit labels lists or follow_links.
TextDataset text_dataset_from_directory(const std::string& directory, const TextDatasetOptions& options = {});

}  // namespace tapeflow
