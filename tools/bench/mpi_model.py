#!/usr/bin/env python3
"""The scaling model of `mpirun -n N batchscope run` (README, Scale-out
with MPI), simulated for 2 to 1024 ranks from measured costs.

The scheduler (runtime/study/scheduler.c) is a single queue at rank 0:
ranks ask, rank 0 takes each RESULT in (writes it, atomically, with its
completion record) and hands out the next unit, one message at a time.
Per unit that is two messages:

    UNIT    rank 0 -> rank   48 B (id, kind, index, part, parts, view flag);
                             a rank's first analysis unit also carries the
                             finished runs: their statuses, and when OUT is
                             not shared (--shared-out no, or detected) every
                             run's init and final checkpoints
    RESULT  rank -> rank 0   the unit's bytes: a training run's directory
                             (checkpoints, CSVs, run.json), a surface row's
                             16 B a point, a sharpness row (~0.2 KB), a
                             Hessian's rows (its density: ~55 B a bin), 32 B
                             an interpolation point

plus a heartbeat (0 B) each way every few seconds. Rank 0 spends `service`
seconds per unit (measured: manifest ranks[0].serve_seconds over the units
the other ranks ran; tools/bench/mpi_scaling.sh prints it) plus the time to
write the result's bytes; a message takes `latency` plus its size over
`bandwidth` to arrive. The analyses start once every training run has ended
(they need the minimizers).

The study is pipelines/landscape.yaml's shape (6 runs of 10 epochs on
60000 examples; interpolation 31 points; sharpness 6 runs x 2 eps x 2
variants; surfaces 2 x 51x51, 6 x 51, a 51x51 plane on 10000 examples;
Hessian top-3 + bottom-1, 30 probes, density, blocks, on 10000), its costs
counted in forward passes of one example (FP; a training step or a gradient
is 3 FP, a Hessian-vector product 6) and turned into seconds with a
measured time per FP (--fp-seconds: tools/bench/mpi_scaling.sh's training,
1r/1 seconds less about 1.5 s of set-up over its 4 x 6 x 65000 FP, times
670k / 269k parameters for landscape's MLP; a surface point is counted as a
whole forward, an upper bound: the shared first layer makes it cheaper). The units are those of the
code: training runs; interpolation points in eighths; one maximization per
run, eps and variant; surface rows (2-D) and eighths (1-D); one Hessian per
run. `--study surfaces` is the other shape: a sweep of 16 short runs and a
101 x 101 surface around each, many short units, where rank 0 shows.

    tools/bench/mpi_model.py [--fp-seconds S] [--service S] [--latency S]
                             [--bandwidth B] [--write B] [--shared-out no]
                             [--study landscape|surfaces] [--group G]
"""
import argparse
import heapq

N_PARAMS = 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10   # landscape's MLP
CKPT = 4 * N_PARAMS + 1024                                       # one checkpoint (B)


class Unit:
    __slots__ = ("fp", "result", "kind")

    def __init__(self, fp, result, kind):
        self.fp, self.result, self.kind = fp, result, kind


def landscape_units():
    """(training units, analysis units) of pipelines/landscape.yaml."""
    n_train, n_test, sub = 60000, 10000, 10000
    epochs, runs = 10, 6
    # A run: 3 FP an example a step, a train and a test evaluation an epoch;
    # its directory: init and final checkpoints, metrics, run.json.
    train = [Unit(epochs * (3 * n_train + n_train + n_test), 2 * CKPT + 8192, "run")] * runs
    ana = []
    # Interpolation: 31 points (train + test loss each) in eighths of 4.
    chunk = (31 + 7) // 8
    ana += [Unit(p * (n_train + n_test), 32 * p, "interpolate")
            for p in [chunk] * (31 // chunk) + ([31 % chunk] if 31 % chunk else [])]
    # L-BFGS-B: ~10 iterations x ~1.3 evaluations of f and its gradient.
    ana += [Unit(int(10 * 1.3 * 3 * n_train), 250, "sharpness")] * (6 * 2 * 2)
    ana += [Unit(51 * sub, 16 * 51, "surface row")] * (2 * 51)     # two 51 x 51, a row a unit
    line = (51 + 7) // 8                                            # six lines, an eighth a unit
    ana += [Unit(line * sub, 16 * line, "surface 1-D")] * (6 * 8)
    ana += [Unit(51 * sub, 16 * 51, "plane row")] * 51             # the plane
    # Hessian: Lanczos 100 + 30 probes + 2 x 50 quadrature + 6 blocks x 20,
    # products of 6 FP; its rows: 10000 density bins of ~55 B.
    ana += [Unit((100 + 30 + 100 + 6 * 20) * 6 * sub, 10000 * 55 + 20000, "hessian")] * runs
    return train, ana


def surfaces_units():
    """A sweep: 16 runs of 2 epochs, a 101 x 101 surface on 10000 examples
    around each minimizer, a row a unit."""
    n_train, n_test, sub, runs = 60000, 10000, 10000, 16
    train = [Unit(2 * (3 * n_train + n_train + n_test), 2 * CKPT + 8192, "run")] * runs
    ana = [Unit(101 * sub, 16 * 101, "surface row")] * (101 * runs)
    return train, ana


def simulate(ranks, train, ana, a, n_runs):
    """Makespan (s) and rank 0's busy fraction, event by event: rank 0
    takes the RESULTs in the order they arrive, one at a time (service +
    writing the result's bytes), and answers each with the rank's next
    UNIT, which arrives a message time later. Rank 0 computes units too
    among up to 16 ranks (scheduler.c), serving the others between its
    evaluations (modelled as no delay)."""
    works0 = ranks <= 16
    workers = list(range(0 if works0 else 1, ranks))
    service = a.service / max(a.group, 1)
    view = n_runs * 2 * CKPT if a.shared_out == "no" else 64 * n_runs
    t, rank0_free, busy0 = 0.0, 0.0, 0.0
    for phase, first_analysis in ((train, False), (ana, True)):
        todo = list(reversed(phase))
        # (when its message reaches rank 0, rank, result bytes, needs the view)
        events = [(t, w, 0, first_analysis) for w in workers]
        heapq.heapify(events)
        end = t
        while events:
            arrive, w, res, needs_view = heapq.heappop(events)
            remote = w != 0
            start = max(arrive, rank0_free)
            cost = (service + res / a.write) if res else 0.0
            u = todo.pop() if todo else None
            # Hierarchical: a node leader takes the runs once for its group.
            out = 48 + (view / max(a.group, 1) if needs_view else 0)
            if u:
                cost += service + out / a.bandwidth * remote
            rank0_free = start + cost
            busy0 += cost
            end = max(end, rank0_free)
            if u:
                done = rank0_free + (a.latency + out / a.bandwidth) * remote + u.fp * a.fp_seconds
                back = done + (a.latency + u.result / a.bandwidth) * remote
                heapq.heappush(events, (back, w, u.result, False))
        t = end
    return t, busy0 / t if t else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fp-seconds", type=float, default=1.0e-6,
                    help="seconds per example-forward on one rank's device (measured)")
    ap.add_argument("--service", type=float, default=1e-4,
                    help="rank 0's seconds per unit (measured: serve_seconds / units)")
    ap.add_argument("--latency", type=float, default=3e-5, help="seconds per message")
    ap.add_argument("--bandwidth", type=float, default=1e9, help="bytes/s between two ranks")
    ap.add_argument("--write", type=float, default=5e8, help="bytes/s rank 0 writes to OUT")
    ap.add_argument("--shared-out", choices=("yes", "no"), default="yes",
                    help="no: each rank's first analysis unit carries every run's checkpoints")
    ap.add_argument("--study", choices=("landscape", "surfaces"), default="landscape")
    ap.add_argument("--group", type=int, default=1,
                    help="hierarchical scheduling (not built: what the model says it would "
                         "buy): leaders of GROUP ranks batch their ranks' results and take the "
                         "finished runs once for them, so rank 0 pays service / GROUP a unit "
                         "and sends the checkpoints once per group")
    a = ap.parse_args()
    train, ana = landscape_units() if a.study == "landscape" else surfaces_units()
    n_runs = len(train)
    print(f"per FP {a.fp_seconds:.2e} s, rank 0 {a.service * 1e3:.3f} ms a unit"
          f"{f' / {a.group} (hierarchical)' if a.group > 1 else ''}, latency "
          f"{a.latency * 1e6:.0f} us, {a.bandwidth / 1e9:.1f} GB/s, OUT shared: {a.shared_out}")

    # Messages and sizes per kind of unit.
    kinds = {}
    for u in train + ana:
        k = kinds.setdefault(u.kind, [0, 0.0, 0])
        k[0] += 1
        k[1] += u.fp * a.fp_seconds
        k[2] = u.result
    print(f"\n{'unit':>12} {'count':>6} {'seconds':>9} {'messages':>9} {'UNIT B':>8} "
          f"{'RESULT B':>10} {'rank 0 ms':>10}")
    for name, (n, sec, res) in kinds.items():
        print(f"{name:>12} {n:>6} {sec / n:>9.2f} {2:>9} {48:>8} {res:>10} "
              f"{1e3 * (a.service + res / a.write):>10.3f}")
    view = n_runs * 2 * CKPT if a.shared_out == "no" else 64 * n_runs
    print(f"a rank's first analysis unit also carries {view / 1e6:.2f} MB (the finished runs"
          f"{', their checkpoints' if a.shared_out == 'no' else ''})")

    one, _ = simulate(1, train, ana, argparse.Namespace(**{**vars(a), "service": 0.0}), n_runs)
    longest_train = max(u.fp for u in train) * a.fp_seconds
    longest_ana = max(u.fp for u in ana) * a.fp_seconds
    bound = longest_train + longest_ana
    print(f"\n{len(train)} training + {len(ana)} analysis units; one rank {one / 3600:.2f} h; "
          f"no number of ranks beats the longest run + the longest analysis unit "
          f"= {bound / 60:.1f} min (speed-up {one / bound:.0f})")
    print(f"{'ranks':>6} {'minutes':>9} {'speed-up':>9} {'efficiency':>10} {'rank 0 busy':>11}")
    for n in (2, 8, 16, 64, 128, 256, 512, 1024):
        ms, b0 = simulate(n, train, ana, a, n_runs)
        print(f"{n:>6} {ms / 60:>9.2f} {one / ms:>9.1f} {one / ms / n:>10.2f} "
              f"{100 * b0:>10.1f}%")
    # Where rank 0 alone stops scaling: it serves 1/service units a second.
    mean = sum(u.fp for u in ana) * a.fp_seconds / len(ana)
    per_unit = a.service / max(a.group, 1) * 2 + sum(u.result for u in ana) / len(ana) / a.write
    print(f"\nrank 0 saturates when ranks x its time per unit > a unit's seconds: analysis "
          f"units of {mean:.2f} s on average keep {mean / per_unit:.0f} ranks busy before "
          f"rank 0 is the limit")


if __name__ == "__main__":
    main()
