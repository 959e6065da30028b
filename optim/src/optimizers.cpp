// Optimizers: Keras 3's update rules (keras/src/optimizers/*.py) written with public tensor ops.
#include "tapeflow/optimizers.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iostream>
#include <set>

#include "tapeflow/error.hpp"
#include "tapeflow/observer.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow::optimizers {

namespace {

std::string variable_label(const Variable& v, std::size_t i) {
  return v.name().empty() ? fmt::format("#{}", i) : fmt::format("'{}'", v.name());
}

void check_positive(const char* what, double value, const char* op) {
  if (!(value > 0)) throw ValueError(fmt::format("{}: {} must be > 0, got {}", op, what, value));
}

void check_unit(const char* what, double value, const char* op) {
  if (!(value >= 0 && value <= 1)) throw ValueError(fmt::format("{}: {} must be in [0, 1], got {}", op, what, value));
}

void check_non_negative(const char* what, double value, const char* op) {
  if (!(value >= 0)) throw ValueError(fmt::format("{}: {} must be >= 0, got {}", op, what, value));
}

// beta_1 and beta_2 in [0, 1], epsilon > 0: Adam's, Adamax's and Nadam's options.
void check_betas_epsilon(double beta_1, double beta_2, double epsilon, const std::string& op) {
  check_unit("beta_1", beta_1, op.c_str());
  check_unit("beta_2", beta_2, op.c_str());
  check_positive("epsilon", epsilon, op.c_str());
}

// Default options with `learning_rate` set: the options of the short constructors.
template <class Options>
Options with_learning_rate(LearningRate learning_rate) {
  Options o;
  o.learning_rate = std::move(learning_rate);
  return o;
}

}  // namespace

// ---------------------------------------------------------------- schedules

namespace schedules {

ExponentialDecay::ExponentialDecay(double initial_learning_rate_, std::int64_t decay_steps_, double decay_rate_,
                                   bool staircase_)
    : initial_learning_rate(initial_learning_rate_),
      decay_steps(decay_steps_),
      decay_rate(decay_rate_),
      staircase(staircase_) {
  if (decay_steps <= 0) throw ValueError(fmt::format("ExponentialDecay: decay_steps must be > 0, got {}", decay_steps));
}

double ExponentialDecay::operator()(std::int64_t step) const {
  double p = static_cast<double>(step) / static_cast<double>(decay_steps);
  if (staircase) p = std::floor(p);
  return initial_learning_rate * std::pow(decay_rate, p);
}

CosineDecay::CosineDecay(double initial_learning_rate_, std::int64_t decay_steps_, double alpha_,
                         std::optional<double> warmup_target_, std::int64_t warmup_steps_)
    : initial_learning_rate(initial_learning_rate_),
      decay_steps(decay_steps_),
      alpha(alpha_),
      warmup_target(warmup_target_),
      warmup_steps(warmup_steps_) {
  if (decay_steps <= 0) throw ValueError(fmt::format("CosineDecay: decay_steps must be > 0, got {}", decay_steps));
  if (warmup_target && warmup_steps <= 0) {
    throw ValueError(fmt::format("CosineDecay: warmup_steps must be > 0 with a warmup_target, got {}", warmup_steps));
  }
}

double CosineDecay::operator()(std::int64_t step) const {
  const double pi = 3.14159265358979323846;
  const auto decay = [&](double s, double from) {
    const double cosine = 0.5 * (1.0 + std::cos(pi * (s / static_cast<double>(decay_steps))));
    return from * ((1 - alpha) * cosine + alpha);
  };
  const double s = static_cast<double>(step);
  if (!warmup_target) return decay(std::min(s, static_cast<double>(decay_steps)), initial_learning_rate);
  const double warmup = static_cast<double>(warmup_steps);
  const double clamped = std::min(s, static_cast<double>(decay_steps) + warmup);
  if (clamped < warmup) return (*warmup_target - initial_learning_rate) * (clamped / warmup) + initial_learning_rate;
  return decay(clamped - warmup, *warmup_target);
}

PiecewiseConstantDecay::PiecewiseConstantDecay(std::vector<std::int64_t> boundaries_, std::vector<double> values_)
    : boundaries(std::move(boundaries_)), values(std::move(values_)) {
  if (boundaries.empty() || values.size() != boundaries.size() + 1) {
    throw ValueError(fmt::format("PiecewiseConstantDecay: needs one value more than boundaries (and a boundary at "
                                 "least), got {} boundaries and {} values",
                                 boundaries.size(), values.size()));
  }
  for (std::size_t i = 1; i < boundaries.size(); ++i) {
    if (boundaries[i] <= boundaries[i - 1]) {
      throw ValueError(fmt::format("PiecewiseConstantDecay: boundaries must increase, got [{}]",
                                   fmt::join(boundaries, ", ")));
    }
  }
}

double PiecewiseConstantDecay::operator()(std::int64_t step) const {
  // the first boundary at or above the step: Keras's ranges are (low, high]
  const auto it = std::lower_bound(boundaries.begin(), boundaries.end(), step);
  return values[static_cast<std::size_t>(it - boundaries.begin())];
}

PolynomialDecay::PolynomialDecay(double initial_learning_rate_, std::int64_t decay_steps_, double end_learning_rate_,
                                 double power_, bool cycle_)
    : initial_learning_rate(initial_learning_rate_),
      decay_steps(decay_steps_),
      end_learning_rate(end_learning_rate_),
      power(power_),
      cycle(cycle_) {
  if (decay_steps <= 0) throw ValueError(fmt::format("PolynomialDecay: decay_steps must be > 0, got {}", decay_steps));
}

double PolynomialDecay::operator()(std::int64_t step) const {
  double s = static_cast<double>(step);
  double steps = static_cast<double>(decay_steps);
  if (cycle) {
    steps *= step == 0 ? 1.0 : std::ceil(s / static_cast<double>(decay_steps));
  } else {
    s = std::min(s, steps);
  }
  return (initial_learning_rate - end_learning_rate) * std::pow(1 - s / steps, power) + end_learning_rate;
}

InverseTimeDecay::InverseTimeDecay(double initial_learning_rate_, std::int64_t decay_steps_, double decay_rate_,
                                   bool staircase_)
    : initial_learning_rate(initial_learning_rate_),
      decay_steps(decay_steps_),
      decay_rate(decay_rate_),
      staircase(staircase_) {
  if (decay_steps <= 0) throw ValueError(fmt::format("InverseTimeDecay: decay_steps must be > 0, got {}", decay_steps));
}

double InverseTimeDecay::operator()(std::int64_t step) const {
  double p = static_cast<double>(step) / static_cast<double>(decay_steps);
  if (staircase) p = std::floor(p);
  return initial_learning_rate / (1 + decay_rate * p);
}

CosineDecayRestarts::CosineDecayRestarts(double initial_learning_rate_, std::int64_t first_decay_steps_, double t_mul_,
                                         double m_mul_, double alpha_)
    : initial_learning_rate(initial_learning_rate_),
      first_decay_steps(first_decay_steps_),
      t_mul(t_mul_),
      m_mul(m_mul_),
      alpha(alpha_) {
  if (first_decay_steps <= 0) {
    throw ValueError(fmt::format("CosineDecayRestarts: first_decay_steps must be > 0, got {}", first_decay_steps));
  }
  if (!(t_mul > 0)) throw ValueError(fmt::format("CosineDecayRestarts: t_mul must be > 0, got {}", t_mul));
}

double CosineDecayRestarts::operator()(std::int64_t step) const {
  const double pi = 3.14159265358979323846;
  double fraction = static_cast<double>(step) / static_cast<double>(first_decay_steps);
  double restart;  // which period the step is in, and fraction the part of it done (Keras's formulas)
  if (t_mul == 1.0) {
    restart = std::floor(fraction);
    fraction -= restart;
  } else {
    restart = std::floor(std::log(1.0 - fraction * (1.0 - t_mul)) / std::log(t_mul));
    const double done = (1.0 - std::pow(t_mul, restart)) / (1.0 - t_mul);
    fraction = (fraction - done) / std::pow(t_mul, restart);
  }
  const double cosine = 0.5 * std::pow(m_mul, restart) * (1.0 + std::cos(pi * fraction));
  return initial_learning_rate * ((1 - alpha) * cosine + alpha);
}

}  // namespace schedules

// ---------------------------------------------------------------- Optimizer

namespace {
// the base's own slots (Keras's optimizer variables "average" and "gradient_accumulator")
const std::string kAverage = "average";
const std::string kAccumulator = "gradient_accumulator";
}  // namespace

Optimizer::Optimizer(std::string name, LearningRate learning_rate, OptimizerOptions options)
    : name_(std::move(name)), learning_rate_(std::move(learning_rate)), options_(options) {
  const int clips = (options_.clipnorm != 0) + (options_.global_clipnorm != 0) + (options_.clipvalue != 0);
  if (clips > 1) {
    throw ValueError(fmt::format("{}: only one of clipnorm, clipvalue and global_clipnorm can be set, got "
                                 "clipnorm={}, clipvalue={}, global_clipnorm={}",
                                 name_, options_.clipnorm, options_.clipvalue, options_.global_clipnorm));
  }
  // !(v >= 0) rejects NaN too (v < 0 would let it through)
  const std::pair<const char*, double> non_negative[] = {{"clipnorm", options_.clipnorm},
                                                         {"global_clipnorm", options_.global_clipnorm},
                                                         {"clipvalue", options_.clipvalue},
                                                         {"weight_decay", options_.weight_decay}};
  for (const auto& [what, value] : non_negative) {
    if (!(value >= 0)) throw ValueError(fmt::format("{}: {} must be >= 0, got {}", name_, what, value));
  }
  if (options_.use_ema && !(options_.ema_momentum >= 0 && options_.ema_momentum <= 1)) {
    throw ValueError(fmt::format("{}: ema_momentum must be in [0, 1], got {}", name_, options_.ema_momentum));
  }
  if (options_.ema_overwrite_frequency < 0) {
    throw ValueError(fmt::format("{}: ema_overwrite_frequency must be >= 1, or 0 for none, got {}", name_,
                                 options_.ema_overwrite_frequency));
  }
  if (options_.gradient_accumulation_steps < 0 || options_.gradient_accumulation_steps == 1) {
    throw ValueError(fmt::format("{}: gradient_accumulation_steps must be >= 2, or 0 for none, got {}", name_,
                                 options_.gradient_accumulation_steps));
  }
  if (!learning_rate_.is_schedule() && !(learning_rate_(0) >= 0)) {
    throw ValueError(fmt::format("{}: learning_rate must be >= 0, got {}", name_, learning_rate_(0)));
  }
}

void Optimizer::apply_gradients(const std::vector<std::pair<Tensor, Variable>>& grads_and_variables) {
  std::vector<Tensor> grads;
  std::vector<Variable> variables;
  for (const auto& [g, v] : grads_and_variables) {
    grads.push_back(g);
    variables.push_back(v);
  }
  apply_gradients(grads, variables);
}

void Optimizer::apply_gradients(const std::vector<Tensor>& grads, const std::vector<Variable>& variables) {
  if (grads.size() != variables.size()) {
    throw ValueError(fmt::format("{}: apply_gradients got {} gradients for {} variables", name_, grads.size(),
                                 variables.size()));
  }
  if (grads.empty()) return;  // Keras: a no-op

  // Validate everything before the first write, so that a bad call changes nothing.
  std::vector<Tensor> live_grads;
  std::vector<Variable> live_vars;
  std::vector<std::string> missing;
  for (std::size_t i = 0; i < grads.size(); ++i) {
    const Variable& v = variables[i];
    if (!v.defined()) throw ValueError(fmt::format("{}: variable #{} is undefined", name_, i));
    if (!grads[i].defined()) {
      missing.push_back(variable_label(v, i));
      continue;
    }
    if (grads[i].shape() != v.shape()) {
      throw ShapeError(fmt::format("{}: gradient of shape {} does not match variable {} of shape {}", name_,
                                   shape_str(grads[i].shape()), variable_label(v, i), shape_str(v.shape())));
    }
    if (!is_floating(v.dtype())) {
      throw DTypeError(fmt::format("{}: variable {} is {}; only floating variables can be trained", name_,
                                   variable_label(v, i), dtype_name(v.dtype())));
    }
    live_grads.push_back(grads[i]);
    live_vars.push_back(v);
  }
  if (live_grads.empty()) throw ValueError(fmt::format("{}: no gradients provided for any variable", name_));
  if (!missing.empty() && !warned_missing_) {
    warned_missing_ = true;
    std::cerr << fmt::format("tapeflow: {}: gradients do not exist for variables [{}]; they are left unchanged\n",
                             name_, fmt::join(missing, ", "));
  }

  NoRecording no_tape;
  const OptimizerOptions& o = options_;
  // Gradient accumulation (Keras's _backend_apply_gradients): every call but each
  // gradient_accumulation_steps-th adds into the accumulators and changes no variable; that one
  // updates with the mean and clears them all.
  const std::int64_t accumulate = o.gradient_accumulation_steps;
  const bool update = accumulate == 0 || (iterations_ + 1) % accumulate == 0;
  if (accumulate > 0) {
    for (std::size_t i = 0; i < live_vars.size(); ++i) {
      Tensor& acc = slots_[live_vars[i].id()][kAccumulator];  // the base's own slot: from 0
      if (!acc.defined()) acc = zeros_like(live_vars[i]);
      if (update) {
        live_grads[i] = (live_grads[i] + acc) / static_cast<double>(accumulate);
      } else {
        acc.add_(live_grads[i]);  // in place: no new buffer per call
      }
    }
    if (update) {
      for (const Variable& v : variables) {
        Tensor acc = get_slot(v, kAccumulator);
        if (acc.defined()) acc.assign(Tensor(0.0));
      }
    }
  }
  if (update) apply_update(live_grads, live_vars);

  if (o.use_ema) {
    // Keras: m = 0 on the first step (iterations() == 0), so the average starts at the
    // variable; a variable first seen later starts at its value too (Keras's would start at 0).
    const double m = iterations() == 0 ? 0.0 : o.ema_momentum;
    const bool overwrite = o.ema_overwrite_frequency > 0 && (iterations() + 1) % o.ema_overwrite_frequency == 0;
    for (Variable v : variables) {
      if (!is_floating(v.dtype())) continue;
      Tensor& average = slots_[v.id()][kAverage];
      if (average.defined()) {
        // in place, rounded as average * m + v * (1 - m): no new buffer per variable and step
        average.mul_(Tensor(m)).addcmul_(v, Tensor(1.0), 1 - m);
      } else {
        average = v.clone();
      }
      if (overwrite) v.assign(average);
    }
  }
  ++iterations_;
}

void Optimizer::apply_update(std::vector<Tensor>& live_grads, std::vector<Variable>& live_vars) {
  const OptimizerOptions& o = options_;
  if (o.clipnorm > 0) {
    for (Tensor& g : live_grads) g = g * o.clipnorm / maximum(sqrt(sum(square(g))), o.clipnorm);
  } else if (o.global_clipnorm > 0) {
    Tensor total = sum(square(live_grads[0]));
    for (std::size_t i = 1; i < live_grads.size(); ++i) total = total + sum(square(live_grads[i]));
    // Keras's clip_by_global_norm: scale = clip * min(1 / norm, 1 / clip) + (norm - norm); the
    // last term is 0 for a finite norm and NaN for an infinite or NaN one, so that every gradient
    // becomes NaN then, rather than the finite ones being scaled to 0.
    const Tensor norm = sqrt(total);
    const Tensor scale = minimum(1.0 / norm, 1.0 / o.global_clipnorm) * o.global_clipnorm + (norm - norm);
    for (Tensor& g : live_grads) g = g * scale.astype(g.dtype());
  } else if (o.clipvalue > 0) {
    for (Tensor& g : live_grads) g = clip(g, -o.clipvalue, o.clipvalue);
  }

  const double lr = learning_rate();
  for (std::size_t i = 0; i < live_vars.size(); ++i) {
    if (o.weight_decay > 0) live_vars[i].assign_sub(live_vars[i] * o.weight_decay * lr);
    update_step(live_grads[i], live_vars[i], lr);
  }
}

void Optimizer::finalize_variable_values(const std::vector<Variable>& variables) {
  if (!options_.use_ema) return;
  NoRecording no_tape;
  for (Variable v : variables) {
    if (!v.defined()) continue;
    const Tensor average = get_slot(v, kAverage);
    if (average.defined()) v.assign(average);
  }
}

std::vector<std::string> Optimizer::state_slot_names() const {
  std::vector<std::string> names = slot_names();
  if (options_.use_ema) names.push_back(kAverage);
  if (options_.gradient_accumulation_steps > 0) names.push_back(kAccumulator);
  return names;
}

Tensor Optimizer::get_slot(const Tensor& variable, const std::string& slot) const {
  auto it = slots_.find(variable.id());
  if (it == slots_.end()) return {};
  auto s = it->second.find(slot);
  return s == it->second.end() ? Tensor() : s->second;
}

namespace {

// The variables of get_state / set_state: defined, named, each name once.
void check_state_variables(const std::string& optimizer, const char* method, const std::vector<Variable>& variables) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < variables.size(); ++i) {
    const Variable& v = variables[i];
    if (!v.defined()) throw ValueError(fmt::format("{}: {}: variable #{} is undefined", optimizer, method, i));
    if (v.name().empty()) {
      throw ValueError(fmt::format("{}: {}: variable #{} has no name; the state names slots after their variable",
                                   optimizer, method, i));
    }
    if (!names.insert(v.name()).second) {
      throw ValueError(fmt::format("{}: {}: two variables are named '{}'", optimizer, method, v.name()));
    }
  }
}

}  // namespace

OptimizerState Optimizer::get_state(const std::vector<Variable>& variables) const {
  check_state_variables(name_, "get_state", variables);
  const std::vector<std::string> declared = state_slot_names();
  OptimizerState state;
  state.iterations = iterations_;
  if (!learning_rate_.is_schedule()) state.learning_rate = learning_rate_(0);
  NoRecording no_tape;
  for (const Variable& v : variables) {
    const auto it = slots_.find(v.id());
    if (it != slots_.end()) {
      for (const auto& [slot, t] : it->second) {
        if (std::find(declared.begin(), declared.end(), slot) == declared.end()) {
          throw ValueError(fmt::format("{}: get_state: variable '{}' has a slot '{}' that state_slot_names() "
                                       "does not declare [{}]",
                                       name_, v.name(), slot, fmt::join(declared, ", ")));
        }
      }
    }
    for (const auto& slot : declared) {
      const Tensor t = get_slot(v, slot);
      // a slot starts from slot_initial_value() (slot()), so that value restores a slot not made
      // yet; a moving average from the variable
      Tensor value = t.defined()              ? t.clone()
                     : slot == kAverage       ? v.clone()
                     : slot == kAccumulator   ? zeros_like(v)
                                              : full_like(v, slot_initial_value(slot));
      state.slots.emplace_back(v.name() + "/" + slot, std::move(value));
    }
  }
  return state;
}

void Optimizer::set_state(const OptimizerState& state, const std::vector<Variable>& variables) {
  check_state_variables(name_, "set_state", variables);
  if (state.iterations < 0) {
    throw ValueError(fmt::format("{}: set_state: iterations must be >= 0, got {}", name_, state.iterations));
  }
  if (state.learning_rate && !(*state.learning_rate >= 0)) {
    throw ValueError(fmt::format("{}: set_state: learning_rate must be >= 0, got {}", name_, *state.learning_rate));
  }
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state.slots) {
    if (!given.emplace(name, &t).second) {
      throw ValueError(fmt::format("{}: set_state: slot '{}' is given twice", name_, name));
    }
  }
  // Check everything first, so that a bad state changes nothing.
  const std::vector<std::string> declared = state_slot_names();
  for (const Variable& v : variables) {
    for (const auto& slot : declared) {
      const std::string key = v.name() + "/" + slot;
      const auto it = given.find(key);
      if (it == given.end()) {
        throw ValueError(fmt::format("{}: set_state: slot '{}' of variable '{}' is missing ('{}')", name_, slot,
                                     v.name(), key));
      }
      const Tensor& t = *it->second;
      if (!t.defined()) {
        throw ValueError(fmt::format("{}: set_state: slot '{}' of variable '{}' is undefined", name_, slot, v.name()));
      }
      if (t.shape() != v.shape()) {
        throw ShapeError(fmt::format("{}: set_state: slot '{}' of variable '{}' has shape {}, the variable {}", name_,
                                     slot, v.name(), shape_str(t.shape()), shape_str(v.shape())));
      }
      if (t.dtype() != v.dtype()) {
        throw DTypeError(fmt::format("{}: set_state: slot '{}' of variable '{}' is {}, the variable {}", name_, slot,
                                     v.name(), dtype_name(t.dtype()), dtype_name(v.dtype())));
      }
    }
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, t] : given) {
    const bool expected = std::any_of(variables.begin(), variables.end(), [&](const Variable& v) {
      return name.size() > v.name().size() + 1 && name.compare(0, v.name().size() + 1, v.name() + "/") == 0 &&
             std::find(declared.begin(), declared.end(), name.substr(v.name().size() + 1)) != declared.end();
    });
    if (!expected) unexpected.push_back(name);
  }
  if (!unexpected.empty()) {
    throw ValueError(fmt::format("{}: set_state: unexpected slots [{}]; this optimizer keeps [{}] for each of the {} "
                                 "variables",
                                 name_, fmt::join(unexpected, ", "), fmt::join(declared, ", "), variables.size()));
  }

  // Own copies on the variable's device: training goes on writing them in place.
  NoRecording no_tape;
  std::vector<std::map<std::string, Tensor>> copies;
  for (const Variable& v : variables) {
    std::map<std::string, Tensor> mine;
    for (const auto& slot : declared) {
      const Tensor& t = *given.at(v.name() + "/" + slot);
      mine[slot] = t.device() == v.device() ? t.clone() : t.to(v.device());
    }
    copies.push_back(std::move(mine));
  }
  for (std::size_t i = 0; i < variables.size(); ++i) slots_[variables[i].id()] = std::move(copies[i]);
  iterations_ = state.iterations;
  if (state.learning_rate && !learning_rate_.is_schedule()) learning_rate_ = LearningRate(*state.learning_rate);
}

Tensor& Optimizer::slot(const Variable& variable, const std::string& slot) {
  Tensor& t = slots_[variable.id()][slot];
  if (!t.defined()) t = full_like(variable, slot_initial_value(slot));
  return t;
}

double Optimizer::slot_initial_value(const std::string&) const { return 0; }

// ---------------------------------------------------------------- SGD

SGDOptions SGD::make(LearningRate learning_rate, double momentum) {
  SGDOptions o;
  o.learning_rate = std::move(learning_rate);
  o.momentum = momentum;
  return o;
}

SGD::SGD(const SGDOptions& options)
    : Optimizer("SGD", options.learning_rate, options), momentum_(options.momentum), nesterov_(options.nesterov) {
  check_unit("momentum", momentum_, "SGD");
}

std::vector<std::string> SGD::slot_names() const {
  if (momentum_ == 0) return {};
  return {"momentum"};
}

void SGD::update_step(const Tensor& grad, Variable& variable, double lr) {
  if (momentum_ == 0) {
    variable.assign_sub(grad * lr);
    return;
  }
  Tensor& m = slot(variable, "momentum");
  m.mul_(momentum_).sub_(grad * lr);  // m = m * momentum - g * lr
  if (nesterov_) {
    variable.assign_add(m * momentum_ - grad * lr);
  } else {
    variable.assign_add(m);
  }
}

// ---------------------------------------------------------------- RMSprop

RMSpropOptions RMSprop::make(LearningRate learning_rate) {
  return with_learning_rate<RMSpropOptions>(std::move(learning_rate));
}

RMSprop::RMSprop(const RMSpropOptions& options) : Optimizer("RMSprop", options.learning_rate, options), opt_(options) {
  check_unit("rho", opt_.rho, "RMSprop");
  check_unit("momentum", opt_.momentum, "RMSprop");
  check_positive("epsilon", opt_.epsilon, "RMSprop");
}

std::vector<std::string> RMSprop::slot_names() const {
  std::vector<std::string> names = {"velocity"};
  if (opt_.centered) names.push_back("average_gradient");
  if (opt_.momentum > 0) names.push_back("momentum");
  return names;
}

void RMSprop::update_step(const Tensor& grad, Variable& variable, double lr) {
  const double rho = opt_.rho;
  Tensor& velocity = slot(variable, "velocity");
  velocity.mul_(rho).addcmul_(grad, grad, 1 - rho);  // v * rho + (1 - rho) * g^2, one pass
  Tensor denominator;
  if (opt_.centered) {
    Tensor& average_grad = slot(variable, "average_gradient");
    average_grad.mul_(rho).add_(grad * (1 - rho));
    denominator = velocity - square(average_grad) + opt_.epsilon;
  } else {
    denominator = velocity + opt_.epsilon;
  }
  const Tensor root = sqrt(denominator);
  if (opt_.momentum > 0) {
    Tensor& momentum = slot(variable, "momentum");
    momentum.mul_(opt_.momentum).addcdiv_(grad, root, lr);
    variable.assign_sub(momentum);
  } else {
    variable.addcdiv_(grad, root, -lr);  // variable - lr * g / sqrt(v + epsilon), one pass
  }
}

// ---------------------------------------------------------------- Adam, AdamW

AdamOptions Adam::make(LearningRate learning_rate) {
  return with_learning_rate<AdamOptions>(std::move(learning_rate));
}

Adam::Adam(const AdamOptions& options, std::string name)
    : Optimizer(std::move(name), options.learning_rate, options), opt_(options) {
  check_betas_epsilon(opt_.beta_1, opt_.beta_2, opt_.epsilon, this->name());  // "AdamW" for AdamW
}

std::vector<std::string> Adam::slot_names() const {
  if (opt_.amsgrad) return {"m", "v", "v_hat"};
  return {"m", "v"};
}

void Adam::update_step(const Tensor& grad, Variable& variable, double lr) {
  const double t = static_cast<double>(iterations() + 1);
  const double alpha = lr * std::sqrt(1 - std::pow(opt_.beta_2, t)) / (1 - std::pow(opt_.beta_1, t));
  Tensor& m = slot(variable, "m");
  Tensor& v = slot(variable, "v");
  m.add_((grad - m) * (1 - opt_.beta_1));
  v.mul_(opt_.beta_2).addcmul_(grad, grad, 1 - opt_.beta_2);  // v + (g^2 - v) (1 - beta_2), in two passes
  Tensor v_used = v;
  if (opt_.amsgrad) {
    Tensor& v_hat = slot(variable, "v_hat");
    v_hat.assign(maximum(v_hat, v));
    v_used = v_hat;
  }
  variable.addcdiv_(m, sqrt(v_used) + opt_.epsilon, -alpha);  // variable - alpha * m / (sqrt(v) + eps)
}

AdamWOptions AdamW::make(LearningRate learning_rate, double weight_decay) {
  AdamWOptions o;
  o.learning_rate = std::move(learning_rate);
  o.weight_decay = weight_decay;
  return o;
}

AdamW::AdamW(const AdamWOptions& options) : Adam(options, "AdamW") {}

// ---------------------------------------------------------------- Adagrad

AdagradOptions Adagrad::make(LearningRate learning_rate) {
  return with_learning_rate<AdagradOptions>(std::move(learning_rate));
}

Adagrad::Adagrad(const AdagradOptions& options) : Optimizer("Adagrad", options.learning_rate, options), opt_(options) {
  check_non_negative("initial_accumulator_value", opt_.initial_accumulator_value, "Adagrad");
  check_positive("epsilon", opt_.epsilon, "Adagrad");
}

std::vector<std::string> Adagrad::slot_names() const { return {"accumulator"}; }

double Adagrad::slot_initial_value(const std::string& slot) const {
  return slot == "accumulator" ? opt_.initial_accumulator_value : 0.0;
}

void Adagrad::update_step(const Tensor& grad, Variable& variable, double lr) {
  Tensor& accumulator = slot(variable, "accumulator");
  accumulator.addcmul_(grad, grad);  // acc + g^2
  // Keras's order, so that float64 agrees bitwise: (lr * g) / sqrt(acc + eps)
  variable.assign_sub(grad * lr / sqrt(accumulator + opt_.epsilon));
}

// ---------------------------------------------------------------- Adadelta

AdadeltaOptions Adadelta::make(LearningRate learning_rate) {
  return with_learning_rate<AdadeltaOptions>(std::move(learning_rate));
}

Adadelta::Adadelta(const AdadeltaOptions& options)
    : Optimizer("Adadelta", options.learning_rate, options), opt_(options) {
  check_unit("rho", opt_.rho, "Adadelta");
  check_positive("epsilon", opt_.epsilon, "Adadelta");
}

std::vector<std::string> Adadelta::slot_names() const { return {"accumulated_grad", "accumulated_delta_var"}; }

void Adadelta::update_step(const Tensor& grad, Variable& variable, double lr) {
  const double rho = opt_.rho;
  const double eps = opt_.epsilon;
  Tensor& accumulated_grad = slot(variable, "accumulated_grad");
  Tensor& accumulated_delta_var = slot(variable, "accumulated_delta_var");
  accumulated_grad.mul_(rho).addcmul_(grad, grad, 1 - rho);  // rho * acc + (1 - rho) * g^2
  const Tensor delta_var = -(sqrt(accumulated_delta_var + eps) * grad / sqrt(accumulated_grad + eps));
  accumulated_delta_var.mul_(rho).addcmul_(delta_var, delta_var, 1 - rho);
  variable.assign_add(delta_var * lr);
}

// ---------------------------------------------------------------- Adamax

AdamaxOptions Adamax::make(LearningRate learning_rate) {
  return with_learning_rate<AdamaxOptions>(std::move(learning_rate));
}

Adamax::Adamax(const AdamaxOptions& options) : Optimizer("Adamax", options.learning_rate, options), opt_(options) {
  check_betas_epsilon(opt_.beta_1, opt_.beta_2, opt_.epsilon, name());
}

std::vector<std::string> Adamax::slot_names() const { return {"momentum", "norm"}; }

void Adamax::update_step(const Tensor& grad, Variable& variable, double lr) {
  const double t = static_cast<double>(iterations() + 1);
  const double beta_1_power = std::pow(opt_.beta_1, t);
  Tensor& m = slot(variable, "momentum");
  Tensor& u = slot(variable, "norm");
  m.add_((grad - m) * (1 - opt_.beta_1));
  u.assign(maximum(u * opt_.beta_2, abs(grad)));
  variable.assign_sub(m * lr / ((u + opt_.epsilon) * (1 - beta_1_power)));  // (lr * m) / ((1 - b1^t) (u + eps))
}

// ---------------------------------------------------------------- Nadam

NadamOptions Nadam::make(LearningRate learning_rate) {
  return with_learning_rate<NadamOptions>(std::move(learning_rate));
}

Nadam::Nadam(const NadamOptions& options) : Optimizer("Nadam", options.learning_rate, options), opt_(options) {
  check_betas_epsilon(opt_.beta_1, opt_.beta_2, opt_.epsilon, name());
}

std::vector<std::string> Nadam::slot_names() const { return {"momentum", "velocity"}; }

double Nadam::u_product(std::int64_t steps) {
  if (steps < u_product_steps_) {  // set_state went back: start over
    u_product_steps_ = 0;
    u_product_ = 1;
  }
  // Keras, once per step before the updates: u_product = u_product * beta_1 * (1 - 0.5 * 0.96^t).
  // The same multiplications in the same order give the same bits whatever the path here.
  // After a restore this loops over every step once (an underflow to 0 or beta_1 = 1 ends early).
  while (u_product_steps_ < steps) {
    ++u_product_steps_;
    const double factor = 1.0 - 0.5 * std::pow(0.96, static_cast<double>(u_product_steps_));
    u_product_ = u_product_ * opt_.beta_1 * factor;
    // fixed points: 0 stays 0; with beta_1 = 1, nothing changes once 0.5 * 0.96^t rounds away
    if (u_product_ == 0 || (opt_.beta_1 == 1 && factor == 1)) u_product_steps_ = steps;
  }
  return u_product_;
}

void Nadam::update_step(const Tensor& grad, Variable& variable, double lr) {
  const double beta_1 = opt_.beta_1;
  const double beta_2 = opt_.beta_2;
  const double local_step = static_cast<double>(iterations() + 1);
  // Keras's update_step casts the Python constant 0.96 to the variable's dtype, which its
  // TensorFlow backend does through float32 (0.9599999785423279 in float64).
  const double decay = static_cast<double>(0.96f);
  const double u_t = beta_1 * (1.0 - 0.5 * std::pow(decay, local_step));
  const double u_t_1 = beta_1 * (1.0 - 0.5 * std::pow(decay, local_step + 1));
  const double u_product_t = u_product(iterations() + 1);
  const double u_product_t_1 = u_product_t * u_t_1;
  const double beta_2_power = std::pow(beta_2, local_step);
  Tensor& m = slot(variable, "momentum");
  Tensor& v = slot(variable, "velocity");
  m.add_((grad - m) * (1 - beta_1));
  v.add_((square(grad) - v) * (1 - beta_2));
  const Tensor m_hat = m * u_t_1 / (1 - u_product_t_1) + grad * (1 - u_t) / (1 - u_product_t);
  const Tensor v_hat = v / (1 - beta_2_power);
  variable.assign_sub(m_hat * lr / (sqrt(v_hat) + opt_.epsilon));
}

// ---------------------------------------------------------------- Lion

LionOptions Lion::make(LearningRate learning_rate) {
  return with_learning_rate<LionOptions>(std::move(learning_rate));
}

Lion::Lion(const LionOptions& options) : Optimizer("Lion", options.learning_rate, options), opt_(options) {
  if (!(opt_.beta_1 > 0 && opt_.beta_1 <= 1)) {
    throw ValueError(fmt::format("Lion: beta_1 must be in (0, 1], got {} (0 makes Lion signSGD)", opt_.beta_1));
  }
  check_unit("beta_2", opt_.beta_2, "Lion");
}

std::vector<std::string> Lion::slot_names() const { return {"momentum"}; }

void Lion::update_step(const Tensor& grad, Variable& variable, double lr) {
  Tensor& m = slot(variable, "momentum");
  variable.assign_sub(sign(m * opt_.beta_1 + grad * (1.0 - opt_.beta_1)) * lr);
  m.mul_(opt_.beta_2).add_(grad * (1.0 - opt_.beta_2));
}

// ---------------------------------------------------------------- Ftrl

FtrlOptions Ftrl::make(LearningRate learning_rate) {
  return with_learning_rate<FtrlOptions>(std::move(learning_rate));
}

Ftrl::Ftrl(const FtrlOptions& options) : Optimizer("Ftrl", options.learning_rate, options), opt_(options) {
  if (!(opt_.learning_rate_power <= 0)) {
    throw ValueError(fmt::format("Ftrl: learning_rate_power must be <= 0, got {}", opt_.learning_rate_power));
  }
  check_non_negative("initial_accumulator_value", opt_.initial_accumulator_value, "Ftrl");
  check_non_negative("l1_regularization_strength", opt_.l1_regularization_strength, "Ftrl");
  check_non_negative("l2_regularization_strength", opt_.l2_regularization_strength, "Ftrl");
  check_non_negative("l2_shrinkage_regularization_strength", opt_.l2_shrinkage_regularization_strength, "Ftrl");
  check_non_negative("beta", opt_.beta, "Ftrl");
}

std::vector<std::string> Ftrl::slot_names() const { return {"accumulator", "linear"}; }

double Ftrl::slot_initial_value(const std::string& slot) const {
  return slot == "accumulator" ? opt_.initial_accumulator_value : 0.0;
}

void Ftrl::update_step(const Tensor& grad, Variable& variable, double lr) {
  const double power = -opt_.learning_rate_power;
  const double l1 = opt_.l1_regularization_strength;
  const double l2_reg = opt_.l2_regularization_strength + opt_.beta / (2.0 * lr);
  Tensor& accumulator = slot(variable, "accumulator");
  Tensor& linear = slot(variable, "linear");
  const Tensor grad_to_use = grad + variable * (2 * opt_.l2_shrinkage_regularization_strength);
  const Tensor new_accumulator = accumulator + square(grad);
  const Tensor new_accumulator_power = pow(new_accumulator, power);
  linear.add_(grad_to_use - (new_accumulator_power - pow(accumulator, power)) / lr * variable);
  const Tensor quadratic = new_accumulator_power / lr + 2 * l2_reg;
  variable.assign((clip(linear, -l1, l1) - linear) / quadratic);
  accumulator.assign(new_accumulator);
}

// ---------------------------------------------------------------- get

std::shared_ptr<Optimizer> get(const std::string& name) {
  std::string key = name;
  std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
  if (key == "sgd") return std::make_shared<SGD>();
  if (key == "rmsprop") return std::make_shared<RMSprop>();
  if (key == "adam") return std::make_shared<Adam>();
  if (key == "adamw") return std::make_shared<AdamW>();
  if (key == "adagrad") return std::make_shared<Adagrad>();
  if (key == "adadelta") return std::make_shared<Adadelta>();
  if (key == "adamax") return std::make_shared<Adamax>();
  if (key == "nadam") return std::make_shared<Nadam>();
  if (key == "lion") return std::make_shared<Lion>();
  if (key == "ftrl") return std::make_shared<Ftrl>();
  throw ValueError(fmt::format(
      "optimizers::get: unknown optimizer '{}' (known: sgd, rmsprop, adam, adamw, adagrad, adadelta, adamax, nadam, "
      "lion, ftrl)",
      name));
}

}  // namespace tapeflow::optimizers
