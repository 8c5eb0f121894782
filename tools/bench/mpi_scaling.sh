#!/usr/bin/env bash
# Scale-out speed-up on independent units: one study run as one rank and as
# two ranks of mpirun on this machine, each rank's PoCL (POCL_MAX_PTHREAD_COUNT)
# and host GEMMs (BATCHSCOPE_BLAS_THREADS) limited to its share of the cores.
#
#   tools/bench/mpi_scaling.sh [BUILD_DIR] [REPEATS] [PIPELINE...]
#
# Default pipelines: tools/bench/mpi_train.yaml (four training runs of equal
# cost) and tools/bench/mpi_surface.yaml (one 2-D surface, its grid in
# units). For each it times, side by side in one go (the best of REPEATS,
# default 2, since machines are shared; the configurations in turn):
#   1r/all  one rank with every core           (the machine as one process)
#   1r/1    one rank with one core's share     (the work of one rank)
#   2r/half two ranks, each with half the cores
# and prints speed-up = 1r/all / 2r/half (what scale-out buys on this
# machine) and efficiency = 1r/1 / (2 x 2r/half) (per rank, against its own
# share: 1.0 is perfect). Times are the manifest's seconds of the study
# (setup, training, analyses), from OUT/manifest.json. Also the 2-rank
# run's utilization, the ranks' busy seconds over ranks x seconds (from the
# manifest's "ranks"): what the scheduler made of the ranks it had, which
# holds even where other jobs share the cores and the speed-up cannot show;
# and rank 0's cost per unit another rank ran (its serve_seconds and the
# result bytes it took in, from the manifest): tools/bench/mpi_model.py's
# --service and message sizes.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
repeats=${2:-2}
shift 2 || shift $# || true
pipelines=("$@")
if ((${#pipelines[@]} == 0)); then
  pipelines=("$here/tools/bench/mpi_train.yaml" "$here/tools/bench/mpi_surface.yaml")
fi
cores=$(nproc)
half=$((cores / 2 > 0 ? cores / 2 : 1))
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export BATCHSCOPE_CACHE_DIR=${BATCHSCOPE_CACHE_DIR:-$build/kernel-cache}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

seconds_of() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$1/manifest.json"
}

utilization_of() {
  python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))
r = m.get("ranks", [])
u = sum(x.get("busy_seconds", 0) for x in r) / (len(r) * m["seconds"]) if r else 1
# Rank 0 per unit another rank ran: its serving seconds and the result bytes.
far = sum(x.get("units", 0) for x in r[1:])
s0 = r[0].get("serve_seconds", 0) if r else 0
b0 = r[0].get("result_bytes", 0) if r else 0
print("%.2f %.3f %.0f %d" % (u, 1e3 * s0 / far if far else 0, b0 / far if far else 0, far))' \
    "$1/manifest.json"
}

# run_study PIPELINE RANKS THREADS: one run; its manifest seconds, and the
# best so far of this configuration kept in $tmp/best-RANKS-THREADS (with
# the 2-rank run's utilization and rank 0's cost in $tmp/util-RANKS).
run_study() {
  local pipeline=$1 ranks=$2 threads=$3 out="$tmp/out-$2-$3"
  rm -rf "$out"
  # Ranks are not bound to cores: each PoCL's threads stay within its share.
  mpirun --oversubscribe --bind-to none -n "$ranks" \
    -x POCL_MAX_PTHREAD_COUNT="$threads" -x BATCHSCOPE_BLAS_THREADS="$threads" \
    -x BATCHSCOPE_CACHE_DIR \
    "$build/batchscope" run "$pipeline" --out "$out" --quiet >"$tmp/log" 2>&1 ||
    { cat "$tmp/log" >&2; exit 1; }
  local s best=
  s=$(seconds_of "$out")
  [[ -f "$tmp/best-$ranks-$threads" ]] && best=$(cat "$tmp/best-$ranks-$threads")
  if awk -v a="$best" -v b="$s" 'BEGIN { exit !(a == "" || b < a) }'; then
    echo "$s" >"$tmp/best-$ranks-$threads"
    utilization_of "$out" >"$tmp/util-$ranks"
  fi
}

# Kernels built once, outside the timings.
"$build/batchscope" run "${pipelines[0]}" --out "$tmp/warm" --quiet \
  --set training.epochs=1 >/dev/null 2>&1 || true

echo "machine: $cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
for p in "${pipelines[@]}"; do
  rm -f "$tmp"/best-*
  # The three configurations in turn, REPEATS times: a burst of other jobs
  # then slows one repeat of each rather than every repeat of one.
  for ((r = 0; r < repeats; r++)); do
    run_study "$p" 1 "$cores"
    run_study "$p" 1 "$half"
    run_study "$p" 2 "$half"
  done
  all=$(cat "$tmp/best-1-$cores") one=$(cat "$tmp/best-1-$half") two=$(cat "$tmp/best-2-$half")
  read -r u serve bytes far <"$tmp/util-2"
  awk -v p="$(basename "$p")" -v a="$all" -v o="$one" -v t="$two" -v c="$cores" -v h="$half" \
    -v u="$u" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
    'BEGIN { printf "%s: 1r/all(%d) %.1f s  1r/1(%d) %.1f s  2r/half(%d) %.1f s  " \
                    "speed-up %.2f  efficiency %.2f  2-rank utilization %.2f  (load %s)\n",
                    p, c, a, h, o, h, t, a / t, o / (2 * t), u, l }'
  echo "  rank 0 per unit rank 1 ran ($far units): $serve ms serving, $bytes result bytes"
done

# Rank 0 saturated: 400 units of next to no work on 2 ranks (mpi_overhead.yaml).
out="$tmp/overhead"
mpirun --oversubscribe --bind-to none -n 2 -x POCL_MAX_PTHREAD_COUNT="$half" \
  -x BATCHSCOPE_BLAS_THREADS="$half" -x BATCHSCOPE_CACHE_DIR \
  "$build/batchscope" run "$here/tools/bench/mpi_overhead.yaml" --out "$out" --quiet \
  >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
read -r u serve bytes far < <(utilization_of "$out")
echo "overhead (400 empty surface rows, 2 ranks): $far units on rank 1, rank 0 $serve ms" \
  "serving each, $bytes result bytes each; study $(seconds_of "$out") s"
