#!/bin/sh
# GUI interaction test: runs the real program under Xvfb (started here with xvfb-run when there is no display)
# and drives it with injected input: types text into the text box, drags a column's slider, adds a column,
# changes the layer with the arrow keys. Asserts the resulting state, that the rendered pixels changed between
# the two screenshots (kept in WORK_DIR), that the settings persist into a second run, and that a corrupt
# settings file is survived. Usage: gui_interact.sh ATTNSCOPE_BINARY [WORK_DIR]
set -eu
bin=$1
work=${2:-$(mktemp -d)}
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
run_x() {  # run_x ARGS...: under the current display, or a private Xvfb
  if [ -n "${DISPLAY:-}" ]; then "$@"; else xvfb-run -a -s "-screen 0 1400x900x24" "$@"; fi
}

model="$work/model"  # a tiny checkpoint of our own (2 layers, 4 heads, context 64)
if [ ! -f "$model/model.safetensors" ]; then
  "$bin" train --out "$model" --steps 2 --layers 2 --d-model 32 --heads 4 --context 64 --batch 2 \
    --eval-every 1000 >"$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
fi
export XDG_CONFIG_HOME="$work/config"
rm -rf "$XDG_CONFIG_HOME"
before="$work/gui_interact_before.png" after="$work/gui_interact_after.png"
rm -f "$before" "$after"

script="idle; wait 3; shot $before
click @text; wait 2; type  Arise, fair sun; wait 2; move -10 -10; idle
click @add_column; wait 3; variant 2 sliding_window; idle
move -10 -10; drag @col2.param.window -400 0; idle
move 5 5; key down; wait 2; idle; wait 3; shot $after"
out="$work/gui_interact.out"
run_x "$bin" gui --model "$model" --width 1400 --height 900 --script "$script" --max-seconds 120 >"$out" 2>&1 ||
  { cat "$out"; fail "attnscope gui exited with an error"; }
cat "$out"
[ -s "$before" ] && [ -s "$after" ] || fail "screenshots missing"
cmp -s "$before" "$after" && fail "the screenshots are identical: nothing changed on screen"
grep -q "3 columns, 3 results, 0 errors" "$out" || fail "expected 3 columns with results"
grep -q 'text: ".*Arise, fair sun' "$out" || fail "the typed text did not reach the text box"
grep -q "column 2: sliding_window(window=32)" "$out" && fail "dragging the window slider did not change it"
grep -q "column 2: sliding_window(window=[0-9]*) layer 1 " "$out" || fail "the arrow key did not select layer 1"
[ "$(grep -c "layer 1 head" "$out")" -eq 3 ] || fail "linked columns did not all move to layer 1"
grep -q "heatmap of request .* drawn .* ms after the request" "$out" || fail "no latency log"

# typing at the end of a text shorter than the context appends rows: the heatmaps' textures take only the new one
outt="$work/gui_interact_typing.out"
run_x "$bin" gui --model "$model" --width 1400 --height 900 --max-seconds 60 --script "text To be, or not; idle
click @text; type  t; wait 1; type o; wait 1; idle; print" >"$outt" 2>&1 || { cat "$outt"; fail "typing run failed"; }
grep "rows uploaded" "$outt"
grep -q "column 0 (mha): .*, 13 of 13 rows uploaded)" "$outt" || fail "the first text's heatmap was not uploaded whole"
grep -q "column 0 (mha): .*, 1 of 16 rows uploaded)" "$outt" ||
  fail "typing uploaded every row of the heatmap again, not the new one"

# the settings (view and columns) persist into the next run
[ -s "$XDG_CONFIG_HOME/attnscope/settings.json" ] || fail "no settings.json written"
out2="$work/gui_interact_2.out"
run_x "$bin" gui --model "$model" --width 1400 --height 900 --script "colormap cividis; idle" \
  --max-seconds 60 >"$out2" 2>&1 || { cat "$out2"; fail "second run failed"; }
grep -q "3 columns" "$out2" || { cat "$out2"; fail "the columns did not persist"; }
grep -q "column 2: sliding_window" "$out2" || fail "the sliding_window column did not persist"
[ -s "$XDG_CONFIG_HOME/attnscope/imgui.ini" ] || fail "no imgui.ini (window layout) written"

# a corrupt settings file: defaults, a message, no crash
printf '{"colormap": 2, "columns": [{"variant": 7}, ' >"$XDG_CONFIG_HOME/attnscope/settings.json"
out3="$work/gui_interact_3.out"
run_x "$bin" gui --model "$model" --width 1400 --height 900 --script "idle" --max-seconds 60 >"$out3" 2>&1 ||
  { cat "$out3"; fail "a corrupt settings file broke the start"; }
grep -q "2 columns, 2 results" "$out3" || { cat "$out3"; fail "defaults not used after a corrupt settings file"; }
echo "PASS: gui interact (screenshots $before $after)"
