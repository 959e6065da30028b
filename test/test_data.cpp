// BatchIterator, random_permutation and train_validation_split: every example once per epoch,
// x and y rows kept together, seeded orders, partial batches, errors. Text preprocessing
// (TextVectorization, text_dataset_from_directory), tagged [text]. Image loading and resizing
// (load_img, image_dataset_from_directory, Resizing, CenterCrop), tagged [image].
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "golden/image_golden.hpp"
#include "golden/text_golden.hpp"
#include "layer_test_util.hpp"
#include "tapeflow/autodiff.hpp"
#include "tapeflow/core.hpp"
#include "tapeflow/data.hpp"
#include "tapeflow/image.hpp"
#include "tapeflow/model.hpp"
#include "tapeflow/text.hpp"
#include "temp_dir.hpp"

using namespace tapeflow;

namespace {

using Ids = std::vector<std::int64_t>;

// x row i is [10 i, 10 i + 1, 10 i + 2]; y = arange(n): a batch's y names the rows its x holds.
Tensor rows_of(std::int64_t n) { return (arange(n, kInt64) * 10).reshape({n, 1}) + arange(3, kInt64); }

// The y values of each batch of one epoch, checking that every x row matches its y.
std::vector<Ids> one_epoch(BatchIterator& batches) {
  std::vector<Ids> out;
  for (auto [xb, yb] : batches) {
    REQUIRE(xb.rank() == 2);
    REQUIRE(xb.dim(0) == yb.dim(0));
    const Ids ids = yb.to_vector<std::int64_t>();
    const Ids xs = xb.to_vector<std::int64_t>();
    for (std::size_t k = 0; k < ids.size(); ++k) {
      INFO("row " << k << " of a batch");
      CHECK(xs[3 * k] == 10 * ids[k]);
      CHECK(xs[3 * k + 2] == 10 * ids[k] + 2);
    }
    out.push_back(ids);
  }
  return out;
}

Ids flat(const std::vector<Ids>& batches) {
  Ids out;
  for (const auto& b : batches) out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::vector<std::size_t> sizes(const std::vector<Ids>& batches) {
  std::vector<std::size_t> out;
  for (const auto& b : batches) out.push_back(b.size());
  return out;
}

Ids iota_ids(std::int64_t n) {
  Ids out(static_cast<std::size_t>(n));
  std::iota(out.begin(), out.end(), std::int64_t{0});
  return out;
}

bool is_permutation_of_n(Ids v) {
  std::sort(v.begin(), v.end());
  return v == iota_ids(static_cast<std::int64_t>(v.size()));
}

}  // namespace

TEST_CASE("BatchIterator: in order, every example once, views of x and y", "[data]") {
  const std::int64_t n = 10;
  const Tensor x = rows_of(n), y = arange(n, kInt64);
  BatchIterator batches(x, y, 3);
  CHECK(batches.size() == 4);
  CHECK(batches.num_examples() == 10);
  CHECK(batches.batch_size() == 3);

  const auto epoch = one_epoch(batches);
  CHECK(sizes(epoch) == std::vector<std::size_t>{3, 3, 3, 1});
  CHECK(flat(epoch) == iota_ids(n));
  CHECK(one_epoch(batches) == epoch);  // no shuffling: every epoch alike

  // Without shuffling a batch is a view: it shares x's and y's storage.
  auto [xb, yb] = *std::next(batches.begin(), 2);
  CHECK(xb.storage() == x.storage());
  CHECK(yb.storage() == y.storage());
  CHECK(xb.shape() == Shape{3, 3});
  CHECK(yb.to_vector<std::int64_t>() == Ids{6, 7, 8});
  CHECK(batches.order(0).to_vector<std::int64_t>() == iota_ids(n));
}

TEST_CASE("BatchIterator: partial last batch kept or dropped", "[data]") {
  const Tensor x = rows_of(10), y = arange(10, kInt64);
  BatchOptions drop;
  drop.drop_remainder = true;

  BatchIterator dropped(x, y, 3, drop);
  CHECK(dropped.size() == 3);
  const auto epoch = one_epoch(dropped);
  CHECK(sizes(epoch) == std::vector<std::size_t>{3, 3, 3});
  CHECK(flat(epoch) == Ids{0, 1, 2, 3, 4, 5, 6, 7, 8});

  // Shuffled with drop_remainder: 9 different examples, a different one left out per epoch.
  drop.shuffle = true;
  drop.seed = 5;
  BatchIterator shuffled(x, y, 3, drop);
  std::set<std::int64_t> left_out;
  for (int e = 0; e < 8; ++e) {
    Ids ids = flat(one_epoch(shuffled));
    REQUIRE(ids.size() == 9);
    std::sort(ids.begin(), ids.end());
    CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
    std::int64_t missing = 45;  // 0 + 1 + ... + 9
    for (auto i : ids) missing -= i;
    left_out.insert(missing);
  }
  CHECK(left_out.size() > 1);

  // Exact multiples have no partial batch either way.
  CHECK(BatchIterator(rows_of(9), arange(9, kInt64), 3).size() == 3);
  CHECK(BatchIterator(rows_of(9), arange(9, kInt64), 3, drop).size() == 3);
  // A batch larger than the data: one short batch, or none when dropped.
  BatchIterator big(x, y, 64);
  CHECK(big.size() == 1);
  CHECK(sizes(one_epoch(big)) == std::vector<std::size_t>{10});
  BatchIterator big_dropped(x, y, 64, drop);
  CHECK(big_dropped.size() == 0);
  CHECK(big_dropped.begin() == big_dropped.end());
  // No examples: no batches.
  BatchIterator none_at_all(empty({0, 3}, kInt64), empty({0}, kInt64), 4, drop);
  CHECK(none_at_all.size() == 0);
  CHECK(one_epoch(none_at_all).empty());
}

TEST_CASE("BatchIterator: a batch_size near INT64_MAX gives one batch, without overflow", "[data]") {
  // size() was (n + batch_size - 1) / batch_size and make_batch used start + batch_size:
  // both overflow here. Keras gives one batch of every example.
  const Tensor x = rows_of(10), y = arange(10, kInt64);
  const std::int64_t huge = std::numeric_limits<std::int64_t>::max();
  for (std::int64_t batch_size : {huge, huge - 2}) {
    BatchIterator batches(x, y, batch_size);
    CHECK(batches.size() == 1);
    const auto epoch = one_epoch(batches);
    CHECK(sizes(epoch) == std::vector<std::size_t>{10});
    CHECK(flat(epoch) == iota_ids(10));
  }
  BatchOptions shuffled;
  shuffled.shuffle = true;
  BatchIterator batches(x, y, huge, shuffled);
  const auto epoch = one_epoch(batches);
  REQUIRE(epoch.size() == 1);
  CHECK(is_permutation_of_n(epoch[0]));
  BatchOptions drop;
  drop.drop_remainder = true;
  CHECK(BatchIterator(x, y, huge, drop).size() == 0);
}

TEST_CASE("BatchIterator: shuffling covers every example once and keeps x and y paired", "[data]") {
  const std::int64_t n = 103;
  const Tensor x = rows_of(n), y = arange(n, kInt64);
  BatchIterator batches(x, y, 16, {/*shuffle=*/true, /*seed=*/1});
  CHECK(batches.size() == 7);
  std::vector<Ids> orders;
  for (int e = 0; e < 4; ++e) {
    CHECK(batches.epoch() == e);
    const auto epoch = one_epoch(batches);  // checks every x row against its y
    CHECK(sizes(epoch) == std::vector<std::size_t>{16, 16, 16, 16, 16, 16, 7});
    const Ids ids = flat(epoch);
    CHECK(is_permutation_of_n(ids));
    CHECK(ids != iota_ids(n));
    // The order begin() drew is order(epoch).
    CHECK(ids == batches.order(e).to_vector<std::int64_t>());
    orders.push_back(ids);
  }
  // Each epoch a new order.
  for (std::size_t a = 0; a < orders.size(); ++a)
    for (std::size_t b = a + 1; b < orders.size(); ++b) CHECK(orders[a] != orders[b]);
}

TEST_CASE("BatchIterator: the order depends only on the seed and the epoch", "[data]") {
  const std::int64_t n = 50;
  const Tensor x = rows_of(n), y = arange(n, kInt64);
  BatchOptions opts;
  opts.shuffle = true;
  opts.seed = 42;
  BatchIterator a(x, y, 8, opts), b(x, y, 8, opts);
  for (int e = 0; e < 3; ++e) CHECK(flat(one_epoch(a)) == flat(one_epoch(b)));

  opts.seed = 43;
  BatchIterator other_seed(x, y, 8, opts);
  CHECK(flat(one_epoch(other_seed)) != BatchIterator(x, y, 8, {true, 42}).order(0).to_vector<std::int64_t>());

  // A fresh iterator started at epoch 2 (options or set_epoch) replays epoch 2.
  BatchIterator at_two(x, y, 8, {true, 42, false, 2});
  CHECK(flat(one_epoch(at_two)) == a.order(2).to_vector<std::int64_t>());
  BatchIterator reset(x, y, 8, {true, 42});
  reset.set_epoch(2);
  CHECK(flat(one_epoch(reset)) == a.order(2).to_vector<std::int64_t>());
  CHECK(reset.epoch() == 3);

  // The batch size does not change the order, only how it is cut.
  BatchIterator sevens(x, y, 7, {true, 42});
  CHECK(flat(one_epoch(sevens)) == BatchIterator(x, y, 8, {true, 42}).order(0).to_vector<std::int64_t>());
}

TEST_CASE("BatchIterator: range-for over a temporary with structured bindings", "[data]") {
  const Tensor x = arange(0, 20, 1, kFloat32).reshape({10, 2}), y = arange(10, kInt64);
  Ids seen;
  std::int64_t count = 0;
  for (auto [xb, yb] : BatchIterator(x, y, 4, {true, 7})) {
    ++count;
    const auto xs = xb.to_vector<float>();
    const auto ys = yb.to_vector<std::int64_t>();
    for (std::size_t k = 0; k < ys.size(); ++k) CHECK(xs[2 * k] == 2.0f * float(ys[k]));
    seen.insert(seen.end(), ys.begin(), ys.end());
  }
  CHECK(count == 3);
  CHECK(is_permutation_of_n(seen));

  // Without y: batches of x alone.
  std::int64_t rows = 0;
  for (const Batch& batch : BatchIterator(x, Tensor(), 4)) {
    CHECK_FALSE(batch.y.defined());
    rows += batch.x.dim(0);
  }
  CHECK(rows == 10);
}

TEST_CASE("BatchIterator: an iterator outlives its BatchIterator (it holds handles, not a pointer)", "[data]") {
  const Tensor x = arange(10, kFloat32).reshape({5, 2}), y = arange(5, kInt64);
  BatchIterator::iterator it, last;
  {
    BatchIterator shuffled(x, y, 2, {true, 4});
    const Tensor order = shuffled.order(0);
    it = shuffled.begin();
    last = shuffled.end();
    // the batches read after the BatchIterator is gone are the epoch's first ones
    const auto rows = order.to_vector<std::int64_t>();
    auto [xb, yb] = *it;
    CHECK(yb.to_vector<std::int64_t>() == std::vector<std::int64_t>{rows[0], rows[1]});
  }
  int batches = 0;
  std::vector<std::int64_t> seen;
  for (; it != last; ++it, ++batches) {
    const Batch b = *it;
    for (auto v : b.y.to_vector<std::int64_t>()) seen.push_back(v);
    CHECK(b.x.shape()[1] == 2);
  }
  CHECK(batches == 3);
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::int64_t>{0, 1, 2, 3, 4});
  CHECK_THROWS_AS(*it, IndexError);  // end
  CHECK_THROWS_AS(*BatchIterator::iterator(), IndexError);  // default-constructed
}

TEST_CASE("BatchIterator: bad arguments", "[data]") {
  const Tensor x = rows_of(10), y = arange(10, kInt64);
  CHECK_THROWS_AS(BatchIterator(x, arange(9, kInt64), 4), ShapeError);
  CHECK_THROWS_WITH(BatchIterator(x, arange(9, kInt64), 4),
                    "BatchIterator: x has 10 examples (shape [10, 3]) but y has 9 (shape [9])");
  CHECK_THROWS_AS(BatchIterator(scalar(1.0), Tensor(), 4), ShapeError);
  CHECK_THROWS_AS(BatchIterator(x, scalar(1.0), 4), ShapeError);
  CHECK_THROWS_AS(BatchIterator(Tensor(), y, 4), ValueError);
  CHECK_THROWS_AS(BatchIterator(x, y, 0), ValueError);
  CHECK_THROWS_WITH(BatchIterator(x, y, -3), "BatchIterator: batch_size must be positive, got -3");
  CHECK_THROWS_AS(BatchIterator(x, y, 4, {false, 0, false, -1}), ValueError);
  BatchIterator ok(x, y, 4);
  CHECK_THROWS_AS(ok.set_epoch(-1), ValueError);
  CHECK_THROWS_AS(*ok.end(), IndexError);
}

TEST_CASE("random_permutation: Fisher-Yates on Philox, seeded and uniform", "[data]") {
  for (std::int64_t n : {0, 1, 2, 5, 1000}) {
    Generator gen(3);
    const Tensor p = random_permutation(n, gen);
    CHECK(p.dtype() == kInt64);
    CHECK(p.shape() == Shape{n});
    CHECK(is_permutation_of_n(p.to_vector<std::int64_t>()));
    CHECK(gen.offset() == static_cast<std::uint64_t>(n));  // n counters used
  }
  Generator a(9), b(9), c(10);
  const Ids pa = random_permutation(1000, a).to_vector<std::int64_t>();
  CHECK(pa == random_permutation(1000, b).to_vector<std::int64_t>());
  CHECK(pa != random_permutation(1000, c).to_vector<std::int64_t>());
  CHECK(pa != random_permutation(1000, a).to_vector<std::int64_t>());  // the offset moved on

  // All 6 orders of 3 items about equally often: 60000 draws, 10000 expected each, sigma 91.
  // The classic bug "swap with any j in [0, n)" gives 27 equally likely paths onto 6 orders,
  // 4/27 or 5/27 each (8889 or 11111 draws): a band of 5 sigma (+-460) tells them apart.
  std::map<Ids, int> counts;
  Generator gen(2024);
  for (int i = 0; i < 60000; ++i) ++counts[random_permutation(3, gen).to_vector<std::int64_t>()];
  CHECK(counts.size() == 6);
  for (const auto& [perm, count] : counts) {
    INFO("[" << perm[0] << ", " << perm[1] << ", " << perm[2] << "] drawn " << count << " times");
    CHECK(std::abs(count - 10000) < 460);
  }
  // Every item lands in every position about equally often (n = 10, 10000 draws, 1000
  // expected per cell, sigma 30).
  std::vector<std::vector<int>> where(10, std::vector<int>(10, 0));
  for (int i = 0; i < 10000; ++i) {
    const Ids p = random_permutation(10, gen).to_vector<std::int64_t>();
    for (int k = 0; k < 10; ++k) ++where[static_cast<std::size_t>(p[static_cast<std::size_t>(k)])][static_cast<std::size_t>(k)];
  }
  for (const auto& row : where)
    for (int count : row) CHECK(std::abs(count - 1000) < 190);

  Generator g(0);
  CHECK_THROWS_AS(random_permutation(-1, g), ValueError);
}

TEST_CASE("train_validation_split: the last fraction, as Keras's validation_split", "[data]") {
  const Tensor x = rows_of(10), y = arange(10, kInt64);
  {
    auto [x_train, y_train, x_val, y_val] = train_validation_split(x, y, 0.2);
    CHECK(x_train.shape() == Shape{8, 3});
    CHECK(x_val.shape() == Shape{2, 3});
    CHECK(y_train.to_vector<std::int64_t>() == Ids{0, 1, 2, 3, 4, 5, 6, 7});
    CHECK(y_val.to_vector<std::int64_t>() == Ids{8, 9});
    CHECK(x_val.to_vector<std::int64_t>() == Ids{80, 81, 82, 90, 91, 92});
    // Views, no copies.
    CHECK(x_train.storage() == x.storage());
    CHECK(y_val.storage() == y.storage());
  }
  // Keras splits at floor(n * (1 - fraction)): 10 * 0.75 = 7.5 -> 7 training examples.
  const auto split = train_validation_split(x, y, 0.25);
  CHECK(split.x_train.dim(0) == 7);
  CHECK(split.y_val.to_vector<std::int64_t>() == Ids{7, 8, 9});
  // Without y.
  const auto x_only = train_validation_split(x, Tensor(), 0.5);
  CHECK(x_only.x_train.dim(0) == 5);
  CHECK(x_only.x_val.dim(0) == 5);
  CHECK_FALSE(x_only.y_train.defined());
  CHECK_FALSE(x_only.y_val.defined());

  for (double bad : {0.0, 1.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    INFO("fraction " << bad);
    CHECK_THROWS_AS(train_validation_split(x, y, bad), ValueError);
  }
  CHECK_THROWS_WITH(train_validation_split(x, y, 0.95), Catch::Contains("10 examples are too few"));
  CHECK_THROWS_AS(train_validation_split(rows_of(1), arange(1, kInt64), 0.5), ValueError);
  CHECK_THROWS_AS(train_validation_split(x, arange(9, kInt64), 0.2), ShapeError);
}

// ================================================================ text preprocessing [text]
// TextVectorization against Keras 3.15's outputs (test/golden/text_golden.py), hand-worked
// cases, errors; text_dataset_from_directory on a folder made here.

namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;
using layers::TextVectorization;
using layers::TextVectorizationOptions;

template <std::size_t N>
Strings strings_of(const char* const (&a)[N]) {
  return Strings(std::begin(a), std::end(a));
}

template <std::size_t R>
void check_shape(const Tensor& y, const std::int64_t (&shape)[R]) {
  REQUIRE(y.rank() == static_cast<std::int64_t>(R));
  for (std::size_t i = 0; i < R; ++i) REQUIRE(y.dim(i) == shape[i]);
}

template <std::size_t R, std::size_t N>
void check_out(const Tensor& y, const std::int64_t (&shape)[R], const std::int64_t (&values)[N]) {
  REQUIRE(y.dtype() == kInt64);
  check_shape(y, shape);
  CHECK(y.to_vector<std::int64_t>() == std::vector<std::int64_t>(std::begin(values), std::end(values)));
}

template <std::size_t R, std::size_t N>
void check_out(const Tensor& y, const std::int64_t (&shape)[R], const double (&values)[N]) {
  REQUIRE(y.dtype() == kFloat32);
  check_shape(y, shape);
  const auto got = y.to_vector<float>();
  REQUIRE(got.size() == N);
  for (std::size_t i = 0; i < N; ++i) CHECK(got[i] == Approx(values[i]).margin(1e-6));
}

// Adapts a vectorizer with `o` on the golden corpus and checks its vocabulary and its output on
// `texts` (the golden batch by default) against Keras's; returns it for more checks.
template <std::size_t V, std::size_t R, std::size_t N, class T>
TextVectorization check_golden(const TextVectorizationOptions& o, const char* const (&vocab)[V],
                               const std::int64_t (&shape)[R], const T (&out)[N],
                               const Strings& texts = strings_of(text_golden::kBatch)) {
  TextVectorization tv(o);
  tv.adapt(strings_of(text_golden::kCorpus));
  CHECK(tv.get_vocabulary() == strings_of(vocab));
  check_out(tv(texts), shape, out);
  return tv;
}

TextVectorizationOptions mode(const char* output_mode, std::int64_t max_tokens = -1, bool pad = false) {
  TextVectorizationOptions o;
  o.output_mode = output_mode;
  o.max_tokens = max_tokens;
  o.pad_to_max_tokens = pad;
  return o;
}

}  // namespace

TEST_CASE("TextVectorization: int mode matches Keras (vocabulary, padding, truncation, max_tokens)", "[text]") {
  namespace g = text_golden;
  TextVectorizationOptions o;
  const auto tv = check_golden(o, g::kIntVocab, g::kIntOutShape, g::kIntOut);
  CHECK(tv.vocabulary_size() == static_cast<std::int64_t>(std::size(g::kIntVocab)));
  o.output_sequence_length = 4;
  check_golden(o, g::kIntLen4Vocab, g::kIntLen4OutShape, g::kIntLen4Out);
  o.output_sequence_length = 8;
  check_golden(o, g::kIntLen8Vocab, g::kIntLen8OutShape, g::kIntLen8Out);
  o = TextVectorizationOptions();
  o.max_tokens = 6;
  check_golden(o, g::kIntMax6Vocab, g::kIntMax6OutShape, g::kIntMax6Out);
}

TEST_CASE("TextVectorization: n-grams, standardize and split variants match Keras", "[text]") {
  namespace g = text_golden;
  TextVectorizationOptions o;
  o.ngrams = 2;
  check_golden(o, g::kIntBigramsVocab, g::kIntBigramsOutShape, g::kIntBigramsOut);
  o.ngrams = 3;
  o.output_sequence_length = 6;
  check_golden(o, g::kIntTrigramsLen6Vocab, g::kIntTrigramsLen6OutShape, g::kIntTrigramsLen6Out);
  o = TextVectorizationOptions();
  o.standardize = "lower";
  check_golden(o, g::kLowerVocab, g::kLowerOutShape, g::kLowerOut);
  o.standardize = "strip_punctuation";
  check_golden(o, g::kStripPunctVocab, g::kStripPunctOutShape, g::kStripPunctOut);
  o.standardize = "none";
  check_golden(o, g::kNoStandardizeVocab, g::kNoStandardizeOutShape, g::kNoStandardizeOut);
  o = TextVectorizationOptions();
  o.split = "character";
  check_golden(o, g::kCharsVocab, g::kCharsOutShape, g::kCharsOut, strings_of(g::kCharsIn));
}

TEST_CASE("TextVectorization: multi_hot, count and tf_idf match Keras", "[text]") {
  namespace g = text_golden;
  const auto multi_hot = check_golden(mode("multi_hot"), g::kMultiHotVocab, g::kMultiHotOutShape, g::kMultiHotOut);
  CHECK(multi_hot.idf_weights().empty());
  check_golden(mode("multi_hot", 30, true), g::kMultiHotMax30PadVocab, g::kMultiHotMax30PadOutShape,
               g::kMultiHotMax30PadOut);
  check_golden(mode("count"), g::kCountVocab, g::kCountOutShape, g::kCountOut);
  check_golden(mode("count", 5), g::kCountMax5Vocab, g::kCountMax5OutShape, g::kCountMax5Out);
  auto bigrams = mode("count");
  bigrams.ngrams = 2;
  check_golden(bigrams, g::kCountBigramsVocab, g::kCountBigramsOutShape, g::kCountBigramsOut);

  auto check_idf = [](const TextVectorization& tv, const auto& golden) {
    const auto& idf = tv.idf_weights();
    REQUIRE(idf.size() == std::size(golden));
    for (std::size_t i = 0; i < idf.size(); ++i) CHECK(idf[i] == Approx(golden[i]).margin(1e-6));
  };
  check_idf(check_golden(mode("tf_idf"), g::kTfIdfVocab, g::kTfIdfOutShape, g::kTfIdfOut), g::kTfIdfIdf);
  check_idf(check_golden(mode("tf_idf", 30, true), g::kTfIdfMax30PadVocab, g::kTfIdfMax30PadOutShape,
                         g::kTfIdfMax30PadOut),
            g::kTfIdfMax30PadIdf);
  check_idf(check_golden(mode("tf_idf", 4), g::kTfIdfMax4Vocab, g::kTfIdfMax4OutShape, g::kTfIdfMax4Out),
            g::kTfIdfMax4Idf);
  // a vocabulary set with idf weights and no special tokens: [UNK] gets their mean
  TextVectorization tv(mode("tf_idf"));
  tv.set_vocabulary({"the", "cat", "dog"}, {0.5, 1.0, 2.0});
  CHECK(tv.get_vocabulary() == strings_of(g::kSetTfIdfVocab));
  check_idf(tv, g::kSetTfIdfIdf);
  check_out(tv(strings_of(g::kBatch)), g::kSetTfIdfOutShape, g::kSetTfIdfOut);
}

TEST_CASE("TextVectorization: hand-worked tokens, ties, n-grams and lookups", "[text]") {
  TextVectorizationOptions o;
  TextVectorization tv(o);
  // ASCII lowercased and punctuation stripped; UTF-8 bytes kept; runs of whitespace split once
  CHECK(tv.tokenize("Hello, World!  foo\tBAR\n") == Strings{"hello", "world", "foo", "bar"});
  CHECK(tv.tokenize("\xc3\x89T\xc3\x89 don't") == Strings{"\xc3\x89t\xc3\x89", "dont"});
  CHECK(tv.tokenize(" \t ").empty());
  // ties: descending bytes, as Keras's np.lexsort(...)[::-1]
  tv.adapt({"b a", "c", "a"});
  CHECK(tv.get_vocabulary() == Strings{"", "[UNK]", "a", "c", "b"});
  CHECK(tv.get_vocabulary(false) == Strings{"a", "c", "b"});
  const Tensor y = tv({"a z c", "", "b"});
  CHECK(y.to_vector<std::int64_t>() == std::vector<std::int64_t>{2, 1, 3, 0, 0, 0, 4, 0, 0});
  // a batch of empty texts: [batch, 0]
  const Tensor empty = tv({"", "!!"});
  CHECK(empty.rank() == 2);
  CHECK(empty.dim(0) == 2);
  CHECK(empty.dim(1) == 0);

  o.ngrams = 3;
  CHECK(TextVectorization(o).tokenize("a b c") == Strings{"a", "b", "c", "a b", "b c", "a b c"});
  CHECK(TextVectorization(o).tokenize("a b") == Strings{"a", "b", "a b"});
  o = TextVectorizationOptions();
  o.split = "character";
  o.standardize = "none";
  // UTF-8 characters whole; an invalid byte alone
  CHECK(TextVectorization(o).tokenize("h\xc3\xa9!\xff") == Strings{"h", "\xc3\xa9", "!", "\xff"});
  o.split = "none";
  TextVectorization whole(o);
  whole.adapt({"a b", "a b", "c"});
  CHECK(whole.get_vocabulary() == Strings{"", "[UNK]", "a b", "c"});
  CHECK(whole({"a b", "", "x"}).to_vector<std::int64_t>() == std::vector<std::int64_t>{2, 0, 1});
  o.output_mode = "count";  // "" is Keras's mask token: no column
  TextVectorization whole_count(o);
  whole_count.adapt({"a b", "", "c"});
  CHECK(whole_count.get_vocabulary() == Strings{"[UNK]", "c", "a b"});
  CHECK(whole_count({"a b", "", "x"}).to_vector<float>() == std::vector<float>{0, 0, 1, 0, 0, 0, 1, 0, 0});

  // custom standardize and split replace the named ones
  TextVectorizationOptions c;
  c.standardize_fn = [](const std::string& s) { return s + ";x"; };
  c.split_fn = [](const std::string& s) {
    Strings parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
      if (i == s.size() || s[i] == ';') {
        parts.push_back(s.substr(start, i - start));
        start = i + 1;
      }
    }
    return parts;
  };
  CHECK(TextVectorization(c).tokenize("A;B") == Strings{"A", "B", "x"});
}

TEST_CASE("TextVectorization: set_vocabulary and preset vocabularies, as Keras", "[text]") {
  TextVectorizationOptions o;
  o.vocabulary = {"x", "y"};
  TextVectorization tv(o);
  CHECK(tv.get_vocabulary() == Strings{"", "[UNK]", "x", "y"});
  CHECK(tv({"y x q"}).to_vector<std::int64_t>() == std::vector<std::int64_t>{3, 2, 1});
  REQUIRE_THROWS_WITH(tv.adapt({"x"}), Catch::Contains("TextVectorization") && Catch::Contains("adapt"));
  // special tokens at the start are recognised, not added twice
  TextVectorization s;
  s.set_vocabulary({"", "[UNK]", "b", "a"});
  CHECK(s.get_vocabulary() == Strings{"", "[UNK]", "b", "a"});
  CHECK(s.vocabulary_size() == 4);
  // count mode: [UNK] alone is special; with a vocabulary of its own special token
  TextVectorization count(mode("count", -1));
  count.set_vocabulary({"[UNK]", "b"});
  CHECK(count.get_vocabulary() == Strings{"[UNK]", "b"});
  CHECK(count({"b b q"}).to_vector<float>() == std::vector<float>{1, 2});
  // tf_idf with special tokens given: their weight is taken as given
  TextVectorization tfidf(mode("tf_idf"));
  tfidf.set_vocabulary({"[UNK]", "a"}, {0.25, 2.0});
  CHECK(tfidf.idf_weights() == std::vector<double>{0.25, 2.0});
  CHECK(tfidf({"a a z"}).to_vector<float>() == std::vector<float>{0.25f, 4.0f});
  // pad_to_max_tokens with a set vocabulary: zeros after it
  TextVectorization padded(mode("multi_hot", 5, true));
  padded.set_vocabulary({"a"});
  CHECK(padded({"a q"}).to_vector<float>() == std::vector<float>{1, 1, 0, 0, 0});
}

TEST_CASE("TextVectorization: errors name the class, the option and its value", "[text]") {
  using Catch::Contains;
  REQUIRE_THROWS_AS(TextVectorization()({"a"}), ValueError);
  REQUIRE_THROWS_WITH(TextVectorization()({"a"}), Contains("TextVectorization") && Contains("adapt()"));
  auto bad = [](auto change) {
    TextVectorizationOptions o;
    change(o);
    TextVectorization tv(o);
  };
  REQUIRE_THROWS_WITH(bad([](auto& o) { o.standardize = "upper"; }), Contains("standardize") && Contains("\"upper\""));
  REQUIRE_THROWS_WITH(bad([](auto& o) { o.split = "words"; }), Contains("split") && Contains("\"words\""));
  REQUIRE_THROWS_WITH(bad([](auto& o) { o.output_mode = "one_hot"; }),
                      Contains("output_mode") && Contains("\"one_hot\""));
  REQUIRE_THROWS_WITH(bad([](auto& o) { o.max_tokens = 1; }), Contains("max_tokens") && Contains("got 1"));
  REQUIRE_THROWS_WITH(bad([](auto& o) { o.ngrams = 0; }), Contains("ngrams") && Contains("got 0"));
  REQUIRE_THROWS_WITH(bad([](auto& o) { o.output_sequence_length = -2; }),
                      Contains("output_sequence_length") && Contains("-2"));
  REQUIRE_THROWS_WITH(bad([](auto& o) {
                        o.output_mode = "count";
                        o.output_sequence_length = 4;
                      }),
                      Contains("output_sequence_length (4)") && Contains("\"count\""));
  REQUIRE_THROWS_WITH(bad([](auto& o) { o.pad_to_max_tokens = true; }),
                      Contains("pad_to_max_tokens") && Contains("max_tokens"));
  REQUIRE_THROWS_AS(bad([](auto& o) { o.max_tokens = 0; }), ValueError);

  TextVectorization tv;
  REQUIRE_THROWS_WITH(tv.set_vocabulary({}), Contains("empty vocabulary"));
  REQUIRE_THROWS_WITH(tv.set_vocabulary({"a", "b", "a"}), Contains("repeats") && Contains("\"a\""));
  REQUIRE_THROWS_WITH(tv.set_vocabulary({"a", ""}), Contains("pad token") && Contains("index 1"));
  REQUIRE_THROWS_WITH(tv.set_vocabulary({"a"}, {1.0}), Contains("idf_weights") && Contains("\"int\""));
  TextVectorization small(mode("int", 3));
  REQUIRE_THROWS_WITH(small.set_vocabulary({"a", "b"}), Contains("4 entries") && Contains("max_tokens 3"));
  TextVectorization tfidf(mode("tf_idf"));
  REQUIRE_THROWS_WITH(tfidf.set_vocabulary({"a"}), Contains("idf_weights must be set"));
  REQUIRE_THROWS_WITH(tfidf.set_vocabulary({"a", "b"}, {1.0}), Contains("1 weights") && Contains("2 tokens"));
}

TEST_CASE("StringLookup: adapt and the four output modes match Keras", "[text]") {
  namespace g = text_golden;
  using layers::StringLookup;
  using layers::StringLookupOptions;
  const Strings queries = strings_of(g::kLookupQueries);
  const std::vector<Strings> rows{{"a", "b"}, {"zz", "c"}, {"c", "c"}};
  {
    StringLookup lookup;
    lookup.adapt(strings_of(g::kLookupTokens));  // "" is an ordinary token here, "[UNK]" is not counted
    CHECK(lookup.get_vocabulary() == strings_of(g::kLookupAdaptVocab));
    CHECK(lookup.vocabulary_size() == 7);
    check_out(lookup(queries), g::kLookupAdaptOutShape, g::kLookupAdaptOut);
  }
  StringLookupOptions o;
  o.max_tokens = 3;
  StringLookup small(o);
  small.adapt(strings_of(g::kLookupTokens));
  CHECK(small.get_vocabulary() == strings_of(g::kLookupAdaptMax3Vocab));
  check_out(small(queries), g::kLookupAdaptMax3OutShape, g::kLookupAdaptMax3Out);
  StringLookup by_rows;
  by_rows.adapt(rows);
  CHECK(by_rows.get_vocabulary() == strings_of(g::kLookupAdaptRowsVocab));

  auto preset = [](const char* output_mode, std::int64_t max_tokens = -1) {
    StringLookupOptions p;
    p.output_mode = output_mode;
    p.vocabulary = {"c", "a", "b"};
    p.max_tokens = max_tokens;
    p.pad_to_max_tokens = max_tokens != -1;
    return StringLookup(p);
  };
  check_out(preset("int")(queries), g::kLookupIntOutShape, g::kLookupIntOut);
  check_out(preset("int")(rows), g::kLookupIntRowsOutShape, g::kLookupIntRowsOut);
  check_out(preset("one_hot")(queries), g::kLookupOneHotOutShape, g::kLookupOneHotOut);
  check_out(preset("one_hot")(rows), g::kLookupOneHotRowsOutShape, g::kLookupOneHotRowsOut);
  check_out(preset("one_hot")(std::vector<Strings>{{"a"}, {"q"}}), g::kLookupOneHotColumnOutShape,
            g::kLookupOneHotColumnOut);
  check_out(preset("multi_hot")(queries), g::kLookupMultiHotOutShape, g::kLookupMultiHotOut);
  check_out(preset("multi_hot")(rows), g::kLookupMultiHotRowsOutShape, g::kLookupMultiHotRowsOut);
  check_out(preset("count")(queries), g::kLookupCountOutShape, g::kLookupCountOut);
  check_out(preset("count")(rows), g::kLookupCountRowsOutShape, g::kLookupCountRowsOut);
  check_out(preset("count", 6)(rows), g::kLookupCountPadOutShape, g::kLookupCountPadOut);
  CHECK(preset("int").get_vocabulary(false) == Strings{"c", "a", "b"});
}

TEST_CASE("StringLookup: errors name the class and the option", "[text]") {
  using Catch::Contains;
  using layers::StringLookup;
  using layers::StringLookupOptions;
  REQUIRE_THROWS_WITH(StringLookup()({"a"}), Contains("StringLookup") && Contains("adapt()"));
  StringLookupOptions o;
  o.output_mode = "tf_idf";
  REQUIRE_THROWS_WITH(StringLookup(o), Contains("StringLookup") && Contains("output_mode") && Contains("\"tf_idf\""));
  o = StringLookupOptions();
  o.max_tokens = 1;
  REQUIRE_THROWS_WITH(StringLookup(o), Contains("StringLookup") && Contains("max_tokens") && Contains("got 1"));
  o = StringLookupOptions();
  o.vocabulary = {"a", "a"};
  REQUIRE_THROWS_WITH(StringLookup(o), Contains("StringLookup") && Contains("repeats"));
  StringLookup lookup;
  lookup.set_vocabulary({"[UNK]", "a", ""});  // "" is no special token without a mask
  CHECK(lookup({"", "a", "b"}).to_vector<std::int64_t>() == std::vector<std::int64_t>{2, 1, 0});
  REQUIRE_THROWS_AS(lookup(std::vector<Strings>{{"a", "b"}, {"a"}}), ShapeError);
  REQUIRE_THROWS_WITH(lookup(std::vector<Strings>{{"a", "b"}, {"a"}}),
                      Contains("StringLookup") && Contains("row 1 has 1"));
}

namespace {

// Writes `text` to dir/relative, making the folders it needs.
void write_file(const TempDir& dir, const fs::path& relative, const std::string& text) {
  fs::create_directories((dir.path() / relative).parent_path());
  std::ofstream(dir.path() / relative, std::ios::binary) << text;
}

// neg: a.txt, b.TXT, sub/c.txt (folder order, as Keras); pos: x.txt, y.txt; files that are not
// .txt, a hidden folder and a file beside the class folders are ignored.
void write_reviews(const TempDir& dir) {
  write_file(dir, "neg/a.txt", "bad");
  write_file(dir, "neg/b.TXT", "awful");
  write_file(dir, "neg/notes.md", "not a review");
  write_file(dir, "neg/sub/c.txt", "meh");
  write_file(dir, "pos/x.txt", "good");
  write_file(dir, "pos/y.txt", "great");
  write_file(dir, ".hidden/z.txt", "hidden");
  write_file(dir, "readme.txt", "not in a class");
}

std::map<std::string, std::int32_t> label_of(const TextDataset& ds) {
  std::map<std::string, std::int32_t> out;
  const auto labels = ds.labels.to_vector<std::int32_t>();
  for (std::size_t i = 0; i < ds.texts.size(); ++i) out[ds.texts[i]] = labels[i];
  return out;
}

}  // namespace

TEST_CASE("text_dataset_from_directory: classes, labels, shuffling and splits, as Keras", "[text]") {
  TempDir dir("tapeflow_test_text");
  write_reviews(dir);
  const std::string root = dir.path().string();
  const std::map<std::string, std::int32_t> truth{{"bad", 0}, {"awful", 0}, {"meh", 0}, {"good", 1}, {"great", 1}};

  TextDatasetOptions o;
  o.shuffle = false;
  TextDataset ds = text_dataset_from_directory(root, o);
  CHECK(ds.class_names == Strings{"neg", "pos"});
  CHECK(ds.texts == Strings{"bad", "awful", "meh", "good", "great"});
  REQUIRE(ds.labels.dtype() == kInt32);
  CHECK(ds.labels.to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 0, 0, 1, 1});
  REQUIRE(ds.file_paths.size() == 5);
  CHECK(fs::path(ds.file_paths[2]) == dir.path() / "neg" / "sub" / "c.txt");

  // shuffled: the same seed, the same order; pairs kept
  o.shuffle = true;
  o.seed = 7;
  const TextDataset a = text_dataset_from_directory(root, o), b = text_dataset_from_directory(root, o);
  CHECK(a.texts == b.texts);
  CHECK(a.labels.to_vector<std::int32_t>() == b.labels.to_vector<std::int32_t>());
  CHECK(label_of(a) == truth);
  bool other_order = false;  // some seed among a few reorders the files
  for (std::uint64_t seed = 0; seed < 8 && !other_order; ++seed) {
    o.seed = seed;
    other_order = text_dataset_from_directory(root, o).texts != ds.texts;
  }
  CHECK(other_order);

  // validation_split: int(0.4 * 5) = 2 validation files, the last of the shuffled order
  o.seed = 3;
  o.validation_split = 0.4;
  o.subset = "training";
  const TextDataset train = text_dataset_from_directory(root, o);
  o.subset = "validation";
  const TextDataset val = text_dataset_from_directory(root, o);
  CHECK(train.texts.size() == 3);
  CHECK(val.texts.size() == 2);
  CHECK(train.labels.dim(0) == 3);
  o.validation_split = 0;
  o.subset = "";
  Strings all = text_dataset_from_directory(root, o).texts;
  Strings joined = train.texts;
  joined.insert(joined.end(), val.texts.begin(), val.texts.end());
  CHECK(joined == all);
  auto parts = label_of(train);
  for (const auto& [text, label] : label_of(val)) parts[text] = label;
  CHECK(parts == truth);
  // int(0.1 * 5) = 0 validation files: training keeps all five (Keras's [:-0] would keep none)
  o.validation_split = 0.1;
  o.subset = "validation";
  const TextDataset none = text_dataset_from_directory(root, o);
  CHECK(none.texts.empty());
  CHECK(none.labels.shape() == Shape{0});
  o.subset = "training";
  CHECK(text_dataset_from_directory(root, o).texts.size() == 5);

  // label modes, explicit classes, max_length
  o = TextDatasetOptions();
  o.shuffle = false;
  o.label_mode = "categorical";
  ds = text_dataset_from_directory(root, o);
  CHECK(ds.labels.shape() == Shape{5, 2});
  CHECK(ds.labels.to_vector<float>() == std::vector<float>{1, 0, 1, 0, 1, 0, 0, 1, 0, 1});
  o.label_mode = "binary";
  ds = text_dataset_from_directory(root, o);
  CHECK(ds.labels.shape() == Shape{5, 1});
  CHECK(ds.labels.to_vector<float>() == std::vector<float>{0, 0, 0, 1, 1});
  o.label_mode = "none";
  CHECK_FALSE(text_dataset_from_directory(root, o).labels.defined());
  o.label_mode = "int";
  o.class_names = {"pos"};
  ds = text_dataset_from_directory(root, o);
  CHECK(ds.texts == Strings{"good", "great"});
  CHECK(ds.labels.to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 0});
  o.class_names = {};
  o.max_length = 2;
  CHECK(text_dataset_from_directory(root, o).texts == Strings{"ba", "aw", "me", "go", "gr"});
}

TEST_CASE("text_dataset_from_directory: errors name the path or the option", "[text]") {
  using Catch::Contains;
  TempDir dir("tapeflow_test_text");
  const std::string root = dir.path().string();
  const std::string missing = (dir.path() / "nope").string();
  REQUIRE_THROWS_AS(text_dataset_from_directory(missing), IOError);
  REQUIRE_THROWS_WITH(text_dataset_from_directory(missing), Contains(missing));
  REQUIRE_THROWS_AS(text_dataset_from_directory(root), ValueError);
  REQUIRE_THROWS_WITH(text_dataset_from_directory(root), Contains(root) && Contains("no class subdirectory"));
  fs::create_directories(dir.path() / "empty_class");
  REQUIRE_THROWS_WITH(text_dataset_from_directory(root), Contains(root) && Contains("no .txt files"));
  write_reviews(dir);
  write_file(dir, "third/t.txt", "third class");
  auto with = [&](auto change) {
    TextDatasetOptions o;
    change(o);
    return text_dataset_from_directory(root, o);
  };
  REQUIRE_THROWS_WITH(with([](auto& o) { o.label_mode = "sparse"; }), Contains("label_mode") && Contains("\"sparse\""));
  REQUIRE_THROWS_WITH(with([](auto& o) { o.label_mode = "binary"; }), Contains("\"binary\"") && Contains("has 4"));
  REQUIRE_THROWS_WITH(with([](auto& o) { o.validation_split = 1.5; }), Contains("validation_split") && Contains("1.5"));
  REQUIRE_THROWS_WITH(with([](auto& o) { o.validation_split = 0.2; }), Contains("subset"));
  REQUIRE_THROWS_WITH(with([](auto& o) { o.subset = "training"; }), Contains("subset \"training\""));
  REQUIRE_THROWS_WITH(with([](auto& o) { o.class_names = {"neg", "cats"}; }),
                      Contains("class_names") && Contains("\"cats\""));
  // the explicit classes make "binary" possible among four folders
  auto ds = with([](auto& o) {
    o.label_mode = "binary";
    o.class_names = {"pos", "neg"};
    o.shuffle = false;
  });
  CHECK(ds.texts == Strings{"good", "great", "bad", "awful", "meh"});
  CHECK(ds.labels.to_vector<float>() == std::vector<float>{0, 0, 1, 1, 1});
}

TEST_CASE("text: a folder of reviews, vectorized, trains a Dense classifier (the book's bag of words)", "[text]") {
  TempDir dir("tapeflow_test_text");
  const Strings good{"great fun", "a great film", "good and fun", "fun, great!", "good good", "GREAT."};
  const Strings bad{"awful film", "bad and boring", "boring, awful", "a bad film", "bad bad", "Boring!"};
  for (std::size_t i = 0; i < good.size(); ++i) {
    write_file(dir, fs::path("pos") / ("p" + std::to_string(i) + ".txt"), good[i]);
    write_file(dir, fs::path("neg") / ("n" + std::to_string(i) + ".txt"), bad[i]);
  }
  TextDatasetOptions o;
  o.seed = 5;
  const TextDataset train = text_dataset_from_directory(dir.str(), o);
  TextVectorizationOptions tvo;
  tvo.output_mode = "multi_hot";
  TextVectorization vectorize(tvo);
  vectorize.adapt(train.texts);
  const Tensor x = vectorize(train.texts);
  REQUIRE(x.shape() == Shape{12, vectorize.vocabulary_size()});

  Sequential model(layers::Dense(1, "sigmoid"));
  model.set_seed(1);
  model.compile(std::make_shared<optimizers::Adam>(0.1), "binary_crossentropy", {"accuracy"});
  FitOptions fit;
  fit.epochs = 40;
  fit.batch_size = 4;
  fit.verbose = 0;
  model.fit(x, train.labels, fit);
  const auto logs = model.evaluate(vectorize({"great and good", "boring and bad"}), tensor<std::int32_t>({1, 0}), 2, 0);
  CHECK(logs.at("accuracy") == 1.0);
}

// ================================================================ images [image]
// Resizing and CenterCrop against Keras 3.15 on every device, a gradcheck, load_img of tiny
// files in each format and colour mode against Keras's load_img + img_to_array (Pillow's
// decoders), image_dataset_from_directory on a folder made here (test/golden/image_golden.py).

namespace {

namespace ig = image_golden;

template <std::size_t N>
std::string file_bytes(const unsigned char (&b)[N]) {
  return std::string(reinterpret_cast<const char*>(b), N);
}

// y's values against golden ones, within `margin`
template <std::size_t N>
void check_values(const Tensor& y, const double (&want)[N], double margin = 1e-4) {
  const auto got = lt::dvals(y);
  REQUIRE(got.size() == N);
  for (std::size_t i = 0; i < N; ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(want[i]).margin(margin));
  }
}

Tensor golden_batch() { return tensor(std::vector<double>(std::begin(ig::kInput), std::end(ig::kInput)), {2, 5, 7, 2}, kFloat32); }

}  // namespace

TEST_CASE("Resizing and CenterCrop match Keras on every device", "[image]") {
  using layers::CenterCrop;
  using layers::Resizing;
  const Tensor x = golden_batch();
  for (const Device dev : lt::devices()) {
    INFO(dev.str());
    const Tensor xd = x.to(dev);
    auto run = [&](layers::Layer& layer, const Shape& want) {
      const Tensor y = layer(xd);
      CHECK(y.device() == dev);
      CHECK(y.shape() == want);
      CHECK(layer.compute_output_shape({-1, 5, 7, 2}) == Shape{-1, want[1], want[2], 2});
      return y;
    };
    Resizing up(8, 10), down(3, 4), nearest(3, 9, "nearest"), crop(4, 4, "bilinear", true),
        crop_nearest(6, 3, "nearest", true);
    check_values(run(up, {2, 8, 10, 2}), ig::kResizeUp);
    check_values(run(down, {2, 3, 4, 2}), ig::kResizeDown);
    check_values(run(nearest, {2, 3, 9, 2}), ig::kResizeNearest);
    check_values(run(crop, {2, 4, 4, 2}), ig::kResizeCrop);
    check_values(run(crop_nearest, {2, 6, 3, 2}), ig::kResizeCropNearest);
    CenterCrop smaller(3, 4), taller(8, 6), wider(4, 9);
    check_values(run(smaller, {2, 3, 4, 2}), ig::kCenterCropSmaller);
    check_values(run(taller, {2, 8, 6, 2}), ig::kCenterCropTaller);
    check_values(run(wider, {2, 4, 9, 2}), ig::kCenterCropWider);
    // one image [h, w, c]: the batch's first
    const Tensor one = up(xd[0]);
    CHECK(one.shape() == Shape{8, 10, 2});
    CHECK(lt::dvals(one) == lt::dvals(up(xd)[0]));
  }
  CHECK_FALSE(Resizing(2, 2).supports_masking());
  CHECK_FALSE(CenterCrop(2, 2).supports_masking());
  CHECK(Resizing(2, 2).default_name() == "resizing");
  CHECK(CenterCrop(2, 2).default_name() == "center_crop");
}

TEST_CASE("Resizing: float64 gradcheck through bilinear and nearest, and CenterCrop", "[image]") {
  const Tensor x = lt::irregular({1, 3, 4, 2}, -2, 2, kFloat64);
  layers::Resizing up(4, 5), down(2, 3), nearest(2, 6, "nearest");
  layers::CenterCrop grow(4, 3);
  for (const Device dev : lt::devices()) {
    INFO(dev.str());
    for (layers::Layer* layer : std::vector<layers::Layer*>{&up, &down, &nearest, &grow}) {
      INFO(layer->class_name());
      const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return (*layer)(in[0]); }, {x.to(dev)});
      INFO(r.message);
      CHECK(r.ok);
    }
  }
}

TEST_CASE("Resizing and CenterCrop reject bad sizes, modes, ranks and dtypes", "[image]") {
  using Catch::Contains;
  using layers::CenterCrop;
  using layers::Resizing;
  CHECK_THROWS_AS(Resizing(0, 3), ValueError);
  CHECK_THROWS_WITH(Resizing(0, 3), Contains("Resizing") && Contains("(0, 3)"));
  CHECK_THROWS_WITH(CenterCrop(2, -1), Contains("CenterCrop") && Contains("(2, -1)"));
  CHECK_THROWS_WITH(Resizing(2, 2, "bicubic"), Contains("Resizing") && Contains("\"bicubic\""));
  Resizing r(2, 2);
  CHECK_THROWS_AS(r(zeros({4, 4})), ValueError);
  CHECK_THROWS_WITH(r(zeros({4, 4})), Contains("resizing") && Contains("[4, 4]"));
  CHECK_THROWS_WITH(r.compute_output_shape({1, 2, 3, 4, 5}), Contains("[1, 2, 3, 4, 5]"));
  CHECK_THROWS_AS(r(zeros({4, 4, 3}, kInt32)), DTypeError);
  CenterCrop c(2, 2);
  CHECK_THROWS_WITH(c(zeros({4, 4, 3}, kInt32)), Contains("center_crop") && Contains("int32"));
}

TEST_CASE("load_img decodes PNG, BMP, GIF and JPEG in each colour mode as Keras", "[image]") {
  TempDir dir("tapeflow_test_image");
  struct Case {
    const char* file;
    std::string bytes;
    const double *rgb, *gray, *rgba;
    double margin;  // JPEG: stb_image vs libjpeg-turbo, 2 levels at most on this file
  };
  const Case cases[] = {
      {"a.png", file_bytes(ig::kPngFile), ig::kPngRgb, ig::kPngGrayscale, ig::kPngRgba, 0},
      {"rgba.PNG", file_bytes(ig::kRgbaPngFile), ig::kRgbaPngRgb, ig::kRgbaPngGrayscale, ig::kRgbaPngRgba, 0},
      {"gray.png", file_bytes(ig::kGrayPngFile), ig::kGrayPngRgb, ig::kGrayPngGrayscale, ig::kGrayPngRgba, 0},
      {"a.bmp", file_bytes(ig::kBmpFile), ig::kBmpRgb, ig::kBmpGrayscale, ig::kBmpRgba, 0},
      {"a.gif", file_bytes(ig::kGifFile), ig::kGifRgb, ig::kGifGrayscale, ig::kGifRgba, 0},
      {"a.jpg", file_bytes(ig::kJpegFile), ig::kJpegRgb, ig::kJpegGrayscale, ig::kJpegRgba, 3},
  };
  for (const Case& c : cases) {
    INFO(c.file);
    write_file(dir, c.file, c.bytes);
    const std::pair<const char*, const double*> modes[] = {{"rgb", c.rgb}, {"grayscale", c.gray}, {"rgba", c.rgba}};
    for (const auto& [mode, want] : modes) {
      INFO(mode);
      LoadImgOptions o;
      o.color_mode = mode;
      const Tensor img = load_img(dir.file(c.file), o);
      REQUIRE(img.dtype() == kFloat32);
      const std::int64_t channels = std::string(mode) == "rgb" ? 3 : std::string(mode) == "rgba" ? 4 : 1;
      REQUIRE(img.shape() == Shape{5, 6, channels});
      const auto got = lt::dvals(img);
      double worst = 0;
      for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
      CHECK(worst <= c.margin);
    }
  }
  // target_size: nearest by default, as Keras
  LoadImgOptions o;
  o.target_size = {3, 8};
  const Tensor small = load_img(dir.file("a.png"), o);
  CHECK(small.shape() == Shape{3, 8, 3});
  check_values(small, ig::kPngNearest3x8, 0);
  o.interpolation = "bilinear";
  o.keep_aspect_ratio = true;
  CHECK(load_img(dir.file("a.png"), o).shape() == Shape{3, 8, 3});
}

TEST_CASE("load_img reports missing and undecodable files and bad options", "[image]") {
  using Catch::Contains;
  TempDir dir("tapeflow_test_image");
  write_file(dir, "bad.png", "not a png at all");
  CHECK_THROWS_AS(load_img(dir.file("missing.png")), IOError);
  CHECK_THROWS_WITH(load_img(dir.file("missing.png")), Contains("load_img") && Contains("missing.png"));
  CHECK_THROWS_AS(load_img(dir.file("bad.png")), IOError);
  CHECK_THROWS_WITH(load_img(dir.file("bad.png")), Contains("cannot decode") && Contains("bad.png"));
  write_file(dir, "a.png", file_bytes(ig::kPngFile));
  LoadImgOptions o;
  o.color_mode = "cmyk";
  CHECK_THROWS_WITH(load_img(dir.file("a.png"), o), Contains("color_mode") && Contains("\"cmyk\""));
  o = LoadImgOptions();
  o.interpolation = "lanczos";
  CHECK_THROWS_WITH(load_img(dir.file("a.png"), o), Contains("load_img") && Contains("\"lanczos\""));
  o = LoadImgOptions();
  o.target_size = {0, 4};
  CHECK_THROWS_WITH(load_img(dir.file("a.png"), o), Contains("target_size") && Contains("(0, 4)"));
}

TEST_CASE("image_dataset_from_directory: classes, labels, images, shuffling and splits, as Keras", "[image]") {
  using Catch::Contains;
  TempDir dir("tapeflow_test_image");
  // a/ png, bmp; b/ gif (Keras's golden folder), then files Keras ignores
  write_file(dir, "a/png.png", file_bytes(ig::kPngFile));
  write_file(dir, "a/bmp.bmp", file_bytes(ig::kBmpFile));
  write_file(dir, "b/gif.gif", file_bytes(ig::kGifFile));
  write_file(dir, "b/notes.txt", "not an image");
  write_file(dir, "b/x.webp", "not listed");
  write_file(dir, "top.png", file_bytes(ig::kPngFile));
  const std::string root = dir.str();

  ImageDatasetOptions o;
  o.image_size = {4, 3};
  o.shuffle = false;
  ImageDataset ds = image_dataset_from_directory(root, o);
  CHECK(ds.class_names == Strings{"a", "b"});
  REQUIRE(ds.images.shape() == Shape{3, 4, 3, 3});
  CHECK(ds.images.dtype() == kFloat32);
  check_values(ds.images, ig::kDatasetImages, 1e-3);
  CHECK(ds.labels.dtype() == kInt32);
  CHECK(ds.labels.to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 0, 1});
  REQUIRE(ds.file_paths.size() == 3);
  CHECK(fs::path(ds.file_paths[0]).filename() == "bmp.bmp");  // sorted by name, as Keras
  CHECK(fs::path(ds.file_paths[2]).filename() == "gif.gif");

  // more files: six per class, extensions in any case
  for (int i = 0; i < 5; ++i) {
    write_file(dir, "a/extra" + std::to_string(i) + ".PNG", file_bytes(ig::kPngFile));
    write_file(dir, "b/more/extra" + std::to_string(i) + ".Jpeg", file_bytes(ig::kJpegFile));
  }
  o.shuffle = true;
  o.seed = 3;
  o.color_mode = "grayscale";
  o.interpolation = "nearest";
  o.crop_to_aspect_ratio = true;
  ds = image_dataset_from_directory(root, o);
  CHECK(ds.images.shape() == Shape{13, 4, 3, 1});
  const ImageDataset again = image_dataset_from_directory(root, o);
  CHECK(again.file_paths == ds.file_paths);
  o.seed = 4;
  CHECK(image_dataset_from_directory(root, o).file_paths != ds.file_paths);
  // each image is its file through load_img's decoding and the same resize
  LoadImgOptions lo;
  lo.color_mode = "grayscale";
  lo.target_size = {4, 3};
  lo.keep_aspect_ratio = true;
  CHECK(lt::dvals(ds.images[0]) == lt::dvals(load_img(ds.file_paths[0], lo)));

  o.validation_split = 0.25;
  o.subset = "training";
  const ImageDataset train = image_dataset_from_directory(root, o);
  o.subset = "validation";
  const ImageDataset val = image_dataset_from_directory(root, o);
  CHECK(train.images.dim(0) == 10);
  CHECK(val.images.dim(0) == 3);
  std::set<std::string> both(train.file_paths.begin(), train.file_paths.end());
  both.insert(val.file_paths.begin(), val.file_paths.end());
  CHECK(both.size() == 13);

  o = ImageDatasetOptions();
  o.image_size = {2, 2};
  o.label_mode = "categorical";
  ds = image_dataset_from_directory(root, o);
  CHECK(ds.labels.shape() == Shape{13, 2});
  CHECK(ds.images.shape() == Shape{13, 2, 2, 3});
  o.label_mode = "binary";
  CHECK(image_dataset_from_directory(root, o).labels.shape() == Shape{13, 1});
  o.label_mode = "none";
  CHECK_FALSE(image_dataset_from_directory(root, o).labels.defined());
  o.label_mode = "int";
  o.class_names = {"b"};
  o.color_mode = "rgba";
  ds = image_dataset_from_directory(root, o);
  CHECK(ds.class_names == Strings{"b"});
  CHECK(ds.images.shape() == Shape{6, 2, 2, 4});
  CHECK(ds.labels.to_vector<std::int32_t>() == std::vector<std::int32_t>(6, 0));
}

TEST_CASE("image_dataset_from_directory reports bad folders, files and options", "[image]") {
  using Catch::Contains;
  TempDir dir("tapeflow_test_image");
  const std::string root = dir.str();
  CHECK_THROWS_AS(image_dataset_from_directory(dir.file("nowhere")), IOError);
  CHECK_THROWS_WITH(image_dataset_from_directory(root), Contains("image_dataset_from_directory") &&
                                                            Contains("no class subdirectory"));
  write_file(dir, "a/readme.txt", "text");
  CHECK_THROWS_WITH(image_dataset_from_directory(root), Contains("no image files found") && Contains(root));
  write_file(dir, "a/broken.jpg", "not a jpeg");
  CHECK_THROWS_AS(image_dataset_from_directory(root), IOError);
  CHECK_THROWS_WITH(image_dataset_from_directory(root), Contains("cannot decode") && Contains("broken.jpg"));
  ImageDatasetOptions o;
  o.image_size = {0, 5};
  CHECK_THROWS_WITH(image_dataset_from_directory(root, o), Contains("image_size") && Contains("(0, 5)"));
  o = ImageDatasetOptions();
  o.color_mode = "hsv";
  CHECK_THROWS_WITH(image_dataset_from_directory(root, o), Contains("\"hsv\""));
  o = ImageDatasetOptions();
  o.label_mode = "sparse";
  CHECK_THROWS_WITH(image_dataset_from_directory(root, o), Contains("label_mode") && Contains("\"sparse\""));
  o = ImageDatasetOptions();
  o.label_mode = "binary";
  CHECK_THROWS_WITH(image_dataset_from_directory(root, o), Contains("exactly 2 classes"));
  o = ImageDatasetOptions();
  o.validation_split = 0.2;
  CHECK_THROWS_WITH(image_dataset_from_directory(root, o), Contains("subset"));
  o = ImageDatasetOptions();
  o.class_names = {"zebra"};
  CHECK_THROWS_WITH(image_dataset_from_directory(root, o), Contains("\"zebra\""));
}
