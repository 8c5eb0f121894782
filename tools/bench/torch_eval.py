#!/usr/bin/python3
"""PyTorch CPU reference for tools/bench/bench_eval: forward-only loss
evaluations of the pipeline's model (built from its `model:` list: flatten,
dense, relu) over the full Fashion-MNIST training set, in batches of the
pipeline's eval_batch_size, under torch.no_grad(); then the cost of one
loss-surface point on a subset (parameters set to theta + x d1 + y d2, then
the loss), and the 51 x 51 estimate from it.

    /usr/bin/python3 tools/bench/torch_eval.py PIPELINE.yaml [--reps N]
        [--subset N] [--grid N] [--threads T,B]

Each measurement runs at PyTorch's best: every pair of torch intra-op
threads and OpenBLAS threads (1 or N each, torch_threads.py) is timed and
the fastest kept and named; --threads T,B pins one pair.

Debian's python3-torch (and python3-yaml) load in /usr/bin/python3. Its
GEMMs go through the system's libblas.so.3: with only the reference BLAS
installed they run at ~4 GFLOP/s instead of ~140 with OpenBLAS, so install
libopenblas0-pthread (or point LD_LIBRARY_PATH at its directory for this
command) and unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for this command
only:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread /usr/bin/python3 \\
        tools/bench/torch_eval.py pipelines/landscape.yaml
"""
import gzip
import struct
import sys
import time

import numpy as np
import torch
import yaml

import torch_threads

FMNIST = "/usr/share/datasets/fashion-mnist/"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n = struct.unpack(">II", raw[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, rows, cols)
    return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


def model_of(layers):
    mods, width = [], None
    for spec in layers:
        kind = spec["type"]
        if kind == "flatten":
            mods.append(torch.nn.Flatten())
            width = 28 * 28
        elif kind == "dense":
            mods.append(torch.nn.Linear(width, spec["units"], bias=spec.get("bias", True)))
            width = spec["units"]
        elif kind == "relu":
            mods.append(torch.nn.ReLU())
        else:
            raise SystemExit(f"torch_eval.py: layer type {kind} is not mapped")
    return torch.nn.Sequential(*mods)


def mean_loss(model, x, y, batch, n):
    total, right = 0.0, 0
    with torch.no_grad():
        for start in range(0, n, batch):
            logits = model(x[start:start + batch])
            lab = y[start:start + batch]
            total += torch.nn.functional.cross_entropy(logits, lab, reduction="sum").item()
            right += (logits.argmax(1) == lab).sum().item()
    return total / n, right / n


def option(args, name, default):
    if name in args:
        i = args.index(name)
        value = int(args[i + 1])
        del args[i:i + 2]
        return value
    return default


def main():
    args = sys.argv[1:]
    reps = option(args, "--reps", 5)
    subset = option(args, "--subset", 10000)
    grid = option(args, "--grid", 51)
    only = None
    if "--threads" in args:
        i = args.index("--threads")
        only = tuple(int(v) for v in args[i + 1].split(","))
        del args[i:i + 2]
    torch.manual_seed(0)
    p = yaml.safe_load(open(args[0]))
    batch = p["training"].get("eval_batch_size", 1000)
    x = torch.from_numpy(((read_idx(FMNIST + "train-images-idx3-ubyte.gz") / 255.0 - 0.2860)
                          / 0.3530).astype(np.float32))
    y = torch.from_numpy(read_idx(FMNIST + "train-labels-idx1-ubyte.gz"))
    n = x.shape[0]
    model = model_of(p["model"]).eval()

    def evals():
        mean_loss(model, x, y, batch, batch)  # warm-up
        t0 = time.perf_counter()
        for _ in range(reps):
            loss, _ = mean_loss(model, x, y, batch, n)
        el = time.perf_counter() - t0
        return reps / el, {"loss": loss}

    rate, details, (tt, bt) = torch_threads.best(torch, evals, "evals/s", only)
    print(f"pytorch {p.get('name')} evals/s={rate:.3f} samples/s={rate * n:.0f} "
          f"n={n} batch={batch} torch_threads={tt} openblas_threads={bt} "
          f"loss={details['loss']:.6f} (fastest)")

    theta = [q.detach().clone() for q in model.parameters()]
    d1 = [torch.randn_like(q) * 0.01 for q in theta]
    points = 20

    def surface():
        mean_loss(model, x, y, batch, batch)  # warm-up
        t0 = time.perf_counter()
        for k in range(points):
            a = -1.0 + 2.0 * k / (points - 1)
            with torch.no_grad():
                for q, t, d in zip(model.parameters(), theta, d1):
                    q.copy_(t + a * d - a * d)
            mean_loss(model, x, y, batch, min(subset, n))
        el = (time.perf_counter() - t0) / points
        return 1.0 / el, {}

    rate, _, (tt, bt) = torch_threads.best(torch, surface, "points/s", only)
    el = 1.0 / rate
    print(f"pytorch surface {grid}x{grid} subset={subset} s/point={el:.4f} "
          f"estimate_s={el * grid * grid:.0f} torch_threads={tt} openblas_threads={bt} "
          f"(fastest)")


if __name__ == "__main__":
    main()
