#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages attnscope needs (only the missing ones), then configures and builds it in
# Release. Usage: scripts/setup.sh [extra cmake -D options...]. Build directory: $ATTNSCOPE_BUILD (default build/).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git
  libtorch-dev libopenblas0-pthread libjemalloc2     # engine: LibTorch on OpenBLAS (~30x faster matmul than reference BLAS)
  nlohmann-json3-dev libcli11-dev                    # config files, command line
  googletest libgtest-dev libbenchmark-dev           # tests and benchmarks
  libimgui-dev libglfw3-dev libgl-dev libegl-dev libgl1-mesa-dri libegl-mesa0 libfreetype-dev libstb-dev fonts-dejavu-core  # GUI
  xvfb xauth xdotool                                 # GUI tests without a display
  clang libclang-rt-14-dev                           # fuzzers (libFuzzer)
  clang-format                                       # the format check (tests/format_test.sh)
  help2man dpkg-dev fakeroot lintian                 # the Debian package: man page, shlibdeps, its check
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "attnscope setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch must see OpenBLAS as the system BLAS (the reference BLAS is ~30x slower).
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
case "$blas" in
  *openblas*) ;;
  *) echo "attnscope setup: warning: libblas.so.3 is '$blas', not OpenBLAS (update-alternatives --config libblas.so.3-x86_64-linux-gnu)" ;;
esac

build=${ATTNSCOPE_BUILD:-build}
jobs=$(nproc)
mkdir -p "$build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j"$jobs"
