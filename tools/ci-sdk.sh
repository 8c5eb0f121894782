#!/usr/bin/env bash
# CI check of the installed SDK: a plugin can be written, built, tested and
# used out of tree with nothing but what `cmake --install` puts in a prefix.
#
#   tools/ci-sdk.sh [BUILD_DIR]      (default: build/ of this checkout)
#
#  1. builds BUILD_DIR (configuring it if needed) and installs it into a
#     temporary prefix P; checks the layout, that every installed header is
#     reachable from batchscope/batchscope.h, and the man page;
#  2. copies P/share/batchscope/template out to a temporary directory, builds
#     it with find_package(batchscope) (CMAKE_PREFIX_PATH=P) and runs its
#     ctest (the layer's gradient check), then builds it again with
#     pkg-config (PKG_CONFIG_PATH=P/lib/pkgconfig) through its Makefile and
#     runs `make check`;
#  3. with LD_LIBRARY_PATH and BATCHSCOPE_PLUGIN_PATH unset, runs
#     P/bin/batchscope plugins (the built-in plugins must come from P) and
#     P/bin/batchscope run on the template's study.yaml, which loads the
#     plugin through its `plugins:` key, and checks the files its layer,
#     observer and analysis lead to.
#
# Kernels come from BUILD_DIR/kernel-cache (BATCHSCOPE_CACHE_DIR), so a warm
# cache keeps it to about a minute. Exits nonzero, naming the step, on the
# first failure; the temporary directories are removed either way (set
# KEEP=1 to keep them).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" 2>/dev/null && pwd || echo "${1:-$here/build}")
jobs=$(nproc 2>/dev/null || echo 2)

# Resolved (pwd -P): paths the library reports come from realpath().
tmp=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/batchscope-ci-sdk.XXXXXX")" && pwd -P)
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then
    echo "ci-sdk: kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

step() { echo "ci-sdk: $*"; }
fail() {
  echo "ci-sdk: FAILED: $*" >&2
  exit 1
}
need_file() {
  for f in "$@"; do
    [ -e "$f" ] || fail "missing ${f#"$tmp"/}"
  done
}

# The installed tree must stand alone: nothing may reach the build tree or
# an earlier install through the environment.
unset LD_LIBRARY_PATH BATCHSCOPE_PLUGIN_PATH BATCHSCOPE_CL_DIR
export BATCHSCOPE_CACHE_DIR="$build/kernel-cache"
mkdir -p "$BATCHSCOPE_CACHE_DIR"

# ---- 1. build and install
step "building $build"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j"$jobs" >/dev/null || fail "build of $build"

prefix=$tmp/prefix
step "installing into $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null || fail "cmake --install"

libdir=$(dirname "$(find "$prefix" -name 'libbatchscope.so' | head -n 1)")
[ -d "$libdir" ] || fail "no libbatchscope.so under the prefix"
need_file "$prefix/bin/batchscope" \
  "$libdir/batchscope/plugins/bsc_layers.so" \
  "$libdir/batchscope/plugins/bsc_observers.so" \
  "$libdir/batchscope/plugins/bsc_analyses.so" \
  "$libdir/pkgconfig/batchscope.pc" \
  "$libdir/cmake/batchscope/batchscopeConfig.cmake" \
  "$libdir/cmake/batchscope/BatchscopeEmbedCL.cmake" \
  "$libdir/cmake/batchscope/BatchscopeAddPlugin.cmake" \
  "$prefix/include/batchscope/batchscope.h" \
  "$prefix/include/batchscope/plugin.h" \
  "$prefix/include/batchscope/gradcheck.h" \
  "$prefix/share/batchscope/pipelines/quickstart.yaml" \
  "$prefix/share/batchscope/template/CMakeLists.txt" \
  "$prefix/share/batchscope/template/study.yaml" \
  "$prefix/share/man/man1/batchscope.1"

step "every installed header is reachable from batchscope/batchscope.h"
reached=$(echo '#include "batchscope/batchscope.h"' |
  cc -std=c11 -M -I"$prefix/include" -x c - | tr ' \\' '\n\n' | grep -o '[^/]*\.h$' | sort -u)
for h in "$prefix"/include/batchscope/*.h; do
  grep -qx "$(basename "$h")" <<<"$reached" ||
    fail "include/batchscope/$(basename "$h") is not included by batchscope.h"
done
echo '#include "batchscope/batchscope.h"
int main(void) { return bsc_version() == 0; }' >"$tmp/all.c"
cc -std=c11 -Wall -Wextra -Werror -pedantic -I"$prefix/include" -c "$tmp/all.c" \
  -o "$tmp/all.o" || fail "batchscope.h does not compile cleanly on its own (-std=c11 -pedantic)"

if command -v groff >/dev/null; then
  warnings=$(groff -man -ww -z "$prefix/share/man/man1/batchscope.1" 2>&1)
  [ -z "$warnings" ] || fail "groff warns about batchscope.1: $warnings"
fi

# ---- 2. the template, out of tree, both ways
plugin=$tmp/plugin
cp -r "$prefix/share/batchscope/template" "$plugin"

step "template: find_package(batchscope) build and its test"
cmake -S "$plugin" -B "$plugin/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null ||
  fail "configuring the template with CMAKE_PREFIX_PATH=$prefix"
cmake --build "$plugin/build" -j"$jobs" >/dev/null || fail "building the template (CMake)"
ctest --test-dir "$plugin/build" --output-on-failure >"$tmp/ctest.log" 2>&1 || {
  cat "$tmp/ctest.log" >&2
  fail "the template's ctest"
}
need_file "$plugin/build/example.so"
# The module must export its entry point and nothing else of its own.
exported=$(nm -D --defined-only "$plugin/build/example.so" | awk '{print $3}')
[ "$exported" = bsc_plugin_entry ] ||
  fail "example.so exports more than bsc_plugin_entry: $(echo $exported)"

step "template: pkg-config build (Makefile) and make check"
PKG_CONFIG_PATH="$libdir/pkgconfig" make -C "$plugin" BUILD=build-make check \
  >"$tmp/make.log" 2>&1 || {
  cat "$tmp/make.log" >&2
  fail "the template's make check with PKG_CONFIG_PATH=$libdir/pkgconfig"
}
need_file "$plugin/build-make/example.so"

# ---- 3. the installed command with the template's plugin
step "P/bin/batchscope plugins"
cd "$tmp"
"$prefix/bin/batchscope" plugins >"$tmp/plugins.txt" 2>&1 || {
  cat "$tmp/plugins.txt" >&2
  fail "batchscope plugins"
}
grep -q "path:   $libdir/batchscope/plugins/bsc_layers.so" "$tmp/plugins.txt" ||
  fail "the built-in plugins were not loaded from $libdir/batchscope/plugins"
resolved=$(ldd "$prefix/bin/batchscope" | awk '/libbatchscope/ { print $3 }')
[ "$(realpath "$resolved")" = "$(realpath "$libdir/libbatchscope.so")" ] ||
  fail "bin/batchscope resolves libbatchscope to '$resolved', not the prefix's"
"$prefix/bin/batchscope" plugins --plugin "$plugin/build/example.so" >"$tmp/plugins.txt" 2>&1 ||
  fail "batchscope plugins --plugin example.so"
for t in swish step_log param_norm; do
  grep -q "^    $t " "$tmp/plugins.txt" || fail "batchscope plugins does not list '$t'"
done

step "P/bin/batchscope run template/study.yaml"
out=$tmp/results
"$prefix/bin/batchscope" run "$plugin/study.yaml" --out "$out" --quiet ||
  fail "batchscope run study.yaml"
need_file "$out/manifest.json" "$out/analyses/param_norm.csv"
for run in bs32 bs128; do
  need_file "$out/runs/$run/metrics.csv" "$out/runs/$run/steps.csv"
  # A header and one row per epoch (one epoch).
  [ "$(wc -l <"$out/runs/$run/steps.csv")" -eq 2 ] || fail "runs/$run/steps.csv: not one epoch row"
  head -n 1 "$out/runs/$run/metrics.csv" | grep -q steps_in_epoch ||
    fail "runs/$run/metrics.csv has no steps_in_epoch column"
done
# The analysis saw both runs, each of which moved away from its start.
awk -F, 'NR > 1 { n++; if (!($6 > 0)) bad = 1 } END { exit !(n == 2 && !bad) }' \
  "$out/analyses/param_norm.csv" || fail "analyses/param_norm.csv: $(cat "$out/analyses/param_norm.csv")"

step "passed"
