#!/usr/bin/env bash
# batchscope beside the PyTorch CPU reference, side by side in one run:
# training throughput of the MLP of batch-size-study.yaml at batch 32 and
# 256 and of the CNN of cnn.yaml at 256, then the evaluator (full training
# set) and one loss-surface point on 10k examples of the MLP. Prints each
# pair and the ratio batchscope/pytorch (> 1: batchscope is faster).
#
#   tools/bench/run.sh [BUILD_DIR] [--device SEL] [--gemm auto|clblast|host]
#
# PyTorch runs at its best thread setting: torch_threads.py times every pair
# of torch intra-op threads and OpenBLAS threads (1 or N each) and keeps the
# fastest; its line names the winner. On a shared machine one window can be
# slowed by others' work, so each side keeps the best of two windows:
# PyTorch the better of its try and its full run, batchscope the better of a
# run before and a run after PyTorch's. For the PyTorch commands alone,
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset (some machines set them,
# and they cost OpenBLAS up to half its speed); batchscope runs in the
# environment as it is. Needs tools/setup.sh --bench (python3-torch).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$here/build
if [[ $# -gt 0 && $1 != --* ]]; then
  build=$1
  shift
fi
ours_opts=("$@")
torch() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "$@"
}
field() { sed -n "s|.*$1=\([0-9.]*\).*|\1|p" <<<"$2" | tail -1; }
ratio() {  # label, ours, theirs (higher is better)
  awk -v a="$2" -v b="$3" -v l="$1" 'BEGIN { printf "ratio %s batchscope/pytorch = %.2f\n\n", l, a / b }'
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# pytorch: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for its commands" \
     "(were: '${OPENBLAS_CORETYPE-}' '${OPENBLAS_L2_SIZE-}')"

# The line of the two with the larger value of field $1.
better() {
  local a b
  a=$(field "$1" "$2")
  b=$(field "$1" "$3")
  if awk -v a="$a" -v b="$b" 'BEGIN { exit !(a >= b) }'; then echo "$2"; else echo "$3"; fi
}
train_pair() {
  local pipeline=$1 batch=$2 steps=$3 ours ours2 theirs
  ours=$("$build/bench/bench_train" "$here/pipelines/$pipeline" "$batch" "$steps" \
         "${ours_opts[@]}" | tail -1)
  theirs=$(torch "$here/tools/bench/torch_train.py" "$here/pipelines/$pipeline" "$batch" \
           "$steps")
  ours2=$("$build/bench/bench_train" "$here/pipelines/$pipeline" "$batch" "$steps" \
          "${ours_opts[@]}" | tail -1)
  echo "$ours"
  echo "$ours2"
  echo "$theirs"
  ours=$(better samples/s "$ours" "$ours2")
  theirs=$(tail -1 <<<"$theirs")
  ratio "train $pipeline bs=$batch" "$(field samples/s "$ours")" "$(field samples/s "$theirs")"
}
train_pair batch-size-study.yaml 32 0
train_pair batch-size-study.yaml 256 0
train_pair cnn.yaml 256 60

ours=$("$build/bench/bench_eval" "$here/pipelines/batch-size-study.yaml" --reps 3 \
       "${ours_opts[@]}")
theirs=$(torch "$here/tools/bench/torch_eval.py" "$here/pipelines/batch-size-study.yaml" \
         --reps 3)
ours2=$("$build/bench/bench_eval" "$here/pipelines/batch-size-study.yaml" --reps 3 \
        "${ours_opts[@]}")
echo "$ours"
echo "$ours2"
echo "$theirs"
theirs=$(grep -v '^  ' <<<"$theirs")
evals=$(better evals/s "$(head -1 <<<"$ours")" "$(head -1 <<<"$ours2")")
# s/point: lower is better (the better line has the larger points per second).
a=$(field s/point "$(tail -1 <<<"$ours")")
b=$(field s/point "$(tail -1 <<<"$ours2")")
point=$(awk -v a="$a" -v b="$b" 'BEGIN { print (a <= b ? a : b) }')
ratio "eval (full training set)" "$(field evals/s "$evals")" \
      "$(field evals/s "$(head -1 <<<"$theirs")")"
# s/point: lower is better, so the ratio is theirs/ours.
ratio "surface point (10k examples)" "$(field s/point "$(tail -1 <<<"$theirs")")" "$point"
