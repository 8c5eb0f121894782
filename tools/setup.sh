#!/usr/bin/env bash
# Set-up for batchscope on Debian 12: installs every package the build, the
# tests and the default study need (apt-get, as root or through sudo), then
# configures and builds into build/. Idempotent: packages already present are
# not touched and the build is incremental.
#
#   tools/setup.sh [--debug] [--sanitize] [--no-build] [--bench]
#
# --bench also installs the PyTorch CPU reference of tools/bench (Debian's
# python3-torch with OpenBLAS; not needed to build, test or run studies).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build_type=Release
sanitize=OFF
do_build=1
bench=0
for arg in "$@"; do
  case "$arg" in
    --debug) build_type=Debug ;;
    --sanitize) sanitize=ON; build_type=Debug ;;
    --no-build) do_build=0 ;;
    --bench) bench=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake pkg-config git
  pocl-opencl-icd ocl-icd-opencl-dev opencl-headers clinfo
  libclblast-dev libyaml-dev libjansson-dev libcmocka-dev zlib1g-dev libssl-dev
  librandom123-dev liblbfgsb-dev
  dataset-fashion-mnist
  libplplot-dev plplot-driver-cairo chromium
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

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "setup: run as root (or install sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi

if ((do_build)); then
  cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE="$build_type" \
        -DBATCHSCOPE_SANITIZE="$sanitize" >/dev/null
  cmake --build "$here/build" -j"$(nproc)"
  echo "setup: built $here/build/batchscope"
fi
