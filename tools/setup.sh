#!/usr/bin/env bash
# Set-up for batchscope on Debian 12: installs every package the build, the
# tests and the default study need (apt-get, as root or through sudo), then
# configures and builds into build/. Idempotent: packages already present are
# not touched and the build is incremental.
#
#   tools/setup.sh [--debug] [--sanitize] [--no-build] [--bench] [--install [PREFIX]]
#
# --bench also installs the PyTorch CPU reference of tools/bench (Debian's
# python3-torch with OpenBLAS; not needed to build, test or run studies).
# --install [PREFIX] then installs the build system-wide into PREFIX
# (default /usr/local, through sudo when not root): PREFIX/bin/batchscope,
# the library and its plugins, the headers, the CMake package and
# pkg-config file for out-of-tree plugins, the pipelines, the plugin
# template (PREFIX/share/batchscope/template) and the man page.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build_type=Release
sanitize=OFF
do_build=1
bench=0
install_prefix=
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  arg=${args[i]}
  case "$arg" in
    --debug) build_type=Debug ;;
    --sanitize) sanitize=ON; build_type=Debug ;;
    --no-build) do_build=0 ;;
    --bench) bench=1 ;;
    --install)
      install_prefix=/usr/local
      # The prefix is optional: the next argument, unless it is an option.
      if ((i + 1 < ${#args[@]})) && [[ ${args[i + 1]} != -* ]]; then
        install_prefix=${args[i + 1]}
        i=$((i + 1))
      fi
      ;;
    --install=*) install_prefix=${arg#--install=} ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
if [ -n "$install_prefix" ] && ((!do_build)); then
  echo "setup.sh: --install needs the build (drop --no-build)" >&2
  exit 2
fi
if [ -n "$install_prefix" ] && [[ $install_prefix != /* ]]; then
  install_prefix=$(pwd)/$install_prefix
fi

# Root runs apt-get and the install itself; anyone else goes through sudo.
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  sudo=(none)
fi

# Three OpenCL implementations that run on a CPU: PoCL (the tests' and
# `--device auto`'s), Mesa's rusticl and the Oclgrind simulator, which CI
# runs the suite and checks on too (tools/ci-impls.sh).
packages=(
  build-essential cmake pkg-config git
  pocl-opencl-icd ocl-icd-opencl-dev opencl-headers clinfo
  mesa-opencl-icd oclgrind
  libclblast-dev libopenblas-dev libyaml-dev libjansson-dev libcmocka-dev zlib1g-dev libssl-dev
  librandom123-dev liblbfgsb-dev
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist
  libplplot-dev plplot-driver-cairo chromium
  # tools/ci-guards.sh: the fuzz targets (tests/fuzz) with clang's libFuzzer
  clang libclang-rt-14-dev
)
if ((bench)); then
  packages+=(python3-torch python3-yaml python3-numpy libopenblas0-pthread)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Mesa's package registers two ICDs. rusticl's shows no device unless
# RUSTICL_ENABLE names a driver (tools/ci-impls.sh sets it for its runs).
# Clover's would show the GPUs Mesa drives (radeonsi, nouveau) beside the
# vendor's runtime, and one of them could become what `--device auto`
# picks; its .icd is diverted (kept, unregistered) so that installing Mesa
# leaves auto's choice as it was. Oclgrind registers no ICD.
clover_icd=/etc/OpenCL/vendors/mesa.icd
divert=0
if ! dpkg-divert --list "$clover_icd" | grep -q .; then
  divert=1
fi

if ((${#missing[@]} || divert)); then
  if [ "${sudo[*]}" = none ]; then
    echo "setup: run as root (or install sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
if ((divert)); then
  "${sudo[@]}" dpkg-divert --local --rename --divert "$clover_icd.disabled-by-batchscope" \
    --add "$clover_icd" >/dev/null
fi

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi

if ((do_build)); then
  prefix_arg=()
  if [ -n "$install_prefix" ]; then
    prefix_arg=(-DCMAKE_INSTALL_PREFIX="$install_prefix")
  fi
  cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE="$build_type" \
        -DBATCHSCOPE_SANITIZE="$sanitize" "${prefix_arg[@]}" >/dev/null
  cmake --build "$here/build" -j"$(nproc)"
  echo "setup: built $here/build/batchscope"
fi

if [ -n "$install_prefix" ]; then
  # A prefix the user can write to (under $HOME, say) needs no sudo.
  target=$install_prefix
  while [ ! -e "$target" ]; do target=$(dirname "$target"); done
  if [ -w "$target" ]; then
    run=()
  elif [ "${sudo[*]}" = none ]; then
    echo "setup: $install_prefix is not writable: run as root (or install sudo)" >&2
    exit 1
  else
    run=("${sudo[@]}")
  fi
  "${run[@]}" cmake --install "$here/build" --prefix "$install_prefix"
  # The library's directory may be one the dynamic linker caches (/usr/local/lib).
  if [ "$(id -u)" -eq 0 ] || [ ${#run[@]} -gt 0 ]; then
    "${run[@]}" ldconfig 2>/dev/null || true
  fi
  echo "setup: installed into $install_prefix ($install_prefix/bin/batchscope; plugin" \
       "template in $install_prefix/share/batchscope/template; man batchscope)"
fi
