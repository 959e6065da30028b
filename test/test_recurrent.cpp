// The recurrent layers (SimpleRNN, LSTM, GRU) against the real Keras 3 in float64 with the same
// weights (golden/rnn_golden.hpp: outputs and input gradients; initial states, return_state and
// masks with their gradients), float64 gradchecks through time, dropout's masks, the orthogonal
// initializer, errors, every device, and sequence tasks learnt by fit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "golden/rnn_golden.hpp"
#include "layer_test_util.hpp"
#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using namespace tapeflow::layers;
namespace g = rnn_golden;
using Catch::Matchers::Contains;

using lt::devices;

namespace {

template <std::size_t N>
Tensor arr(const double (&v)[N], const Shape& shape, DType dtype = kFloat64) {
  return tensor(std::vector<double>(v, v + N), shape, kFloat64).astype(dtype);
}

void set(const Variable& weight, const Tensor& value) {
  Variable w = weight;
  w.assign(value.astype(w.dtype()));
}

// The layer of each golden case and the golden weights of its recurrent layers (one, or a
// Bidirectional's forward then backward), loaded after the first call builds them.
struct Weights {
  const double *kernel, *recurrent, *bias;
  std::size_t nk, nr, nb;
};

template <std::size_t K, std::size_t R, std::size_t B>
Weights w(const double (&k)[K], const double (&r)[R], const double (&b)[B]) {
  return {k, r, b, K, R, B};
}

struct Made {
  LayerPtr layer;
  std::vector<std::pair<std::shared_ptr<Recurrent>, Weights>> parts;
};

Made make(const std::string& name) {
  RecurrentOptions o;
  o.return_sequences = name.find("_seq") != std::string::npos || name == "simple_rnn_backwards";
  o.go_backwards = name.find("backwards") != std::string::npos;
  o.zero_output_for_mask = name.find("_zero") != std::string::npos;
  if (name.rfind("bidirectional", 0) == 0) {
    const bool lstm = name.find("lstm") != std::string::npos;
    std::shared_ptr<Recurrent> inner = lstm ? std::shared_ptr<Recurrent>(std::make_shared<LSTM>(g::kU, Activation::Tanh, o))
                                            : std::make_shared<GRU>(g::kU, Activation::Tanh, o);
    const MergeMode mode = name.find("sum") != std::string::npos   ? MergeMode::Sum
                           : name.find("ave") != std::string::npos ? MergeMode::Ave
                                                                   : MergeMode::Concat;
    auto bi = std::make_shared<Bidirectional>(inner, mode);
    if (lstm) {
      return {bi, {{bi->forward_layer(), w(g::kLstmKernel, g::kLstmRecurrent, g::kLstmBias)},
                   {bi->backward_layer(), w(g::kLstmBackKernel, g::kLstmBackRecurrent, g::kLstmBackBias)}}};
    }
    return {bi, {{bi->forward_layer(), w(g::kGruKernel, g::kGruRecurrent, g::kGruBias)},
                 {bi->backward_layer(), w(g::kGruBackKernel, g::kGruBackRecurrent, g::kGruBackBias)}}};
  }
  if (name.rfind("simple_rnn", 0) == 0) {
    const Activation a = name == "simple_rnn_last_relu" ? Activation::Relu : Activation::Tanh;
    auto l = std::make_shared<SimpleRNN>(g::kU, a, o);
    return {l, {{l, w(g::kRnnKernel, g::kRnnRecurrent, g::kRnnBias)}}};
  }
  if (name.rfind("lstm", 0) == 0) {
    auto l = std::make_shared<LSTM>(g::kU, Activation::Tanh, o);
    return {l, {{l, w(g::kLstmKernel, g::kLstmRecurrent, g::kLstmBias)}}};
  }
  if (name.rfind("gru_v1", 0) == 0) {
    o.reset_after = false;
    auto l = std::make_shared<GRU>(g::kU, Activation::Tanh, o);
    return {l, {{l, w(g::kGruV1Kernel, g::kGruV1Recurrent, g::kGruV1Bias)}}};
  }
  auto l = std::make_shared<GRU>(g::kU, Activation::Tanh, o);
  return {l, {{l, w(g::kGruKernel, g::kGruRecurrent, g::kGruBias)}}};
}

void load(const Made& m, Device d) {
  for (const auto& [l, wt] : m.parts) {
    set(l->kernel(), tensor(std::vector<double>(wt.kernel, wt.kernel + wt.nk), l->kernel().shape(), kFloat64).to(d));
    set(l->recurrent_kernel(),
        tensor(std::vector<double>(wt.recurrent, wt.recurrent + wt.nr), l->recurrent_kernel().shape(), kFloat64).to(d));
    set(l->bias(), tensor(std::vector<double>(wt.bias, wt.bias + wt.nb), l->bias().shape(), kFloat64).to(d));
  }
}

// linspace(lo, hi) in `shape`, float64 on `d`
Tensor lin(const Shape& shape, double lo, double hi, Device d) {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = n == 1 ? lo : lo + (hi - lo) * i / (n - 1);
  return tensor(v, shape, kFloat64).to(d);
}

template <std::size_t N>
void check_close(const Tensor& got, const double (&want)[N], std::size_t n, const char* what) {
  INFO(what);
  REQUIRE(got.defined());
  REQUIRE(static_cast<std::size_t>(got.size()) == n);
  const auto v = got.to(Device::cpu()).astype(kFloat64).to_vector<double>();
  // the weights are float32 (the golden values rounded): agreement to float32's precision
  for (std::size_t i = 0; i < n; ++i) CHECK(v[i] == Approx(want[i]).epsilon(1e-5).margin(1e-6));
}

Tensor golden_mask(Device d) {
  std::vector<std::uint8_t> m(g::kMask, g::kMask + g::kB2 * g::kT);
  return tensor(std::vector<std::int32_t>(m.begin(), m.end()), {g::kB2, g::kT}).astype(kBool).to(d);
}

// The layer of a golden case on `d`, built by a first call on x and given the golden weights
Made built(const std::string& name, const Tensor& x, Device d) {
  Made m = make(name);
  m.layer->set_device(d);
  (*m.layer)(x);
  load(m, d);
  return m;
}

}  // namespace

TEST_CASE("recurrent layers match Keras 3: outputs and input gradients, every device", "[recurrent]") {
  if (!cuda::is_available()) WARN("CUDA half skipped: " << cuda::status());
  for (const Device& d : devices()) {
    for (const auto& c : g::kCases) {
      INFO(c.name << " on " << d.str());
      const Tensor x = arr(g::kX, {g::kB, g::kT, g::kF}).to(d);
      Made m = built(c.name, x, d);
      GradientTape tape;
      tape.watch(x);
      const Tensor y = (*m.layer)(x);
      CHECK(y.device() == d);
      CHECK(y.rank() == c.rank);
      CHECK(y.shape() == (c.rank == 3 ? Shape{g::kB, g::kT, c.units} : Shape{g::kB, c.units}));
      const std::int64_t n = y.size();
      const auto dx = tape.gradient(sum(y * lin(y.shape(), -1, 1, d)), x).to(Device::cpu()).to_vector<double>();
      const auto yv = y.to(Device::cpu()).to_vector<double>();
      // the weights are float32 (the golden values rounded): agreement to float32's precision
      for (std::int64_t i = 0; i < n; ++i) CHECK(yv[static_cast<std::size_t>(i)] == Approx(c.y[i]).epsilon(1e-5).margin(1e-6));
      for (std::size_t i = 0; i < dx.size(); ++i) CHECK(dx[i] == Approx(c.dx[i]).epsilon(1e-5).margin(1e-6));
    }
  }
}

TEST_CASE("call_with_state matches Keras 3: initial states, return_state, masks, gradients, every device",
          "[recurrent][state][mask]") {
  for (const Device& d : devices()) {
    for (const auto& c : g::kStateCases) {
      INFO(c.name << " on " << d.str());
      const Tensor x = arr(g::kX2, {g::kB2, g::kT, g::kF}).to(d);
      Made m = built(c.name, x, d);
      const Tensor h0 = arr(g::kH0, {g::kB2, g::kU}).to(d), c0 = arr(g::kC0, {g::kB2, g::kU}).to(d);
      // the bool mask, or the same as int32 (nonzero = a real step) for the even cases
      const bool as_int = (&c - g::kStateCases) % 2 == 0;
      const Tensor mask = !c.masked ? Tensor() : as_int ? golden_mask(d).astype(kInt32) : golden_mask(d);
      const auto rec = std::dynamic_pointer_cast<Recurrent>(m.layer);
      auto* bi = dynamic_cast<Bidirectional*>(m.layer.get());
      const Variable kernel = m.parts[0].first->kernel();
      std::vector<Tensor> init;
      if (c.initial_state) init = c.n_states == 2 ? std::vector<Tensor>{h0, c0} : std::vector<Tensor>{h0};
      GradientTape tape;
      tape.watch(x);
      tape.watch(h0);
      tape.watch(c0);
      RecurrentResult r;
      if (bi) {
        r.output = bi->call_with_mask(x, mask);
      } else {
        REQUIRE(rec);
        r = rec->call_with_state(x, init, false, mask);
      }
      REQUIRE(static_cast<int>(r.states.size()) == c.n_states);
      CHECK(r.output.device() == d);
      CHECK(r.output.shape() == (c.rank == 3 ? Shape{g::kB2, g::kT, c.units} : Shape{g::kB2, c.units}));
      Tensor total = sum(r.output * lin(r.output.shape(), -1, 1, d));
      if (c.n_states >= 1) total = total + sum(r.states[0] * lin({g::kB2, g::kU}, -0.5, 1.5, d));
      if (c.n_states == 2) total = total + sum(r.states[1] * lin({g::kB2, g::kU}, 1, -1, d));
      const auto grads = tape.gradient(total, std::vector<Tensor>{x, h0, c0, kernel});
      check_close(r.output, c.y, static_cast<std::size_t>(r.output.size()), "output");
      if (c.n_states >= 1) check_close(r.states[0], c.h, g::kB2 * g::kU, "h");
      if (c.n_states == 2) check_close(r.states[1], c.c, g::kB2 * g::kU, "c");
      check_close(grads[0], c.dx, g::kB2 * g::kT * g::kF, "dx");
      if (c.initial_state) check_close(grads[1], c.dh0, g::kB2 * g::kU, "dh0");
      if (c.initial_state && c.n_states == 2) check_close(grads[2], c.dc0, g::kB2 * g::kU, "dc0");
      check_close(grads[3], c.dkernel, static_cast<std::size_t>(kernel.size()), "dkernel");
      if (c.masked && c.n_states >= 1) {
        // the fully masked row: the final states are the initial ones (zeros without them)
        for (std::size_t i = 0; i < r.states.size(); ++i) {
          const Tensor start = c.initial_state ? (i == 0 ? h0 : c0) : zeros({g::kB2, g::kU}, kFloat64, d);
          CHECK(r.states[i](1).to(Device::cpu()).to_vector<double>() == start(1).to(Device::cpu()).to_vector<double>());
        }
      }
    }
  }
}

TEST_CASE("call_with_state: the plain call is the same, errors name the layer and the shapes",
          "[recurrent][state][mask]") {
  LSTM lstm(3);
  lstm.set_seed(2);
  const Tensor x = uniform({2, 4, 5}, lstm.generator(), -1.0, 1.0);
  // the first call builds and names the layer, as operator() does
  const RecurrentResult r = lstm.call_with_state(x);
  CHECK(lstm.built());
  CHECK(lstm.name() == "lstm");
  CHECK(lstm.output_shape() == Shape{-1, 3});
  REQUIRE(r.states.size() == 2);
  CHECK(r.output.to_vector<float>() == lstm(x).to_vector<float>());
  CHECK(r.states[0].to_vector<float>() == r.output.to_vector<float>());  // h is the last output
  CHECK(r.states[1].shape() == Shape{2, 3});
  // zeros as initial states and an all-true mask change nothing
  const RecurrentResult same = lstm.call_with_state(x, {zeros({2, 3}), zeros({2, 3})}, false, ones({2, 4}));
  CHECK(same.output.to_vector<float>() == r.output.to_vector<float>());
  CHECK(same.states[1].to_vector<float>() == r.states[1].to_vector<float>());
  // a float64 initial state is cast to the computation's dtype, as Keras does
  CHECK(lstm.call_with_state(x, {zeros({2, 3}, kFloat64), zeros({2, 3}, kFloat64)}).output.dtype() == kFloat32);

  CHECK_THROWS_WITH(lstm.call_with_state(x, {zeros({2, 3})}),
                    Contains("lstm") && Contains("expected 2 initial states (h, c), got 1"));
  CHECK_THROWS_AS(lstm.call_with_state(x, {zeros({2, 3}), zeros({3, 3})}), ShapeError);
  CHECK_THROWS_WITH(lstm.call_with_state(x, {zeros({2, 3}), zeros({3, 3})}),
                    Contains("lstm") && Contains("initial state 1 (c)") && Contains("[batch, units] = [2, 3]") &&
                        Contains("[2, 4, 5]") && Contains("[3, 3]"));
  CHECK_THROWS_WITH(lstm.call_with_state(x, {Tensor(), zeros({2, 3})}), Contains("lstm") && Contains("undefined"));
  CHECK_THROWS_AS(lstm.call_with_state(x, {}, false, ones({2, 5})), ShapeError);
  CHECK_THROWS_WITH(lstm.call_with_state(x, {}, false, ones({2, 5})),
                    Contains("lstm") && Contains("mask") && Contains("[batch, time] = [2, 4]") && Contains("[2, 5]"));
  GRU gru(2);
  CHECK_THROWS_WITH(gru.call_with_state(zeros({1, 3, 2}), {zeros({1, 2}), zeros({1, 2})}),
                    Contains("gru") && Contains("expected 1 initial state (h), got 2"));
  // a failed call leaves nothing pending: the next plain call starts from zeros
  CHECK(gru(zeros({1, 3, 2})).to_vector<float>() == std::vector<float>(2, 0.0f));

  for (double rate : {-0.1, 1.0, 1.5}) {
    RecurrentOptions o;
    o.dropout = rate;
    CHECK_THROWS_WITH(SimpleRNN(2, "tanh", o), Contains("SimpleRNN") && Contains("dropout must be in [0, 1)"));
    RecurrentOptions ro;
    ro.recurrent_dropout = rate;
    CHECK_THROWS_WITH(LSTM(2, "tanh", ro), Contains("LSTM") && Contains("recurrent_dropout must be in [0, 1)"));
  }
}

TEST_CASE("call_with_state: float64 gradcheck with a mask and initial states", "[recurrent][state][gradcheck]") {
  const Tensor x = arr(g::kX2, {g::kB2, g::kT, g::kF});
  const Tensor h0 = arr(g::kH0, {g::kB2, g::kU}), c0 = arr(g::kC0, {g::kB2, g::kU});
  const Tensor mask = golden_mask(Device::cpu());
  for (const char* name : {"simple_rnn_mask_seq", "lstm_mask_seq", "gru_mask_last_backwards", "gru_v1_mask_seq_zero",
                           "lstm_mask_seq_backwards_zero"}) {
    INFO(name);
    Made m = make(name);
    const auto rec = std::dynamic_pointer_cast<Recurrent>(m.layer);
    REQUIRE(rec);
    const bool lstm = rec->num_states() == 2;
    // the output and every final state, flattened into one vector
    const auto f = [&](const std::vector<Tensor>& in) {
      const std::vector<Tensor> init = lstm ? std::vector<Tensor>{in[1], in[2]} : std::vector<Tensor>{in[1]};
      const RecurrentResult r = rec->call_with_state(in[0], init, false, mask);
      std::vector<Tensor> parts = {r.output.reshape({-1})};
      for (const auto& s : r.states) parts.push_back(s.reshape({-1}));
      return concat(parts, 0);
    };
    const auto r = gradcheck(f, lstm ? std::vector<Tensor>{x, h0, c0} : std::vector<Tensor>{x, h0});
    INFO(r.message);
    CHECK(r.ok);
  }
}

namespace {

// A linear SimpleRNN on `d` returning sequences, with the given kernel, recurrent kernel and a
// zero bias.
std::shared_ptr<SimpleRNN> linear_rnn(const Tensor& kernel, const Tensor& recurrent, RecurrentOptions o, Device d) {
  o.return_sequences = true;
  auto l = std::make_shared<SimpleRNN>(recurrent.dim(0), Activation::Linear, o);
  l->set_seed(11);
  l->set_device(d);
  (*l)(zeros({1, 1, kernel.dim(0)}, kFloat64, d));
  set(l->kernel(), kernel.to(d));
  set(l->recurrent_kernel(), recurrent.to(d));
  set(l->bias(), zeros({recurrent.dim(0)}, kFloat32, d));
  return l;
}

// y [batch, steps, units] of the constructions below: y_0 is a dropout mask (each 0 or
// `scale`), and y_t = y_0 at every t (an input mask) or y_0^(t + 1) (a recurrent mask, h
// multiplied by it at every step); checks that and returns the fraction of y_0 kept
double fraction_kept(const std::vector<double>& y, const Shape& shape, double scale, bool recurrent) {
  const std::int64_t batch = shape[0], steps = shape[1], units = shape[2];
  std::int64_t kept = 0, bad_values = 0, bad_steps = 0;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t u = 0; u < units; ++u) {
      const double m = y[static_cast<std::size_t>(b * steps * units + u)];
      bad_values += !(m == 0.0 || std::abs(m - scale) < 1e-12);
      kept += m != 0.0;
      for (std::int64_t t = 1; t < steps; ++t) {
        const double want = recurrent ? std::pow(m, static_cast<double>(t + 1)) : m;
        bad_steps += std::abs(y[static_cast<std::size_t>((b * steps + t) * units + u)] - want) > 1e-12;
      }
    }
  CHECK(bad_values == 0);
  CHECK(bad_steps == 0);
  return static_cast<double>(kept) / static_cast<double>(batch * units);
}

}  // namespace

TEST_CASE("recurrent dropout: one mask per call, the same at every step, scaled 1/(1 - rate), seeded",
          "[recurrent][dropout]") {
  std::vector<double> first_masks;  // the first device's
  for (const Device& d : devices()) {
    INFO(d.str());
    const std::int64_t batch = 500, units = 4, steps = 3;
    const double rate = 0.3, scale = 1 / (1 - rate);
    {
      // dropout by construction: kernel I, no recurrence, x = 1: y_t = the input mask, every t
      RecurrentOptions o;
      o.dropout = rate;
      auto l = linear_rnn(eye(units), zeros({units, units}), o, d);
      const Tensor x = ones({batch, steps, units}, kFloat64).to(d);
      const auto y = l->call_with_state(x, {}, true).output.to(Device::cpu()).to_vector<double>();
      CHECK(fraction_kept(y, {batch, steps, units}, scale, false) == Approx(1 - rate).margin(0.03));
      // identity in inference
      CHECK(l->call_with_state(x).output.to(Device::cpu()).to_vector<double>() ==
            std::vector<double>(static_cast<std::size_t>(batch * steps * units), 1.0));
      // the same seed, the same masks (on every device); a new call, new masks
      auto twin = linear_rnn(eye(units), zeros({units, units}), o, d);
      CHECK(twin->call_with_state(x, {}, true).output.to(Device::cpu()).to_vector<double>() == y);
      if (first_masks.empty()) first_masks = y;
      CHECK(y == first_masks);
      CHECK(l->call_with_state(x, {}, true).output.to(Device::cpu()).to_vector<double>() != y);
    }
    {
      // recurrent dropout by construction: no input, recurrent kernel I, h0 = 1: h_t = m^(t+1)
      // elementwise, only if the mask is the same at every step
      RecurrentOptions o;
      o.recurrent_dropout = rate;
      auto l = linear_rnn(zeros({units, units}), eye(units), o, d);
      const Tensor x = ones({batch, steps, units}, kFloat64).to(d);
      const RecurrentResult r = l->call_with_state(x, {ones({batch, units}, kFloat64).to(d)}, true);
      const auto y = r.output.to(Device::cpu()).to_vector<double>();
      CHECK(fraction_kept(y, {batch, steps, units}, scale, true) == Approx(1 - rate).margin(0.03));
      CHECK(l->call_with_state(x, {ones({batch, units}, kFloat64).to(d)}).output.to(Device::cpu()).to_vector<double>() ==
            std::vector<double>(static_cast<std::size_t>(batch * steps * units), 1.0));
    }
  }
}

TEST_CASE("LSTM and GRU dropout: one input mask for all gates, one per gate with recurrent_dropout (Keras 3)",
          "[recurrent][dropout]") {
  // one step, one feature x = 1, one unit, no recurrence, zero bias: an LSTM's
  // h = sigmoid(m_o w_o) tanh(sigmoid(m_i w_i) tanh(m_c w_c)), a GRU's (h0 = 0)
  // h = (1 - sigmoid(m_z w_z)) tanh(m_h w_h). One shared mask gives two values (0 and all
  // kept); a mask per gate gives every combination.
  const auto distinct = [](const std::shared_ptr<Recurrent>& l, const std::vector<double>& kernel) {
    const auto gates = static_cast<std::int64_t>(kernel.size());
    (*l)(zeros({1, 1, 1}));
    set(l->kernel(), tensor(kernel, {1, gates}));
    set(l->recurrent_kernel(), zeros({1, gates}));
    set(l->bias(), zeros(l->bias().shape()));
    std::vector<double> y = l->call_with_state(ones({400, 1, 1}, kFloat64), {}, true).output.to_vector<double>();
    std::sort(y.begin(), y.end());
    return std::unique(y.begin(), y.end()) - y.begin();
  };
  for (double rec_rate : {0.0, 0.2}) {
    INFO("recurrent_dropout " << rec_rate);
    RecurrentOptions o;
    o.dropout = 0.5;
    o.recurrent_dropout = rec_rate;
    auto lstm = std::make_shared<LSTM>(1, Activation::Tanh, o);
    lstm->set_seed(3);
    // 0, and sigmoid(m_i w_i), sigmoid(m_o w_o) each at two values: 1 + 2 * 2
    CHECK(distinct(lstm, {1.0, 0.0, 2.0, -1.5}) == (rec_rate > 0 ? 5 : 2));
    auto gru = std::make_shared<GRU>(1, Activation::Tanh, o);
    gru->set_seed(3);
    // 0, and 1 - sigmoid(m_z w_z) at two values
    CHECK(distinct(gru, {1.0, 0.5, 2.0}) == (rec_rate > 0 ? 3 : 2));
  }
}

TEST_CASE("stateful: a sequence fed in pieces equals it fed whole; reset_states; batch checks", "[recurrent][stateful]") {
  for (const Device& d : devices()) {
    INFO(d.str());
    const Tensor x = arr(g::kX2, {g::kB2, g::kT, g::kF}).to(d);
    for (const char* name : {"lstm_mask_seq", "gru_mask_seq", "simple_rnn_mask_seq"}) {
      INFO(name);
      const Made whole = built(name, x, d);
      Made m = make(name);
      const auto rec = std::dynamic_pointer_cast<Recurrent>(m.layer);
      REQUIRE(rec);
      RecurrentOptions o = rec->options();
      o.stateful = true;
      // the same class and weights, stateful
      std::shared_ptr<Recurrent> l;
      if (rec->num_states() == 2) {
        l = std::make_shared<LSTM>(g::kU, Activation::Tanh, o);
      } else if (rec->class_name() == "GRU") {
        l = std::make_shared<GRU>(g::kU, Activation::Tanh, o);
      } else {
        l = std::make_shared<SimpleRNN>(g::kU, Activation::Tanh, o);
      }
      m.parts[0].first = l;
      m.layer = l;
      l->set_device(d);
      (*l)(x);
      load(m, d);
      l->reset_states();
      CHECK(l->states().empty());
      const auto full = std::dynamic_pointer_cast<Recurrent>(whole.layer)->call_with_state(x);
      const Tensor a = (*l)(x(all, Slice(0, 2)));
      CHECK(l->states().size() == static_cast<std::size_t>(l->num_states()));
      const RecurrentResult b = l->call_with_state(x(all, Slice(2, g::kT)));
      const auto want = full.output.to(Device::cpu()).to_vector<double>();
      const auto got = concat({a, b.output}, 1).to(Device::cpu()).to_vector<double>();
      REQUIRE(got.size() == want.size());
      for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));
      for (std::size_t i = 0; i < full.states.size(); ++i) {
        CHECK(l->states()[i].to(Device::cpu()).to_vector<double>() == b.states[i].to(Device::cpu()).to_vector<double>());
      }
      // the states carried over are constants: no gradient reaches the previous piece
      {
        l->reset_states();
        const Tensor x1 = x(all, Slice(0, 2)), x2 = x(all, Slice(2, g::kT));
        GradientTape tape;
        tape.watch(x1);
        tape.watch(x2);
        (*l)(x1);
        const auto grads = tape.gradient(sum((*l)(x2)), std::vector<Tensor>{x1, x2});
        CHECK_FALSE(grads[0].defined());
        CHECK(grads[1].defined());
      }
      // reset: the next call starts from zeros, and may change the batch size
      l->reset_states();
      CHECK(l->call_with_state(x(all, Slice(0, 2))).output.to(Device::cpu()).to_vector<double>() ==
            a.to(Device::cpu()).to_vector<double>());
      CHECK_THROWS_WITH((*l)(x(Slice(0, 2))), Contains(l->name()) && Contains("stateful") && Contains("reset_states"));
      // initial states given win over the kept ones
      const std::vector<Tensor> z(static_cast<std::size_t>(l->num_states()), zeros({g::kB2, g::kU}, kFloat64, d));
      CHECK(l->call_with_state(x(all, Slice(0, 2)), z).output.to(Device::cpu()).to_vector<double>() ==
            a.to(Device::cpu()).to_vector<double>());
      l->reset_states();
      CHECK((*l)(x(Slice(0, 2))).shape()[0] == 2);
      // float64 states kept, a float32 piece next: computed in float32
      CHECK((*l)(x(Slice(0, 2)).astype(kFloat32)).dtype() == kFloat32);
    }
  }
}

TEST_CASE("recurrent layers: float64 gradcheck through time, in the input and the weights", "[recurrent][gradcheck]") {
  const Tensor x = arr(g::kX, {g::kB, g::kT, g::kF});
  for (const char* name : {"simple_rnn_seq", "lstm_last", "gru_seq", "gru_v1_seq", "lstm_backwards_last",
                           "bidirectional_gru_last_sum"}) {
    INFO(name);
    Made m = make(name);
    (*m.layer)(x);
    const auto f = [&](const std::vector<Tensor>& in) { return (*m.layer)(in[0]); };
    const auto r = gradcheck(f, {x});
    INFO(r.message);
    CHECK(r.ok);
    // the steps' and gates' slices add their gradients in place (the tape's Slice path);
    // second derivatives take the functional path, recorded by the outer tape
    if (std::string(name) == "lstm_last" || std::string(name) == "gru_seq") {
      const auto r2 = gradgradcheck(f, {x});
      INFO(r2.message);
      CHECK(r2.ok);
    }
  }
  // an LSTM's final c alone gives the last step's output gate no gradient
  Made lstm_made = make("lstm_last");
  const auto lstm_layer = std::dynamic_pointer_cast<Recurrent>(lstm_made.layer);
  REQUIRE(lstm_layer);
  (*lstm_layer)(x);
  const auto final_c =
      gradcheck([&](const std::vector<Tensor>& in) { return lstm_layer->call_with_state(in[0]).states[1]; }, {x});
  INFO(final_c.message);
  CHECK(final_c.ok);
  // the weights get gradients from every step: the recurrent kernel's through h_{t-1}
  LSTM lstm(3);
  lstm.set_seed(1);
  const Tensor x32 = x.astype(kFloat32);
  GradientTape tape;
  const Tensor loss = sum(square(lstm(x32)));
  const auto grads = tape.gradient(loss, std::vector<Tensor>{lstm.kernel(), lstm.recurrent_kernel(), lstm.bias()});
  for (const auto& gr : grads) {
    REQUIRE(gr.defined());
    CHECK(sum(abs(gr)).item<float>() > 0);
  }
}

TEST_CASE("recurrent layers: Keras's weight shapes, names, initial values and errors", "[recurrent]") {
  LSTM lstm(5);
  lstm(zeros({2, 7, 3}));
  CHECK(lstm.name() == "lstm");
  CHECK(lstm.kernel().shape() == Shape{3, 20});
  CHECK(lstm.recurrent_kernel().shape() == Shape{5, 20});
  CHECK(lstm.bias().shape() == Shape{20});
  CHECK(lstm.kernel().name() == "lstm/kernel");
  CHECK(lstm.recurrent_kernel().name() == "lstm/recurrent_kernel");
  CHECK(lstm.count_params() == 4 * (3 * 5 + 5 * 5 + 5));  // Keras's 180
  // unit_forget_bias: the forget gate's bias is 1, the rest 0
  const auto b = lstm.bias().to_vector<float>();
  for (int i = 0; i < 20; ++i) CHECK(b[static_cast<std::size_t>(i)] == (i >= 5 && i < 10 ? 1.0f : 0.0f));
  // orthogonal recurrent kernel: each [5, 5] block... the whole [5, 20] has orthonormal rows
  const Tensor u = lstm.recurrent_kernel().astype(kFloat64);
  const auto uu = matmul(u, u.transpose()).to_vector<double>();
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) CHECK(uu[static_cast<std::size_t>(i * 5 + j)] == Approx(i == j ? 1.0 : 0.0).margin(1e-6));

  GRU gru(4);
  gru(zeros({1, 2, 3}));
  CHECK(gru.bias().shape() == Shape{2, 12});
  CHECK(gru.count_params() == 3 * 4 * 3 + 3 * 4 * 4 + 2 * 12);  // Keras's 108
  RecurrentOptions v1;
  v1.reset_after = false;
  GRU gru1(4, "tanh", v1);
  gru1(zeros({1, 2, 3}));
  CHECK(gru1.bias().shape() == Shape{12});
  SimpleRNN rnn(6, "relu");
  CHECK(rnn(zeros({4, 3, 2})).shape() == Shape{4, 6});
  CHECK(rnn.count_params() == 2 * 6 + 6 * 6 + 6);

  CHECK_THROWS_AS(lstm(zeros({2, 3})), ShapeError);
  CHECK_THROWS_WITH(lstm(zeros({2, 7, 4})), Contains("lstm") && Contains("[2, 7, 4]") && Contains("[batch, time, 3]"));
  LSTM fresh(2);
  CHECK_THROWS_WITH(fresh(zeros({2, 3})), Contains("lstm") && Contains("[batch, time, features]"));
  CHECK(fresh.weights().empty());
  CHECK_THROWS_AS(SimpleRNN(0), ValueError);
  // zero time steps: the state is the output (zeros); return_sequences gives [batch, 0, units]
  RecurrentOptions seq;
  seq.return_sequences = true;
  CHECK(SimpleRNN(3)(zeros({2, 0, 4})).to_vector<float>() == std::vector<float>(6, 0.0f));
  CHECK(SimpleRNN(3, "tanh", seq)(zeros({2, 0, 4})).shape() == Shape{2, 0, 3});
}

TEST_CASE("Bidirectional: Keras's sublayer names, weights, copies and errors", "[recurrent][bidirectional]") {
  RecurrentOptions o;
  o.return_sequences = true;
  auto inner = std::make_shared<LSTM>(3, Activation::Tanh, o);
  Bidirectional bi(inner);
  const Tensor y = bi(zeros({2, 4, 5}));
  CHECK(y.shape() == Shape{2, 4, 6});
  CHECK(bi.name() == "bidirectional");
  CHECK(bi.forward_layer() == inner);
  CHECK(bi.forward_layer()->name() == "bidirectional/forward_lstm");
  CHECK(bi.backward_layer()->name() == "bidirectional/backward_lstm");
  CHECK(bi.backward_layer()->options().go_backwards);
  CHECK(bi.backward_layer()->options().return_sequences);
  CHECK(bi.forward_layer()->kernel().name() == "bidirectional/forward_lstm/kernel");
  CHECK(bi.weights().size() == 6);
  CHECK(bi.count_params() == 2 * 4 * (5 * 3 + 3 * 3 + 3));
  // the two directions start from different weights (the sublayers are seeded apart)
  CHECK(bi.forward_layer()->kernel().to_vector<float>() != bi.backward_layer()->kernel().to_vector<float>());
  // a sequence read backwards equals the forward layer on the reversed input, reversed back
  const Tensor x = uniform({1, 4, 5}, bi.generator(), -1.0, 1.0);
  const Tensor both = bi(x);
  const Tensor back = (*bi.backward_layer())(x);
  CHECK(both(all, all, Slice(3, 6)).to_vector<float>() == back(all, Slice(none, none, -1)).to_vector<float>());
  CHECK_THROWS_AS(Bidirectional(nullptr), ValueError);
  CHECK_THROWS_WITH(Bidirectional(inner), Contains("already built"));
  // in a model: trains, saves and loads its six weights
  Sequential model(Embedding(10, 4), Bidirectional(std::make_shared<GRU>(3)), Dense(1, "sigmoid"));
  model.compile("adam", "binary_crossentropy");
  model.build({-1, 6});
  CHECK(model.weights().size() == 1 + 6 + 2);
}

TEST_CASE("initializers::orthogonal gives orthonormal rows or columns, seeded", "[recurrent][initializers]") {
  Generator g1(3), g2(3);
  for (const Shape& s : {Shape{6, 4}, Shape{4, 6}, Shape{2, 3, 5}, Shape{5, 5}}) {
    INFO(shape_str(s));
    const Tensor q = initializers::orthogonal(s, g1);
    CHECK(q.shape() == s);
    CHECK(q.dtype() == kFloat32);
    const Tensor m = q.reshape({-1, s.back()}).astype(kFloat64);
    const bool tall = m.dim(0) >= m.dim(1);
    const Tensor gram = tall ? matmul(m.transpose(), m) : matmul(m, m.transpose());
    const std::int64_t n = gram.dim(0);
    const auto gv = gram.to_vector<double>();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) CHECK(gv[static_cast<std::size_t>(i * n + j)] == Approx(i == j ? 1.0 : 0.0).margin(1e-6));
    CHECK(q.to_vector<float>() == initializers::orthogonal(s, g2).to_vector<float>());  // the same seed, the same Q
  }
  CHECK_THROWS_AS(initializers::orthogonal({5}, g1), ValueError);
  CHECK(initializers::get("orthogonal")({3, 3}, g1).shape() == Shape{3, 3});
}

TEST_CASE("an LSTM and a GRU learn to remember the first step of a sequence (fit)", "[recurrent][fit]") {
  // label = whether x[:, 0, 0] > 0; the other 11 steps are noise
  Generator gen(8);
  const std::int64_t n = 256, steps = 12;
  const Tensor x = normal({n, steps, 2}, gen);
  const Tensor y = (x(all, 0, Slice(0, 1)) > 0.0).astype(kFloat32);
  for (const std::string kind : {"lstm", "gru"}) {
    INFO(kind);
    LayerPtr rec = kind == "lstm" ? LayerPtr(std::make_shared<LSTM>(8)) : LayerPtr(std::make_shared<GRU>(8));
    Sequential model({rec, std::make_shared<Dense>(1, "sigmoid")});
    model.set_seed(4);
    model.compile(std::make_shared<optimizers::Adam>(0.01), "binary_crossentropy", {"accuracy"});
    FitOptions o;
    o.epochs = 40;
    o.verbose = 0;
    model.fit(x, y, o);
    CHECK(model.evaluate(x, y, 64, 0).at("accuracy") > 0.9);  // chance is 0.5; seen: 0.95 (LSTM)
  }
}

namespace {

// out[b, i, f] = sum over (j, c) of xp[b, i * s + j, c] * w[j, c, f], xp the padded input
std::vector<double> conv1d_reference(const Tensor& x, const Tensor& w, std::int64_t s, Padding1D p, Shape& shape) {
  const auto xv = x.astype(kFloat64).to_vector<double>(), wv = w.astype(kFloat64).to_vector<double>();
  const std::int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2), K = w.dim(0), F = w.dim(2);
  std::int64_t out = 0, before = 0;
  if (p == Padding1D::Valid) {
    out = (T - K) / s + 1;
  } else if (p == Padding1D::Same) {
    out = (T + s - 1) / s;
    before = std::max<std::int64_t>((out - 1) * s + K - T, 0) / 2;
  } else {
    out = (T + K - 1 - K) / s + 1;
    before = K - 1;
  }
  shape = {B, out, F};
  std::vector<double> y(static_cast<std::size_t>(B * out * F), 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < out; ++i)
      for (std::int64_t f = 0; f < F; ++f) {
        double acc = 0;
        for (std::int64_t j = 0; j < K; ++j) {
          const std::int64_t t = i * s + j - before;
          if (t < 0 || t >= T) continue;
          for (std::int64_t c = 0; c < C; ++c) acc += xv[static_cast<std::size_t>((b * T + t) * C + c)] * wv[static_cast<std::size_t>((j * C + c) * F + f)];
        }
        y[static_cast<std::size_t>((b * out + i) * F + f)] = acc;
      }
  return y;
}

}  // namespace

TEST_CASE("Conv1D matches the loop definition for valid, same and causal padding", "[recurrent][conv1d]") {
  Generator gen(6);
  const Tensor x = uniform({2, 9, 3}, gen, -1.0, 1.0, kFloat64);
  for (Padding1D p : {Padding1D::Valid, Padding1D::Same, Padding1D::Causal}) {
    for (std::int64_t s : {1, 2}) {
      INFO("padding " << int(p) << " stride " << s);
      Conv1DOptions o;
      o.padding = p;
      o.strides = s;
      o.use_bias = false;
      Conv1D conv(4, 3, Activation::Linear, o);
      const Tensor y = conv(x);
      Shape shape;
      const auto want = conv1d_reference(x, conv.kernel(), s, p, shape);
      CHECK(y.shape() == shape);
      const auto got = y.to_vector<double>();
      for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));
      if (p == Padding1D::Causal && s == 1) {
        // causal: output t sees steps <= t only: changing the last step changes only the last output
        std::vector<double> xs = x.to_vector<double>();
        for (int c = 0; c < 3; ++c) xs[static_cast<std::size_t>(8 * 3 + c)] += 1.0;
        const auto y2 = conv(tensor(xs, {2, 9, 3}, kFloat64)).to_vector<double>();
        for (int t = 0; t < 8; ++t)
          for (int f = 0; f < 4; ++f) CHECK(y2[static_cast<std::size_t>(t * 4 + f)] == got[static_cast<std::size_t>(t * 4 + f)]);
      }
    }
  }
  Conv1D conv(2, 3, "relu");
  CHECK(conv(zeros({1, 5, 4})).shape() == Shape{1, 3, 2});
  CHECK(conv.kernel().shape() == Shape{3, 4, 2});
  CHECK(conv.name() == "conv1d");
  CHECK_THROWS_WITH(conv(zeros({1, 5, 3})), Contains("conv1d") && Contains("[1, 5, 3]"));
  const auto r = gradcheck([&](const std::vector<Tensor>& in) { return conv(in[0]); }, {uniform({2, 6, 4}, gen, -1.0, 1.0, kFloat64)});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("1-D pooling: windows, strides, same padding as TensorFlow, global pooling", "[recurrent][pool1d]") {
  const Tensor x = tensor({1.0, -2.0, 3.0, 0.5, -1.0, 4.0, 2.0}, {1, 7, 1}, kFloat64);
  CHECK(MaxPooling1D()(x).to_vector<double>() == std::vector<double>{1.0, 3.0, 4.0});  // 7 // 2 windows
  CHECK(AveragePooling1D()(x).to_vector<double>() == std::vector<double>{-0.5, 1.75, 1.5});
  PoolingOptions same;
  same.padding = Padding::Same;
  // TensorFlow's same padding: 4 windows of 2, the last covers step 6 only
  CHECK(MaxPooling1D(2, same)(x).to_vector<double>() == std::vector<double>{1.0, 3.0, 4.0, 2.0});
  CHECK(AveragePooling1D(2, same)(x).to_vector<double>() == std::vector<double>{-0.5, 1.75, 1.5, 2.0});
  PoolingOptions strided;
  strided.strides = 1;
  CHECK(MaxPooling1D(3, strided)(x).to_vector<double>() == std::vector<double>{3.0, 3.0, 3.0, 4.0, 4.0});
  const Tensor seq = tensor({1.0, 5.0, -3.0, 2.0, 0.0, 4.0}, {1, 3, 2}, kFloat64);
  CHECK(GlobalAveragePooling1D()(seq).to_vector<double>() == std::vector<double>{-2.0 / 3, 11.0 / 3});
  CHECK(GlobalMaxPooling1D()(seq).to_vector<double>() == std::vector<double>{1.0, 5.0});
  CHECK(GlobalMaxPooling1D(true)(seq).shape() == Shape{1, 1, 2});
  MaxPooling1D named;
  named(x);
  CHECK(named.name() == "max_pooling1d");  // named at the first call
  CHECK_THROWS_AS(MaxPooling1D()(zeros({2, 3})), ShapeError);
  CHECK_THROWS_AS(MaxPooling1D(0), ValueError);
  const auto r = gradcheck([](const std::vector<Tensor>& in) { return AveragePooling1D(2, [] {
                             PoolingOptions o;
                             o.padding = Padding::Same;
                             return o;
                           }())(in[0]); },
                           {tensor({0.3, -1.2, 2.2, 0.7, -0.4}, {1, 5, 1}, kFloat64)});
  CHECK(r.ok);
}

TEST_CASE("a Conv1D text model trains: Embedding, Conv1D, GlobalMaxPooling1D, Dense", "[recurrent][conv1d][fit]") {
  // label: whether the bigram (3, 7) occurs, which a width-2 convolution can see
  Generator gen(9);
  const std::int64_t n = 512, len = 10;
  const auto tokens = uniform({n, len}, gen, 0.0, 10.0).astype(kInt64);
  const auto tv = tokens.to_vector<std::int64_t>();
  std::vector<float> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j + 1 < len; ++j)
      if (tv[static_cast<std::size_t>(i * len + j)] == 3 && tv[static_cast<std::size_t>(i * len + j + 1)] == 7) labels[static_cast<std::size_t>(i)] = 1;
  const Tensor y = tensor(labels, {n, 1});
  Sequential model(Embedding(10, 8), Conv1D(16, 2, "relu"), GlobalMaxPooling1D(), Dense(1, "sigmoid"));
  model.set_seed(5);
  model.compile(std::make_shared<optimizers::Adam>(0.01), "binary_crossentropy", {"accuracy"});
  FitOptions o;
  o.epochs = 30;
  o.verbose = 0;
  model.fit(tokens, y, o);
  CHECK(model.evaluate(tokens, y, 128, 0).at("accuracy") > 0.97);
}
