"""PyTorch from Python: the same element-wise ops, matmuls, per-op overhead and MLP training loop
as tapeflow's benchmarks, at one thread setting (run it once per setting; the summary keeps
the best). Results are checked against NumPy before they are timed.

    OMP_NUM_THREADS=N OPENBLAS_NUM_THREADS=N python3 torch_peer.py --threads N --tsv out.tsv
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

    def per_op_us(fn, reps=100, samples=9):
        ts = []
        for s in range(samples + 2):
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            if s >= 2:
                ts.append((time.perf_counter() - t0) / (reps * pc.CHAIN) * 1e6)
        ts.sort()
        return ts[len(ts) // 2]

    res.add("overhead/no_tape", per_op_us(lambda: chain(x0)), "us")
    res.add("overhead/tape", per_op_us(lambda: chain(xg)), "us")
    ts = []
    for s in range(11):
        total = 0.0
        for _ in range(100):
            y = chain(xg)
            ones = torch.ones_like(y)
            t0 = time.perf_counter()
            torch.autograd.grad(y, xg, ones)
            total += time.perf_counter() - t0
        if s >= 2:
            ts.append(total / (100 * pc.CHAIN) * 1e6)
    ts.sort()
    res.add("overhead/gradient", ts[len(ts) // 2], "us")


def bench_mlp(args, res):
    x_np, y_np = pc.load_fashion_mnist()
    pc.reset_peak_rss()
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    # Keras's RMSprop defaults: lr 1e-3, rho 0.9, epsilon 1e-7
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = x.shape[0]

    def epoch(limit=None):
        perm = torch.randperm(n)
        seen, correct, loss_sum = 0, 0, 0.0
        for step, i in enumerate(range(0, n, 128)):
            if limit is not None and step >= limit:
                break
            idx = perm[i:i + 128]
            xb, yb = x[idx], y[idx]
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
    t0 = time.perf_counter()
    epoch(limit=10)
    batches = -(-n // 128)
    epochs, limit = pc.epoch_plan((time.perf_counter() - t0) / 10, batches, args.seconds, args.epochs)
    times = []
    for e in range(epochs):
        t0 = time.perf_counter()
        loss, acc = epoch(limit=limit)
        times.append((time.perf_counter() - t0) * batches / limit)
        print("  torch mlp epoch {}: {:.2f} s{}, loss {:.4f}, accuracy {:.4f}".format(
            e + 1, times[-1], "" if limit == batches else " (extrapolated from {} batches)".format(limit), loss, acc),
            flush=True)
    if acc < 0.7 and limit == batches:
        raise SystemExit("torch mlp: accuracy {} is too low: the training loop is broken".format(acc))
    res.add("mlp/epoch", min(times), "s")
    res.add("mlp/peak_rss", pc.peak_rss_mb(), "MB")


def main():
    args = pc.parse_args(__doc__)
    torch.set_num_threads(args.threads)
    res = pc.Results(args.tsv)
    print("# torch {} ({} threads)".format(torch.__version__, torch.get_num_threads()), flush=True)
    skip = set(args.skip.split(","))
    if "ops" not in skip:
        bench_ops(args, res)
    if "overhead" not in skip:
        bench_overhead(res)
    if "mlp" not in skip:
        bench_mlp(args, res)


if __name__ == "__main__":
    main()
