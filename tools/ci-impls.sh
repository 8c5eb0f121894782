#!/usr/bin/env bash
# The same experiments on any OpenCL implementation: CI's checks beyond the
# suite on PoCL. Installs nothing (tools/setup.sh installs mesa-opencl-icd and
# oclgrind) and needs a built tree with its tests (build/, or $BUILD_DIR).
#
#   1. the whole test suite again on Mesa's rusticl (llvmpipe): the suite
#      opens its device from BATCHSCOPE_TEST_DEVICE, and OCL_ICD_VENDORS
#      names a directory holding only rusticl's .icd, so the system's ICD
#      set is left as it is;
#   2. a small study (every layer type, observer and analysis) on PoCL and
#      on rusticl, whose result files must agree to 1e-5 relative;
#   3. a micro study under Oclgrind with OCLGRIND_CHECK_API=1 and
#      OCLGRIND_DATA_RACES=1 (and a work-group limit of 128): any error it
#      reports fails.
# (2 and 3 are tests/test_impls.c.) Exits nonzero when any of them fails.
#
#   tools/ci-impls.sh [-j N]      N: parallel tests in step 1 (default: nproc)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
jobs=$(nproc)
while (($#)); do
  case "$1" in
    -j) jobs=$2; shift 2 ;;
    -j*) jobs=${1#-j}; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "ci-impls: unknown option $1" >&2; exit 2 ;;
  esac
done

vendors=/etc/OpenCL/vendors
oclgrind_icd=/usr/lib/oclgrind/liboclgrind-rt-icd.so
fail=0
for need in "$build/batchscope" "$build/tests/test_impls" "$vendors/pocl.icd" \
            "$vendors/rusticl.icd" "$oclgrind_icd"; do
  if [ ! -e "$need" ]; then
    echo "ci-impls: $need missing (tools/setup.sh installs the packages and builds)" >&2
    fail=1
  fi
done
((fail == 0)) || exit 2

icd=$(mktemp -d)
trap 'rm -rf "$icd"' EXIT
ln -s "$vendors/rusticl.icd" "$icd/rusticl.icd"
# What ctest gives each test: the shared kernel cache, no extra plugins.
export BATCHSCOPE_CACHE_DIR=$build/kernel-cache BATCHSCOPE_PLUGIN_PATH=

step() { printf '\nci-impls: %s\n' "$*"; }
elapsed() { printf 'ci-impls: %s took %dm%02ds\n' "$1" $(($2 / 60)) $(($2 % 60)); }

step "1/3 the test suite on rusticl (llvmpipe)"
t=$SECONDS
OCL_ICD_VENDORS=$icd RUSTICL_ENABLE=llvmpipe BATCHSCOPE_TEST_DEVICE=rusticl \
  ctest --test-dir "$build" --output-on-failure -j"$jobs" -E '^test_impls$' || fail=1
elapsed "the suite on rusticl" $((SECONDS - t))

step "2/3 the same study on PoCL and rusticl, to 1e-5 relative"
t=$SECONDS
"$build/tests/test_impls" test_pocl_vs_rusticl || fail=1
elapsed "PoCL vs rusticl" $((SECONDS - t))

step "3/3 a micro study under Oclgrind (API and data-race checks)"
t=$SECONDS
BATCHSCOPE_TEST_OCLGRIND=1 "$build/tests/test_impls" test_micro_under_oclgrind || fail=1
elapsed "the Oclgrind check" $((SECONDS - t))

if ((fail)); then
  echo "ci-impls: FAILED" >&2
  exit 1
fi
echo "ci-impls: all passed in $((SECONDS / 60))m$((SECONDS % 60))s"
