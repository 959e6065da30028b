"""PyTorch from Python: the same element-wise ops, matmuls, per-op overhead, MLP training loop and
recurrent layers (LSTM, GRU) as tapeflow's benchmarks, at one thread setting (run it once per setting; the summary keeps
the best). Results are checked against NumPy before they are timed.

    OMP_NUM_THREADS=N OPENBLAS_NUM_THREADS=N python3 torch_peer.py --threads N --tsv out.tsv

On a GPU (scripts/gpu_run.sh), the training jobs of tapeflow's samples mnist_keras and convnet
with the same hyperparameters, exact float32 (no TF32), batches copied from the CPU each step
as tapeflow's fit does; keys cuda/<job>/epoch (median s), epoch_min, peak_device (MB):

    python3 torch_peer.py --device cuda --only mlp,convnet --epochs 3 --tsv out.tsv

and torch.argsort (stable) and torch.topk(5) on bench_cuda's sort shapes, keys cuda/argsort/<rows>x<len>
and cuda/top_k5/<rows>x<len> in GB/s of 12 bytes per element, as bench_cuda's:

    python3 torch_peer.py --device cuda --only sort --tsv out.tsv
"""
import time

import numpy as np
import torch

import peer_common as pc


def bench_ops(args, res):
    rng = np.random.default_rng(42)
    ops = {
        "relu": lambda x: torch.relu(x),
        "add": lambda x, y: x + y,
        "sum0": lambda x: x.sum(0),
        "sum1": lambda x: x.sum(1),
        "softmax": lambda x: torch.softmax(x, -1),
    }
    shapes = pc.ELEMENTWISE_SHAPES[:2] if args.quick else pc.ELEMENTWISE_SHAPES
    with torch.no_grad():
        for rows, cols in shapes:
            for key, inputs, ref, rtol, atol, kind in pc.elementwise_cases(rows, cols, rng):
                ts = [torch.from_numpy(a) for a in inputs]
                f = ops[kind]
                pc.check_close("torch " + key, f(*ts).numpy(), ref, rtol, atol)
                res.add(key, pc.measure(lambda: f(*ts)), "s")
        for m, k, n, ta, tb in pc.MATMULS[:1] + pc.MATMULS[3:] if args.quick else pc.MATMULS:
            a, b, ref, rtol, atol = pc.matmul_inputs(m, k, n, ta, tb, rng)
            at, bt = torch.from_numpy(a), torch.from_numpy(b)
            at = at.t() if ta else at  # transposed views, as tapeflow's
            bt = bt.t() if tb else bt
            key = pc.matmul_key(m, k, n, ta, tb)
            pc.check_close("torch " + key, (at @ bt).numpy(), ref, rtol, atol)
            res.add(key, pc.measure(lambda: at @ bt), "s")


def chain(x):
    for _ in range(pc.CHAIN // 2):
        x = torch.tanh(x * 0.9)
    return x


def bench_overhead(res):
    x0 = torch.tensor([0.1, 0.2, 0.3, 0.4])
    xg = x0.clone().requires_grad_()
    val, der = pc.chain_reference()
    y = chain(xg)
    (g,) = torch.autograd.grad(y, xg, torch.ones_like(y))
    pc.check_close("torch chain", y.detach().numpy(), val, 1e-5, 1e-7)
    pc.check_close("torch chain gradient", g.numpy(), der, 1e-3, 1e-12)

    def record():
        y = chain(xg)
        return y, torch.ones_like(y)

    res.add("overhead/no_tape", pc.per_op_us(lambda: chain(x0)), "us")
    res.add("overhead/tape", pc.per_op_us(lambda: chain(xg)), "us")
    res.add("overhead/gradient", pc.backward_per_op_us(record, lambda r: torch.autograd.grad(r[0], xg, r[1])), "us")


def bench_rnn(res):
    """As bench_training rnn: torch.nn.LSTM / GRU (batch_first) on [64, 50, 64], the last step's
    output (Keras's return_sequences=False); an inference forward, and a training step: forward,
    mean as the loss, torch.autograd.grad w.r.t. the layer's 4 parameters."""
    x_np, rng = pc.rnn_inputs()
    x = torch.from_numpy(x_np)
    for name, cls in (("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)):
        torch.manual_seed(0)
        layer = cls(pc.RNN_SHAPE[2], pc.RNN_UNITS, batch_first=True)
        params = list(layer.parameters())
        with torch.no_grad():
            for b in (layer.bias_ih_l0, layer.bias_hh_l0):
                b.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, b.shape).astype(np.float32)))
        # the reference in Keras's layout: PyTorch's gates are i, f, g, o (LSTM, as Keras) and
        # r, z, n (GRU; Keras z, r, h), its weights [gates * units, in], its LSTM has two biases
        u = pc.RNN_UNITS
        order = [0, 1, 2, 3] if name == "lstm" else [1, 0, 2]

        def keras_layout(w):
            w = w.detach().numpy()
            return np.concatenate([w[k * u:(k + 1) * u] for k in order])

        kernel, recurrent = keras_layout(layer.weight_ih_l0).T, keras_layout(layer.weight_hh_l0).T
        b_ih, b_hh = keras_layout(layer.bias_ih_l0), keras_layout(layer.bias_hh_l0)
        bias = b_ih + b_hh if name == "lstm" else np.stack([b_ih, b_hh])
        ref = pc.recurrent_reference(name == "lstm", x_np, kernel, recurrent, bias)

        def forward():
            return layer(x)[0][:, -1]

        def inference():
            with torch.no_grad():
                return forward()

        def train_step():
            return torch.autograd.grad(forward().mean(), params)

        pc.check_close("torch " + name, inference().numpy(), ref, 1e-4, 1e-5)
        res.add(name + "/forward", pc.measure(inference, 1.0), "s")
        res.add(name + "/train_step", pc.measure(train_step, 1.5), "s")


def bench_fit(args, res, job, model, x, y, batch):
    """model.fit's loop, as Keras's: shuffled batches, RMSprop with Keras's defaults (lr 1e-3,
    rho 0.9, epsilon 1e-7), the running loss and accuracy kept per batch; seconds per epoch."""
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    model = model.to(device)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = x.shape[0]

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def epoch(limit=None):
        perm = torch.randperm(n)
        seen, correct, loss_sum = 0, 0, 0.0
        for step, i in enumerate(range(0, n, batch)):
            if limit is not None and step >= limit:
                break
            idx = perm[i:i + batch]
            xb, yb = x[idx].to(device), y[idx].to(device)  # the data stay on the CPU, as tapeflow's
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            # the running loss and accuracy Keras's fit (and tapeflow's) keep per batch
            loss_sum += loss.item() * len(yb)
            correct += (out.argmax(1) == yb).sum().item()
            seen += len(yb)
        return loss_sum / seen, correct / seen

    epoch(limit=10)  # warm-up
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    sync()
    t0 = time.perf_counter()
    epoch(limit=10)
    sync()
    batches = -(-n // batch)
    epochs, limit = pc.epoch_plan((time.perf_counter() - t0) / 10, batches, args.seconds, args.epochs)
    times = []
    for e in range(epochs):
        sync()
        t0 = time.perf_counter()
        loss, acc = epoch(limit=limit)
        sync()
        times.append((time.perf_counter() - t0) * batches / limit)
        print("  torch {} epoch {}: {:.2f} s{}, loss {:.4f}, accuracy {:.4f}".format(
            job, e + 1, times[-1], "" if limit == batches else " (extrapolated from {} batches)".format(limit), loss,
            acc), flush=True)
    if acc < 0.7 and limit == batches:
        raise SystemExit("torch {}: accuracy {} is too low: the training loop is broken".format(job, acc))
    if cuda:
        res.add("cuda/{}/epoch".format(job), sorted(times)[len(times) // 2], "s")
        res.add("cuda/{}/epoch_min".format(job), min(times), "s")
        res.add("cuda/{}/peak_device".format(job), torch.cuda.max_memory_allocated(device) / 2**20, "MB")
    else:
        res.add("{}/epoch".format(job), min(times), "s")
        res.add("{}/peak_rss".format(job), pc.peak_rss_mb(), "MB")


def bench_mlp(args, res):
    """samples/mnist_keras: Dense(512, relu) -> Dense(10, softmax), batch 128."""
    x_np, y_np = pc.load_fashion_mnist()
    pc.reset_peak_rss()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    bench_fit(args, res, "mlp", model, torch.from_numpy(x_np), torch.from_numpy(y_np), 128)


def bench_convnet(args, res):
    """samples/convnet, the book's chapter-8 convnet, batch 64 (NCHW, PyTorch's layout)."""
    x_np, y_np = pc.load_fashion_mnist()
    pc.reset_peak_rss()
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(64, 128, 3), nn.ReLU(), nn.Flatten(), nn.Linear(128 * 3 * 3, 10))
    x = torch.from_numpy(x_np).reshape(-1, 1, 28, 28)
    bench_fit(args, res, "convnet", model, x, torch.from_numpy(y_np), 64)


# bench_cuda's sort cases (its full run): rows as in top-k over classes, and long rows
SORT_SHAPES = [(8192, 1000), (16, 1 << 20)]


def bench_sort(args, res):
    """torch.argsort(stable=True) and torch.topk(x, 5) along the last axis of float32 [rows, len] on the
    device, checked against NumPy first; GB/s = 12 bytes per element (the keys read, the int64 indices
    written, once each) / median seconds, as bench_cuda's sort rows."""
    dev = torch.device(args.device)
    rng = np.random.default_rng(1)
    for rows, length in SORT_SHAPES[:1] if args.quick else SORT_SHAPES:
        x_np = rng.uniform(-1, 1, (rows, length)).astype(np.float32)
        x = torch.from_numpy(x_np).to(dev)
        # stable on both sides, so the indices are unique (float32 draws tie often enough to matter)
        if not np.array_equal(torch.argsort(x, dim=-1, stable=True).cpu().numpy(),
                              np.argsort(x_np, axis=-1, kind="stable")):
            raise SystemExit("torch argsort [{}, {}]: indices differ from NumPy's stable argsort".format(rows, length))
        top = np.take_along_axis(x_np, torch.topk(x, 5).indices.cpu().numpy(), -1)  # ties: compare values
        pc.check_close("torch topk [{}, {}]".format(rows, length), top, -np.sort(-x_np, axis=-1)[:, :5], 0, 0)

        def synced(fn):
            def run():
                fn()
                torch.cuda.synchronize(dev)
            return run

        for key, fn in (("argsort", lambda: torch.argsort(x, dim=-1, stable=True)),
                        ("top_k5", lambda: torch.topk(x, 5))):
            t = pc.measure(synced(fn))
            res.add("cuda/{}/{}x{}".format(key, rows, length), 12 * rows * length / t / 1e9, "GB/s")


def main():
    p = pc.parser(__doc__)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (on a GPU: the training jobs only)")
    p.add_argument("--only", default="", help="comma-separated parts to run (default ops,overhead,mlp on the CPU, "
                   "mlp,convnet on a GPU); convnet is the book's chapter-8 convnet, rnn the LSTM and GRU, "
                   "sort argsort and topk (a GPU only)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    res = pc.Results(args.tsv)
    cuda = args.device.startswith("cuda")
    parts = {"ops": bench_ops, "overhead": lambda a, r: bench_overhead(r), "mlp": bench_mlp, "convnet": bench_convnet,
             "rnn": lambda a, r: bench_rnn(r), "sort": bench_sort}
    only = args.only.split(",") if args.only else ["mlp", "convnet"] if cuda else ["ops", "overhead", "mlp"]
    allowed = ("mlp", "convnet", "sort") if cuda else ("ops", "overhead", "mlp", "convnet", "rnn")
    bad = [name for name in only if name not in allowed]
    if bad:
        raise SystemExit("torch_peer: cannot run {} (parts: ops, overhead, mlp, convnet, rnn, sort; on a GPU mlp, "
                         "convnet and sort only, sort on a GPU only)".format(",".join(bad)))
    where = "{} threads".format(torch.get_num_threads())
    if cuda:
        if not torch.cuda.is_available():
            raise SystemExit("torch_peer: --device {}: torch {} sees no GPU".format(args.device, torch.__version__))
        # exact float32, as tapeflow's default (PyTorch's cuDNN would otherwise use TF32 in the convolutions)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        where = "{}: {}, CUDA {}, cuDNN {}".format(args.device, torch.cuda.get_device_name(torch.device(args.device)),
                                                   torch.version.cuda, torch.backends.cudnn.version())
    print("# torch {} ({})".format(torch.__version__, where), flush=True)
    skip = set(args.skip.split(","))
    for name in only:
        if name not in skip:
            parts[name](args, res)


if __name__ == "__main__":
    main()
