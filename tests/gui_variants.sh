#!/bin/sh
# Every registered variant in a column: renders a few frames, four columns at a time, under Xvfb (started
# here with xvfb-run when there is no display). Fails on a crash, a timeout or an internal error; a variant
# that refuses the tiny model's shapes must say so in its column. Usage: gui_variants.sh ATTNSCOPE_BINARY [WORK_DIR]
set -eu
bin=$1
work=${2:-$(mktemp -d)}
mkdir -p "$work"
. "$(dirname "$0")/gui_lib.sh"
model="$work/model"
tiny_model "$model"
export XDG_CONFIG_HOME="$work/config"
names=$("$bin" variants --json | sed -n 's/^    "name": "\(.*\)",*$/\1/p')
[ -n "$names" ] || fail "no variant names from 'attnscope variants --json'"
set -- $names
total=$#
batch=0
while [ $# -gt 0 ]; do
  batch=$((batch + 1))
  first=$1; shift
  script="" n=1
  while [ $# -gt 0 ] && [ $n -lt 4 ]; do script="$script add_column $1; variant $n $1;"; shift; n=$((n + 1)); done
  rm -rf "$XDG_CONFIG_HOME"
  out="$work/batch$batch.out"
  run_x 1280x800 "$bin" gui --model "$model" --width 1280 --height 800 --column "$first" \
    --script "$script idle; wait 5; head 0 -1; wait 3; head 0 0; view 0 mask; wait 3; shot $work/batch$batch.png" \
    --max-seconds 120 >"$out" 2>&1 || { cat "$out"; fail "batch $batch ($first ...) exited with an error"; }
  grep -q "internal error" "$out" && { cat "$out"; fail "internal error in batch $batch"; }
  grep -q "$n columns, " "$out" || { cat "$out"; fail "batch $batch: expected $n columns"; }
  grep "^  column" "$out"
done
echo "PASS: gui variants ($total variants in $batch batches)"
