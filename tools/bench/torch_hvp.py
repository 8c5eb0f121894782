#!/usr/bin/python3
"""PyTorch CPU reference for tools/bench/bench_hvp: one Hessian-vector
product by double backward (grad of (grad L . v)) against one gradient, on
the pipeline's model over its first N training examples, float32, in
batches of --batch (default: all N at once), the fastest of --reps.

    /usr/bin/python3 tools/bench/torch_hvp.py PIPELINE.yaml [--subset N]
        [--reps N] [--batch N] [--threads N] [--check DIR]

--check DIR: DIR holds x.f32, v.f32 and hv.f32 written by `bench_hvp
--save DIR` (the weights, the direction and batchscope's exact product,
raw little-endian float32 in the model's tensor order); the product is
recomputed there in float64 and the relative difference printed.

Run it as tools/bench/run_hvp.sh does: with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset, and at each thread setting (torch.set_num_threads
and OPENBLAS_NUM_THREADS multiply; see shared notes), keeping the best.
Prints
  "pytorch <name> grad s=<g> hvp s=<h> hvp/grad=<r> n=<N> threads=<t>"
"""
import os
import sys
import time

import numpy as np
import torch
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from hessian_reference import load_data, model_of, option  # noqa: E402


def timed(fn, reps):
    """The fastest of reps calls after a warm-up, as bench_hvp measures."""
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.min(ts))


def main():
    args = sys.argv[1:]
    subset = option(args, "--subset", 10000)
    reps = option(args, "--reps", 7)
    batch = option(args, "--batch", 0)
    threads = option(args, "--threads", 0)
    check = option(args, "--check", None, str)
    if len(args) != 1:
        raise SystemExit(__doc__)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    p = yaml.safe_load(open(args[0]))
    x, y = load_data(p, os.path.dirname(os.path.abspath(args[0])), subset)
    model = model_of(p["model"], tuple(x.shape[1:]))
    batch = batch or len(y)
    if check:
        hvp_check(model, x, y, check)
        return
    model = model.float()
    x = x.float()
    params = list(model.parameters())
    v = [torch.randn_like(q) for q in params]
    chunks = [(x[i:i + batch], y[i:i + batch]) for i in range(0, len(y), batch)]
    n = len(y)

    def grad():
        out = [torch.zeros_like(q) for q in params]
        for xb, yb in chunks:
            loss = torch.nn.functional.cross_entropy(model(xb), yb, reduction="sum") / n
            for o, g in zip(out, torch.autograd.grad(loss, params)):
                o += g
        return out

    def hvp():
        out = [torch.zeros_like(q) for q in params]
        for xb, yb in chunks:
            loss = torch.nn.functional.cross_entropy(model(xb), yb, reduction="sum") / n
            g = torch.autograd.grad(loss, params, create_graph=True)
            gv = sum((gi * vi).sum() for gi, vi in zip(g, v))
            for o, h in zip(out, torch.autograd.grad(gv, params)):
                o += h
        return out

    tg = timed(grad, reps)
    th = timed(hvp, reps)
    print(f"pytorch {p.get('name')} grad s={tg:.4f} hvp s={th:.4f} hvp/grad={th / tg:.2f} "
          f"n={n} batch={batch} threads={torch.get_num_threads()} "
          f"blas_threads={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")


def hvp_check(model, x, y, d):
    """batchscope's exact product against autograd's, in float64."""
    params = list(model.parameters())
    flat = [np.fromfile(os.path.join(d, f + ".f32"), dtype="<f4").astype(np.float64)
            for f in ("x", "v", "hv")]
    at = 0
    with torch.no_grad():
        for q in params:
            q.copy_(torch.from_numpy(flat[0][at:at + q.numel()].reshape(q.shape)))
            at += q.numel()
    vt = torch.from_numpy(flat[1])
    loss = torch.nn.functional.cross_entropy(model(x), y)
    g = torch.autograd.grad(loss, params, create_graph=True)
    gv = torch.cat([t.reshape(-1) for t in g]) @ vt
    hv = torch.cat([t.reshape(-1) for t in torch.autograd.grad(gv, params)]).numpy()
    rel = np.linalg.norm(hv - flat[2]) / np.linalg.norm(hv)
    print(f"pytorch check |hv_batchscope - hv_autograd| / |hv_autograd| = {rel:.3g} "
          f"(float64 autograd, {len(hv)} parameters)")


if __name__ == "__main__":
    main()
