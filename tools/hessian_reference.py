#!/usr/bin/python3
"""PyTorch reference for batchscope's hessian analysis: the Hessian of the
mean training loss at a batchscope checkpoint, in float64, by autograd.

    /usr/bin/python3 tools/hessian_reference.py PIPELINE.yaml CHECKPOINT.safetensors
        [--subset N] [--top K] [--bottom K] [--mode dense|lanczos] [--iters M]
        [--threads N] [--out FILE.csv]

The pipeline's dataset (fashion-mnist or mnist by name, or idx files) and
`model:` list are rebuilt as a torch.nn.Sequential in eval mode (dropout off,
batch norm on its running statistics, as batchscope's evaluator), the
checkpoint's tensors ("1.weight", ...) are loaded into it, and the loss is
the mean softmax cross-entropy over the first N training examples, the
inputs normalized exactly as batchscope does in float32.

  --mode dense    (default up to 20000 parameters) the whole Hessian, one
                  autograd Hessian-vector product (double backward) per
                  column; eigenvalues by numpy.linalg.eigvalsh; trace exact.
  --mode lanczos  --iters (default 300) Lanczos steps with full
                  reorthogonalization on autograd products; top and bottom
                  Ritz values; no trace.

Prints and writes (--out) a CSV: block ("all", or a parameter tensor such as
"1.weight" for its diagonal block, dense mode), quantity (eigenvalue |
bottom_eigenvalue | trace | loss | n_params | asymmetry), k, value -- what
tests/test_curvature compares batchscope's hessian.csv with. Needs Debian's python3-torch, python3-numpy
and python3-yaml (tools/setup.sh --bench).
"""
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
import yaml

NORM = {"fashion-mnist": (0.2860, 0.3530), "mnist": (0.1307, 0.3081)}
DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist",
        "mnist": "/usr/share/datasets/mnist"}


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n = struct.unpack(">II", raw[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, rows, cols)
    return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


def load_data(p, pipeline_dir, subset):
    d = p["dataset"]
    if isinstance(d, str):
        d = {"name": d}
    name = d.get("name")
    if name:
        base = d.get("dir", DIRS[name])
        images = os.path.join(base, "train-images-idx3-ubyte.gz")
        labels = os.path.join(base, "train-labels-idx1-ubyte.gz")
        mean, std = NORM[name]
    else:
        images = os.path.join(pipeline_dir, d["train"]["images"])
        labels = os.path.join(pipeline_dir, d["train"]["labels"])
        mean, std = 0.0, 1.0
    norm = d.get("normalize")
    if norm is False:
        mean, std = 0.0, 1.0
    elif isinstance(norm, dict):
        mean, std = norm.get("mean", mean), norm.get("std", std)
    x = read_idx(images)[:subset]
    y = read_idx(labels)[:subset]
    # batchscope's own arithmetic: ((float)v / 255 - mean) / std in float32
    f = np.float32
    x = ((x.astype(f) / f(255.0)) - f(mean)) / f(std)
    return torch.from_numpy(x.astype(np.float64)), torch.from_numpy(y)


def pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


def model_of(layers, shape):
    """torch.nn.Sequential of the pipeline's layers, module i = layer i."""
    mods = []
    c, h, w = shape
    flat = None
    for spec in layers:
        kind = spec["type"]
        if kind == "flatten":
            mods.append(torch.nn.Flatten())
            flat = c * h * w
        elif kind == "dense":
            mods.append(torch.nn.Linear(flat, spec["units"], bias=spec.get("bias", True)))
            flat = spec["units"]
        elif kind == "conv2d":
            k, s, pd = pair(spec["kernel_size"]), pair(spec.get("stride", 1)), pair(spec.get("padding", 0))
            mods.append(torch.nn.Conv2d(c, spec["filters"], k, s, pd, bias=spec.get("bias", True)))
            c = spec["filters"]
            h = (h + 2 * pd[0] - k[0]) // s[0] + 1
            w = (w + 2 * pd[1] - k[1]) // s[1] + 1
        elif kind in ("maxpool2d", "avgpool2d"):
            k = pair(spec["kernel_size"])
            s = pair(spec.get("stride", spec["kernel_size"]))
            pd = pair(spec.get("padding", 0))
            cls = torch.nn.MaxPool2d if kind == "maxpool2d" else torch.nn.AvgPool2d
            mods.append(cls(k, s, pd))
            h = (h + 2 * pd[0] - k[0]) // s[0] + 1
            w = (w + 2 * pd[1] - k[1]) // s[1] + 1
        elif kind == "batchnorm":
            n = flat if flat is not None else c
            cls = torch.nn.BatchNorm1d if flat is not None else torch.nn.BatchNorm2d
            mods.append(cls(n, eps=spec.get("eps", 1e-5), momentum=spec.get("momentum", 0.1)))
        elif kind == "relu":
            mods.append(torch.nn.ReLU())
        elif kind == "leaky_relu":
            mods.append(torch.nn.LeakyReLU(spec.get("negative_slope", 0.01)))
        elif kind == "tanh":
            mods.append(torch.nn.Tanh())
        elif kind == "sigmoid":
            mods.append(torch.nn.Sigmoid())
        elif kind == "dropout":
            mods.append(torch.nn.Dropout(spec.get("p", 0.5)))
        else:
            raise SystemExit(f"hessian_reference.py: layer type {kind} is not mapped")
    return torch.nn.Sequential(*mods).double().eval()


def read_safetensors(path):
    import json
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        assert t["dtype"] == "F32", f"{name}: {t['dtype']}"
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], np.float32).copy()
                                     .reshape(t["shape"])).double()
    return out


def option(args, name, default, kind=int):
    if name in args:
        i = args.index(name)
        value = kind(args[i + 1])
        del args[i:i + 2]
        return value
    return default


def lanczos(hvp, n, iters, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(n)
    q /= np.linalg.norm(q)
    Q, alpha, beta = [q], [], []
    for j in range(min(iters, n)):
        w = hvp(Q[-1])
        a = Q[-1] @ w
        alpha.append(a)
        w = w - a * Q[-1] - (beta[-1] * Q[-2] if j else 0)
        for _ in range(2):
            for v in Q:
                w -= (v @ w) * v
        b = np.linalg.norm(w)
        if b < 1e-12 * max(abs(x) for x in alpha):
            break
        beta.append(b)
        Q.append(w / b)
    m = len(alpha)
    T = np.diag(alpha) + np.diag(beta[:m - 1], 1) + np.diag(beta[:m - 1], -1)
    return np.linalg.eigvalsh(T)


def main():
    args = sys.argv[1:]
    subset = option(args, "--subset", 1000)
    top = option(args, "--top", 3)
    bottom = option(args, "--bottom", 0)
    iters = option(args, "--iters", 300)
    threads = option(args, "--threads", 0)
    mode = option(args, "--mode", None, str)
    out = option(args, "--out", None, str)
    if len(args) != 2:
        raise SystemExit(__doc__)
    if threads:
        torch.set_num_threads(threads)
    pipeline, ckpt = args
    p = yaml.safe_load(open(pipeline))
    x, y = load_data(p, os.path.dirname(os.path.abspath(pipeline)), subset)
    model = model_of(p["model"], tuple(x.shape[1:]))
    state = read_safetensors(ckpt)
    model.load_state_dict({k: v for k, v in state.items()}, strict=False)
    params = [q for q in model.parameters()]
    n = sum(q.numel() for q in params)
    mode = mode or ("dense" if n <= 20000 else "lanczos")

    def loss_fn():
        return torch.nn.functional.cross_entropy(model(x), y)

    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat_g = torch.cat([g.reshape(-1) for g in grads])

    def hvp(v):
        # double backward: d/dtheta (g . v), the graph of g kept for the next
        vt = torch.from_numpy(np.ascontiguousarray(v))
        hv = torch.autograd.grad(flat_g @ vt, params, retain_graph=True)
        return torch.cat([t.reshape(-1) for t in hv]).numpy()

    t0 = time.perf_counter()
    rows = [("loss", 0, float(loss)), ("n_params", 0, float(n))]
    if mode == "dense":
        H = np.empty((n, n))
        e = np.zeros(n)
        for j in range(n):
            e[j] = 1.0
            H[:, j] = hvp(e)
            e[j] = 0.0
        asym = np.abs(H - H.T).max()
        H = (H + H.T) / 2
        ev = np.linalg.eigvalsh(H)
        rows += [("trace", 0, float(np.trace(H))), ("asymmetry", 0, float(asym))]
        # each parameter tensor's diagonal block, named as in the checkpoint
        at = 0
        for name, q in model.named_parameters():
            b = H[at:at + q.numel(), at:at + q.numel()]
            at += q.numel()
            rows.append(("trace", 0, float(np.trace(b)), name))
            rows.append(("eigenvalue", 1, float(np.linalg.eigvalsh(b)[-1]), name))
    else:
        ev = lanczos(hvp, n, iters)
    for k in range(top):
        rows.append(("eigenvalue", k + 1, float(ev[-1 - k])))
    for k in range(bottom):
        rows.append(("bottom_eigenvalue", k + 1, float(ev[k])))
    rows = [r if len(r) == 4 else r + ("all",) for r in rows]
    text = "block,quantity,k,value\n" + "".join(f"{b},{q},{k},{v:.17g}\n" for q, k, v, b in rows)
    sys.stdout.write(text)
    sys.stderr.write(f"hessian_reference: {mode}, {n} parameters, {subset} examples, "
                     f"{time.perf_counter() - t0:.1f} s\n")
    if out:
        with open(out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
