#!/usr/bin/env bash
# The engine's and the worker's tests and the binary's bad-input matrix again under AddressSanitizer +
# UndefinedBehaviorSanitizer (no GUI), then the GUI's worker thread under ThreadSanitizer.
# Run after scripts/setup.sh has installed the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ATTNSCOPE_ASAN_BUILD:-build-asan}
# Built to be run once, not edited: -O1 with line tables only (reports keep file:line; a quarter of the object
# size of -O2 -g and half the compile time) and a unity build of the libraries (LibTorch's, CLI11's and JSON's
# templates compiled once per 8 sources, not once per source; the tests keep their own units). Together they took
# the ASan build from ~15 to ~4 minutes on 2 cores.
fast=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
      "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=8)
mkdir -p "$build"
cmake -S . -B "$build" "${fast[@]}" -DATTNSCOPE_GUI=OFF -DATTNSCOPE_WERROR=ON \
  -DATTNSCOPE_SANITIZE=address,undefined > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
# Only what runs our native code on memory we index by hand: the engine (kernels, masks, safetensors, tokenizer)
# through its unit tests and the universal sweep, the fused kernel's own tests, the session's worker, and the
# binary's bad-input matrix. The format, docs and figure checks are the same with or without a sanitizer, and run
# in the main build; so does shipped_checkpoints (LibTorch evaluating every checkpoint: nothing of ours indexes
# memory there that the universal sweep does not already run).
cmake --build "$build" -j"$(nproc)" --target attnscope test_core test_engine test_flash test_worker
# LibTorch itself is not instrumented: container-overflow annotations would be one-sided; leaks inside its
# static singletons at exit are not ours.
export ASAN_OPTIONS=detect_container_overflow=0:detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$build" && ctest --output-on-failure -j"$(nproc)" -R '^(test_core|test_engine|test_flash|test_worker)_shard|^bad_input$')
echo "sanitize: ASan + UBSan stage done after ${SECONDS} s"

# ThreadSanitizer on the GUI's worker thread (tests/test_worker.cpp: latest-wins requests while results are
# consumed, reloads, shutdown while busy). Only that target is built: the engine and the worker, no window.
# LibTorch, its OpenMP runtime and the BLAS are not instrumented; tests/tsan.supp silences reports from inside
# them (and only them).
tsan=${ATTNSCOPE_TSAN_BUILD:-build-tsan}
mkdir -p "$tsan"
cmake -S . -B "$tsan" "${fast[@]}" -DATTNSCOPE_GUI=OFF -DATTNSCOPE_SANITIZE=thread \
  > "$tsan/configure.log" 2>&1 || { cat "$tsan/configure.log"; exit 1; }
cmake --build "$tsan" -j"$(nproc)" --target test_worker
TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp:halt_on_error=1:second_deadlock_stack=1:history_size=4" \
  "$tsan/tests/test_worker"
echo "sanitize: ThreadSanitizer stage done after ${SECONDS} s in all"
