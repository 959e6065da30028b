#pragma once
/// Optimizers with Keras 3's update rules: SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta, Adamax,
/// Nadam, Lion, Ftrl; gradient clipping and learning-rate schedules. Ordinary user code on the public tensor API.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tapeflow/tensor.hpp"
#include "tapeflow/variable.hpp"

namespace tapeflow::optimizers {

namespace schedules {

/// A learning rate as a function of the optimizer's step (iterations() before the update: 0 first).
using LearningRateSchedule = std::function<double(std::int64_t step)>;

/// initial * decay_rate ^ (step / decay_steps), the exponent floored when `staircase`.
struct ExponentialDecay {
  ExponentialDecay(double initial_learning_rate, std::int64_t decay_steps, double decay_rate,
                   bool staircase = false);
  double operator()(std::int64_t step) const;

  double initial_learning_rate;
  std::int64_t decay_steps;
  double decay_rate;
  bool staircase;
};

/// Cosine decay from initial to initial * alpha over decay_steps, constant after. With a
/// warmup_target, first a linear warmup from initial to warmup_target over warmup_steps,
/// then the cosine decays from warmup_target (Keras's CosineDecay).
struct CosineDecay {
  CosineDecay(double initial_learning_rate, std::int64_t decay_steps, double alpha = 0,
              std::optional<double> warmup_target = std::nullopt, std::int64_t warmup_steps = 0);
  double operator()(std::int64_t step) const;

  double initial_learning_rate;
  std::int64_t decay_steps;
  double alpha;
  std::optional<double> warmup_target;
  std::int64_t warmup_steps;
};

/// values[0] up to and including boundaries[0], values[i] for steps in
/// (boundaries[i-1], boundaries[i]], values.back() after the last boundary (Keras's
/// PiecewiseConstantDecay). One value more than boundaries, boundaries increasing (ValueError).
struct PiecewiseConstantDecay {
  PiecewiseConstantDecay(std::vector<std::int64_t> boundaries, std::vector<double> values);
  double operator()(std::int64_t step) const;

  std::vector<std::int64_t> boundaries;
  std::vector<double> values;
};

/// (initial - end) * (1 - step / decay_steps)^power + end, the step held at decay_steps after
/// it. With `cycle`, decay_steps grows to the first multiple of itself at or above the step
/// (1x at step 0), so the rate jumps back up and decays again (Keras's PolynomialDecay).
struct PolynomialDecay {
  PolynomialDecay(double initial_learning_rate, std::int64_t decay_steps, double end_learning_rate = 0.0001,
                  double power = 1.0, bool cycle = false);
  double operator()(std::int64_t step) const;

  double initial_learning_rate;
  std::int64_t decay_steps;
  double end_learning_rate;
  double power;
  bool cycle;
};

/// initial / (1 + decay_rate * step / decay_steps), the quotient floored when `staircase`
/// (Keras's InverseTimeDecay).
struct InverseTimeDecay {
  InverseTimeDecay(double initial_learning_rate, std::int64_t decay_steps, double decay_rate, bool staircase = false);
  double operator()(std::int64_t step) const;

  double initial_learning_rate;
  std::int64_t decay_steps;
  double decay_rate;
  bool staircase;
};

/// Cosine decay with warm restarts (SGDR, Keras's CosineDecayRestarts): a cosine from initial
/// to initial * alpha over first_decay_steps, then again from initial * m_mul over
/// first_decay_steps * t_mul steps, and so on (the i-th period is t_mul^i long and starts at
/// initial * m_mul^i).
struct CosineDecayRestarts {
  CosineDecayRestarts(double initial_learning_rate, std::int64_t first_decay_steps, double t_mul = 2.0,
                      double m_mul = 1.0, double alpha = 0.0);
  double operator()(std::int64_t step) const;

  double initial_learning_rate;
  std::int64_t first_decay_steps;
  double t_mul;
  double m_mul;
  double alpha;
};

}  // namespace schedules

/// A learning rate: a constant, or a schedule (any callable double(int64_t step)).
class LearningRate {
 public:
  LearningRate(double value) : value_(value) {}
  template <class F, class = std::enable_if_t<!std::is_arithmetic_v<std::decay_t<F>> &&
                                              !std::is_same_v<std::decay_t<F>, LearningRate> &&
                                              std::is_invocable_r_v<double, F&, std::int64_t>>>
  LearningRate(F schedule) : schedule_(std::move(schedule)) {}

  /// The value at `step`.
  double operator()(std::int64_t step) const { return schedule_ ? schedule_(step) : value_; }
  bool is_schedule() const { return static_cast<bool>(schedule_); }

 private:
  double value_ = 0;
  schedules::LearningRateSchedule schedule_;
};

/// Options every optimizer takes (Keras's base-optimizer keyword arguments). At most one of
/// the three clipping options may be set; 0 means off.
struct OptimizerOptions {
  /// Clip each gradient to this L2 norm: g * clipnorm / max(||g||, clipnorm).
  double clipnorm = 0;
  /// Scale all gradients together so that their joint L2 norm is at most this.
  double global_clipnorm = 0;
  /// Clip each gradient element to [-clipvalue, clipvalue].
  double clipvalue = 0;
  /// Decoupled weight decay before each update: var -= var * weight_decay * lr.
  double weight_decay = 0;
  /// Keras's use_ema: after every step the optimizer keeps an exponential moving average of
  /// each variable it was given, average = m * average + (1 - m) * var, with m = ema_momentum
  /// (in [0, 1]) but 0 on the first step (the average starts at the variable). fit() puts the
  /// averages into the variables when it ends (finalize_variable_values()).
  bool use_ema = false;
  double ema_momentum = 0.99;
  /// With use_ema, every this many steps (iterations()) the variables are overwritten with
  /// their averages; 0 (Keras's None): only by finalize_variable_values().
  std::int64_t ema_overwrite_frequency = 0;
  /// Keras's gradient_accumulation_steps (0: off, else >= 2): apply_gradients adds the gradients
  /// into accumulators, and every this many calls updates the variables once with the mean
  /// accumulated gradient (clipped, after weight decay) and clears the accumulators. As Keras,
  /// iterations() then counts updates, while a schedule reads every call (micro_steps()).
  std::int64_t gradient_accumulation_steps = 0;
};

/// An optimizer's state for a list of variables: what a checkpoint saves so that a resumed
/// optimizer makes the very same updates (Keras's optimizer.variables, PyTorch's state_dict).
struct OptimizerState {
  /// apply_gradients calls so far (Optimizer::micro_steps(): iterations() but for gradient
  /// accumulation, where it counts each accumulated call).
  std::int64_t iterations = 0;
  /// The learning rate when it is a constant; none when it is a schedule (a schedule is code,
  /// not state: its value follows from iterations).
  std::optional<double> learning_rate;
  /// Every slot of every variable, named "<variable name>/<slot>" ("dense/kernel/m"), in the
  /// order of the variables, then of state_slot_names().
  std::vector<std::pair<std::string, Tensor>> slots;
};

/// Base of the optimizers: clipping, weight decay, the step counter and per-variable slots.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Updates each variable in place with its gradient (never recorded by a tape). Undefined
  /// gradients are skipped (with a warning once, as Keras); all undefined is a ValueError.
  /// A gradient of another shape (ShapeError) or a variable that is not floating (DTypeError)
  /// is found before anything is written. An empty list does nothing. Counts 1 micro step
  /// (1 step without gradient accumulation); with use_ema, then updates the moving averages of
  /// all `variables` (those without a gradient too, as Keras's trainable variables).
  void apply_gradients(const std::vector<Tensor>& grads, const std::vector<Variable>& variables);
  /// Keras's apply_gradients(zip(grads, variables)).
  void apply_gradients(const std::vector<std::pair<Tensor, Variable>>& grads_and_variables);

  /// Updates made so far: apply_gradients calls, or with gradient_accumulation_steps the calls
  /// divided by it (rounded down), as Keras's optimizer.iterations.
  std::int64_t iterations() const {
    return options_.gradient_accumulation_steps > 0 ? iterations_ / options_.gradient_accumulation_steps : iterations_;
  }
  /// apply_gradients calls so far (Keras's optimizer._iterations); iterations() without
  /// gradient accumulation.
  std::int64_t micro_steps() const { return iterations_; }
  /// The learning rate of the next step: the schedule's value at micro_steps() (as Keras, which
  /// reads its raw counter, so under gradient accumulation the schedule runs per call).
  double learning_rate() const { return learning_rate_(iterations_); }
  /// Keras's finalize_variable_values: with use_ema, writes each variable's moving average
  /// into it (variables without one are left as they are); otherwise nothing. fit() calls it
  /// at the end of training.
  void finalize_variable_values(const std::vector<Variable>& variables);
  void set_learning_rate(LearningRate learning_rate) { learning_rate_ = std::move(learning_rate); }
  /// Whether the learning rate is a schedule (a callable of the step), not a constant.
  bool learning_rate_is_schedule() const { return learning_rate_.is_schedule(); }
  const std::string& name() const { return name_; }
  const OptimizerOptions& options() const { return options_; }
  /// A variable's state tensor `slot` ("m", "v", "momentum", ...), undefined before its first update.
  Tensor get_slot(const Tensor& variable, const std::string& slot) const;
  /// The slots this optimizer keeps for each variable, in order: {"m", "v"} for Adam (and
  /// "v_hat" with amsgrad), {"velocity", "average_gradient", "momentum"} for a centered RMSprop
  /// with momentum, {} for SGD without momentum. A subclass that calls slot() lists its slots
  /// here, or get_state() refuses to export it.
  virtual std::vector<std::string> slot_names() const { return {}; }
  /// slot_names() and the base's own slots: "average" with use_ema, "gradient_accumulator"
  /// with gradient accumulation: what get_state() exports for each variable.
  std::vector<std::string> state_slot_names() const;

  /// A copy of the state kept for `variables` (named, each name once): iterations, the learning
  /// rate if constant, and every slot of state_slot_names() for every variable. A slot not made
  /// yet (no update so far) is exported as the value it would start from (slot_initial_value();
  /// a moving average: the variable itself). ValueError for an undefined, unnamed or
  /// twice-named variable, or a slot that state_slot_names() does not declare.
  OptimizerState get_state(const std::vector<Variable>& variables) const;
  /// Restores a state from get_state() for the same variables (by name), so that the next
  /// update is bit-identical to the one the exported optimizer would have made. Everything is
  /// checked before anything changes: a slot missing or not expected (ValueError), of another
  /// shape (ShapeError) or dtype (DTypeError) than its variable, each naming this optimizer,
  /// the variable and the slot. Slots are copied onto their variable's device; the slots of
  /// other variables are left as they are. The learning rate is restored only when both the
  /// saved one and the current one are constants: a schedule stays this optimizer's own and
  /// follows the restored iterations.
  void set_state(const OptimizerState& state, const std::vector<Variable>& variables);

 protected:
  Optimizer(std::string name, LearningRate learning_rate, OptimizerOptions options);
  /// Updates `variable` from its clipped gradient (same shape) at learning rate `lr`;
  /// iterations() is still the number of steps before this one.
  virtual void update_step(const Tensor& grad, Variable& variable, double lr) = 0;
  /// The variable's state tensor `slot`, filled with slot_initial_value(slot) in its shape and
  /// dtype on first use.
  Tensor& slot(const Variable& variable, const std::string& slot);
  /// The value a slot starts from: 0, or Adagrad's initial_accumulator_value. get_state()
  /// exports a slot not made yet as this value too.
  virtual double slot_initial_value(const std::string& slot) const;

 private:
  /// Clipping, weight decay and update_step() for the variables that have gradients.
  void apply_update(std::vector<Tensor>& live_grads, std::vector<Variable>& live_vars);

  std::string name_;
  LearningRate learning_rate_;
  OptimizerOptions options_;
  std::int64_t iterations_ = 0;
  bool warned_missing_ = false;
  std::unordered_map<std::uint64_t, std::map<std::string, Tensor>> slots_;  // by Tensor::id()
};

struct SGDOptions : OptimizerOptions {
  LearningRate learning_rate = 0.01;
  double momentum = 0;
  bool nesterov = false;
};

/// m = momentum * m - lr * g; var += m (nesterov: var += momentum * m - lr * g).
/// Without momentum: var -= lr * g.
class SGD : public Optimizer {
 public:
  SGD(LearningRate learning_rate = 0.01, double momentum = 0) : SGD(make(std::move(learning_rate), momentum)) {}
  explicit SGD(const SGDOptions& options);
  std::vector<std::string> slot_names() const override;

 protected:
  void update_step(const Tensor& grad, Variable& variable, double lr) override;

 private:
  static SGDOptions make(LearningRate learning_rate, double momentum);
  double momentum_;
  bool nesterov_;
};

struct RMSpropOptions : OptimizerOptions {
  LearningRate learning_rate = 0.001;
  double rho = 0.9;
  double momentum = 0;
  double epsilon = 1e-7;
  bool centered = false;
};

/// v = rho * v + (1 - rho) * g^2; increment = lr * g / sqrt(v + eps) (centered: the mean
/// gradient a is tracked too and the root is sqrt(v - a^2 + eps)); with momentum:
/// mom = momentum * mom + increment, var -= mom; else var -= increment. Keras puts epsilon
/// inside the square root.
class RMSprop : public Optimizer {
 public:
  RMSprop(LearningRate learning_rate = 0.001) : RMSprop(make(std::move(learning_rate))) {}
  explicit RMSprop(const RMSpropOptions& options);
  std::vector<std::string> slot_names() const override;

 protected:
  void update_step(const Tensor& grad, Variable& variable, double lr) override;

 private:
  static RMSpropOptions make(LearningRate learning_rate);
  RMSpropOptions opt_;
};

struct AdamOptions : OptimizerOptions {
  LearningRate learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
  bool amsgrad = false;
};

/// m += (g - m) * (1 - beta_1); v += (g^2 - v) * (1 - beta_2);
/// var -= m * alpha / (sqrt(v) + eps) with alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t).
/// amsgrad divides by the running maximum of v instead.
class Adam : public Optimizer {
 public:
  Adam(LearningRate learning_rate = 0.001) : Adam(make(std::move(learning_rate))) {}
  explicit Adam(const AdamOptions& options, std::string name = "Adam");
  std::vector<std::string> slot_names() const override;

 protected:
  void update_step(const Tensor& grad, Variable& variable, double lr) override;

 private:
  static AdamOptions make(LearningRate learning_rate);
  AdamOptions opt_;
};

/// Adam options with Keras 3's AdamW weight decay (0.004) set.
struct AdamWOptions : AdamOptions {
  AdamWOptions() { weight_decay = 0.004; }
};

/// Adam with decoupled weight decay: var -= var * weight_decay * lr before each Adam step.
class AdamW : public Adam {
 public:
  AdamW(LearningRate learning_rate = 0.001, double weight_decay = 0.004)
      : AdamW(make(std::move(learning_rate), weight_decay)) {}
  explicit AdamW(const AdamWOptions& options);

 private:
  static AdamWOptions make(LearningRate learning_rate, double weight_decay);
};

struct AdagradOptions : OptimizerOptions {
  LearningRate learning_rate = 0.001;
  /// The value every accumulator starts from (>= 0).
  double initial_accumulator_value = 0.1;
  double epsilon = 1e-7;
};

/// acc += g^2; var -= lr * g / sqrt(acc + eps). The accumulator starts at
/// initial_accumulator_value; Keras puts epsilon inside the square root.
class Adagrad : public Optimizer {
 public:
  Adagrad(LearningRate learning_rate = 0.001) : Adagrad(make(std::move(learning_rate))) {}
  explicit Adagrad(const AdagradOptions& options);
  std::vector<std::string> slot_names() const override;

 protected:
  void update_step(const Tensor& grad, Variable& variable, double lr) override;
  double slot_initial_value(const std::string& slot) const override;

 private:
  static AdagradOptions make(LearningRate learning_rate);
  AdagradOptions opt_;
};

struct AdadeltaOptions : OptimizerOptions {
  LearningRate learning_rate = 0.001;
  double rho = 0.95;
  double epsilon = 1e-7;
};

/// acc_g = rho * acc_g + (1 - rho) * g^2; delta = -sqrt(acc_d + eps) * g / sqrt(acc_g + eps);
/// acc_d = rho * acc_d + (1 - rho) * delta^2; var += lr * delta. Keras keeps the learning rate
/// (1.0 in the paper, 0.001 by default here as in Keras).
class Adadelta : public Optimizer {
 public:
  Adadelta(LearningRate learning_rate = 0.001) : Adadelta(make(std::move(learning_rate))) {}
  explicit Adadelta(const AdadeltaOptions& options);
  std::vector<std::string> slot_names() const override;

 protected:
  void update_step(const Tensor& grad, Variable& variable, double lr) override;

 private:
  static AdadeltaOptions make(LearningRate learning_rate);
  AdadeltaOptions opt_;
};

struct AdamaxOptions : OptimizerOptions {
  LearningRate learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
};

/// m += (g - m) * (1 - beta_1); u = max(beta_2 * u, |g|);
/// var -= lr * m / ((1 - beta_1^t) * (u + eps)). Adam with the infinity norm.
class Adamax : public Optimizer {
 public:
  Adamax(LearningRate learning_rate = 0.001) : Adamax(make(std::move(learning_rate))) {}
  explicit Adamax(const AdamaxOptions& options);
  std::vector<std::string> slot_names() const override;

 protected:
  void update_step(const Tensor& grad, Variable& variable, double lr) override;

 private:
  static AdamaxOptions make(LearningRate learning_rate);
  AdamaxOptions opt_;
};

struct NadamOptions : OptimizerOptions {
  LearningRate learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
};

/// Adam with Nesterov momentum and Keras 3's momentum schedule u_t = beta_1 * (1 - 0.5 * 0.96^t):
/// m += (g - m) * (1 - beta_1); v += (g^2 - v) * (1 - beta_2);
/// m_hat = u_{t+1} * m / (1 - prod_{k<=t+1} u_k) + (1 - u_t) * g / (1 - prod_{k<=t} u_k);
/// var -= m_hat * lr / (sqrt(v / (1 - beta_2^t)) + eps).
/// The running product of u (Keras's u_product variable) is a function of iterations() alone, so
/// it is recomputed from the step count rather than kept as state: a restored optimizer continues
/// bitwise. As Keras does, u_t in the update uses 0.96 rounded to float32 (Keras casts that Python
/// constant to the variable's dtype through float32), the running product 0.96 itself.
class Nadam : public Optimizer {
 public:
  Nadam(LearningRate learning_rate = 0.001) : Nadam(make(std::move(learning_rate))) {}
  explicit Nadam(const NadamOptions& options);
  std::vector<std::string> slot_names() const override;

 protected:
  void update_step(const Tensor& grad, Variable& variable, double lr) override;

 private:
  static NadamOptions make(LearningRate learning_rate);
  /// prod_{k=1..steps} beta_1 * (1 - 0.5 * 0.96^k), multiplied in Keras's order.
  double u_product(std::int64_t steps);
  NadamOptions opt_;
  std::int64_t u_product_steps_ = 0;  // the product below covers steps 1..u_product_steps_
  double u_product_ = 1;
};

struct LionOptions : OptimizerOptions {
  LearningRate learning_rate = 0.001;
  /// In (0, 1]: 0 would make Lion signSGD.
  double beta_1 = 0.9;
  double beta_2 = 0.99;
};

/// var -= lr * sign(beta_1 * m + (1 - beta_1) * g); then m = beta_2 * m + (1 - beta_2) * g.
/// Every element moves by lr (or 0): Lion wants a smaller learning rate than Adam.
class Lion : public Optimizer {
 public:
  Lion(LearningRate learning_rate = 0.001) : Lion(make(std::move(learning_rate))) {}
  explicit Lion(const LionOptions& options);
  std::vector<std::string> slot_names() const override;

 protected:
  void update_step(const Tensor& grad, Variable& variable, double lr) override;

 private:
  static LionOptions make(LearningRate learning_rate);
  LionOptions opt_;
};

struct FtrlOptions : OptimizerOptions {
  LearningRate learning_rate = 0.001;
  /// <= 0: how the per-element rate falls as squared gradients accumulate (-0.5: 1 / sqrt).
  double learning_rate_power = -0.5;
  /// The value every accumulator starts from (>= 0).
  double initial_accumulator_value = 0.1;
  /// L1 strength (>= 0): elements whose |linear| stays below it are exactly 0.
  double l1_regularization_strength = 0;
  /// L2 strength (>= 0).
  double l2_regularization_strength = 0;
  /// L2 shrinkage (>= 0): a penalty on the variable added to the gradient, not to the loss.
  double l2_shrinkage_regularization_strength = 0;
  /// >= 0; beta / (2 lr) is added to the L2 strength.
  double beta = 0;
};

/// Follow the regularized leader (Keras's Ftrl), with p = -learning_rate_power:
/// n' = n + g^2; z += g + 2 * l2_shrinkage * var - (n'^p - n^p) / lr * var;
/// var = (clip(z, -l1, l1) - z) / (n'^p / lr + 2 * (l2 + beta / (2 lr))); n = n'.
class Ftrl : public Optimizer {
 public:
  Ftrl(LearningRate learning_rate = 0.001) : Ftrl(make(std::move(learning_rate))) {}
  explicit Ftrl(const FtrlOptions& options);
  std::vector<std::string> slot_names() const override;

 protected:
  void update_step(const Tensor& grad, Variable& variable, double lr) override;
  double slot_initial_value(const std::string& slot) const override;

 private:
  static FtrlOptions make(LearningRate learning_rate);
  FtrlOptions opt_;
};

/// An optimizer with default settings by Keras name, case-insensitive: "sgd", "rmsprop",
/// "adam", "adamw", "adagrad", "adadelta", "adamax", "nadam", "lion", "ftrl" (as compile("rmsprop")).
/// Throws ValueError for an unknown name.
std::shared_ptr<Optimizer> get(const std::string& name);

}  // namespace tapeflow::optimizers
