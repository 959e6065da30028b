"""TensorFlow / Keras (PyPI tensorflow-cpu): the same element-wise ops, matmuls, per-op overhead
(eager ops, tf.GradientTape), MLP training (keras Sequential + fit) and recurrent layers (LSTM,
GRU) as tapeflow's benchmarks,
at one thread setting (run it once per setting; the summary keeps the best). Results are
checked against NumPy before they are timed.

    OMP_NUM_THREADS=N python keras_peer.py --threads N --tsv out.tsv
"""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

import peer_common as pc  # noqa: E402


def bench_ops(args, res):
    rng = np.random.default_rng(42)
    ops = {
        "relu": lambda x: tf.nn.relu(x),
        "add": lambda x, y: x + y,
        "sum0": lambda x: tf.reduce_sum(x, 0),
        "sum1": lambda x: tf.reduce_sum(x, 1),
        "softmax": lambda x: tf.nn.softmax(x, -1),
    }
    shapes = pc.ELEMENTWISE_SHAPES[:2] if args.quick else pc.ELEMENTWISE_SHAPES
    for rows, cols in shapes:
        for key, inputs, ref, rtol, atol, kind in pc.elementwise_cases(rows, cols, rng):
            ts = [tf.constant(a) for a in inputs]
            f = ops[kind]
            pc.check_close("tf " + key, f(*ts).numpy(), ref, rtol, atol)
            res.add(key, pc.measure(lambda: f(*ts)), "s")
    for m, k, n, ta, tb in pc.MATMULS[:1] + pc.MATMULS[3:] if args.quick else pc.MATMULS:
        a, b, ref, rtol, atol = pc.matmul_inputs(m, k, n, ta, tb, rng)
        at, bt = tf.constant(a), tf.constant(b)  # TF has no strided views: transpose flags
        key = pc.matmul_key(m, k, n, ta, tb)
        mm = lambda: tf.matmul(at, bt, transpose_a=ta, transpose_b=tb)  # noqa: E731
        pc.check_close("tf " + key, mm().numpy(), ref, rtol, atol)
        res.add(key, pc.measure(mm), "s")


def chain(x):
    for _ in range(pc.CHAIN // 2):
        x = tf.tanh(x * 0.9)
    return x


def bench_overhead(res):
    x0 = tf.constant([0.1, 0.2, 0.3, 0.4])
    val, der = pc.chain_reference()
    with tf.GradientTape() as tape:
        tape.watch(x0)
        y = chain(x0)
    g = tape.gradient(y, x0)
    pc.check_close("tf chain", y.numpy(), val, 1e-5, 1e-7)
    pc.check_close("tf chain gradient", g.numpy(), der, 1e-3, 1e-12)

    def taped():
        with tf.GradientTape() as t:
            t.watch(x0)
            chain(x0)

    def record():
        with tf.GradientTape() as t:
            t.watch(x0)
            y = chain(x0)
        return t, y

    res.add("overhead/no_tape", pc.per_op_us(lambda: chain(x0)), "us")
    res.add("overhead/tape", pc.per_op_us(taped), "us")
    res.add("overhead/gradient", pc.backward_per_op_us(record, lambda r: r[0].gradient(r[1], x0)), "us")


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times = getattr(self, "times", []) + [time.perf_counter() - self.t0]
        self.last = dict(logs or {})
        print("  keras mlp epoch {}: {:.2f} s, loss {:.4f}, accuracy {:.4f}".format(
            epoch + 1, self.times[-1], self.last.get("loss", 0), self.last.get("accuracy", 0)), flush=True)


def bench_mlp(args, res):
    x, y = pc.load_fashion_mnist()
    pc.reset_peak_rss()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.RMSprop(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    # warm-up: the first fit traces (and, with jit_compile="auto", compiles) the train step
    model.fit(x[:1280], y[:1280], epochs=1, batch_size=128, verbose=0)
    t0 = time.perf_counter()
    model.fit(x[:1280], y[:1280], epochs=1, batch_size=128, verbose=0)
    batches = -(-len(x) // 128)
    epochs, limit = pc.epoch_plan((time.perf_counter() - t0) / 10, batches, args.seconds, args.epochs)
    n = min(len(x), limit * 128)
    timer = EpochTimer()
    model.fit(x[:n], y[:n], epochs=epochs, batch_size=128, verbose=0, callbacks=[timer])
    if limit == batches and timer.last.get("accuracy", 0) < 0.7:
        raise SystemExit("keras mlp: accuracy {} is too low".format(timer.last.get("accuracy")))
    if limit != batches:
        print("  (timed on {} batches, extrapolated to an epoch)".format(limit), flush=True)
    res.add("mlp/epoch", min(timer.times) * batches / limit, "s")
    res.add("mlp/peak_rss", pc.peak_rss_mb(), "MB")


def bench_rnn(res):
    """As bench_training rnn: keras.layers.LSTM / GRU(128) (return_sequences=False, GRU reset_after)
    on [64, 50, 64]; an inference forward, and a training step: forward under a tf.GradientTape,
    mean as the loss, gradient w.r.t. the layer's 3 weights; each a tf.function (as Keras's
    predict and fit run them), traced before it is timed."""
    x_np, rng = pc.rnn_inputs()
    x = tf.constant(x_np)
    for name, cls in (("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU)):
        keras.utils.set_random_seed(0)
        layer = cls(pc.RNN_UNITS)
        layer.build(x.shape)
        kernel, recurrent, bias = layer.get_weights()
        bias = rng.uniform(-0.5, 0.5, bias.shape).astype(np.float32)
        layer.set_weights([kernel, recurrent, bias])
        weights = layer.trainable_weights

        @tf.function
        def inference():
            return layer(x)

        @tf.function
        def train_step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(layer(x, training=True))
            return tape.gradient(loss, weights)

        ref = pc.recurrent_reference(name == "lstm", x_np, kernel, recurrent, bias)
        pc.check_close("keras " + name, inference().numpy(), ref, 1e-4, 1e-5)
        res.add(name + "/forward", pc.measure(inference, 1.0), "s")
        res.add(name + "/train_step", pc.measure(train_step, 1.5), "s")


def main():
    args = pc.parse_args(__doc__)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    res = pc.Results(args.tsv)
    print("# tensorflow {}, keras {} ({} threads)".format(tf.__version__, keras.__version__, args.threads), flush=True)
    skip = set(args.skip.split(","))
    if "ops" not in skip:
        bench_ops(args, res)
    if "overhead" not in skip:
        bench_overhead(res)
    if "mlp" not in skip:
        bench_mlp(args, res)
    if "rnn" not in skip:
        bench_rnn(res)


if __name__ == "__main__":
    main()
