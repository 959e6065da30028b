// Views and indexing: reshape (view or copy as NumPy decides), transpose/permute,
// expand_dims/squeeze, broadcast_to, flatten; slicing with Python semantics checked against
// a hand-written Python oracle (CPython's slice.indices), the book's examples, integer
// indices, ellipsis, newaxis, writes through slices and the error messages.
#include <climits>
#include <optional>
#include <type_traits>

#include "test_helpers.hpp"

using namespace tapeflow;
using namespace th;
using Catch::Contains;

namespace {

bool shares(const Tensor& a, const Tensor& b) { return a.storage().get() == b.storage().get(); }

// 0, 1, 2, ... in a contiguous float64 tensor: each value is its own flat index.
Tensor iota(const Shape& s, DType dt = kFloat64) {
  std::vector<double> v(static_cast<std::size_t>(count(s)));
  std::iota(v.begin(), v.end(), 0.0);
  return from_values(v, s, dt);
}

// ------------------------------------------------------------------ the Python oracle

// range(*slice(start, stop, step).indices(n)), following CPython's PySlice_Unpack and
// PySlice_AdjustIndices line by line.
std::vector<std::int64_t> py_range(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                                   std::int64_t step, std::int64_t n) {
  std::int64_t s = start ? *start : (step < 0 ? LLONG_MAX : 0);
  std::int64_t e = stop ? *stop : (step < 0 ? LLONG_MIN : LLONG_MAX);
  auto adjust = [&](std::int64_t& v) {
    if (v < 0) {
      v += n;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= n) {
      v = step < 0 ? n - 1 : n;
    }
  };
  adjust(s);
  adjust(e);
  std::vector<std::int64_t> out;
  for (std::int64_t i = s; step > 0 ? i < e : i > e; i += step) out.push_back(i);
  return out;
}

struct Item {
  enum Kind { Int, Sl, Ell, New } kind;
  explicit Item(Kind k) : kind(k) {}
  std::int64_t i = 0;
  std::optional<std::int64_t> start, stop;
  std::int64_t step = 1;

  Index index() const {
    switch (kind) {
      case Int: return Index(i);
      case Sl: {
        Slice s;
        s.start = start;
        s.stop = stop;
        s.step = step;
        return Index(s);
      }
      case Ell: return Index(ellipsis);
      case New: return Index(newaxis);
    }
    return Index(ellipsis);
  }
};

std::string describe(const std::vector<Item>& items) {
  std::string out = "[";
  for (std::size_t k = 0; k < items.size(); ++k) {
    const Item& it = items[k];
    if (k) out += ", ";
    auto opt = [](const std::optional<std::int64_t>& v) { return v ? std::to_string(*v) : std::string(); };
    switch (it.kind) {
      case Item::Int: out += std::to_string(it.i); break;
      case Item::Sl: out += opt(it.start) + ":" + opt(it.stop) + ":" + std::to_string(it.step); break;
      case Item::Ell: out += "..."; break;
      case Item::New: out += "None"; break;
    }
  }
  return out + "]";
}

// Values (row-major) and shape of NumPy's x[items] for x given by its values and shape.
struct Virt {
  std::vector<double> v;
  Shape shape;
};
Virt py_index(const Virt& x, std::vector<Item> items) {
  const auto rank = static_cast<std::int64_t>(x.shape.size());
  std::int64_t consumed = 0;
  bool has_ellipsis = false;
  for (const auto& it : items) {
    if (it.kind == Item::Int || it.kind == Item::Sl) ++consumed;
    if (it.kind == Item::Ell) has_ellipsis = true;
  }
  // expand the ellipsis (or append it) into full slices
  std::vector<Item> full;
  auto whole = [] {
    Item s{Item::Sl};
    return s;
  };
  for (const auto& it : items) {
    if (it.kind == Item::Ell) {
      for (std::int64_t k = 0; k < rank - consumed; ++k) full.push_back(whole());
    } else {
      full.push_back(it);
    }
  }
  if (!has_ellipsis)
    for (std::int64_t k = 0; k < rank - consumed; ++k) full.push_back(whole());
  // per source axis: the list of source indices and the output axis it feeds (-1: fixed)
  std::vector<std::vector<std::int64_t>> lists;
  std::vector<int> out_axis_of;
  Shape out_shape;
  std::int64_t axis = 0;
  for (const auto& it : full) {
    if (it.kind == Item::New) {
      out_shape.push_back(1);
    } else if (it.kind == Item::Int) {
      const std::int64_t n = x.shape[axis];
      lists.push_back({it.i < 0 ? it.i + n : it.i});
      out_axis_of.push_back(-1);
      ++axis;
    } else {
      lists.push_back(py_range(it.start, it.stop, it.step, x.shape[axis]));
      out_axis_of.push_back(static_cast<int>(out_shape.size()));
      out_shape.push_back(static_cast<std::int64_t>(lists.back().size()));
      ++axis;
    }
  }
  const Shape src_strides = contiguous_strides(x.shape);
  Virt out;
  out.shape = out_shape;
  const std::int64_t n = count(out_shape);
  for (std::int64_t f = 0; f < n; ++f) {
    const auto oi = unravel(f, out_shape);
    std::int64_t src = 0;
    for (std::size_t d = 0; d < lists.size(); ++d) {
      const std::int64_t k = out_axis_of[d] < 0 ? lists[d][0] : lists[d][static_cast<std::size_t>(oi[out_axis_of[d]])];
      src += k * src_strides[d];
    }
    out.v.push_back(x.v[static_cast<std::size_t>(src)]);
  }
  return out;
}

Item random_slice(std::mt19937& rng, std::int64_t n) {
  Item it{Item::Sl};
  auto bound = [&]() -> std::optional<std::int64_t> {
    if (rand_int(rng, 0, 3) == 0) return std::nullopt;
    return rand_int(rng, -n - 2, n + 2);
  };
  it.start = bound();
  it.stop = bound();
  it.step = rand_int(rng, 1, 3) * (rand_int(rng, 0, 2) == 0 ? -1 : 1);
  return it;
}

std::vector<Item> random_items(std::mt19937& rng, const Shape& s) {
  const auto rank = static_cast<std::int64_t>(s.size());
  const std::int64_t consumed = rand_int(rng, 0, rank);
  const bool ellipsis_at = rand_int(rng, 0, 2) == 0;
  const std::int64_t ell_pos = rand_int(rng, 0, consumed);
  // which source axes the consumed items address (the ellipsis skips the middle ones)
  std::vector<Item> items;
  for (std::int64_t k = 0; k < consumed; ++k) {
    if (ellipsis_at && k == ell_pos) items.push_back(Item{Item::Ell});
    const std::int64_t axis = (ellipsis_at && k >= ell_pos) ? rank - (consumed - k) : k;
    const std::int64_t n = s[static_cast<std::size_t>(axis)];
    if (n > 0 && rand_int(rng, 0, 3) == 0) {
      Item it{Item::Int};
      it.i = rand_int(rng, -n, n - 1);
      items.push_back(it);
    } else {
      items.push_back(random_slice(rng, n));
    }
    if (rand_int(rng, 0, 6) == 0) items.push_back(Item{Item::New});
  }
  if (ellipsis_at && ell_pos == consumed) items.push_back(Item{Item::Ell});
  if (rand_int(rng, 0, 5) == 0) items.insert(items.begin(), Item{Item::New});
  return items;
}

Tensor apply(const Tensor& t, const std::vector<Item>& items) {
  std::vector<Index> idx;
  for (const auto& it : items) idx.push_back(it.index());
  return t.index(idx);
}

}  // namespace

// =================================================================== the Python oracle itself

TEST_CASE("views: the test's Python slice oracle agrees with values worked out by hand", "[views][slice][oracle]") {
  using V = std::vector<std::int64_t>;
  const auto no = std::nullopt;
  CHECK(py_range(no, no, 1, 5) == V{0, 1, 2, 3, 4});
  CHECK(py_range(no, no, -1, 5) == V{4, 3, 2, 1, 0});
  CHECK(py_range(1, 4, 1, 5) == V{1, 2, 3});
  CHECK(py_range(-2, no, 1, 5) == V{3, 4});
  CHECK(py_range(no, -2, 1, 5) == V{0, 1, 2});
  CHECK(py_range(-100, 100, 2, 5) == V{0, 2, 4});
  CHECK(py_range(100, -100, -2, 5) == V{4, 2, 0});
  CHECK(py_range(3, 1, 1, 5) == V{});
  CHECK(py_range(3, 1, -1, 5) == V{3, 2});
  CHECK(py_range(no, 0, -1, 5) == V{4, 3, 2, 1});
  CHECK(py_range(-1, -6, -2, 5) == V{4, 2, 0});
  CHECK(py_range(no, no, 3, 0) == V{});
  CHECK(py_range(no, no, -1, 0) == V{});
  CHECK(py_range(7, -100, -3, 10) == V{7, 4, 1});
}

// =================================================================== slicing

TEST_CASE("views: 1-D slices match Python for every start/stop/step combination", "[views][slice][oracle]") {
  std::size_t checked = 0, bad = 0;
  std::ostringstream first;
  for (std::int64_t n = 0; n <= 7; ++n) {
    const Tensor x = iota({n});
    std::vector<std::optional<std::int64_t>> bounds = {std::nullopt};
    for (std::int64_t b = -n - 3; b <= n + 3; ++b) bounds.push_back(b);
    for (std::int64_t step : {-4, -3, -2, -1, 1, 2, 3, 4}) {
      for (const auto& start : bounds) {
        for (const auto& stop : bounds) {
          Slice s;
          s.start = start;
          s.stop = stop;
          s.step = step;
          const Tensor v = x(s);
          const auto expected = py_range(start, stop, step, n);
          const auto got = values(v);
          bool ok = v.rank() == 1 && got.size() == expected.size() && shares(v, x);
          for (std::size_t i = 0; ok && i < got.size(); ++i) ok = got[i] == static_cast<double>(expected[i]);
          ++checked;
          if (!ok) {
            if (bad < 8) {
              first << "  n=" << n << " [" << (start ? std::to_string(*start) : "") << ":"
                    << (stop ? std::to_string(*stop) : "") << ":" << step << "] got " << got.size()
                    << " values, expected " << expected.size() << "\n";
            }
            ++bad;
          }
        }
      }
    }
  }
  INFO("checked " << checked << " slices; first mismatches:\n" << first.str());
  CHECK(checked > 10000);
  CHECK(bad == 0);
}

TEST_CASE("views: random N-D indices (ints, slices, ellipsis, newaxis) match NumPy", "[views][slice][oracle]") {
  std::mt19937 rng(1001);
  for (int trial = 0; trial < 600; ++trial) {
    const Shape s = random_shape(rng, 0, 4);
    const Make how = kAllMakes[rand_int(rng, 0, 5)];
    // any layout: the oracle reads the logical values, the view composes with the strides
    const Tensor base = make_input(s, kFloat64, rng, how);
    const std::vector<Item> items = random_items(rng, s);
    const Virt src{values(base), s};
    const Virt expected = py_index(src, items);
    INFO("shape " << str(s) << " index " << describe(items) << " layout " << make_name(how));
    const Tensor got = apply(base, items);
    CHECK(str(got.shape()) == str(expected.shape));
    CHECK(values(got) == expected.v);
    CHECK(shares(got, base));
    // a second index of the result (a view of a view)
    const std::vector<Item> items2 = random_items(rng, got.shape());
    INFO("then " << describe(items2));
    const Virt expected2 = py_index(Virt{values(got), got.shape()}, items2);
    const Tensor got2 = apply(got, items2);
    CHECK(str(got2.shape()) == str(expected2.shape));
    CHECK(values(got2) == expected2.v);
  }
}

TEST_CASE("views: slices clamp like NumPy and may be empty", "[views][slice]") {
  const Tensor x = iota({5});
  check_values(x(Slice(-100, 100)), {5}, {0, 1, 2, 3, 4});
  check_values(x(Slice(3, 100)), {2}, {3, 4});
  check_values(x(Slice(10, 20)), {0}, {});
  check_values(x(Slice(4, 1)), {0}, {});
  check_values(x(Slice(none, none, -1)), {5}, {4, 3, 2, 1, 0});
  check_values(x(Slice(none, none, -2)), {3}, {4, 2, 0});
  check_values(x(Slice(3, none, -1)), {4}, {3, 2, 1, 0});
  check_values(x(Slice(-2, none)), {2}, {3, 4});
  check_values(x(Slice(1, -1, 2)), {2}, {1, 3});
  check_values(x(Slice(100, -100, -3)), {2}, {4, 1});
  const Tensor m = iota({3, 4});
  check_values(m(Slice(none, none, -1), Slice(none, none, -1)), {3, 4}, {11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  check_values(m(all, Slice(1, 3)), {3, 2}, {1, 2, 5, 6, 9, 10});
  check_values(m(Slice(5, 7)), {0, 4}, {});
  const Tensor z = zeros({0, 3});
  CHECK(z(Slice(1, 5)).shape() == Shape{0, 3});
  CHECK(z(all, 1).shape() == Shape{0});
}

TEST_CASE("views: huge steps follow Python (no overflow)", "[views][slice][overflow]") {
  const Tensor x = iota({5});
  // Python: list(range(5))[0::sys.maxsize] == [0]; [::-sys.maxsize] == [4]
  check_values(x(Slice(0, none, LLONG_MAX)), {1}, {0});
  check_values(x(Slice(none, none, LLONG_MAX)), {1}, {0});
  check_values(x(Slice(none, none, -LLONG_MAX)), {1}, {4});
  check_values(x(Slice(3, none, LLONG_MAX - 1)), {1}, {3});
}

TEST_CASE("views: huge bounds clamp like Python", "[views][slice][edge]") {
  const Tensor x = iota({5});
  check_values(x(Slice(LLONG_MIN, LLONG_MAX)), {5}, {0, 1, 2, 3, 4});
  check_values(x(Slice(LLONG_MAX, LLONG_MIN, -1)), {5}, {4, 3, 2, 1, 0});
  check_values(x(Slice(LLONG_MIN, LLONG_MAX, 2)), {3}, {0, 2, 4});
  CHECK_THROWS_AS(x(LLONG_MIN), IndexError);
  CHECK_THROWS_AS(x(LLONG_MAX), IndexError);
}

TEST_CASE("views: integer indices drop the axis; negative indices count from the end", "[views][index]") {
  const Tensor m = iota({3, 4});
  check_values(m(1), {4}, {4, 5, 6, 7});
  check_values(m[1], {4}, {4, 5, 6, 7});
  check_values(m(-1), {4}, {8, 9, 10, 11});
  check_values(m(all, 2), {3}, {2, 6, 10});
  check_values(m(all, -4), {3}, {0, 4, 8});
  const Tensor e = m(2, 3);
  CHECK(e.rank() == 0);
  CHECK(e.item<double>() == 11.0);
  CHECK(m[2][3].item<double>() == 11.0);
  CHECK(shares(e, m));
  const Tensor t = iota({2, 3, 4});
  check_values(t(ellipsis, 0), {2, 3}, {0, 4, 8, 12, 16, 20});
  check_values(t(1, ellipsis), {3, 4}, {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23});
  check_values(t(0, ellipsis, -1), {3}, {3, 7, 11});
  CHECK(t(ellipsis).shape() == Shape{2, 3, 4});
  CHECK(t(0, 1, 2, ellipsis).rank() == 0);
  CHECK(t(newaxis).shape() == Shape{1, 2, 3, 4});
  CHECK(t(all, newaxis, 1).shape() == Shape{2, 1, 4});
  CHECK(t(ellipsis, newaxis).shape() == Shape{2, 3, 4, 1});
  check_values(t(1, newaxis, Slice(none, none, 2), -1), {1, 2}, {15, 23});
  // rank 0
  const Tensor s = scalar(7.0, kFloat64);
  CHECK(s(ellipsis).rank() == 0);
  CHECK(s(newaxis).shape() == Shape{1});
  CHECK(s(newaxis, newaxis).shape() == Shape{1, 1});
}

TEST_CASE("views: the book's slicing examples", "[views][slice][book]") {
  // a small stand-in for train_images [60000, 28, 28]: value = i * 784 + r * 28 + c
  const std::int64_t N = 300;
  const Tensor train_images = iota({N, 28, 28}, kFloat32);
  auto val = [](std::int64_t i, std::int64_t r, std::int64_t c) { return static_cast<double>(i * 784 + r * 28 + c); };

  const Tensor my_slice = train_images(Slice(10, 100));  // train_images[10:100]
  CHECK(my_slice.shape() == Shape{90, 28, 28});
  CHECK(shares(my_slice, train_images));
  CHECK(values(my_slice[0]) == values(train_images[10]));
  CHECK(my_slice(89, 27, 27).item<float>() == static_cast<float>(val(99, 27, 27)));
  // the same with explicit full slices
  CHECK(values(train_images(Slice(10, 100), all, all)) == values(my_slice));
  CHECK(values(train_images(Slice(10, 100), Slice(0, 28), Slice(0, 28))) == values(my_slice));

  const Tensor corner = train_images(all, Slice(14, none), Slice(14, none));  // [:, 14:, 14:]
  CHECK(corner.shape() == Shape{N, 14, 14});
  const Tensor center = train_images(all, Slice(7, -7), Slice(7, -7));  // [:, 7:-7, 7:-7]
  CHECK(center.shape() == Shape{N, 14, 14});
  std::size_t bad = 0;
  const auto cv = values(corner), mv = values(center);
  for (std::int64_t i = 0; i < N; ++i)
    for (std::int64_t r = 0; r < 14; ++r)
      for (std::int64_t c = 0; c < 14; ++c) {
        const auto f = static_cast<std::size_t>((i * 14 + r) * 14 + c);
        bad += cv[f] != val(i, r + 14, c + 14);
        bad += mv[f] != val(i, r + 7, c + 7);
      }
  CHECK(bad == 0);

  // batches [128 * n : 128 * (n + 1)]; the last one is short
  std::int64_t seen = 0;
  for (std::int64_t n = 0; n < 3; ++n) {
    const Tensor batch = train_images(Slice(128 * n, 128 * (n + 1)));
    const std::int64_t expected_len = std::min<std::int64_t>(128, N - 128 * n);
    CHECK(batch.shape() == Shape{expected_len, 28, 28});
    CHECK(batch(0, 0, 0).item<float>() == static_cast<float>(val(128 * n, 0, 0)));
    seen += batch.dim(0);
  }
  CHECK(seen == N);
  CHECK(train_images(Slice(128 * 3, 128 * 4)).shape() == Shape{0, 28, 28});
  // one digit
  const Tensor digit = train_images[4];
  CHECK(digit.shape() == Shape{28, 28});
  CHECK(digit(27, 0).item<float>() == static_cast<float>(val(4, 27, 0)));
}

// `x(Slice(0, 2)) = y` would rebind a temporary view and write nothing: it must not compile
// (writes go through assign), while a named tensor rebinds as any handle
static_assert(!std::is_assignable_v<Tensor&&, const Tensor&> && !std::is_assignable_v<Tensor&&, Tensor&&>);
static_assert(!std::is_assignable_v<Tensor&&, double>);
static_assert(std::is_assignable_v<Tensor&, const Tensor&> && std::is_assignable_v<Tensor&, Tensor&&>);
static_assert(std::is_nothrow_move_constructible_v<Tensor> && std::is_nothrow_move_assignable_v<Tensor>);

TEST_CASE("views: writes through slices change the base", "[views][slice][inplace]") {
  Tensor base = zeros({3, 4});
  base(Slice(0, none, 2), Slice(1, 3)).assign(tensor({1.f, 2.f, 3.f, 4.f}, {2, 2}));
  check_values(base, {3, 4}, {0, 1, 2, 0,  //
                              0, 0, 0, 0,  //
                              0, 3, 4, 0});
  base(1).assign(9.0);
  check_values(base(1), {4}, {9, 9, 9, 9});
  base(ellipsis, -1).assign(tensor({5.f, 6.f, 7.f}));
  check_values(base, {3, 4}, {0, 1, 2, 5,  //
                              9, 9, 9, 6,  //
                              0, 3, 4, 7});
  base(Slice(none, none, -1), 0).add_(tensor({1.f, 2.f, 3.f}));  // rows 2, 1, 0 get 1, 2, 3
  check_values(base(all, 0), {3}, {3, 11, 1});
  Tensor e = base(2, 2);
  e.assign(-1.0);
  CHECK(base(2, 2).item<float>() == -1.f);
  base(newaxis, 0, Slice(0, 2)).mul_(10.0);
  check_values(base(0), {4}, {30, 10, 2, 5});
}

TEST_CASE("views: index errors name the index, the axis and the size", "[views][index][errors]") {
  const Tensor m = iota({5, 3});
  CHECK_THROWS_AS(m(5), IndexError);
  CHECK_THROWS_WITH(m(5), Contains("index 5 is out of bounds for axis 0 with size 5"));
  CHECK_THROWS_AS(m(-6), IndexError);
  CHECK_THROWS_WITH(m(-6), Contains("index -6 is out of bounds for axis 0 with size 5"));
  CHECK_THROWS_WITH(m(all, 3), Contains("index 3 is out of bounds for axis 1 with size 3"));
  CHECK_THROWS_AS(m[7], IndexError);
  CHECK_THROWS_AS(m(0, 0, 0), IndexError);
  CHECK_THROWS_WITH(m(0, 0, 0), Contains("too many indices") && Contains("[5, 3]"));
  CHECK_THROWS_AS(m(ellipsis, 0, ellipsis), IndexError);
  CHECK_THROWS_AS(m(Slice(0, 3, 0)), ValueError);
  CHECK_THROWS_WITH(m(Slice(0, 3, 0)), Contains("step"));
  CHECK_THROWS_AS(scalar(1.f)(0), IndexError);
  CHECK_THROWS_AS(zeros({0})(0), IndexError);
  CHECK_NOTHROW(m(Slice(-100, 100)));  // slices clamp, never raise
}

// =================================================================== reshape, flatten

TEST_CASE("views: reshape infers -1 and shares storage when contiguous", "[views][reshape]") {
  const Tensor x = iota({2, 3, 4});
  const Tensor r = x.reshape({4, -1});
  CHECK(r.shape() == Shape{4, 6});
  CHECK(shares(r, x));
  CHECK(values(r) == values(x));
  CHECK(x.reshape({-1}).shape() == Shape{24});
  CHECK(x.reshape({2, -1, 2}).shape() == Shape{2, 6, 2});
  CHECK(x.reshape({1, 24, 1}).shape() == Shape{1, 24, 1});
  CHECK(scalar(3.f).reshape({1, 1}).shape() == Shape{1, 1});
  CHECK(scalar(3.f).reshape({-1}).shape() == Shape{1});
  CHECK(tensor({3.f}).reshape({}).rank() == 0);
  CHECK(zeros({0, 3}).reshape({-1, 6}).shape() == Shape{0, 6});
  CHECK(zeros({0, 3}).reshape({3, 0, 5}).shape() == Shape{3, 0, 5});
  // a view: writes go through
  Tensor y = zeros({2, 3});
  y.reshape({6})(Slice(1, none, 2)).assign(1.0);
  check_values(y, {2, 3}, {0, 1, 0, 1, 0, 1});
}

TEST_CASE("views: reshape copies only when the strides forbid a view (NumPy's rule)", "[views][reshape]") {
  // transposed [3, 4]: merging its axes needs a copy; splitting or adding 1s does not
  const Tensor t = iota({3, 4}).transpose();  // [4, 3], strides [1, 4]
  const Tensor flat = t.reshape({12});
  CHECK_FALSE(shares(flat, t));
  check_values(flat, {12}, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK(shares(t.reshape({4, 3, 1}), t));
  CHECK(shares(t.reshape({1, 4, 1, 3}), t));
  const Tensor split = t.reshape({2, 2, 3});
  CHECK(shares(split, t));
  check_values(split, {2, 2, 3}, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK_FALSE(shares(t.reshape({3, 4}), t));
  check_values(t.reshape({3, 4}), {3, 4}, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  // every second column of [4, 6]: strides [6, 2] are uniformly 2 apart, so even merging is a view
  const Tensor s = iota({4, 6})(all, Slice(0, 6, 2));  // [4, 3], strides [6, 2]
  CHECK(shares(s.reshape({2, 2, 3}), s));
  check_values(s.reshape({2, 2, 3}), {2, 2, 3}, {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22});
  CHECK(shares(s.reshape({12}), s));
  check_values(s.reshape({12}), {12}, {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22});
  // the first 4 columns of [4, 6]: strides [6, 1]; rows split freely, merging them copies
  const Tensor c = iota({4, 6})(all, Slice(0, 4));
  CHECK(shares(c.reshape({2, 2, 4}), c));
  CHECK(shares(c.reshape({4, 2, 2}), c));
  CHECK_FALSE(shares(c.reshape({16}), c));
  check_values(c.reshape({16}), {16}, {0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21});
  CHECK_FALSE(shares(c.reshape({8, 2}), c));
  check_values(c.reshape({8, 2})(Slice(2, 4)), {2, 2}, {6, 7, 8, 9});
  // rows 0 and 2 of a contiguous [4, 3]: rows stay whole, so splitting the last axis is a view
  const Tensor r = iota({4, 3})(Slice(0, 4, 2));  // [2, 3], strides [6, 1]
  CHECK(shares(r.reshape({2, 3, 1}), r));
  CHECK_FALSE(shares(r.reshape({6}), r));
  check_values(r.reshape({6}), {6}, {0, 1, 2, 6, 7, 8});
  // a broadcast (stride 0) tensor
  const Tensor b = tensor({1.f, 2.f, 3.f}).broadcast_to({2, 3});
  CHECK(shares(b.reshape({2, 1, 3}), b));
  CHECK_FALSE(shares(b.reshape({6}), b));
  check_values(b.reshape({6}), {6}, {1, 2, 3, 1, 2, 3});
}

TEST_CASE("views: reshape of random layouts keeps the row-major order", "[views][reshape]") {
  std::mt19937 rng(1101);
  for (int trial = 0; trial < 200; ++trial) {
    const Shape s = random_shape(rng, 0, 4);
    const Make how = kAllMakes[rand_int(rng, 0, 5)];
    const Tensor x = make_input(s, kFloat32, rng, how);
    // a random new shape with the same count: split the flat length into factors
    std::int64_t n = x.size();
    Shape ns;
    for (std::int64_t f : {2, 3, 2, 5})
      if (n > 0 && n % f == 0 && rand_int(rng, 0, 1) == 0) {
        ns.push_back(f);
        n /= f;
      }
    ns.push_back(n);
    if (rand_int(rng, 0, 1) == 0) ns.insert(ns.begin() + rand_int(rng, 0, static_cast<std::int64_t>(ns.size())), 1);
    std::shuffle(ns.begin(), ns.end(), rng);
    INFO("shape " << str(s) << " (" << make_name(how) << ") to " << str(ns));
    const Tensor y = x.reshape(ns);
    CHECK(str(y.shape()) == str(ns));
    CHECK(values(y) == values(x));
    if (x.is_contiguous()) CHECK(shares(x, y));
    const Tensor f = x.flatten();
    CHECK(f.shape() == Shape{x.size()});
    CHECK(values(f) == values(x));
  }
}

TEST_CASE("views: reshape errors", "[views][reshape][errors]") {
  const Tensor x = zeros({2, 3});
  CHECK_THROWS_AS(x.reshape({4}), ShapeError);
  CHECK_THROWS_WITH(x.reshape({4}), Contains("reshape: cannot reshape [2, 3] (6 elements) into [4] (4 elements)"));
  CHECK_THROWS_AS(x.reshape({4, -1}), ShapeError);
  CHECK_THROWS_WITH(x.reshape({4, -1}), Contains("reshape") && Contains("[2, 3]") && Contains("[4, -1]"));
  CHECK_THROWS_AS(x.reshape({-1, -1}), ValueError);
  CHECK_THROWS_AS(x.reshape({-2, -3}), ValueError);
  CHECK_THROWS_AS(zeros({0, 3}).reshape({0, -1}), ShapeError);  // NumPy cannot infer it either
}

TEST_CASE("views: flatten", "[views][reshape]") {
  const Tensor x = iota({2, 3});
  CHECK(shares(x.flatten(), x));
  CHECK(scalar(2.f).flatten().shape() == Shape{1});
  const Tensor t = x.transpose().flatten();
  check_values(t, {6}, {0, 3, 1, 4, 2, 5});
  CHECK(zeros({3, 0, 2}).flatten().shape() == Shape{0});
}

// =================================================================== transpose, permute, expand_dims, squeeze

TEST_CASE("views: transpose and permute move strides, not data", "[views][transpose]") {
  const Tensor x = iota({2, 3, 4});
  const Tensor t = x.transpose();
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.strides() == Shape{1, 4, 12});
  CHECK(shares(t, x));
  CHECK_FALSE(t.is_contiguous());
  const Tensor p = x.permute({1, 2, 0});
  CHECK(p.shape() == Shape{3, 4, 2});
  const Tensor sw = x.transpose(0, 2);
  CHECK(sw.shape() == Shape{4, 3, 2});
  const Tensor neg = x.permute({-1, 0, 1});
  CHECK(neg.shape() == Shape{4, 2, 3});
  // element [i, j, k] of the permutation is x[k, i, j]
  std::size_t bad = 0;
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j < 4; ++j)
      for (std::int64_t k = 0; k < 2; ++k) {
        bad += p(i, j, k).item<double>() != static_cast<double>(k * 12 + i * 4 + j);
        bad += t(j, i, k).item<double>() != static_cast<double>(k * 12 + i * 4 + j);
      }
  CHECK(bad == 0);
  check_values(iota({2, 3}).transpose(), {3, 2}, {0, 3, 1, 4, 2, 5});
  check_values(iota({2, 3}).transpose(-1, -2), {3, 2}, {0, 3, 1, 4, 2, 5});
  CHECK(x.transpose().transpose().is_contiguous());
  CHECK(scalar(1.f).transpose().rank() == 0);
  CHECK(iota({5}).transpose().shape() == Shape{5});
  CHECK(x.permute({0, 1, 2}).strides() == x.strides());
}

TEST_CASE("views: permute errors", "[views][transpose][errors]") {
  const Tensor x = zeros({2, 3, 4});
  CHECK_THROWS_AS(x.permute({0, 1}), ValueError);
  CHECK_THROWS_WITH(x.permute({0, 1}), Contains("permute") && Contains("[2, 3, 4]"));
  CHECK_THROWS_AS(x.permute({0, 1, 1}), ValueError);
  CHECK_THROWS_WITH(x.permute({0, 1, 1}), Contains("permute") && Contains("repeated"));
  CHECK_THROWS_AS(x.permute({0, 1, 3}), IndexError);
  CHECK_THROWS_WITH(x.permute({0, 1, 3}), Contains("axis 3 is out of range for a tensor of rank 3"));
  CHECK_THROWS_AS(x.transpose(0, 5), IndexError);
}

TEST_CASE("views: expand_dims and squeeze", "[views][squeeze]") {
  const Tensor x = iota({2, 3});
  CHECK(x.expand_dims(0).shape() == Shape{1, 2, 3});
  CHECK(x.expand_dims(1).shape() == Shape{2, 1, 3});
  CHECK(x.expand_dims(2).shape() == Shape{2, 3, 1});
  CHECK(x.expand_dims(-1).shape() == Shape{2, 3, 1});
  CHECK(x.expand_dims(-3).shape() == Shape{1, 2, 3});
  CHECK(shares(x.expand_dims(1), x));
  CHECK(values(x.expand_dims(1)) == values(x));
  CHECK(scalar(1.f).expand_dims(0).shape() == Shape{1});
  CHECK_THROWS_AS(x.expand_dims(3), IndexError);
  CHECK_THROWS_AS(x.expand_dims(-4), IndexError);

  const Tensor y = zeros({1, 3, 1, 2});
  CHECK(y.squeeze().shape() == Shape{3, 2});
  CHECK(y.squeeze({0}).shape() == Shape{3, 1, 2});
  CHECK(y.squeeze({-2}).shape() == Shape{1, 3, 2});
  CHECK(y.squeeze({0, 2}).shape() == Shape{3, 2});
  CHECK(shares(y.squeeze(), y));
  CHECK(zeros({1, 1}).squeeze().rank() == 0);
  CHECK(scalar(1.f).squeeze().rank() == 0);
  // a non-contiguous view stays a view
  const Tensor t = iota({3, 1, 4}).transpose();  // [4, 1, 3]
  CHECK(shares(t.squeeze(), t));
  check_values(t.squeeze(), {4, 3}, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK_THROWS_AS(y.squeeze({1}), ShapeError);
  CHECK_THROWS_WITH(y.squeeze({1}), Contains("squeeze: axis 1 has size 3") && Contains("[1, 3, 1, 2]"));
  CHECK_THROWS_AS(y.squeeze({4}), IndexError);
}

// =================================================================== broadcast_to

TEST_CASE("views: broadcast_to is a stride-0 view", "[views][broadcast]") {
  const Tensor row = tensor({1.f, 2.f, 3.f});
  const Tensor b = row.broadcast_to({2, 3});
  CHECK(b.shape() == Shape{2, 3});
  CHECK(b.strides()[0] == 0);
  CHECK(b.strides()[1] == 1);
  CHECK(shares(b, row));
  check_values(b, {2, 3}, {1, 2, 3, 1, 2, 3});
  const Tensor col = tensor({1.f, 2.f}, {2, 1});
  const Tensor c = col.broadcast_to({4, 2, 3});
  CHECK(c.strides()[0] == 0);
  CHECK(c.strides()[2] == 0);
  check_values(c(3), {2, 3}, {1, 1, 1, 2, 2, 2});
  CHECK(scalar(5.f).broadcast_to({2, 2}).strides() == Shape{0, 0});
  check_values(scalar(5.f).broadcast_to({2, 2}), {2, 2}, {5, 5, 5, 5});
  CHECK(tensor({1.f}).broadcast_to({0}).shape() == Shape{0});
  CHECK(row.broadcast_to({3}).strides() == row.strides());
  // a broadcast of a reversed view
  check_values(row(Slice(none, none, -1)).broadcast_to({2, 3}), {2, 3}, {3, 2, 1, 3, 2, 1});
  // contiguous() materialises it
  const Tensor m = b.contiguous();
  CHECK(m.is_contiguous());
  CHECK_FALSE(shares(m, b));
  check_values(m, {2, 3}, {1, 2, 3, 1, 2, 3});
}

TEST_CASE("views: broadcast_to errors name both shapes", "[views][broadcast][errors]") {
  const Tensor x = zeros({2, 3});
  CHECK_THROWS_AS(x.broadcast_to({3, 3}), ShapeError);
  CHECK_THROWS_WITH(x.broadcast_to({3, 3}), Contains("broadcast_to: cannot broadcast [2, 3] to [3, 3]"));
  CHECK_THROWS_AS(x.broadcast_to({3}), ShapeError);
  CHECK_THROWS_WITH(x.broadcast_to({3}), Contains("broadcast_to") && Contains("[2, 3]") && Contains("[3]"));
  CHECK_THROWS_AS(x.broadcast_to({2, 6}), ShapeError);
}

// =================================================================== maximum rank, overflowing and negative shapes

TEST_CASE("views: rank 17 is refused at creation, by every op that would make one", "[views][rank][errors]") {
  const Shape s17(17, 1), s16(16, 1);
  CHECK_THROWS_AS(zeros(s17), ShapeError);
  CHECK_THROWS_WITH(zeros(s17), Contains("zeros: shape [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1] has rank 17, "
                                         "more than the maximum of 16"));
  CHECK_THROWS_WITH(ones(s17), Contains("ones:") && Contains("rank 17"));
  CHECK_THROWS_WITH(full(s17, 2.0), Contains("full:") && Contains("rank 17"));
  CHECK_THROWS_WITH(empty(s17), Contains("empty:") && Contains("rank 17"));
  CHECK_THROWS_WITH(tensor<float>({1.f}, s17), Contains("tensor:") && Contains("rank 17"));
  Generator gen(1);
  CHECK_THROWS_WITH(uniform(s17, gen), Contains("uniform:") && Contains("rank 17"));
  // rank 16 is fine, and every view that adds an axis refuses to go past it
  const Tensor y = zeros(s16);
  CHECK(y.rank() == 16);
  CHECK(y.to_vector<float>() == std::vector<float>{0.f});
  CHECK(y.item<float>() == 0.f);
  CHECK_THROWS_AS(y.expand_dims(0), ShapeError);
  CHECK_THROWS_WITH(y.expand_dims(0), Contains("expand_dims:") && Contains("rank 17"));
  CHECK_THROWS_AS(y.reshape(s17), ShapeError);
  CHECK_THROWS_WITH(y.reshape(s17), Contains("reshape:") && Contains("rank 17"));
  CHECK_THROWS_AS(y(newaxis), ShapeError);
  CHECK_THROWS_WITH(y(newaxis), Contains("index:") && Contains("rank 17"));
  CHECK_THROWS_AS(y.broadcast_to(s17), ShapeError);
  CHECK_THROWS_WITH(y.broadcast_to(s17), Contains("broadcast_to:") && Contains("rank 17"));
  CHECK_THROWS_AS(stack({y, y}), ShapeError);
  CHECK(y(0).rank() == 15);
}

TEST_CASE("views: reshape to sizes whose product overflows raises instead of wrapping", "[views][reshape][overflow]") {
  const Tensor a = zeros({6});
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  CHECK_THROWS_AS(a.reshape({kMax, 2, -1}), ValueError);
  CHECK_THROWS_WITH(a.reshape({kMax, 2, -1}), Contains("reshape: the product of [9223372036854775807, 2, -1] "
                                                       "overflows int64"));
  CHECK_THROWS_AS(zeros({2}).reshape({kMax, kMax, -1}), ValueError);
  CHECK_THROWS_AS(a.reshape({kMax, 2, 2}), ValueError);
  // a 0 makes the product 0: then it is a plain size mismatch
  CHECK_THROWS_AS(a.reshape({kMax / 2 + 1, 2, 0}), ShapeError);
  // an empty tensor into [0, huge, huge]: the contiguous strides would overflow
  CHECK_THROWS_AS(zeros({0}).reshape({kMax, 4, 0}), ValueError);
  CHECK_THROWS_WITH(zeros({0}).reshape({kMax, 4, 0}), Contains("reshape:") && Contains("[9223372036854775807, 4, 0]"));
  CHECK_THROWS_AS(zeros({0}).reshape({0, kMax, kMax}), ValueError);
  CHECK_THROWS_AS(zeros({0, kMax, kMax}), ValueError);
  CHECK_THROWS_WITH(zeros({0, kMax, kMax}), Contains("zeros:") && Contains("more elements than an int64 can count"));
  CHECK(zeros({0}).reshape({kMax, 0}).shape() == Shape{kMax, 0});
  CHECK(zeros({0}).reshape({kMax, 0}).size() == 0);
}

TEST_CASE("views: broadcast_to refuses negative and overflowing sizes", "[views][broadcast][errors]") {
  CHECK_THROWS_AS(zeros({1}).broadcast_to({-3}), ShapeError);
  CHECK_THROWS_WITH(zeros({1}).broadcast_to({-3}), Contains("broadcast_to: cannot broadcast [1] to [-3]: negative size "
                                                            "-3 at axis 0"));
  CHECK_THROWS_AS(zeros({1, 1}).broadcast_to({-2, 1}), ShapeError);
  CHECK_THROWS_AS(zeros({1}).broadcast_to({-1, 1}), ShapeError);
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  CHECK_THROWS_AS(zeros({1}).broadcast_to({kMax, 2}), ValueError);
  CHECK_THROWS_WITH(zeros({1}).broadcast_to({kMax, 2}), Contains("broadcast_to:") &&
                                                          Contains("more elements than an int64 can count"));
}

TEST_CASE("views: squeeze refuses a repeated axis (NumPy)", "[views][squeeze][errors]") {
  const Tensor a = zeros({1, 3, 1});
  CHECK_THROWS_AS(a.squeeze({0, 0}), ValueError);
  CHECK_THROWS_WITH(a.squeeze({0, 0}), Contains("squeeze: repeated axis in [0, 0]"));
  CHECK_THROWS_WITH(a.squeeze({-1, 2}), Contains("squeeze: repeated axis in [-1, 2]"));
  CHECK(a.squeeze({0, 2}).shape() == Shape{3});
}
