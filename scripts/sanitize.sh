#!/usr/bin/env bash
# The test suite again under AddressSanitizer + UndefinedBehaviorSanitizer (engine, CLI and their tests; the
# GUI is covered by the main build's GUI tests). Run after scripts/setup.sh has installed the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ATTNSCOPE_ASAN_BUILD:-build-asan}
mkdir -p "$build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTNSCOPE_GUI=OFF -DATTNSCOPE_WERROR=ON \
  -DATTNSCOPE_SANITIZE=address,undefined > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j"$(nproc)"
# LibTorch itself is not instrumented: container-overflow annotations would be one-sided; leaks inside its
# static singletons at exit are not ours.
export ASAN_OPTIONS=detect_container_overflow=0:detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$build"
ctest --output-on-failure -j"$(nproc)" -E '^(fuzz|gui)'
