#!/usr/bin/env python3
"""The scaling model of `mpirun -n N batchscope run` (README, Scale-out),
simulated for many ranks.

The scheduler (runtime/study/scheduler.c) is a single queue at rank 0:
ranks ask, rank 0 answers each RESULT by writing it (atomically) and
handing out the next unit, one message at a time. Per unit that is two
messages (UNIT ~50 B, RESULT: the unit's bytes) and `service` seconds of
rank 0's time; a message takes `latency` seconds to arrive. Units of the
analysis phase start only when every training run has ended.

The study is pipelines/landscape.yaml's shape (6 runs of 10 epochs on
60000 examples; interpolation; sharpness 6 runs x 2 eps x 2 variants;
surfaces 2 x 51x51, 6 x 51, a 51x51 plane on 10000 examples; Hessian top-3
and 20 trace probes for 6 runs on 10000), its costs counted in forward
passes of one example (FP; a training step or a gradient is 3 FP, a
Hessian-vector product 6) and turned into seconds with a measured time per
FP (--fp-seconds, from tools/bench/mpi_scaling.sh's surface: its seconds /
(961 points x 8000 examples, less its run)).

Two granularities: the analyses as the host runs them today (surfaces in
rows; sharpness, Hessian and interpolation each one unit) and with the
finer units the unit ops allow (one maximization per run/eps/variant, one
Hessian per run, interpolation points).

    tools/bench/mpi_model.py [--fp-seconds S] [--service S] [--latency S]
                             [--study landscape|surfaces] [--group G]
"""
import argparse
import heapq


def landscape_units(fine):
    """(training units, analysis units), each a (cost in FP, whole) pair in
    study order; whole: an analysis run as one unit."""
    n_train, n_test, sub = 60000, 10000, 10000
    epochs, runs = 10, 6
    train = [(epochs * (3 * n_train + n_train + n_test), True)] * runs
    ana = []
    ana += [(n_train + n_test, False)] * 31 if fine else [(31 * (n_train + n_test), True)]
    # L-BFGS-B: ~10 iterations x ~1.3 evaluations of f and its gradient.
    one_max = int(10 * 1.3 * 3 * n_train)
    ana += [(one_max, False)] * 24 if fine else [(24 * one_max, True)]
    ana += [(51 * sub, False)] * (2 * 51)            # two 51 x 51 surfaces, a row a unit
    ana += [((51 + 7) // 8 * sub, False)] * (6 * 8)  # six lines, an eighth a unit
    ana += [(51 * sub, False)] * 51                  # the plane
    one_hessian = (3 * 100 + 20) * 6 * sub
    ana += [(one_hessian, False)] * 6 if fine else [(6 * one_hessian, True)]
    return train, ana


def surface_units(fine):
    """A surface sweep (the other shape of study): 16 runs of 2 epochs, a
    101 x 101 surface on 10000 examples around each minimizer, a row a
    unit -- many short units, where rank 0's own cost shows."""
    n_train, n_test, sub, runs = 60000, 10000, 10000, 16
    train = [(2 * (3 * n_train + n_train + n_test), True)] * runs
    ana = [(101 * sub, False)] * (101 * runs)
    return train, ana


def hand_out_order(units):
    """The scheduler's order (next_todo): whole analyses first, then parts,
    each in study order."""
    return [c for c, whole in units if whole] + [c for c, whole in units if not whole]


def simulate(ranks, train, ana, service, latency):
    """Makespan (s) and rank 0's busy fraction of the single-queue scheduler,
    event by event: a rank asks (its RESULT), rank 0 serves one message at a
    time, the next unit reaches the rank a latency later. Rank 0 works too
    among up to 16 ranks (scheduler.c), serving the others between its steps
    (modelled as no delay)."""
    works0 = ranks <= 16
    workers = list(range(0 if works0 else 1, ranks))
    t, rank0_free, busy0 = 0.0, 0.0, 0.0
    for phase in (train, ana):
        todo = list(reversed(hand_out_order(phase)))
        events = [(t, w) for w in workers]   # (when the rank asks, rank)
        heapq.heapify(events)
        end = t
        while todo:
            ask, w = heapq.heappop(events)
            remote = latency if w else 0.0
            start = max(ask + remote, rank0_free)
            rank0_free = start + service
            busy0 += service
            done = rank0_free + remote + todo.pop()
            end = max(end, done)
            heapq.heappush(events, (done, w))
        # The phase ends once its last result is written.
        t = max(end + latency, rank0_free) + service
    return t, busy0 / t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fp-seconds", type=float, default=1.0e-6,
                    help="seconds per example-forward on one rank's device")
    ap.add_argument("--service", type=float, default=2e-4,
                    help="rank 0's seconds per unit (receive, write, hand out)")
    ap.add_argument("--latency", type=float, default=3e-5, help="seconds per message")
    ap.add_argument("--study", choices=("landscape", "surfaces"), default="landscape",
                    help="landscape.yaml's shape, or a sweep of 16 runs' 101x101 surfaces")
    ap.add_argument("--group", type=int, default=1,
                    help="hierarchical scheduling: node leaders of GROUP ranks batch their "
                         "ranks' results, so rank 0 pays service / GROUP a unit")
    a = ap.parse_args()
    print(f"per FP {a.fp_seconds:.2e} s, rank 0 {a.service * 1e3:.2f} ms a unit, "
          f"latency {a.latency * 1e6:.0f} us")
    service = a.service / max(a.group, 1)
    for fine in (False, True) if a.study == "landscape" else (True,):
        train, ana = landscape_units(fine) if a.study == "landscape" else surface_units(fine)
        train_s = [(c * a.fp_seconds, w) for c, w in train]
        ana_s = [(c * a.fp_seconds, w) for c, w in ana]
        one, _ = simulate(1, train_s, ana_s, 0.0, 0.0)
        largest = max(c for c, _ in train_s + ana_s)
        label = ("surface rows" if a.study == "surfaces" else
                 "finer units (unit ops)" if fine else "units as run today")
        print(f"\n{label}: "
              f"{len(train)} training + {len(ana)} analysis units, one rank {one / 3600:.1f} h, "
              f"largest unit {largest / 60:.0f} min")
        print(f"{'ranks':>6} {'minutes':>9} {'speed-up':>9} {'efficiency':>10} {'rank 0 busy':>11}")
        for n in (2, 8, 64, 128, 256, 512, 1024):
            ms, b0 = simulate(n, train_s, ana_s, service, a.latency)
            print(f"{n:>6} {ms / 60:>9.2f} {one / ms:>9.1f} {one / ms / n:>10.2f} "
                  f"{100 * b0:>10.1f}%")
    # Where rank 0 alone stops scaling: it serves 1/service units a second.
    row = 51 * 10000 * a.fp_seconds
    print(f"\nrank 0 saturates when ranks / unit seconds > 1 / service: a 51-point surface "
          f"row ({row:.1f} s here) keeps {row / service:.0f} ranks busy")


if __name__ == "__main__":
    main()
