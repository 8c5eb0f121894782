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
# fastest; its line names the winner. For the PyTorch commands alone,
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

train_pair() {
  local pipeline=$1 batch=$2 steps=$3 ours theirs
  ours=$("$build/bench/bench_train" "$here/pipelines/$pipeline" "$batch" "$steps" \
         "${ours_opts[@]}" | tail -1)
  theirs=$(torch "$here/tools/bench/torch_train.py" "$here/pipelines/$pipeline" "$batch" \
           "$steps")
  echo "$ours"
  echo "$theirs"
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
echo "$ours"
echo "$theirs"
theirs=$(grep -v '^  ' <<<"$theirs")
ratio "eval (full training set)" "$(field evals/s "$(head -1 <<<"$ours")")" \
      "$(field evals/s "$(head -1 <<<"$theirs")")"
# s/point: lower is better, so the ratio is theirs/ours.
ratio "surface point (10k examples)" "$(field s/point "$(tail -1 <<<"$theirs")")" \
      "$(field s/point "$(tail -1 <<<"$ours")")"
