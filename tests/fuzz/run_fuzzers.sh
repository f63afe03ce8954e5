#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) from the torch-free engine sources and runs each for
# FUZZ_SECONDS (default 20) on a copy of its committed seed corpus, then replays tests/fuzz/regressions/.
# Usage: run_fuzzers.sh BUILD_DIR [TARGET...]. A crash fails the run and leaves its input in BUILD_DIR/fuzz/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
out=${1:?build dir}/fuzz
shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors config tokenizer params)
seconds=${FUZZ_SECONDS:-20}
cxx=${FUZZ_CXX:-clang++}
command -v "$cxx" > /dev/null || { echo "fuzz: $cxx not found (apt-get install clang)"; exit 1; }
mkdir -p "$out/obj"
flags=(-std=c++17 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -I"$src/attention")
core=(params registry tokenizer config safetensors npy masked_registry kernel_registry custom_mask)
objs=()
for c in "${core[@]}"; do
  [ -f "$src/attention/$c.cpp" ] || continue
  o="$out/obj/$c.o"
  if [ ! -f "$o" ] || [ "$src/attention/$c.cpp" -nt "$o" ]; then "$cxx" "${flags[@]}" -c "$src/attention/$c.cpp" -o "$o"; fi
  objs+=("$o")
done
status=0
for t in "${targets[@]}"; do
  bin="$out/fuzz_$t"
  "$cxx" "${flags[@]}" -fsanitize=fuzzer "$here/fuzz_$t.cpp" "${objs[@]}" -o "$bin"
  work="$out/corpus_$t"
  rm -rf "$work" && mkdir -p "$work" && cp "$here/corpus/$t/"* "$work/"
  regress="$here/regressions/$t"
  if [ -d "$regress" ] && [ -n "$(ls -A "$regress")" ]; then
    "$bin" -runs=0 "$regress"/* > "$out/fuzz_$t.regress.log" 2>&1 || { echo "fuzz_$t: a regression input crashes again"; status=1; }
  fi
  if "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$out/crash_${t}_" \
      -print_final_stats=1 "$work" > "$out/fuzz_$t.log" 2>&1; then
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/fuzz_$t.log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz_$t: clean, $execs executions in ${seconds}s"
  else
    echo "fuzz_$t: FAILED (see $out/fuzz_$t.log; the input is saved as $out/crash_${t}_*)"
    tail -30 "$out/fuzz_$t.log"
    status=1
  fi
done
exit $status
