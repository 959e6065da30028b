// Float64 central differences against the tape.
#include "tapeflow/gradcheck.hpp"

#include <fmt/format.h>

#include <cmath>

#include "tapeflow/gradient_tape.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow {
namespace {

// sum(fn(xs) * w) as a double, recorded by no tape.
double weighted(const TensorFunction& fn, const std::vector<Tensor>& xs, Tensor& w, Generator& gen) {
  Tensor y = fn(xs);
  if (!y.defined()) throw ValueError("gradcheck: the function returned an undefined tensor");
  if (!w.defined()) w = uniform(y.shape(), gen, 0.5, 1.5, kFloat64, y.device());
  return sum(y.astype(kFloat64) * w).item<double>();
}

}  // namespace

GradcheckResult gradcheck(const TensorFunction& fn, const std::vector<Tensor>& inputs_in, GradcheckOptions opt) {
  std::vector<Tensor> inputs;
  for (const auto& t : inputs_in) inputs.push_back(is_floating(t.dtype()) ? t.astype(kFloat64).clone() : t);
  Generator gen(opt.seed);
  Tensor w;
  // analytic: the tape's gradient of sum(fn(x) * w)
  std::vector<Tensor> analytic;
  {
    GradientTape tape;
    std::vector<Tensor> watched;
    for (const auto& t : inputs)
      if (is_floating(t.dtype())) {
        tape.watch(t);
        watched.push_back(t);
      }
    Tensor y = fn(inputs);
    {
      auto pause = tape.stop_recording();
      if (!w.defined()) w = uniform(y.shape(), gen, 0.5, 1.5, kFloat64, y.device());
    }
    Tensor target = sum(y.astype(kFloat64) * w);
    analytic = tape.gradient(target, watched, Tensor(), UnconnectedGradients::Zero);
  }
  GradcheckResult result;
  std::size_t k = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!is_floating(inputs[i].dtype())) continue;
    Tensor& x = inputs[i];
    const std::vector<double> a = analytic[k++].astype(kFloat64).contiguous().to_vector<double>();
    // Inputs on a device are perturbed in a host copy, written back before each evaluation.
    const bool on_host = x.device().is_cpu();
    Tensor host = on_host ? x : x.to(Device::cpu());
    double* p = host.data<double>();
    auto set = [&](std::int64_t j, double v) {
      p[j] = v;
      if (!on_host) x.assign(host);
    };
    for (std::int64_t j = 0; j < x.size(); ++j) {
      const double orig = p[j];
      set(j, orig + opt.eps);
      const double fp = weighted(fn, inputs, w, gen);
      set(j, orig - opt.eps);
      const double fm = weighted(fn, inputs, w, gen);
      set(j, orig);
      const double numeric = (fp - fm) / (2 * opt.eps);
      const double err = std::abs(a[static_cast<std::size_t>(j)] - numeric);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (result.ok && !(err <= opt.atol + opt.rtol * std::abs(numeric))) {
        result.ok = false;
        result.message = fmt::format("input {} (shape {}) element {}: analytic {} vs numeric {} (error {})", i,
                                     shape_str(x.shape()), j, a[static_cast<std::size_t>(j)], numeric, err);
      }
    }
  }
  return result;
}

GradcheckResult gradgradcheck(const TensorFunction& fn, const std::vector<Tensor>& inputs, GradcheckOptions opt) {
  // the function checked: x -> d/dx sum(fn(x) * v), with v fixed
  Generator gen(opt.seed + 1);
  auto v = std::make_shared<Tensor>();
  TensorFunction grad_fn = [fn, v, &gen](const std::vector<Tensor>& xs) {
    GradientTape inner;
    std::vector<Tensor> watched;
    for (const auto& t : xs)
      if (is_floating(t.dtype())) {
        inner.watch(t);
        watched.push_back(t);
      }
    Tensor y = fn(xs);
    if (!v->defined()) {
      auto pause = inner.stop_recording();
      *v = uniform(y.shape(), gen, 0.5, 1.5, kFloat64, y.device());
    }
    auto gs = inner.gradient(sum(y.astype(kFloat64) * *v), watched, Tensor(), UnconnectedGradients::Zero);
    std::vector<Tensor> flat;
    for (const auto& g : gs) flat.push_back(g.reshape({-1}));
    return concat(flat);
  };
  return gradcheck(grad_fn, inputs, opt);
}

}  // namespace tapeflow
