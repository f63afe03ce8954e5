#!/usr/bin/env bash
# The CUDA path checked in one call (issue 15). On a machine with an NVIDIA GPU and the Python torch wheel (which
# ships a CUDA LibTorch: torch.utils.cmake_prefix_path), this builds the engine and CLI with the GUI off against that
# LibTorch, runs the test suite (the universal sweep included; the tests that need CUDA run instead of skipping),
# `attnscope bench --device cuda` for every variant at 256..16384, `eval --all --device cuda`, attend, generate and
# render on CUDA, and writes a report (log, JSON, PNG, a summary) into $OUT (default ./device-report).
# Without a GPU it says so in one line and exits 0. Budget: under 8 minutes (each step has its own time limit).
#
#   scripts/device_check.sh            # OUT=./device-report
#   OUT=/tmp/r scripts/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

no_gpu() {
  echo "device_check: no NVIDIA GPU here ($1): nothing to check"
  exit 0
}
command -v nvidia-smi > /dev/null 2>&1 || no_gpu "no nvidia-smi"
nvidia-smi -L > /dev/null 2>&1 || no_gpu "nvidia-smi fails"
prefix=$(python3 -c 'import torch; assert torch.cuda.is_available(); print(torch.utils.cmake_prefix_path)' 2> /dev/null) ||
  no_gpu "the Python torch wheel is missing or sees no CUDA device"

OUT=${OUT:-$root/device-report}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
log=$OUT/device_check.log
summary=$OUT/summary.txt
: > "$log"
: > "$summary"
build=${ATTNSCOPE_DEVICE_BUILD:-$root/build-cuda}
start=$(date +%s)
failures=0

# step NAME LIMIT_S CMD...: runs CMD with a time limit, output to the log, one line per step in the summary.
step() {
  local name=$1 limit=$2
  shift 2
  local t0 rc
  t0=$(date +%s)
  echo "==== $name: $*" >> "$log"
  timeout "$limit" "$@" >> "$log" 2>&1
  rc=$?
  local line
  line=$(printf '%-28s rc=%-3s %4ss' "$name" "$rc" "$(($(date +%s) - t0))")
  [ "$rc" -eq 124 ] && line="$line (timed out after ${limit}s)"
  echo "$line" | tee -a "$summary"
  [ "$rc" -eq 0 ] || failures=$((failures + 1))
  return 0
}

{
  echo "device_check $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2> /dev/null || echo '?')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  echo "LibTorch from $prefix"
} | tee -a "$summary"

jobs=$(nproc)
step configure 120 cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DATTNSCOPE_GUI=OFF \
  -DCMAKE_PREFIX_PATH="$prefix" -DATTNSCOPE_WERROR=OFF
step build 240 cmake --build "$build" -j"$jobs" --target attnscope test_engine test_flash test_core
bin=$build/attnscope
if [ ! -x "$bin" ]; then
  echo "device_check: the build failed: see $log" | tee -a "$summary"
  exit 1
fi
export ATTNSCOPE_ASSETS=$root/assets

# The tests: the CUDA-only ones (Device.*) must run, not skip; the suites as on CPU (they build their models on the
# CPU; the CLI steps below move the checkpoints and layers to CUDA).
step "test Device (cuda)" 60 sh -c "'$build/tests/test_engine' --gtest_filter='Device.*' --gtest_output=json:'$OUT/device_tests.json' && ! grep -q '\"result\": \"SKIPPED\"' '$OUT/device_tests.json'"
step "test_flash" 60 "$build/tests/test_flash" --gtest_brief=1
step "test_core" 60 "$build/tests/test_core" --gtest_brief=1
step "test_engine (universal)" 150 "$build/tests/test_engine" --gtest_brief=1 --gtest_filter='AllVariants/*:Oracle.*:Decoder.*'

# The CLI on CUDA.
step "attend --device cuda" 30 "$bin" attend --text "To be, or not to be" --layer 0 --head 0 --device cuda -o "$OUT/attend.csv"
step "generate --device cuda" 30 "$bin" generate --prompt "ROMEO:" --tokens 64 --device cuda
step "render --device cuda" 30 "$bin" render --text "To be, or not to be" --device cuda -o "$OUT/render.png"
step "eval --all --device cuda" 120 "$bin" eval --all --device cuda --max-windows 8 --json
step "bench --device cuda" 240 "$bin" bench --device cuda --lengths 256,4096,16384 --repeats 3 \
  --decode-tokens 8 --json "$OUT/bench_cuda.json" --csv "$OUT/bench_cuda.csv" --plot "$OUT/bench_cuda.png"

echo "total $(($(date +%s) - start))s, $failures step(s) failed; log: $log" | tee -a "$summary"
[ "$failures" -eq 0 ]
