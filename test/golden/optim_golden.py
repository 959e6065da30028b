#!/usr/bin/env python3
"""Golden trajectories of the optimizers, produced by the real Keras 3 (TensorFlow backend).

Regenerate (writes optim_golden.hpp beside this script):

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    KERAS_BACKEND=tensorflow /tmp/tfvenv/bin/python test/golden/optim_golden.py

Produced with tensorflow-cpu 2.21.0 and keras 3.15.1. Every number is float64: floatx is set
to float64 (so the learning rate, a Keras variable, is not rounded to float32) and the
variables and gradients are float64. Two variables, w [2, 3] and b [3], start from fixed
values and receive a fixed sequence of gradients (written into the header too, so the C++
test feeds the very same numbers) for STEPS steps; the header holds both variables' values
after each step, and the values of the learning-rate schedules at a few steps. When produced,
the trajectories were also checked against Keras's update formulas written out in NumPy
(agreement within 5e-15 relative). test_optim reproduces them bitwise, but for the clipnorm
and global_clipnorm cases (within 5e-15 relative: the norms are summed in another order),
AdamW's (within 6e-16) and Ftrl's (within 7e-15: TensorFlow's pow differs from the C library's
in the last bit; Keras's Ftrl formulas in NumPy with math.pow agree with the C++ bitwise). The Nadam cases check Keras's float32 rounding of the 0.96 of its
update_step (0.9599999785423279 in float64; its running product uses 0.96), which the C++ copies.
The use_ema cases also record the moving averages after the last step (kEmaAverages); every
optimizer is built with both variables first, as a model's fit builds it with all of its
trainable weights (so an EMA covers b on a step where b's gradient is missing).
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

keras.config.set_floatx("float64")
opt = keras.optimizers
sched = keras.optimizers.schedules

STEPS = 5
rng = np.random.default_rng(20240607)
W0 = rng.normal(size=(2, 3))
B0 = rng.normal(size=(3,))
# Scaled so that some gradients have a norm above 1 and entries above 0.5 (the clip tests).
GRAD_W = rng.normal(size=(STEPS, 2, 3)) * 1.5
GRAD_B = rng.normal(size=(STEPS, 3)) * 0.3

# Keras's TensorFlow backend casts a Python float hyperparameter to the variable's dtype through
# float32 (ops.cast(0.9, "float64") is 0.8999999761581421), so every hyperparameter that reaches
# ops.cast is given as a float64 here; Keras's defaults are then spelled out with their Keras
# values (the C++ test relies on its own defaults for those cases, which checks they agree).
F = np.float64
ADAM_DEFAULTS = dict(beta_1=F(0.9), beta_2=F(0.999), epsilon=F(1e-7))

# name -> (optimizer factory, step whose b gradient is missing or -1). The C++ test builds
# the same optimizers under the same names.
CASES = {
    "sgd": (lambda: opt.SGD(learning_rate=F(0.1)), -1),
    "sgd_momentum": (lambda: opt.SGD(learning_rate=F(0.1), momentum=F(0.9)), -1),
    "sgd_nesterov": (lambda: opt.SGD(learning_rate=F(0.1), momentum=F(0.9), nesterov=True), -1),
    "rmsprop": (lambda: opt.RMSprop(), -1),  # all defaults
    "rmsprop_momentum_centered": (
        lambda: opt.RMSprop(learning_rate=F(0.01), rho=F(0.8), momentum=F(0.5), epsilon=F(1e-6), centered=True), -1),
    "adam": (lambda: opt.Adam(learning_rate=F(0.01), **ADAM_DEFAULTS), -1),
    "adam_amsgrad": (lambda: opt.Adam(learning_rate=F(0.01), beta_1=F(0.8), beta_2=F(0.9), amsgrad=True), -1),
    "adamw": (lambda: opt.AdamW(learning_rate=F(0.05), weight_decay=F(0.004), **ADAM_DEFAULTS), -1),
    "adamw_decay_0_1": (lambda: opt.AdamW(learning_rate=F(0.05), weight_decay=F(0.1), **ADAM_DEFAULTS), -1),
    "sgd_clipnorm": (lambda: opt.SGD(learning_rate=F(0.1), clipnorm=F(1.0)), -1),
    "sgd_global_clipnorm": (lambda: opt.SGD(learning_rate=F(0.1), global_clipnorm=F(1.0)), -1),
    "sgd_clipvalue": (lambda: opt.SGD(learning_rate=F(0.1), clipvalue=F(0.5)), -1),
    "sgd_exponential_decay": (
        lambda: opt.SGD(learning_rate=sched.ExponentialDecay(F(0.1), 2, F(0.5)), momentum=F(0.5)), -1),
    "adam_cosine_decay": (
        lambda: opt.Adam(learning_rate=sched.CosineDecay(F(0.01), 4, alpha=F(0.1)), **ADAM_DEFAULTS), -1),
    "adam_missing_grad": (lambda: opt.Adam(learning_rate=F(0.01), **ADAM_DEFAULTS), 2),
    # Adagrad, Adadelta, Adamax, Nadam, Lion, Ftrl: Keras's defaults but a learning rate that moves the
    # variables visibly in 5 steps, then other settings, then a clipping or weight-decay option.
    "adagrad": (lambda: opt.Adagrad(learning_rate=F(0.1), initial_accumulator_value=F(0.1), epsilon=F(1e-7)), -1),
    "adagrad_options": (
        lambda: opt.Adagrad(learning_rate=F(0.5), initial_accumulator_value=F(0.0), epsilon=F(1e-3)), -1),
    "adagrad_clipnorm": (lambda: opt.Adagrad(learning_rate=F(0.1), initial_accumulator_value=F(0.1),
                                             epsilon=F(1e-7), clipnorm=F(1.0)), -1),
    "adadelta": (lambda: opt.Adadelta(learning_rate=F(1.0), rho=F(0.95), epsilon=F(1e-7)), -1),
    "adadelta_options": (lambda: opt.Adadelta(learning_rate=F(1.0), rho=F(0.8), epsilon=F(1e-3)), -1),
    "adadelta_weight_decay": (
        lambda: opt.Adadelta(learning_rate=F(0.5), rho=F(0.95), epsilon=F(1e-3), weight_decay=F(0.1)), -1),
    "adamax": (lambda: opt.Adamax(learning_rate=F(0.05), **ADAM_DEFAULTS), -1),
    "adamax_options": (lambda: opt.Adamax(learning_rate=F(0.05), beta_1=F(0.8), beta_2=F(0.9), epsilon=F(1e-4)), -1),
    "adamax_global_clipnorm": (lambda: opt.Adamax(learning_rate=F(0.05), global_clipnorm=F(1.0), **ADAM_DEFAULTS), -1),
    "nadam": (lambda: opt.Nadam(learning_rate=F(0.01), **ADAM_DEFAULTS), -1),
    "nadam_options": (lambda: opt.Nadam(learning_rate=F(0.05), beta_1=F(0.8), beta_2=F(0.95), epsilon=F(1e-5)), -1),
    "nadam_weight_decay": (lambda: opt.Nadam(learning_rate=F(0.05), weight_decay=F(0.05), **ADAM_DEFAULTS), -1),
    # the running product of the momentum schedule advances on a step that skips b
    "nadam_missing_grad": (lambda: opt.Nadam(learning_rate=F(0.01), **ADAM_DEFAULTS), 2),
    "lion": (lambda: opt.Lion(learning_rate=F(0.01), beta_1=F(0.9), beta_2=F(0.99)), -1),
    "lion_options": (lambda: opt.Lion(learning_rate=F(0.02), beta_1=F(0.5), beta_2=F(0.8)), -1),
    "lion_weight_decay": (
        lambda: opt.Lion(learning_rate=F(0.01), beta_1=F(0.9), beta_2=F(0.99), weight_decay=F(0.5)), -1),
    "ftrl": (lambda: opt.Ftrl(learning_rate=F(0.1), learning_rate_power=F(-0.5), initial_accumulator_value=F(0.1),
                              l1_regularization_strength=F(0.0), l2_regularization_strength=F(0.0),
                              l2_shrinkage_regularization_strength=F(0.0), beta=F(0.0)), -1),
    "ftrl_options": (lambda: opt.Ftrl(learning_rate=F(0.2), learning_rate_power=F(-0.7),
                                      initial_accumulator_value=F(0.2), l1_regularization_strength=F(0.05),
                                      l2_regularization_strength=F(0.05),
                                      l2_shrinkage_regularization_strength=F(0.02), beta=F(0.1)), -1),
    "ftrl_weight_decay": (lambda: opt.Ftrl(learning_rate=F(0.1), learning_rate_power=F(-0.5),
                                           initial_accumulator_value=F(0.1), l1_regularization_strength=F(0.0),
                                           l2_regularization_strength=F(0.0),
                                           l2_shrinkage_regularization_strength=F(0.0), beta=F(0.0),
                                           weight_decay=F(0.05)), -1),
    # Keras 3's base-optimizer options: moving averages (use_ema) and gradient accumulation,
    # alone and with a schedule, clipping, weight decay and a missing gradient.
    "sgd_ema": (lambda: opt.SGD(learning_rate=F(0.1), use_ema=True, ema_momentum=F(0.9)), -1),
    "sgd_ema_missing_grad": (lambda: opt.SGD(learning_rate=F(0.1), use_ema=True, ema_momentum=F(0.9)), 2),
    "adam_ema_overwrite": (lambda: opt.Adam(learning_rate=F(0.01), use_ema=True, ema_momentum=F(0.8),
                                            ema_overwrite_frequency=2, **ADAM_DEFAULTS), -1),
    "sgd_accumulate": (lambda: opt.SGD(learning_rate=F(0.1), momentum=F(0.9), gradient_accumulation_steps=2), -1),
    "adam_accumulate": (lambda: opt.Adam(learning_rate=F(0.01), gradient_accumulation_steps=2, **ADAM_DEFAULTS), -1),
    "adam_accumulate_schedule_clipnorm": (
        lambda: opt.Adam(learning_rate=sched.ExponentialDecay(F(0.01), 2, F(0.5)), gradient_accumulation_steps=2,
                         clipnorm=F(1.0), **ADAM_DEFAULTS), -1),
    "adamw_accumulate_ema": (lambda: opt.AdamW(learning_rate=F(0.05), weight_decay=F(0.1), gradient_accumulation_steps=3,
                                               use_ema=True, ema_momentum=F(0.5), **ADAM_DEFAULTS), -1),
}

# The EMA cases' moving averages after the last step.
EMA_CASES = ["sgd_ema", "sgd_ema_missing_grad", "adam_ema_overwrite", "adamw_accumulate_ema"]

# Schedules evaluated at SCHEDULE_STEPS: name -> schedule.
SCHEDULE_STEPS = [0, 1, 2, 3, 5, 10, 25]
SCHEDULES = {
    "exponential": sched.ExponentialDecay(np.float64(0.1), 4, 0.5),
    "exponential_staircase": sched.ExponentialDecay(np.float64(0.1), 4, 0.5, staircase=True),
    "cosine": sched.CosineDecay(np.float64(0.1), 10),
    "cosine_alpha": sched.CosineDecay(np.float64(0.1), 10, alpha=0.2),
    "cosine_warmup": sched.CosineDecay(np.float64(0.0), 10, alpha=0.1, warmup_target=np.float64(0.1), warmup_steps=5),
    # np.float64 throughout: Keras casts a Python float through float32
    "piecewise": sched.PiecewiseConstantDecay([2, 5, 10], [F(0.1), F(0.05), F(0.02), F(0.001)]),
    "polynomial": sched.PolynomialDecay(F(0.1), 10, end_learning_rate=F(0.0001)),
    "polynomial_power_cycle": sched.PolynomialDecay(F(0.1), 4, end_learning_rate=F(0.01), power=F(2.0), cycle=True),
    "inverse_time": sched.InverseTimeDecay(F(0.1), 4, F(0.5)),
    "inverse_time_staircase": sched.InverseTimeDecay(F(0.1), 4, F(0.5), staircase=True),
    "cosine_restarts": sched.CosineDecayRestarts(F(0.1), 3),
    "cosine_restarts_options": sched.CosineDecayRestarts(F(0.1), 4, t_mul=F(1.0), m_mul=F(0.5), alpha=F(0.1)),
    "cosine_restarts_t_mul_1_5": sched.CosineDecayRestarts(F(0.1), 2, t_mul=F(1.5), m_mul=F(0.9)),
}


AVERAGES = {}  # EMA case -> (w average, b average) after the last step


def run(make, missing_b_step, name=""):
    w = keras.Variable(W0.copy(), dtype="float64", name="w")
    b = keras.Variable(B0.copy(), dtype="float64", name="b")
    o = make()
    o.build([w, b])  # both variables, though b's first gradient may be missing
    ws, bs = [], []
    for step in range(STEPS):
        gw = tf.constant(GRAD_W[step], dtype=tf.float64)
        gb = None if step == missing_b_step else tf.constant(GRAD_B[step], dtype=tf.float64)
        o.apply_gradients([(gw, w), (gb, b)])
        ws.append(np.array(w.numpy(), dtype=np.float64))
        bs.append(np.array(b.numpy(), dtype=np.float64))
        assert w.dtype == "float64" and b.dtype == "float64"
    if name in EMA_CASES:
        avg = o._model_variables_moving_average
        AVERAGES[name] = (np.array(avg[0].numpy()), np.array(avg[1].numpy()))
    return np.stack(ws), np.stack(bs)


def arr(a):
    return "{" + ", ".join(repr(float(x)) for x in np.asarray(a).ravel()) + "}"


def main():
    out = [
        "#pragma once",
        "// Generated by test/golden/optim_golden.py (Keras %s, TensorFlow %s) -- do not edit." % (
            keras.__version__, tf.__version__),
        "// Regenerate: KERAS_BACKEND=tensorflow python3 test/golden/optim_golden.py",
        "namespace optim_golden {",
        "",
        "constexpr int kSteps = %d;" % STEPS,
        "constexpr double kW0[6] = %s;  // [2, 3]" % arr(W0),
        "constexpr double kB0[3] = %s;  // [3]" % arr(B0),
        "constexpr double kGradW[%d][6] = {%s};" % (STEPS, ", ".join(arr(g) for g in GRAD_W)),
        "constexpr double kGradB[%d][3] = {%s};" % (STEPS, ", ".join(arr(g) for g in GRAD_B)),
        "",
        "struct Case {",
        "  const char* name;",
        "  int missing_b_step;  // the step whose b gradient is undefined, or -1",
        "  double w[kSteps][6];  // w after each step",
        "  double b[kSteps][3];",
        "};",
        "",
        "inline constexpr Case kCases[] = {",
    ]
    for name, (make, missing) in CASES.items():
        ws, bs = run(make, missing, name)
        out.append('    {"%s", %d, {%s}, {%s}},' % (
            name, missing, ", ".join(arr(x) for x in ws), ", ".join(arr(x) for x in bs)))
    out += ["};", ""]
    out.append("struct EmaCase {")
    out.append("  const char* name;")
    out.append("  double w[6];  // the moving averages after the last step")
    out.append("  double b[3];")
    out.append("};")
    out.append("inline constexpr EmaCase kEmaAverages[] = {")
    for name in EMA_CASES:
        aw, ab = AVERAGES[name]
        out.append('    {"%s", %s, %s},' % (name, arr(aw), arr(ab)))
    out += ["};", ""]
    out.append("constexpr int kScheduleSteps[%d] = {%s};" % (
        len(SCHEDULE_STEPS), ", ".join(str(s) for s in SCHEDULE_STEPS)))
    out.append("struct ScheduleCase {")
    out.append("  const char* name;")
    out.append("  double values[%d];" % len(SCHEDULE_STEPS))
    out.append("};")
    out.append("inline constexpr ScheduleCase kSchedules[] = {")
    for name, s in SCHEDULES.items():
        vals = [float(keras.ops.convert_to_numpy(s(np.int64(k)))) for k in SCHEDULE_STEPS]
        out.append('    {"%s", %s},' % (name, arr(vals)))
    out += ["};", "", "}  // namespace optim_golden", ""]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim_golden.hpp")
    with open(path, "w") as f:
        f.write("\n".join(out))
    print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
