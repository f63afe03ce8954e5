#!/bin/sh
# GUI smoke test: opens the window under Xvfb, drives it with injected mouse input (add a column, drag the
# layer slider, remove a column), an impossible parameter and characters outside the vocabulary, then saves
# a screenshot and checks it. Usage: gui_smoke.sh ATTNSCOPE_BINARY [WORK_DIR]
set -eu
bin=$1
work=${2:-$(mktemp -d)}
mkdir -p "$work"
export XDG_CONFIG_HOME="$work/config"  # settings of our own, not the user's
rm -rf "$XDG_CONFIG_HOME"
shot="$work/gui_smoke.png"
rm -f "$shot"

# A tiny checkpoint of our own (2 layers, 4 heads, context 64): independent of the bundled model, seconds to train.
model="$work/model"
if [ ! -f "$model/model.safetensors" ]; then
  "$bin" train --out "$model" --steps 2 --layers 2 --d-model 32 --heads 4 --context 64 --batch 2 \
    --eval-every 1000 >"$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
fi

script='idle; click @add_column; wait 3; expect_columns 3; move -10 -10; drag @col0.layer 400 0; idle;
click @col2.remove; wait 3; expect_columns 2; move -10 -10; variant 1 gqa; param 1 groups 3; idle;
text ROMEO: Hé is the east, and Juliet is the sun! Arise, fair sun, and kill the envious moon,; idle;
expect_results; print'
out="$work/gui_smoke.out"
if ! xvfb-run -a -s "-screen 0 1280x800x24" "$bin" gui --model "$model" --width 1280 --height 800 \
    --script "$script" --screenshot "$shot" --frames 10 --max-seconds 120 >"$out" 2>&1; then
  echo "FAIL: attnscope gui exited with an error"; cat "$out"; exit 1
fi
cat "$out"
fail() { echo "FAIL: $*"; exit 1; }
[ -s "$shot" ] || fail "no screenshot written"
# PNG signature and IHDR size (big-endian width and height at bytes 16..23)
sig=$(od -An -tx1 -N8 "$shot" | tr -d ' \n')
[ "$sig" = "89504e470d0a1a0a" ] || fail "not a PNG ($sig)"
set -- $(od -An -tu1 -j16 -N8 "$shot")
w=$(( ($1 << 24) + ($2 << 16) + ($3 << 8) + $4 )); h=$(( ($5 << 24) + ($6 << 16) + ($7 << 8) + $8 ))
[ "$w" -eq 1280 ] && [ "$h" -eq 800 ] || fail "screenshot is ${w}x${h}, expected 1280x800"
colours=$(sed -n 's/^screenshot .*: [0-9]*x[0-9]*, \([0-9]*\) distinct colours.*/\1/p' "$out" | tail -1)
[ -n "$colours" ] && [ "$colours" -ge 200 ] || fail "screenshot looks empty (${colours:-?} distinct colours)"
grep -q "2 columns" "$out" || fail "the injected clicks did not add and remove a column"
grep -q "column 0: mha(impl=naive) layer 1 " "$out" || fail "dragging the layer slider did not select layer 1"
grep -q "column 1: gqa(groups=3).*error: .*groups = 3" "$out" || fail "the impossible parameter is not reported in its column"
grep -q "column 0: .*trained (.*), 64x64" "$out" || fail "column 0 has no result over a 64-character window"
# the window's icon: the PNG the build draws (packaging/icon.cpp), found beside the binary
grep -q "window icon: .*packaging/attnscope.png" "$out" || fail "the window has no icon (the build's packaging/attnscope.png)"
echo "PASS: gui smoke (${w}x${h}, $colours colours)"
