// Optimizers: golden trajectories from Keras (test/golden/optim_golden.py), a quadratic minimised
// by each, skipped and mismatched gradients, no recording on an active tape, and schedules.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "golden/optim_golden.hpp"
#include "tapeflow/autodiff.hpp"
#include "tapeflow/optimizers.hpp"

using namespace tapeflow;
namespace opt = tapeflow::optimizers;
namespace sch = tapeflow::optimizers::schedules;

namespace {

// The optimizers of the golden cases, configured as optim_golden.py configures Keras's.
std::map<std::string, std::function<std::unique_ptr<opt::Optimizer>()>> golden_factories() {
  std::map<std::string, std::function<std::unique_ptr<opt::Optimizer>()>> f;
  f["sgd"] = [] { return std::make_unique<opt::SGD>(0.1); };
  f["sgd_momentum"] = [] { return std::make_unique<opt::SGD>(0.1, 0.9); };
  f["sgd_nesterov"] = [] {
    opt::SGDOptions o;
    o.learning_rate = 0.1;
    o.momentum = 0.9;
    o.nesterov = true;
    return std::make_unique<opt::SGD>(o);
  };
  f["rmsprop"] = [] { return std::make_unique<opt::RMSprop>(); };  // Keras's defaults
  f["rmsprop_momentum_centered"] = [] {
    opt::RMSpropOptions o;
    o.learning_rate = 0.01;
    o.rho = 0.8;
    o.momentum = 0.5;
    o.epsilon = 1e-6;
    o.centered = true;
    return std::make_unique<opt::RMSprop>(o);
  };
  f["adam"] = [] { return std::make_unique<opt::Adam>(0.01); };
  f["adam_amsgrad"] = [] {
    opt::AdamOptions o;
    o.learning_rate = 0.01;
    o.beta_1 = 0.8;
    o.beta_2 = 0.9;
    o.amsgrad = true;
    return std::make_unique<opt::Adam>(o);
  };
  f["adamw"] = [] { return std::make_unique<opt::AdamW>(0.05); };  // weight_decay 0.004 by default
  f["adamw_decay_0_1"] = [] { return std::make_unique<opt::AdamW>(0.05, 0.1); };
  f["sgd_clipnorm"] = [] {
    opt::SGDOptions o;
    o.learning_rate = 0.1;
    o.clipnorm = 1.0;
    return std::make_unique<opt::SGD>(o);
  };
  f["sgd_global_clipnorm"] = [] {
    opt::SGDOptions o;
    o.learning_rate = 0.1;
    o.global_clipnorm = 1.0;
    return std::make_unique<opt::SGD>(o);
  };
  f["sgd_clipvalue"] = [] {
    opt::SGDOptions o;
    o.learning_rate = 0.1;
    o.clipvalue = 0.5;
    return std::make_unique<opt::SGD>(o);
  };
  f["sgd_exponential_decay"] = [] { return std::make_unique<opt::SGD>(sch::ExponentialDecay(0.1, 2, 0.5), 0.5); };
  f["adam_cosine_decay"] = [] { return std::make_unique<opt::Adam>(sch::CosineDecay(0.01, 4, 0.1)); };
  f["adam_missing_grad"] = [] { return std::make_unique<opt::Adam>(0.01); };
  f["adagrad"] = [] { return std::make_unique<opt::Adagrad>(0.1); };
  f["adagrad_options"] = [] {
    opt::AdagradOptions o;
    o.learning_rate = 0.5;
    o.initial_accumulator_value = 0;
    o.epsilon = 1e-3;
    return std::make_unique<opt::Adagrad>(o);
  };
  f["adagrad_clipnorm"] = [] {
    opt::AdagradOptions o;
    o.learning_rate = 0.1;
    o.clipnorm = 1.0;
    return std::make_unique<opt::Adagrad>(o);
  };
  f["adadelta"] = [] { return std::make_unique<opt::Adadelta>(1.0); };
  f["adadelta_options"] = [] {
    opt::AdadeltaOptions o;
    o.learning_rate = 1.0;
    o.rho = 0.8;
    o.epsilon = 1e-3;
    return std::make_unique<opt::Adadelta>(o);
  };
  f["adadelta_weight_decay"] = [] {
    opt::AdadeltaOptions o;
    o.learning_rate = 0.5;
    o.epsilon = 1e-3;
    o.weight_decay = 0.1;
    return std::make_unique<opt::Adadelta>(o);
  };
  f["adamax"] = [] { return std::make_unique<opt::Adamax>(0.05); };
  f["adamax_options"] = [] {
    opt::AdamaxOptions o;
    o.learning_rate = 0.05;
    o.beta_1 = 0.8;
    o.beta_2 = 0.9;
    o.epsilon = 1e-4;
    return std::make_unique<opt::Adamax>(o);
  };
  f["adamax_global_clipnorm"] = [] {
    opt::AdamaxOptions o;
    o.learning_rate = 0.05;
    o.global_clipnorm = 1.0;
    return std::make_unique<opt::Adamax>(o);
  };
  f["nadam"] = [] { return std::make_unique<opt::Nadam>(0.01); };
  f["nadam_options"] = [] {
    opt::NadamOptions o;
    o.learning_rate = 0.05;
    o.beta_1 = 0.8;
    o.beta_2 = 0.95;
    o.epsilon = 1e-5;
    return std::make_unique<opt::Nadam>(o);
  };
  f["nadam_weight_decay"] = [] {
    opt::NadamOptions o;
    o.learning_rate = 0.05;
    o.weight_decay = 0.05;
    return std::make_unique<opt::Nadam>(o);
  };
  f["nadam_missing_grad"] = [] { return std::make_unique<opt::Nadam>(0.01); };
  f["lion"] = [] { return std::make_unique<opt::Lion>(0.01); };
  f["lion_options"] = [] {
    opt::LionOptions o;
    o.learning_rate = 0.02;
    o.beta_1 = 0.5;
    o.beta_2 = 0.8;
    return std::make_unique<opt::Lion>(o);
  };
  f["lion_weight_decay"] = [] {
    opt::LionOptions o;
    o.learning_rate = 0.01;
    o.weight_decay = 0.5;
    return std::make_unique<opt::Lion>(o);
  };
  f["ftrl"] = [] { return std::make_unique<opt::Ftrl>(0.1); };
  f["ftrl_options"] = [] {
    opt::FtrlOptions o;
    o.learning_rate = 0.2;
    o.learning_rate_power = -0.7;
    o.initial_accumulator_value = 0.2;
    o.l1_regularization_strength = 0.05;
    o.l2_regularization_strength = 0.05;
    o.l2_shrinkage_regularization_strength = 0.02;
    o.beta = 0.1;
    return std::make_unique<opt::Ftrl>(o);
  };
  f["ftrl_weight_decay"] = [] {
    opt::FtrlOptions o;
    o.learning_rate = 0.1;
    o.weight_decay = 0.05;
    return std::make_unique<opt::Ftrl>(o);
  };
  const auto sgd_ema = [] {
    opt::SGDOptions o;
    o.learning_rate = 0.1;
    o.use_ema = true;
    o.ema_momentum = 0.9;
    return std::make_unique<opt::SGD>(o);
  };
  f["sgd_ema"] = sgd_ema;
  f["sgd_ema_missing_grad"] = sgd_ema;
  f["adam_ema_overwrite"] = [] {
    opt::AdamOptions o;
    o.learning_rate = 0.01;
    o.use_ema = true;
    o.ema_momentum = 0.8;
    o.ema_overwrite_frequency = 2;
    return std::make_unique<opt::Adam>(o);
  };
  f["sgd_accumulate"] = [] {
    opt::SGDOptions o;
    o.learning_rate = 0.1;
    o.momentum = 0.9;
    o.gradient_accumulation_steps = 2;
    return std::make_unique<opt::SGD>(o);
  };
  f["adam_accumulate"] = [] {
    opt::AdamOptions o;
    o.learning_rate = 0.01;
    o.gradient_accumulation_steps = 2;
    return std::make_unique<opt::Adam>(o);
  };
  f["adam_accumulate_schedule_clipnorm"] = [] {
    opt::AdamOptions o;
    o.learning_rate = sch::ExponentialDecay(0.01, 2, 0.5);
    o.gradient_accumulation_steps = 2;
    o.clipnorm = 1.0;
    return std::make_unique<opt::Adam>(o);
  };
  f["adamw_accumulate_ema"] = [] {
    opt::AdamWOptions o;
    o.learning_rate = 0.05;
    o.weight_decay = 0.1;
    o.gradient_accumulation_steps = 3;
    o.use_ema = true;
    o.ema_momentum = 0.5;
    return std::make_unique<opt::AdamW>(o);
  };
  return f;
}

// Every name optimizers::get knows.
const char* const kKerasNames[] = {"sgd",     "rmsprop", "adam",  "adamw", "adagrad",
                                   "adadelta", "adamax", "nadam", "lion",  "ftrl"};

Tensor f64(const double* values, const Shape& shape) {
  return tensor(std::vector<double>(values, values + numel(shape)), shape, kFloat64);
}

// Largest |a - b| / max(|b|, 1e-3) over the elements.
double max_rel_err(const Tensor& a, const double* expected) {
  const auto v = a.to_vector<double>();
  double err = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    err = std::max(err, std::abs(v[i] - expected[i]) / std::max(std::abs(expected[i]), 1e-3));
  }
  return err;
}

}  // namespace

TEST_CASE("each optimizer follows Keras's golden trajectory in float64", "[optim][golden]") {
  auto factories = golden_factories();
  std::set<std::string> seen;
  for (const auto& c : optim_golden::kCases) {
    INFO("case " << c.name);
    REQUIRE(factories.count(c.name) == 1);
    seen.insert(c.name);
    auto o = factories.at(c.name)();
    Variable w(f64(optim_golden::kW0, {2, 3}), "w");
    Variable b(f64(optim_golden::kB0, {3}), "b");
    for (int step = 0; step < optim_golden::kSteps; ++step) {
      INFO("step " << step + 1);
      Tensor gw = f64(optim_golden::kGradW[step], {2, 3});
      Tensor gb = step == c.missing_b_step ? Tensor() : f64(optim_golden::kGradB[step], {3});
      o->apply_gradients({gw, gb}, {w, b});
      CHECK(o->micro_steps() == step + 1);
      const std::int64_t accumulate = o->options().gradient_accumulation_steps;
      CHECK(o->iterations() == (accumulate > 0 ? (step + 1) / accumulate : step + 1));
      CHECK(w.dtype() == kFloat64);
      CHECK(max_rel_err(w, c.w[step]) < 1e-12);
      CHECK(max_rel_err(b, c.b[step]) < 1e-12);
    }
    for (const auto& e : optim_golden::kEmaAverages) {
      if (std::string(e.name) != c.name) continue;
      REQUIRE(o->get_slot(w, "average").defined());
      CHECK(max_rel_err(o->get_slot(w, "average"), e.w) < 1e-12);
      CHECK(max_rel_err(o->get_slot(b, "average"), e.b) < 1e-12);
      // finalize_variable_values: the averages become the variables
      const auto aw = o->get_slot(w, "average").to_vector<double>(), ab = o->get_slot(b, "average").to_vector<double>();
      o->finalize_variable_values({w, b});
      CHECK(w.to_vector<double>() == aw);
      CHECK(b.to_vector<double>() == ab);
    }
  }
  CHECK(seen.size() == factories.size());  // every C++ case has golden values
}

TEST_CASE("schedules match Keras's values", "[optim][schedules]") {
  std::map<std::string, opt::schedules::LearningRateSchedule> s;
  s["exponential"] = sch::ExponentialDecay(0.1, 4, 0.5);
  s["exponential_staircase"] = sch::ExponentialDecay(0.1, 4, 0.5, true);
  s["cosine"] = sch::CosineDecay(0.1, 10);
  s["cosine_alpha"] = sch::CosineDecay(0.1, 10, 0.2);
  s["cosine_warmup"] = sch::CosineDecay(0.0, 10, 0.1, 0.1, 5);
  s["piecewise"] = sch::PiecewiseConstantDecay({2, 5, 10}, {0.1, 0.05, 0.02, 0.001});
  s["polynomial"] = sch::PolynomialDecay(0.1, 10);  // Keras's end_learning_rate 0.0001
  s["polynomial_power_cycle"] = sch::PolynomialDecay(0.1, 4, 0.01, 2.0, true);
  s["inverse_time"] = sch::InverseTimeDecay(0.1, 4, 0.5);
  s["inverse_time_staircase"] = sch::InverseTimeDecay(0.1, 4, 0.5, true);
  s["cosine_restarts"] = sch::CosineDecayRestarts(0.1, 3);
  s["cosine_restarts_options"] = sch::CosineDecayRestarts(0.1, 4, 1.0, 0.5, 0.1);
  s["cosine_restarts_t_mul_1_5"] = sch::CosineDecayRestarts(0.1, 2, 1.5, 0.9);
  REQUIRE(std::size(optim_golden::kSchedules) == s.size());
  for (const auto& c : optim_golden::kSchedules) {
    INFO("schedule " << c.name);
    REQUIRE(s.count(c.name) == 1);
    for (std::size_t i = 0; i < std::size(optim_golden::kScheduleSteps); ++i) {
      const double got = s.at(c.name)(optim_golden::kScheduleSteps[i]);
      CHECK(got == Approx(c.values[i]).epsilon(1e-12).margin(1e-15));
    }
  }
  // By hand: 0.1 * 0.5^(6/4) and the staircase's 0.1 * 0.5^1; the cosine's midpoint and end.
  CHECK(sch::ExponentialDecay(0.1, 4, 0.5)(6) == Approx(0.1 * std::pow(0.5, 1.5)));
  CHECK(sch::ExponentialDecay(0.1, 4, 0.5, true)(6) == Approx(0.05));
  CHECK(sch::CosineDecay(1.0, 100, 0.1)(50) == Approx(0.55));
  CHECK(sch::CosineDecay(1.0, 100, 0.1)(1000) == Approx(0.1));
  CHECK_THROWS_AS(sch::ExponentialDecay(0.1, 0, 0.5), ValueError);
  CHECK_THROWS_AS(sch::CosineDecay(0.1, -1), ValueError);
  // By hand: the boundaries belong to the range below them; a polynomial's end and power 2;
  // 1 / (1 + 0.5 * 6 / 4); the restarts (first period 3 steps, then 6: step 3 starts again at
  // the top, step 6 is the second period's midpoint).
  CHECK(sch::PiecewiseConstantDecay({2, 5}, {3.0, 2.0, 1.0})(2) == 3.0);
  CHECK(sch::PiecewiseConstantDecay({2, 5}, {3.0, 2.0, 1.0})(3) == 2.0);
  CHECK(sch::PiecewiseConstantDecay({2, 5}, {3.0, 2.0, 1.0})(6) == 1.0);
  CHECK(sch::PolynomialDecay(1.0, 10, 0.0, 2.0)(5) == Approx(0.25));
  CHECK(sch::PolynomialDecay(1.0, 10, 0.1)(50) == Approx(0.1));
  CHECK(sch::PolynomialDecay(1.0, 10, 0.0, 1.0, true)(15) == Approx(0.25));  // decay_steps 20 now
  CHECK(sch::InverseTimeDecay(1.0, 4, 0.5)(6) == Approx(1.0 / 1.75));
  CHECK(sch::CosineDecayRestarts(1.0, 3)(3) == Approx(1.0));
  CHECK(sch::CosineDecayRestarts(1.0, 3)(6) == Approx(0.5));
  CHECK(sch::CosineDecayRestarts(1.0, 3, 2.0, 0.5)(3) == Approx(0.5));
  CHECK_THROWS_WITH(sch::PiecewiseConstantDecay({2, 5}, {1.0, 2.0}),
                    Catch::Contains("PiecewiseConstantDecay") && Catch::Contains("2 boundaries and 2 values"));
  CHECK_THROWS_WITH(sch::PiecewiseConstantDecay({5, 2}, {1.0, 2.0, 3.0}), Catch::Contains("boundaries must increase"));
  CHECK_THROWS_AS(sch::PolynomialDecay(0.1, 0), ValueError);
  CHECK_THROWS_AS(sch::InverseTimeDecay(0.1, -2, 0.5), ValueError);
  CHECK_THROWS_WITH(sch::CosineDecayRestarts(0.1, 0), Catch::Contains("first_decay_steps must be > 0, got 0"));
}

TEST_CASE("learning_rate() follows the schedule at iterations()", "[optim][schedules]") {
  opt::SGD sgd(sch::ExponentialDecay(0.1, 1, 0.5));
  Variable x(tensor({1.0f, 2.0f}), "x");
  CHECK(sgd.learning_rate() == Approx(0.1));
  sgd.apply_gradients({ones({2})}, {x});
  CHECK(sgd.learning_rate() == Approx(0.05));
  sgd.apply_gradients({ones({2})}, {x});
  CHECK(sgd.learning_rate() == Approx(0.025));
  // 1 - 0.1 - 0.05 and 2 - 0.1 - 0.05 (float32)
  CHECK(x.to_vector<float>()[0] == Approx(0.85f));
  CHECK(x.to_vector<float>()[1] == Approx(1.85f));

  // Any callable of the step is a schedule; a constant can be set later.
  opt::Adam adam([](std::int64_t step) { return 0.1 / static_cast<double>(step + 1); });
  CHECK(adam.learning_rate() == Approx(0.1));
  adam.apply_gradients({ones({2})}, {x});
  CHECK(adam.learning_rate() == Approx(0.05));
  adam.set_learning_rate(0.3);
  CHECK(adam.learning_rate() == 0.3);
}

TEST_CASE("every optimizer minimises a small quadratic", "[optim]") {
  struct Config {
    std::string label;
    std::function<std::shared_ptr<opt::Optimizer>()> make;
    int steps;
  };
  const auto options = [](auto o, double lr, auto&& set) {
    o.learning_rate = lr;
    set(o);
    return o;
  };
  std::vector<Config> configs = {
      {"sgd", [] { return std::make_shared<opt::SGD>(0.1); }, 100},
      {"sgd momentum", [] { return std::make_shared<opt::SGD>(0.05, 0.9); }, 200},
      {"sgd nesterov",
       [&] {
         return std::make_shared<opt::SGD>(options(opt::SGDOptions{}, 0.05, [](auto& o) {
           o.momentum = 0.9;
           o.nesterov = true;
         }));
       },
       200},
      {"rmsprop", [] { return std::make_shared<opt::RMSprop>(0.05); }, 300},
      {"rmsprop centered momentum",
       [&] {
         return std::make_shared<opt::RMSprop>(options(opt::RMSpropOptions{}, 0.01, [](auto& o) {
           o.momentum = 0.9;
           o.centered = true;
         }));
       },
       300},
      {"adam", [] { return std::make_shared<opt::Adam>(0.1); }, 300},
      {"adam amsgrad",
       [&] { return std::make_shared<opt::Adam>(options(opt::AdamOptions{}, 0.1, [](auto& o) { o.amsgrad = true; })); },
       300},
      {"adamw", [] { return std::make_shared<opt::AdamW>(0.1, 0.001); }, 300},
      {"sgd clipnorm",
       [&] { return std::make_shared<opt::SGD>(options(opt::SGDOptions{}, 0.1, [](auto& o) { o.clipnorm = 1; })); },
       200},
      {"adam cosine decay", [] { return std::make_shared<opt::Adam>(sch::CosineDecay(0.2, 300, 0.01)); }, 300},
      {"get(\"rmsprop\") with Keras's defaults", [] { return opt::get("rmsprop"); }, 3000},
      {"adagrad", [] { return std::make_shared<opt::Adagrad>(0.5); }, 300},
      {"adadelta",
       [&] {
         return std::make_shared<opt::Adadelta>(
             options(opt::AdadeltaOptions{}, 1.0, [](auto& o) { o.epsilon = 1e-2; }));
       },
       300},
      {"adamax", [] { return std::make_shared<opt::Adamax>(0.1); }, 300},
      {"nadam", [] { return std::make_shared<opt::Nadam>(0.1); }, 300},
      {"get(\"nadam\") with Keras's defaults", [] { return opt::get("nadam"); }, 6000},
      {"lion", [] { return std::make_shared<opt::Lion>(0.01); }, 600},
      {"lion weight decay",
       [&] {
         return std::make_shared<opt::Lion>(options(opt::LionOptions{}, 0.01, [](auto& o) { o.weight_decay = 0.01; }));
       },
       1000},
      {"ftrl", [] { return std::make_shared<opt::Ftrl>(0.5); }, 300},
  };
  const Tensor target = tensor({1.0f, -2.0f, 3.0f});
  for (const auto& c : configs) {
    INFO(c.label);
    auto o = c.make();
    Variable x(zeros({3}), "x");  // float32
    Variable s(tensor({0.5f}), "s");
    double first = 0, last = 0;
    for (int i = 0; i < c.steps; ++i) {
      GradientTape tape;
      // sum((x - target)^2) + (s - 2)^2 * 4: two variables of different scales
      Tensor loss = sum(square(x - target)) + sum(square(s - 2.0)) * 4.0;
      auto grads = tape.gradient(loss, std::vector<Tensor>{x, s});
      o->apply_gradients(grads, {x, s});
      last = loss.item<double>();
      if (i == 0) first = last;
    }
    CHECK(first > 20);
    CHECK(last < 1e-2);
    CHECK(x.dtype() == kFloat32);
    CHECK(o->iterations() == c.steps);
  }
}

TEST_CASE("undefined gradients are skipped, and all undefined is an error", "[optim]") {
  opt::Adam adam(0.1);
  Variable w(ones({2, 2}), "w");
  Variable b(zeros({2}), "b");
  adam.apply_gradients({ones({2, 2}), Tensor()}, {w, b});  // warns once on stderr, as Keras
  CHECK(adam.iterations() == 1);
  CHECK(w.to_vector<float>()[0] == Approx(0.9f));
  CHECK(b.to_vector<float>() == std::vector<float>{0, 0});
  CHECK(adam.get_slot(w, "m").defined());
  CHECK_FALSE(adam.get_slot(b, "m").defined());  // b has no state yet

  // The pair overload, as Keras's apply_gradients(zip(grads, vars)).
  adam.apply_gradients({{Tensor(), w}, {ones({2}), b}});
  CHECK(adam.iterations() == 2);
  CHECK(w.to_vector<float>()[0] == Approx(0.9f));
  CHECK(b.to_vector<float>()[0] < 0);

  CHECK_THROWS_WITH(adam.apply_gradients({Tensor(), Tensor()}, {w, b}),
                    Catch::Contains("no gradients provided for any variable"));
  CHECK_THROWS_AS(adam.apply_gradients({Tensor()}, {w}), ValueError);
  CHECK(adam.iterations() == 2);
  adam.apply_gradients(std::vector<Tensor>{}, std::vector<Variable>{});  // nothing to do
  CHECK(adam.iterations() == 2);
}

TEST_CASE("mismatched gradients throw, naming the optimizer and the variable", "[optim]") {
  opt::SGD sgd(0.1);
  Variable w(ones({2, 3}), "w");
  Variable b(ones({3}), "bias");
  try {
    sgd.apply_gradients({ones({2, 3}), ones({2, 3})}, {w, b});
    FAIL("expected a ShapeError");
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("SGD"));
    CHECK_THAT(msg, Catch::Contains("'bias'"));
    CHECK_THAT(msg, Catch::Contains("[2, 3]"));
    CHECK_THAT(msg, Catch::Contains("[3]"));
  }
  CHECK(w.to_vector<float>()[0] == 1.0f);  // a bad call changes nothing
  CHECK(sgd.iterations() == 0);
  CHECK_THROWS_WITH(sgd.apply_gradients({ones({2, 3})}, {w, b}), Catch::Contains("1 gradients for 2 variables"));
  Variable unnamed(ones({2}));
  CHECK_THROWS_WITH(sgd.apply_gradients({ones({3})}, {unnamed}), Catch::Contains("variable #0"));
}

TEST_CASE("updates under an active tape record nothing", "[optim][tape]") {
  std::vector<std::shared_ptr<opt::Optimizer>> each;
  for (const char* name : kKerasNames) {
    each.push_back(opt::get(name));
  }
  opt::RMSpropOptions ro;
  ro.momentum = 0.9;
  ro.centered = true;
  ro.clipnorm = 0.5;
  each.push_back(std::make_shared<opt::RMSprop>(ro));
  opt::AdamOptions ao;
  ao.amsgrad = true;
  ao.global_clipnorm = 0.5;
  each.push_back(std::make_shared<opt::Adam>(ao));
  opt::SGDOptions so;
  so.momentum = 0.9;
  so.nesterov = true;
  so.clipvalue = 0.1;
  each.push_back(std::make_shared<opt::SGD>(so));

  for (auto& o : each) {
    INFO(o->name());
    Variable x(tensor({1.0f, 2.0f}), "x");
    GradientTape outer(true);
    GradientTape tape(true);
    Tensor loss = sum(square(x) * 3.0);
    auto grads = tape.gradient(loss, std::vector<Tensor>{x});
    const auto recorded = tape.recorded_ops().size();
    const auto recorded_outer = outer.recorded_ops().size();
    const auto version = x.version();
    o->apply_gradients(grads, {x});
    o->apply_gradients(grads, {x});
    CHECK(tape.recorded_ops().size() == recorded);
    CHECK(outer.recorded_ops().size() == recorded_outer);
    CHECK(x.version() > version);  // written in place
    CHECK(x.to_vector<float>()[0] < 1.0f);
    CHECK(current_observer() != nullptr);  // the tape is still installed
  }
}

TEST_CASE("factory, names, defaults and option validation", "[optim]") {
  CHECK(opt::get("sgd")->name() == "SGD");
  CHECK(opt::get("SGD")->learning_rate() == 0.01);
  CHECK(opt::get("rmsprop")->name() == "RMSprop");
  CHECK(opt::get("RMSprop")->learning_rate() == 0.001);
  CHECK(opt::get("adam")->learning_rate() == 0.001);
  CHECK(opt::get("adamw")->name() == "AdamW");
  CHECK(opt::get("AdamW")->options().weight_decay == 0.004);
  CHECK(opt::AdamW().options().weight_decay == 0.004);
  CHECK(opt::Adam().options().weight_decay == 0);
  CHECK_THROWS_WITH(opt::get("adafactor"), Catch::Contains("unknown optimizer 'adafactor'"));
  CHECK_THROWS_AS(opt::get("nope"), ValueError);

  opt::SGDOptions two_clips;
  two_clips.clipnorm = 1;
  two_clips.clipvalue = 1;
  CHECK_THROWS_WITH(opt::SGD(two_clips), Catch::Contains("only one of clipnorm"));
  CHECK_THROWS_AS(opt::SGD(0.1, 1.5), ValueError);  // momentum outside [0, 1]
  CHECK_THROWS_AS(opt::SGD(-0.1), ValueError);
  opt::AdamOptions bad_beta;
  bad_beta.beta_2 = 2;
  CHECK_THROWS_AS(opt::Adam(bad_beta), ValueError);
}

TEST_CASE("Adagrad, Adadelta, Adamax, Nadam, Lion, Ftrl: names and Keras's defaults", "[optim]") {
  const std::pair<const char*, const char*> names[] = {{"adagrad", "Adagrad"}, {"Adadelta", "Adadelta"},
                                                       {"ADAMAX", "Adamax"},   {"nadam", "Nadam"},
                                                       {"lion", "Lion"},       {"Ftrl", "Ftrl"}};
  for (const auto& [key, name] : names) {
    INFO(key);
    const auto o = opt::get(key);
    CHECK(o->name() == name);
    CHECK(o->learning_rate() == 0.001);
    CHECK(o->options().weight_decay == 0);
    CHECK(o->options().clipnorm == 0);
    CHECK_FALSE(o->learning_rate_is_schedule());
  }
  CHECK(opt::AdagradOptions{}.initial_accumulator_value == 0.1);
  CHECK(opt::AdagradOptions{}.epsilon == 1e-7);
  CHECK(opt::AdadeltaOptions{}.rho == 0.95);
  CHECK(opt::AdadeltaOptions{}.epsilon == 1e-7);
  CHECK(opt::AdamaxOptions{}.beta_1 == 0.9);
  CHECK(opt::AdamaxOptions{}.beta_2 == 0.999);
  CHECK(opt::AdamaxOptions{}.epsilon == 1e-7);
  CHECK(opt::NadamOptions{}.beta_1 == 0.9);
  CHECK(opt::NadamOptions{}.beta_2 == 0.999);
  CHECK(opt::NadamOptions{}.epsilon == 1e-7);
  CHECK(opt::LionOptions{}.beta_1 == 0.9);
  CHECK(opt::LionOptions{}.beta_2 == 0.99);
  CHECK(opt::Adagrad().slot_names() == std::vector<std::string>{"accumulator"});
  CHECK(opt::Adadelta().slot_names() == std::vector<std::string>{"accumulated_grad", "accumulated_delta_var"});
  CHECK(opt::Adamax().slot_names() == std::vector<std::string>{"momentum", "norm"});
  CHECK(opt::Nadam().slot_names() == std::vector<std::string>{"momentum", "velocity"});
  CHECK(opt::Lion().slot_names() == std::vector<std::string>{"momentum"});
  const opt::FtrlOptions ftrl;
  CHECK(ftrl.learning_rate_power == -0.5);
  CHECK(ftrl.initial_accumulator_value == 0.1);
  CHECK(ftrl.l1_regularization_strength == 0);
  CHECK(ftrl.l2_regularization_strength == 0);
  CHECK(ftrl.l2_shrinkage_regularization_strength == 0);
  CHECK(ftrl.beta == 0);
  CHECK(opt::Ftrl().slot_names() == std::vector<std::string>{"accumulator", "linear"});
}

TEST_CASE("invalid hyperparameters raise ValueError naming the optimizer and the option", "[optim]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto adagrad = [](auto&& set) {
    opt::AdagradOptions o;
    set(o);
    return [o] { opt::Adagrad a(o); };
  };
  const auto adadelta = [](auto&& set) {
    opt::AdadeltaOptions o;
    set(o);
    return [o] { opt::Adadelta a(o); };
  };
  const auto adamax = [](auto&& set) {
    opt::AdamaxOptions o;
    set(o);
    return [o] { opt::Adamax a(o); };
  };
  const auto nadam = [](auto&& set) {
    opt::NadamOptions o;
    set(o);
    return [o] { opt::Nadam a(o); };
  };
  const auto lion = [](auto&& set) {
    opt::LionOptions o;
    set(o);
    return [o] { opt::Lion a(o); };
  };
  const auto ftrl = [](auto&& set) {
    opt::FtrlOptions o;
    set(o);
    return [o] { opt::Ftrl a(o); };
  };
  const std::vector<std::pair<std::function<void()>, std::string>> bad = {
      {adagrad([](auto& o) { o.learning_rate = -0.1; }), "Adagrad: learning_rate must be >= 0, got -0.1"},
      {adagrad([](auto& o) { o.initial_accumulator_value = -1; }),
       "Adagrad: initial_accumulator_value must be >= 0, got -1"},
      {adagrad([&](auto& o) { o.initial_accumulator_value = nan; }),
       "Adagrad: initial_accumulator_value must be >= 0, got nan"},
      {adagrad([](auto& o) { o.epsilon = 0; }), "Adagrad: epsilon must be > 0, got 0"},
      {adagrad([](auto& o) { o.clipnorm = -1; }), "Adagrad: clipnorm must be >= 0, got -1"},
      {adadelta([](auto& o) { o.learning_rate = -1.0; }), "Adadelta: learning_rate must be >= 0, got -1"},
      {adadelta([](auto& o) { o.rho = 1.5; }), "Adadelta: rho must be in [0, 1], got 1.5"},
      {adadelta([](auto& o) { o.rho = -0.1; }), "Adadelta: rho must be in [0, 1], got -0.1"},
      {adadelta([](auto& o) { o.epsilon = -1e-7; }), "Adadelta: epsilon must be > 0, got -1e-07"},
      {adamax([](auto& o) { o.learning_rate = -0.1; }), "Adamax: learning_rate must be >= 0, got -0.1"},
      {adamax([](auto& o) { o.beta_1 = 1.1; }), "Adamax: beta_1 must be in [0, 1], got 1.1"},
      {adamax([&](auto& o) { o.beta_2 = nan; }), "Adamax: beta_2 must be in [0, 1], got nan"},
      {adamax([](auto& o) { o.epsilon = 0; }), "Adamax: epsilon must be > 0, got 0"},
      {nadam([](auto& o) { o.learning_rate = -0.1; }), "Nadam: learning_rate must be >= 0, got -0.1"},
      {nadam([](auto& o) { o.beta_1 = -0.5; }), "Nadam: beta_1 must be in [0, 1], got -0.5"},
      {nadam([](auto& o) { o.beta_2 = 2; }), "Nadam: beta_2 must be in [0, 1], got 2"},
      {nadam([&](auto& o) { o.epsilon = nan; }), "Nadam: epsilon must be > 0, got nan"},
      {nadam([](auto& o) { o.weight_decay = -1; }), "Nadam: weight_decay must be >= 0, got -1"},
      {lion([](auto& o) { o.learning_rate = -0.1; }), "Lion: learning_rate must be >= 0, got -0.1"},
      {lion([](auto& o) { o.beta_1 = 0; }), "Lion: beta_1 must be in (0, 1], got 0 (0 makes Lion signSGD)"},
      {lion([](auto& o) { o.beta_1 = 1.5; }), "Lion: beta_1 must be in (0, 1], got 1.5 (0 makes Lion signSGD)"},
      {lion([](auto& o) { o.beta_2 = -0.01; }), "Lion: beta_2 must be in [0, 1], got -0.01"},
      {[] {
         opt::AdamWOptions o;
         o.beta_1 = 2;
         opt::AdamW a(o);
       },
       "AdamW: beta_1 must be in [0, 1], got 2"},  // AdamW's own name, not its base's
      {ftrl([](auto& o) { o.learning_rate = -1.0; }), "Ftrl: learning_rate must be >= 0, got -1"},
      {ftrl([](auto& o) { o.learning_rate_power = 0.5; }), "Ftrl: learning_rate_power must be <= 0, got 0.5"},
      {ftrl([](auto& o) { o.initial_accumulator_value = -0.1; }),
       "Ftrl: initial_accumulator_value must be >= 0, got -0.1"},
      {ftrl([](auto& o) { o.l1_regularization_strength = -1; }),
       "Ftrl: l1_regularization_strength must be >= 0, got -1"},
      {ftrl([](auto& o) { o.l2_regularization_strength = -1; }),
       "Ftrl: l2_regularization_strength must be >= 0, got -1"},
      {ftrl([](auto& o) { o.l2_shrinkage_regularization_strength = -1; }),
       "Ftrl: l2_shrinkage_regularization_strength must be >= 0, got -1"},
      {ftrl([](auto& o) { o.beta = -1; }), "Ftrl: beta must be >= 0, got -1"},
  };
  for (const auto& [make, message] : bad) {
    INFO(message);
    CHECK_THROWS_AS(make(), ValueError);
    CHECK_THROWS_WITH(make(), message);
  }
  // the edges are allowed
  opt::AdagradOptions zero_accumulator;
  zero_accumulator.initial_accumulator_value = 0;
  CHECK_NOTHROW(opt::Adagrad(zero_accumulator));
  opt::LionOptions lion_one;
  lion_one.beta_1 = 1;
  lion_one.beta_2 = 0;
  CHECK_NOTHROW(opt::Lion(lion_one));
}

TEST_CASE("every optimizer keeps its declared slots per variable, in the variable's dtype", "[optim]") {
  for (const char* name : kKerasNames) {
    INFO(name);
    const auto o = opt::get(name);
    Variable a(ones({2}, kFloat64), "a");
    Variable c(ones({3}), "c");
    o->apply_gradients({tensor<double>({0.5, -1}), tensor<float>({1, 2, -3})}, {a, c});
    for (const auto& s : o->slot_names()) {
      INFO(s);
      REQUIRE(o->get_slot(a, s).defined());
      CHECK(o->get_slot(a, s).dtype() == kFloat64);
      CHECK(o->get_slot(a, s).shape() == Shape{2});
      CHECK(o->get_slot(c, s).dtype() == kFloat32);
      CHECK(o->get_slot(c, s).shape() == Shape{3});
      CHECK(o->get_slot(a, s).id() != o->get_slot(c, s).id());
    }
    CHECK(a.dtype() == kFloat64);
    if (std::string(name) == "ftrl") continue;  // Ftrl's variable is -z / quadratic, not a step from the last value
    CHECK(a.to_vector<double>()[0] < 1.0);      // every other one moves against a positive gradient
    CHECK(c.to_vector<float>()[2] > 1.0f);
  }
}

TEST_CASE("first steps by hand: Adagrad's accumulator starts at initial_accumulator_value", "[optim]") {
  // acc = 0.1 + 0.5^2 = 0.35; x = 1 - 0.1 * 0.5 / sqrt(0.35 + 1e-7)
  opt::Adagrad adagrad(0.1);
  Variable x(tensor<double>({1.0}), "x");
  CHECK(adagrad.get_state({x}).slots[0].second.to_vector<double>()[0] == 0.1);  // before the first step
  adagrad.apply_gradients({tensor<double>({0.5})}, {x});
  CHECK(adagrad.get_slot(x, "accumulator").to_vector<double>()[0] == 0.1 + 0.25);
  CHECK(x.to_vector<double>()[0] == 1 - 0.1 * 0.5 / std::sqrt(0.35 + 1e-7));

  // Lion: every element moves by exactly lr the first step, whatever the gradient's size
  opt::Lion lion(0.25);
  Variable y(tensor<double>({1.0, 1.0, 1.0}), "y");
  lion.apply_gradients({tensor<double>({1e-9, -3, 0})}, {y});
  CHECK(y.to_vector<double>() == std::vector<double>{0.75, 1.25, 1.0});
  CHECK(lion.get_slot(y, "momentum").to_vector<double>()[1] == -3 * (1.0 - 0.99));

  // Adamax: the first step is lr * g / (|g| + eps), about lr * sign(g)
  opt::Adamax adamax(0.01);
  Variable z(tensor<double>({1.0}), "z");
  adamax.apply_gradients({tensor<double>({-2.0})}, {z});
  CHECK(z.to_vector<double>()[0] == Approx(1.01).epsilon(1e-9));
}

TEST_CASE("Nadam's momentum-schedule product follows iterations, through set_state too", "[optim]") {
  // A Nadam restored to an earlier step (going back) and a fresh one restored there agree bitwise.
  opt::Nadam a(0.05);
  Variable x(tensor<double>({1.0, -2.0}), "x");
  const auto grad = [](int k) { return tensor<double>({std::sin(k + 1.0), std::cos(k + 1.0)}); };
  for (int k = 0; k < 3; ++k) a.apply_gradients({grad(k)}, {x});
  const opt::OptimizerState at3 = a.get_state({x});
  const Tensor x3 = x.clone();
  for (int k = 3; k < 6; ++k) a.apply_gradients({grad(k)}, {x});
  const Tensor x6 = x.clone();

  a.set_state(at3, {x});  // back from 6 to 3
  x.assign(x3);
  opt::Nadam b(0.05);
  Variable y(x3.clone(), "x");
  b.set_state(at3, {y});
  for (int k = 3; k < 6; ++k) {
    a.apply_gradients({grad(k)}, {x});
    b.apply_gradients({grad(k)}, {y});
  }
  CHECK(x.to_vector<double>() == x6.to_vector<double>());
  CHECK(y.to_vector<double>() == x6.to_vector<double>());
}

TEST_CASE("slots are per variable and keep the variable's dtype", "[optim]") {
  opt::Adam adam(0.01);
  Variable a(ones({2}, kFloat64), "a");
  Variable c(ones({3}), "c");
  adam.apply_gradients({ones({2}, kFloat64), ones({3})}, {a, c});
  CHECK(adam.get_slot(a, "m").dtype() == kFloat64);
  CHECK(adam.get_slot(c, "v").dtype() == kFloat32);
  CHECK(adam.get_slot(c, "v").shape() == Shape{3});
  CHECK(adam.get_slot(a, "m").to_vector<double>()[0] == Approx(0.1));  // (1 - beta_1) * g
  CHECK_FALSE(adam.get_slot(a, "v_hat").defined());
  // A copy of a Variable handle is the same variable: the same slots.
  Variable a_again = a;
  CHECK(adam.get_slot(a_again, "m").id() == adam.get_slot(a, "m").id());
  // Adam's first step moves each element by about lr, whatever the gradient's scale.
  CHECK(a.to_vector<double>()[0] == Approx(1 - 0.01).epsilon(1e-6));
}

TEST_CASE("a variable that is not floating throws before anything is written", "[optim]") {
  opt::AdamW adamw(0.1, 0.5);
  Variable a(ones({2}), "a");
  Variable b(ones({2}, kInt32), "b");
  CHECK_THROWS_AS(adamw.apply_gradients({ones({2}), ones({2})}, {a, b}), DTypeError);
  CHECK_THROWS_WITH(adamw.apply_gradients({ones({2}), ones({2})}, {a, b}),
                    "AdamW: variable 'b' is int32; only floating variables can be trained");
  // a was listed first, yet neither decayed nor stepped, and no state or step was counted
  CHECK(a.to_vector<float>() == std::vector<float>{1, 1});
  CHECK_FALSE(adamw.get_slot(a, "m").defined());
  CHECK(adamw.iterations() == 0);

  opt::SGD sgd(0.1);
  Variable flag(tensor<bool>({true, false}), "flag");
  CHECK_THROWS_WITH(sgd.apply_gradients({ones({2}), ones({2})}, {a, flag}),
                    "SGD: variable 'flag' is bool; only floating variables can be trained");
  CHECK(a.to_vector<float>() == std::vector<float>{1, 1});
  CHECK(sgd.iterations() == 0);

  for (const char* name : {"adagrad", "adadelta", "adamax", "nadam", "lion", "ftrl"}) {
    INFO(name);
    const auto o = opt::get(name);
    Variable i(ones({2}, kInt64), "i");
    CHECK_THROWS_AS(o->apply_gradients({ones({2}), ones({2})}, {a, i}), DTypeError);
    CHECK(a.to_vector<float>() == std::vector<float>{1, 1});
    for (const auto& s : o->slot_names()) CHECK_FALSE(o->get_slot(a, s).defined());
    CHECK(o->iterations() == 0);
  }
}

TEST_CASE("global_clipnorm: an infinite or NaN norm makes every gradient NaN, as Keras", "[optim]") {
  opt::SGDOptions so;
  so.learning_rate = 1.0;
  so.global_clipnorm = 1.0;
  {
    // finite: the joint norm of [3, 0] and [0, 4] is 5, so the gradients scale by 1 / 5
    opt::SGD sgd(so);
    Variable a(zeros({2}), "a"), b(zeros({2}), "b");
    sgd.apply_gradients({tensor<float>({3, 0}), tensor<float>({0, 4})}, {a, b});
    CHECK(a.to_vector<float>()[0] == Approx(-0.6f));
    CHECK(a.to_vector<float>()[1] == 0.0f);
    CHECK(b.to_vector<float>()[1] == Approx(-0.8f));
  }
  // tf.clip_by_global_norm adds (norm - norm) to the scale: NaN for an infinite or NaN norm, so
  // the finite gradients become NaN too rather than being scaled to 0
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    INFO(bad);
    opt::SGD sgd(so);
    Variable a(zeros({2}), "a"), b(zeros({2}), "b");
    sgd.apply_gradients({tensor<float>({bad, 1}), tensor<float>({1, 1})}, {a, b});
    for (float v : a.to_vector<float>()) CHECK(std::isnan(v));
    for (float v : b.to_vector<float>()) CHECK(std::isnan(v));
  }
}

TEST_CASE("NaN clipping and weight_decay options are rejected, naming the option", "[optim]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  opt::SGDOptions clipnorm;
  clipnorm.clipnorm = nan;
  CHECK_THROWS_AS(opt::SGD(clipnorm), ValueError);
  CHECK_THROWS_WITH(opt::SGD(clipnorm), "SGD: clipnorm must be >= 0, got nan");
  opt::SGDOptions global;
  global.global_clipnorm = nan;
  CHECK_THROWS_WITH(opt::SGD(global), "SGD: global_clipnorm must be >= 0, got nan");
  opt::AdamOptions clipvalue;
  clipvalue.clipvalue = nan;
  CHECK_THROWS_WITH(opt::Adam(clipvalue), "Adam: clipvalue must be >= 0, got nan");
  opt::SGDOptions decay;
  decay.weight_decay = nan;
  CHECK_THROWS_WITH(opt::SGD(decay), "SGD: weight_decay must be >= 0, got nan");
  CHECK_THROWS_WITH(opt::AdamW(0.001, nan), "AdamW: weight_decay must be >= 0, got nan");
  opt::SGDOptions negative;
  negative.clipvalue = -1;
  CHECK_THROWS_WITH(opt::SGD(negative), "SGD: clipvalue must be >= 0, got -1");
}

TEST_CASE("gradient accumulation by hand: the mean gradient every N calls, iterations() counts updates", "[optim]") {
  opt::SGDOptions so;
  so.learning_rate = 0.5;
  so.gradient_accumulation_steps = 3;
  opt::SGD sgd(so);
  Variable w(tensor<double>({1.0, 2.0}), "w");
  const std::vector<std::vector<double>> g = {{1, 2}, {3, 4}, {5, 9}, {1, 1}};
  sgd.apply_gradients({tensor<double>(g[0])}, {w});
  sgd.apply_gradients({tensor<double>(g[1])}, {w});
  CHECK(w.to_vector<double>() == std::vector<double>{1.0, 2.0});  // nothing written yet
  CHECK(sgd.iterations() == 0);
  CHECK(sgd.micro_steps() == 2);
  CHECK(sgd.get_slot(w, "gradient_accumulator").to_vector<double>() == std::vector<double>{4, 6});
  sgd.apply_gradients({tensor<double>(g[2])}, {w});
  // w - 0.5 * mean(g): (1 + 3 + 5) / 3 = 3, (2 + 4 + 9) / 3 = 5
  CHECK(w.to_vector<double>() == std::vector<double>{1.0 - 1.5, 2.0 - 2.5});
  CHECK(sgd.iterations() == 1);
  CHECK(sgd.micro_steps() == 3);
  CHECK(sgd.get_slot(w, "gradient_accumulator").to_vector<double>() == std::vector<double>{0, 0});
  sgd.apply_gradients({tensor<double>(g[3])}, {w});
  CHECK(sgd.get_slot(w, "gradient_accumulator").to_vector<double>() == std::vector<double>{1, 1});
  CHECK(sgd.state_slot_names() == std::vector<std::string>{"gradient_accumulator"});
}

TEST_CASE("gradient accumulation: Adagrad's accumulators start at their own values, the gradients' at 0",
          "[optim]") {
  // two accumulated calls make the update one plain call makes with the mean gradient
  opt::AdagradOptions ao;
  ao.learning_rate = 0.1;
  ao.initial_accumulator_value = 0.5;
  opt::Adagrad plain(ao);
  ao.gradient_accumulation_steps = 2;
  opt::Adagrad accumulating(ao);
  Variable a(tensor<double>({1.0, -2.0}), "w"), b(tensor<double>({1.0, -2.0}), "w");
  const Tensor g1 = tensor<double>({0.3, -0.6}), g2 = tensor<double>({0.5, 0.2});
  accumulating.apply_gradients({g1}, {a});
  CHECK(accumulating.get_slot(a, "gradient_accumulator").to_vector<double>() == g1.to_vector<double>());
  CHECK(accumulating.get_state({a}).slots.size() == 2);
  accumulating.apply_gradients({g2}, {a});
  plain.apply_gradients({(g1 + g2) / 2.0}, {b});
  CHECK(a.to_vector<double>() == b.to_vector<double>());
  CHECK(accumulating.get_slot(a, "accumulator").to_vector<double>() ==
        plain.get_slot(b, "accumulator").to_vector<double>());
  // a state exported before any call holds the starting values
  opt::Adagrad fresh(ao);
  Variable f(tensor<double>({1.0, 2.0}), "w");
  const opt::OptimizerState s = fresh.get_state({f});
  REQUIRE(s.slots.size() == 2);
  CHECK(s.slots[0].second.to_vector<double>() == std::vector<double>{0.5, 0.5});
  CHECK(s.slots[1].second.to_vector<double>() == std::vector<double>{0.0, 0.0});
}

TEST_CASE("use_ema by hand: the average starts at the variable, then m * avg + (1 - m) * var", "[optim]") {
  opt::SGDOptions so;
  so.learning_rate = 1.0;
  so.use_ema = true;
  so.ema_momentum = 0.75;
  so.ema_overwrite_frequency = 3;
  opt::SGD sgd(so);
  Variable w(tensor<double>({0.0}), "w");
  sgd.apply_gradients({tensor<double>({-4.0})}, {w});  // w = 4; average = 4 (m = 0 on step 1)
  CHECK(sgd.get_slot(w, "average").item<double>() == 4.0);
  sgd.apply_gradients({tensor<double>({-8.0})}, {w});  // w = 12; average = 0.75 * 4 + 0.25 * 12 = 6
  CHECK(w.item<double>() == 12.0);
  CHECK(sgd.get_slot(w, "average").item<double>() == 6.0);
  sgd.apply_gradients({tensor<double>({-4.0})}, {w});  // w = 16; average = 4.5 + 4 = 8.5; step 3 overwrites
  CHECK(sgd.get_slot(w, "average").item<double>() == 8.5);
  CHECK(w.item<double>() == 8.5);
  // without use_ema, finalize_variable_values does nothing
  opt::SGD plain(1.0);
  Variable v(tensor<double>({1.0}), "v");
  plain.apply_gradients({tensor<double>({1.0})}, {v});
  plain.finalize_variable_values({v});
  CHECK(v.item<double>() == 0.0);
  CHECK_FALSE(plain.get_slot(v, "average").defined());
}

TEST_CASE("use_ema and gradient accumulation: get_state / set_state resume bitwise mid-accumulation", "[optim]") {
  const auto make = [] {
    opt::AdamOptions o;
    o.learning_rate = 0.05;
    o.use_ema = true;
    o.ema_momentum = 0.6;
    o.gradient_accumulation_steps = 2;
    return std::make_unique<opt::Adam>(o);
  };
  const auto grad = [](int k) { return tensor<double>({0.3 * k - 1.0, 0.5 + 0.1 * k, -0.7 * k}); };
  auto a = make();
  Variable wa(tensor<double>({1.0, -2.0, 0.5}), "w");
  for (int k = 0; k < 3; ++k) a->apply_gradients({grad(k)}, {wa});  // one update, one call accumulated
  CHECK(a->state_slot_names() == std::vector<std::string>{"m", "v", "average", "gradient_accumulator"});
  const opt::OptimizerState state = a->get_state({wa});
  CHECK(state.iterations == 3);
  CHECK(state.slots.size() == 4);
  auto b = make();
  Variable wb(wa.clone(), "w");
  b->set_state(state, {wb});
  CHECK(b->iterations() == 1);
  CHECK(b->micro_steps() == 3);
  for (int k = 3; k < 6; ++k) {
    a->apply_gradients({grad(k)}, {wa});
    b->apply_gradients({grad(k)}, {wb});
  }
  CHECK(wa.to_vector<double>() == wb.to_vector<double>());
  CHECK(a->get_slot(wa, "average").to_vector<double>() == b->get_slot(wb, "average").to_vector<double>());
  // a state without the accumulators is refused, naming the slot
  opt::AdamOptions plain;
  plain.learning_rate = 0.05;
  opt::Adam c(plain);
  Variable wc(wa.clone(), "w");
  c.apply_gradients({grad(0)}, {wc});
  CHECK_THROWS_WITH(b->set_state(c.get_state({wc}), {wb}), Catch::Contains("slot 'average' of variable 'w' is missing"));
  // a moving average not made yet is exported as the variable itself
  auto fresh = make();
  Variable wf(tensor<double>({3.0, 4.0, 5.0}), "w");
  const opt::OptimizerState s0 = fresh->get_state({wf});
  CHECK(s0.slots[2].first == "w/average");
  CHECK(s0.slots[2].second.to_vector<double>() == std::vector<double>{3.0, 4.0, 5.0});
}

TEST_CASE("use_ema and gradient_accumulation_steps: invalid values raise ValueError naming them", "[optim]") {
  opt::SGDOptions ema;
  ema.use_ema = true;
  ema.ema_momentum = 1.5;
  CHECK_THROWS_WITH(opt::SGD(ema), "SGD: ema_momentum must be in [0, 1], got 1.5");
  opt::SGDOptions freq;
  freq.ema_overwrite_frequency = -1;
  CHECK_THROWS_WITH(opt::SGD(freq), Catch::Contains("ema_overwrite_frequency must be >= 1, or 0 for none, got -1"));
  for (std::int64_t bad : {std::int64_t{1}, std::int64_t{-2}}) {
    opt::AdamOptions acc;
    acc.gradient_accumulation_steps = bad;
    CHECK_THROWS_WITH(opt::Adam(acc), Catch::Contains("Adam: gradient_accumulation_steps must be >= 2"));
  }
}
