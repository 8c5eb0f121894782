"""PyTorch at its best thread setting, for the references in tools/bench.

Debian's python3-torch runs its own intra-op threads (OpenMP,
torch.set_num_threads) and its GEMMs in the system BLAS (OpenBLAS), which
starts threads of its own: the two multiply, and 2 x 2 on 2 cores is 4-6x
slower than the best setting (shared/notes/cpu-performance.md). A reference
therefore tries torch threads x OpenBLAS threads, 1 or N each, and keeps the
fastest. OpenBLAS's count is changed in this process through its own
openblas_set_num_threads (what threadpoolctl does), found in the library
torch loaded.
"""
import ctypes
import os


def _openblas():
    """The OpenBLAS torch loaded (None when its BLAS is not OpenBLAS)."""
    paths = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            part = line.split()
            if len(part) >= 6 and "openblas" in os.path.basename(part[-1]):
                paths.add(part[-1])
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        if hasattr(lib, "openblas_set_num_threads"):
            return lib
    return None


def settings(cores=None):
    """(torch threads, OpenBLAS threads) pairs worth trying: 1 or N each."""
    n = cores or os.cpu_count() or 1
    counts = sorted({1, n})
    return [(t, b) for t in counts for b in counts]


def apply(torch, setting):
    torch.set_num_threads(setting[0])
    lib = _openblas()
    if lib is not None:
        lib.openblas_set_num_threads(setting[1])
    elif setting[1] != 1:
        raise SystemExit("torch_threads: torch's BLAS is not OpenBLAS; install "
                         "libopenblas0-pthread (tools/setup.sh --bench)")


def best(torch, measure, label, only=None, probe=None):
    """Times every setting, prints each try, and returns (rate, details,
    setting) of the fastest. measure() returns a rate (higher is better)
    and a dict of details. probe(), when given, is a shorter measure() used
    for the tries; the winner is then measured in full too, and the better
    of its two rates kept. `only` pins one setting."""
    tries = [only] if only else settings()
    if _openblas() is None:
        tries = [s for s in tries if s[1] == 1]
    winner = None
    for s in tries:
        apply(torch, s)
        rate, details = (probe or measure)()
        print(f"  try {label} torch_threads={s[0]} openblas_threads={s[1]}: {rate:.4g}",
              flush=True)
        if winner is None or rate > winner[0]:
            winner = (rate, details, s)
    if probe and len(tries) > 1:
        # On a shared machine one window can be slowed by others' work: the
        # reference keeps the better of its try and its full run.
        apply(torch, winner[2])
        rate, details = measure()
        print(f"  full {label} torch_threads={winner[2][0]} openblas_threads={winner[2][1]}: "
              f"{rate:.4g}", flush=True)
        if rate > winner[0]:
            winner = (rate, details, winner[2])
    return winner
