// Keras 3's image augmentation layers (Deep Learning with Python ch. 8): RandomFlip,
// RandomRotation, RandomZoom, RandomTranslation, RandomContrast. The affine ones against the real
// Keras 3 with degenerate ranges (golden/augmentation_golden.hpp: every fill mode and both
// interpolations) on the CPU and cuda:0; the random draws through structured images; gradients
// by finite differences; argument and shape errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "golden/augmentation_golden.hpp"
#include "layer_test_util.hpp"
#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using namespace tapeflow::layers;
namespace g = augmentation_golden;
using Catch::Matchers::Contains;

using lt::devices;
using lt::dvals;

namespace {

std::shared_ptr<Layer> make(const g::Case& c) {
  AugmentOptions o;
  o.fill_mode = c.fill_mode;
  o.interpolation = c.interpolation;
  o.fill_value = c.fill_value;
  const Factor first(c.lower1, c.upper1), second(c.lower2, c.upper2);
  if (c.kind == 0) return std::make_shared<RandomRotation>(first, o);
  if (c.kind == 1) {
    return std::make_shared<RandomZoom>(first, c.has_second ? std::optional<Factor>(second) : std::nullopt, o);
  }
  return std::make_shared<RandomTranslation>(first, second, o);
}

// Pixel (y, x) of image i of a [b, h, w, c] host copy, channel ch.
double at(const std::vector<double>& v, const Shape& s, std::int64_t i, std::int64_t y, std::int64_t x,
          std::int64_t ch) {
  return v[static_cast<std::size_t>(((i * s[1] + y) * s[2] + x) * s[3] + ch)];
}

// [n, 9, 9, 2] images whose channels are x - 4 and y - 4: a transform that keeps the centre's
// neighbours inside reads its own input coordinates back (bilinear interpolation is exact on
// linear functions).
Tensor coordinate_images(std::int64_t n) {
  std::vector<double> v;
  for (std::int64_t i = 0; i < n; ++i) {
    for (int y = 0; y < 9; ++y) {
      for (int x = 0; x < 9; ++x) {
        v.push_back(x - 4);
        v.push_back(y - 4);
      }
    }
  }
  return tensor(v, {n, 9, 9, 2}, kFloat32);
}

}  // namespace

TEST_CASE("affine augmentations match Keras 3 with fixed ranges, on every device") {
  const Tensor x = tensor(g::x, {2, 5, 6, 2});
  for (const Device dev : devices()) {
    for (const g::Case& c : g::cases) {
      INFO(c.name << " on " << dev.str());
      auto layer = make(c);
      layer->set_seed(3);
      const Tensor y = (*layer)(x.to(dev), true);
      REQUIRE(y.shape() == Shape{2, 5, 6, 2});
      REQUIRE(y.device() == dev);
      const std::vector<double> got = dvals(y);
      for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i);
        REQUIRE(got[i] == Approx(c.y[i]).margin(2e-5));
      }
      CHECK(dvals((*layer)(x.to(dev), false)) == dvals(x));  // inference: the identity
    }
  }
}

TEST_CASE("RandomFlip flips each image or not, per axis, reproducibly") {
  const Shape s{32, 3, 4, 2};
  const Tensor x = lt::irregular(s);
  const std::vector<double> xv = dvals(x);
  for (const std::string mode : {"horizontal", "vertical", "horizontal_and_vertical"}) {
    INFO(mode);
    std::vector<double> first;
    for (const Device dev : devices()) {
      RandomFlip flip(mode);
      flip.set_seed(11);
      const std::vector<double> y = dvals(flip(x.to(dev), true));
      // outcome of each image: bit 0 = flipped left-right, bit 1 = upside down
      int seen[4] = {0, 0, 0, 0};
      for (std::int64_t i = 0; i < s[0]; ++i) {
        int match = -1;
        for (int o = 0; o < 4 && match < 0; ++o) {
          bool eq = true;
          for (std::int64_t r = 0; r < s[1] && eq; ++r) {
            for (std::int64_t q = 0; q < s[2] && eq; ++q) {
              for (std::int64_t ch = 0; ch < s[3]; ++ch) {
                const std::int64_t sr = (o & 2) ? s[1] - 1 - r : r, sq = (o & 1) ? s[2] - 1 - q : q;
                if (at(y, s, i, r, q, ch) != at(xv, s, i, sr, sq, ch)) eq = false;
              }
            }
          }
          if (eq) match = o;
        }
        REQUIRE(match >= 0);
        ++seen[match];
      }
      // every outcome the mode allows occurs, and no other
      const bool h = mode != "vertical", v = mode != "horizontal";
      CHECK(seen[0] > 0);
      CHECK((seen[1] > 0) == h);
      CHECK((seen[2] > 0) == v);
      CHECK((seen[3] > 0) == (h && v));
      if (first.empty()) {
        first = y;
      } else {
        CHECK(y == first);  // the same seed flips the same images on every device
      }
      CHECK(dvals(flip(x.to(dev), false)) == xv);
    }
    RandomFlip again(mode);
    again.set_seed(11);
    CHECK(dvals(again(x, true)) == first);
  }
}

TEST_CASE("the random transforms stay inside their ranges and cover them") {
  const std::int64_t n = 400;
  const Tensor x = coordinate_images(n);
  const Shape s = x.shape();
  // (lo, hi) of the values v(i) over the images
  auto bounds = [&](const std::function<double(std::int64_t)>& v) {
    double lo = 1e9, hi = -1e9;
    for (std::int64_t i = 0; i < n; ++i) {
      lo = std::min(lo, v(i));
      hi = std::max(hi, v(i));
    }
    return std::pair<double, double>(lo, hi);
  };
  AugmentOptions near;
  near.fill_mode = "nearest";

  SECTION("RandomRotation: turns in [lower, upper]") {
    RandomRotation rot(Factor(-0.1, 0.2), near);
    rot.set_seed(5);
    const std::vector<double> y = dvals(rot(x, true));
    // output pixel (4, 5) reads the input at the centre plus (cos, sin) of the angle
    const auto [lo, hi] = bounds([&](std::int64_t i) {
      CHECK(std::hypot(at(y, s, i, 4, 5, 0), at(y, s, i, 4, 5, 1)) == Approx(1.0).margin(1e-5));
      return std::atan2(at(y, s, i, 4, 5, 1), at(y, s, i, 4, 5, 0)) / (2 * 3.14159265358979);
    });
    CHECK(lo >= -0.1 - 1e-6);
    CHECK(lo < -0.09);
    CHECK(hi <= 0.2 + 1e-6);
    CHECK(hi > 0.19);
  }
  SECTION("RandomZoom: one zoom for both axes without width_factor, independent ones with it") {
    RandomZoom same(Factor(-0.3, 0.2), std::nullopt, near);
    same.set_seed(5);
    const std::vector<double> y = dvals(same(x, true));
    const auto [lo, hi] = bounds([&](std::int64_t i) {
      CHECK(at(y, s, i, 5, 4, 1) == Approx(at(y, s, i, 4, 5, 0)).margin(1e-6));
      return at(y, s, i, 4, 5, 0);
    });
    CHECK(lo >= 0.7 - 1e-6);
    CHECK(lo < 0.72);
    CHECK(hi <= 1.2 + 1e-6);
    CHECK(hi > 1.18);

    RandomZoom both(Factor(-0.3, 0.2), Factor(0.1, 0.4), near);
    both.set_seed(5);
    const std::vector<double> z = dvals(both(x, true));
    const auto [wlo, whi] = bounds([&](std::int64_t i) { return at(z, s, i, 4, 5, 0); });
    const auto [hlo, hhi] = bounds([&](std::int64_t i) { return at(z, s, i, 5, 4, 1); });
    CHECK((wlo >= 1.1 - 1e-6 && wlo < 1.12 && whi <= 1.4 + 1e-6 && whi > 1.38));
    CHECK((hlo >= 0.7 - 1e-6 && hlo < 0.72 && hhi <= 1.2 + 1e-6 && hhi > 1.18));
  }
  SECTION("RandomTranslation: shifts in [lower, upper] times the size") {
    RandomTranslation shift(Factor(-0.2, 0.3), Factor(0.1), near);
    shift.set_seed(5);
    const std::vector<double> y = dvals(shift(x, true));
    // the centre reads the input at the centre minus the shift
    const auto [ylo, yhi] = bounds([&](std::int64_t i) { return -at(y, s, i, 4, 4, 1) / 9; });
    const auto [xlo, xhi] = bounds([&](std::int64_t i) { return -at(y, s, i, 4, 4, 0) / 9; });
    CHECK((ylo >= -0.2 - 1e-6 && ylo < -0.19 && yhi <= 0.3 + 1e-6 && yhi > 0.29));
    CHECK((xlo >= -0.1 - 1e-6 && xlo < -0.09 && xhi <= 0.1 + 1e-6 && xhi > 0.09));
  }
}

TEST_CASE("RandomContrast scales each image about its channel means, in Keras 3's range, clipped") {
  const Shape s{300, 3, 4, 2};
  const Tensor x = lt::irregular(s, 0, 10);
  const std::vector<double> xv = dvals(x);
  const std::vector<double> m = dvals(mean(x, {1, 2}, true));  // [300, 1, 1, 2]
  auto factors = [&](RandomContrast& layer, Device dev) {
    const std::vector<double> y = dvals(layer(x.to(dev), true));
    std::vector<double> c;
    for (std::int64_t i = 0; i < s[0]; ++i) {
      const double ci = (at(y, s, i, 0, 0, 0) - m[2 * i]) / (at(xv, s, i, 0, 0, 0) - m[2 * i]);
      // the same factor for every pixel and channel of an image
      for (std::int64_t r = 0; r < s[1]; ++r) {
        for (std::int64_t ch = 0; ch < s[3]; ++ch) {
          const double mi = m[2 * i + ch];
          CHECK(at(y, s, i, r, 3, ch) == Approx((at(xv, s, i, r, 3, ch) - mi) * ci + mi).margin(1e-4));
        }
      }
      c.push_back(ci);
    }
    return c;
  };
  for (const Device dev : devices()) {
    INFO(dev.str());
    RandomContrast pair(Factor(0.3, 0.6), {-1e9, 1e9});
    pair.set_seed(2);
    const std::vector<double> c = factors(pair, dev);
    CHECK(*std::min_element(c.begin(), c.end()) >= 0.7 - 1e-4);
    CHECK(*std::min_element(c.begin(), c.end()) < 0.72);
    CHECK(*std::max_element(c.begin(), c.end()) <= 1.6 + 1e-4);
    CHECK(*std::max_element(c.begin(), c.end()) > 1.58);

    RandomContrast bare(0.5, {-1e9, 1e9});  // Keras 3.15: [1, 1.5]
    bare.set_seed(2);
    const std::vector<double> d = factors(bare, dev);
    CHECK(*std::min_element(d.begin(), d.end()) >= 1 - 1e-4);
    CHECK(*std::max_element(d.begin(), d.end()) <= 1.5 + 1e-4);
    CHECK(*std::max_element(d.begin(), d.end()) > 1.48);

    RandomContrast clipped(Factor(0.9, 1.0), {2, 8});
    clipped.set_seed(2);
    const std::vector<double> y = dvals(clipped(x.to(dev), true));
    CHECK(*std::min_element(y.begin(), y.end()) == 2.0);
    CHECK(*std::max_element(y.begin(), y.end()) == 8.0);
    CHECK(dvals(clipped(x.to(dev), false)) == xv);
  }
}

TEST_CASE("gradients of the affine augmentations match finite differences in float64") {
  AugmentOptions o;
  o.fill_mode = "constant";
  o.fill_value = 0.7;
  RandomRotation rot(Factor(0.07, 0.07), o);
  const Tensor x = lt::irregular({2, 4, 5, 2}, -2, 2, kFloat64);
  for (const Device dev : devices()) {
    INFO(dev.str());
    const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return rot(in[0], true); }, {x.to(dev)});
    {
      INFO(r.message);
      CHECK(r.ok);
    }
    RandomZoom zoom(Factor(-0.3, -0.3), Factor(0.2, 0.2));  // reflect
    const GradcheckResult z = gradcheck([&](const std::vector<Tensor>& in) { return zoom(in[0], true); }, {x.to(dev)});
    INFO(z.message);
    CHECK(z.ok);
  }
}

TEST_CASE("augmentation layers reject bad factors, modes and shapes") {
  CHECK_THROWS_AS(RandomRotation(1.5), ValueError);
  CHECK_THROWS_WITH(RandomRotation(Factor(-0.2, 1.5)), Contains("RandomRotation") && Contains("factor") &&
                                                             Contains("(-0.2, 1.5)"));
  CHECK_THROWS_WITH(RandomZoom(-1.0), Contains("RandomZoom") && Contains("height_factor"));
  CHECK_THROWS_WITH(RandomZoom(0.2, Factor(0.1, 2.0)), Contains("RandomZoom") && Contains("width_factor"));
  CHECK_THROWS_WITH(RandomTranslation(0.1, -1.2), Contains("RandomTranslation") && Contains("width_factor"));
  CHECK_THROWS_WITH(RandomContrast(-0.1), Contains("RandomContrast") && Contains("factor"));
  AugmentOptions bad;
  bad.fill_mode = "mirror";
  CHECK_THROWS_WITH(RandomRotation(0.1, bad), Contains("RandomRotation") && Contains("fill_mode") && Contains("mirror"));
  AugmentOptions cubic;
  cubic.interpolation = "cubic";
  CHECK_THROWS_WITH(RandomZoom(0.1, std::nullopt, cubic), Contains("RandomZoom") && Contains("cubic"));
  CHECK_THROWS_WITH(RandomFlip("diagonal"), Contains("RandomFlip") && Contains("diagonal"));

  const Tensor x3 = zeros({5, 6, 2});
  RandomRotation rot(0.1);
  CHECK_THROWS_WITH(rot(x3, true), Contains("random_rotation") && Contains("[5, 6, 2]"));
  RandomFlip flip;
  CHECK_THROWS_AS(flip(x3, false), ValueError);
  RandomContrast contrast(0.2);
  CHECK_THROWS_WITH(contrast(x3, true), Contains("random_contrast") && Contains("[5, 6, 2]"));
}

TEST_CASE("the book's data_augmentation Sequential: random in training, the identity in inference, seeded") {
  auto augment = [] {
    Sequential m(RandomFlip("horizontal"), RandomRotation(0.1), RandomZoom(0.2));
    m.set_seed(42);
    return m;
  };
  const Tensor x = lt::irregular({4, 8, 8, 3}, 0, 1);
  Sequential a = augment(), b = augment();
  const Tensor y = a(x, true);
  CHECK(y.shape() == x.shape());
  CHECK(max(abs(y - x)).item<float>() > 0.1f);
  CHECK(dvals(y) == dvals(b(x, true)));
  CHECK(dvals(a(x, false)) == dvals(x));
  CHECK(dvals(a.predict(x)) == dvals(x));
}
