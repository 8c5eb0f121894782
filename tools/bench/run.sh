#!/usr/bin/env bash
# Training throughput of batchscope beside the PyTorch CPU reference, side by
# side in one run: the MLP of batch-size-study.yaml at batch 32 and 256 and
# the CNN of cnn.yaml at 256. Prints each pair and the ratio
# batchscope/pytorch (> 1: batchscope is faster).
#
#   tools/bench/run.sh [BUILD_DIR] [--device SEL]
# PyTorch runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (these
# machines set them and they halve OpenBLAS' speed), on as many threads as
# there are cores.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
shift || true
threads=$(nproc)
run_pair() {
  local pipeline=$1 batch=$2 steps=$3
  local ours theirs
  ours=$("$build/bench/bench_train" "$here/pipelines/$pipeline" "$batch" "$steps" "$@" | tail -1)
  theirs=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 \
           "$here/tools/bench/torch_train.py" "$here/pipelines/$pipeline" "$batch" "$steps" \
           --threads "$threads" | tail -1)
  echo "$ours"
  echo "$theirs"
  local a b
  a=$(sed -n 's/.*samples\/s=\([0-9.]*\).*/\1/p' <<<"$ours")
  b=$(sed -n 's/.*samples\/s=\([0-9.]*\).*/\1/p' <<<"$theirs")
  awk -v a="$a" -v b="$b" -v p="$pipeline" -v B="$batch" \
      'BEGIN { printf "ratio %s bs=%s batchscope/pytorch = %.2f\n\n", p, B, a / b }'
}
run_pair batch-size-study.yaml 32 0 "$@"
run_pair batch-size-study.yaml 256 0 "$@"
run_pair cnn.yaml 256 60 "$@"
