#!/bin/sh
# scripts/package.sh [BUILD_DIR]: the Debian package from an already built tree (build/ by default): builds what
# is out of date (the binary, its man page and icon), then `cpack -G DEB`; prints the .deb's path.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
cmake --build "$build" -j"$(nproc)" --target attnscope attnscope_package_files
cd "$build"
cpack -G DEB >&2
ls -1t "$build"/attnscope_*.deb | head -n 1
