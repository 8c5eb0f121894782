#!/usr/bin/python3
"""PyTorch CPU reference for tools/bench/bench_train: the same model (built
from the pipeline's `model:` list), the same data (Fashion-MNIST, normalized
the same way), the same batch size and optimizer; times one epoch of
training steps after a warm-up and prints samples/s.

    /usr/bin/python3 tools/bench/torch_train.py PIPELINE.yaml BATCH [STEPS]
        [--threads T,B]

PyTorch runs at its best: every pair of torch intra-op threads and OpenBLAS
threads (1 or N each, torch_threads.py) is tried on a fifth of the steps,
and the fastest is timed over all of them; each try is printed and the last
line names the winner. --threads T,B pins
one pair. Debian's python3-torch (and python3-yaml) load in
/usr/bin/python3. When timing, unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
for this command only (tools/bench/run.sh does).
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


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, rows, cols)
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)


def build(layers, shape):
    mods = []
    c, h, w = shape
    flat = None
    for spec in layers:
        t = spec["type"]
        if t == "flatten":
            mods.append(torch.nn.Flatten())
            flat = c * h * w
        elif t == "dense":
            mods.append(torch.nn.Linear(flat, spec["units"], bias=spec.get("bias", True)))
            flat = spec["units"]
        elif t == "conv2d":
            k = spec["kernel_size"]
            s, p = spec.get("stride", 1), spec.get("padding", 0)
            mods.append(torch.nn.Conv2d(c, spec["filters"], k, s, p, bias=spec.get("bias", True)))
            c = spec["filters"]
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif t == "maxpool2d":
            k = spec["kernel_size"]
            s = spec.get("stride", k)
            mods.append(torch.nn.MaxPool2d(k, s))
            h, w = (h - k) // s + 1, (w - k) // s + 1
        elif t == "relu":
            mods.append(torch.nn.ReLU())
        else:
            raise SystemExit(f"torch_train.py: layer type {t} not mapped")
    return torch.nn.Sequential(*mods)


def main():
    args = [a for a in sys.argv[1:]]
    only = None
    if "--threads" in args:
        i = args.index("--threads")
        only = tuple(int(v) for v in args[i + 1].split(","))
        del args[i:i + 2]
    pipeline, batch = args[0], int(args[1])
    limit = int(args[2]) if len(args) > 2 else 0
    torch.manual_seed(0)
    p = yaml.safe_load(open(pipeline))
    x = torch.from_numpy(((idx(FMNIST + "train-images-idx3-ubyte.gz") / 255.0 - 0.2860) / 0.3530)
                         .astype(np.float32))
    y = torch.from_numpy(idx(FMNIST + "train-labels-idx1-ubyte.gz"))
    model = build(p["model"], (1, 28, 28))
    o = p["training"].get("optimizer", {})
    opt = torch.optim.SGD(model.parameters(), lr=o.get("lr", 0.01), momentum=o.get("momentum", 0))
    loss_fn = torch.nn.CrossEntropyLoss()
    perm = torch.randperm(x.shape[0])
    steps = x.shape[0] // batch
    if limit:
        steps = min(steps, limit)
    losses = torch.zeros(steps)

    def step(k):
        idx_ = perm[k * batch:(k + 1) * batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx_]), y[idx_])
        loss.backward()
        opt.step()
        losses[k] = loss.detach()

    def measure(n=steps):
        for k in range(3):
            step(k)
        t0 = time.perf_counter()
        for k in range(n):
            step(k)
        el = time.perf_counter() - t0
        return n * batch / el, {"s": el}

    # Each setting is tried on a fifth of the steps (at least 20), the
    # fastest then timed over all of them.
    rate, details, (tt, bt) = torch_threads.best(torch, measure, f"bs={batch}", only,
                                                 lambda: measure(max(20, steps // 5)))
    print(f"pytorch {p.get('name')} bs={batch} samples/s={rate:.0f} steps={steps} "
          f"s={details['s']:.3f} torch_threads={tt} openblas_threads={bt} (fastest)")


if __name__ == "__main__":
    main()
