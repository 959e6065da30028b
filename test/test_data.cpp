// BatchIterator, random_permutation and train_validation_split: every example once per epoch,
// x and y rows kept together, seeded orders, partial batches, errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include "tapeflow/core.hpp"
#include "tapeflow/data.hpp"

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
