#!/bin/sh
# The window's app without a display (gui --headless): scripted interactions that need no pixels run against the
# same App, worker, script table and views with no X server and no OpenGL. Asserts that a session of typical edits
# (text, columns added and removed by clicking their widgets, variants, parameters, layers and heads, the diff
# window, generation, the KV calculator) ends with every column's result and the expected state, that `shot` (the
# one command that needs pixels) fails with its message, and that --headless without a script is refused.
# Usage: gui_headless.sh ATTNSCOPE_BINARY [WORK_DIR]
set -eu
bin=$1
work=${2:-$(mktemp -d)}
mkdir -p "$work"
. "$(dirname "$0")/gui_lib.sh"
model="$work/model"
tiny_model "$model"
export XDG_CONFIG_HOME="$work/config"
unset DISPLAY WAYLAND_DISPLAY || true

# 1) a session of edits, no display at all
out="$work/session.out"
script="text ROMEO: But, soft! what light; add_column sliding_window; param 2 window 4; idle; expect_results;
add_column linear; idle; expect_columns 4; click @col3.remove; idle; expect_columns 3; layer 0 1; head 1 2;
variant 1 mqa; idle; expect_results; diff 0 2 signed; wait 3; kv_calc bundled 4096; generate_start ROMEO:;
generate_step 5; wait 3; generate_close; idle; expect_results; print"
"$bin" gui --headless --model "$model" --width 1400 --height 900 --column mha --column gqa:groups=2 \
  --script "$(echo "$script" | tr '\n' ' ')" --max-seconds 120 >"$out" 2>&1 || { cat "$out"; fail "the headless session failed"; }
grep -q "internal error" "$out" && { cat "$out"; fail "internal error"; }
grep -q "3 columns, 3 results, 0 errors" "$out" || { cat "$out"; fail "expected 3 columns with 3 results and no error"; }
grep -q "^  column 1: mqa" "$out" || { cat "$out"; fail "column 1 should be mqa"; }
grep -q "^  column 2: sliding_window(window=4" "$out" || { cat "$out"; fail "column 2 should be sliding_window, window 4"; }
grep -q "column 2 (sliding_window): heatmap of request" "$out" || { cat "$out"; fail "no heatmap event for column 2"; }

# 1b) the heads row: roles of every column, then knock-outs of column 0, in the background (heads_wait); the window
# is tall enough for the whole row (its attention flow below the knock-out strip)
out="$work/heads.out"
script="idle; heads_wait 120; click @heads_knockouts0; wait 2; heads_wait 240; print"
"$bin" gui --headless --model "$model" --width 1400 --height 2400 --column mha --column sliding_window:window=4 \
  --script "$script" --max-seconds 300 >"$out" 2>&1 || { cat "$out"; fail "the heads session failed"; }
[ "$(grep -c "^    heads: layer 0: h0 " "$out")" -ge 2 ] || { cat "$out"; fail "expected a heads line per column"; }
grep -q "^    heads: .*probe loss [0-9.]* -> [0-9.]*; knock-outs [0-9]*; flow [0-9]*x[0-9]*, self share 0\.[0-9]*" "$out" || { cat "$out"; fail "column 0's knock-outs"; }

# 1b) a knock-out recomputes the column: the printed state names it, the loss without it and the held-out change; the
# layer's button (click) knocks out the whole layer of column 1; the mean choice (clicked) replaces column 1's layer by
# its held-out mean instead; clearing leaves no knock-out line. The attention flow exports once the heads row has
# computed it (refused before, with the reason: asked as soon as the columns show their results, since a flow needs
# the text to rest 400 ms; after `idle`, which waits for the worker's idle work too, the heads row may have it)
out="$work/knockout.out"
rm -f "$work/early.npy" "$work/flow0.npy" "$work/flow0.png"  # a work folder kept from an earlier run
script="shown; export $work/early.npy npy 1 flow 0; idle; knockout 0 0 1; idle; heads_wait 120; click @knockout_layer1;
wait 2; idle; print; heads_wait 120; click @knock_mean1; wait 2; idle; print; heads_wait 120; export $work/flow0.npy npy 1 flow 0;
export $work/flow0.png png 1 flow 0; knockout 0 clear; idle; print"
"$bin" gui --headless --model "$model" --width 1400 --height 2400 --column mha --column sliding_window:window=4 \
  --script "$(echo "$script" | tr '\n' ' ')" --max-seconds 300 >"$out" 2>&1 || { cat "$out"; fail "the knock-out session failed"; }
grep -q "^    knocked out (zero): L0 h1, loss [0-9.]* without them ([+-][0-9.]*), held-out [+-][0-9.]*" "$out" ||
  { cat "$out"; fail "column 0's knock-out"; }
grep -q "^    knocked out (zero): L0 all, loss" "$out" || { cat "$out"; fail "column 1's layer knock-out (clicked)"; }
grep -q "^    knocked out (mean): L0 all, loss [0-9.]* without them ([+-][0-9.]*), held-out [+-][0-9.]*" "$out" ||
  { cat "$out"; fail "column 1's mean knock-out (clicked)"; }
[ "$(grep -c "^    knocked out (zero): L0 h1" "$out")" -eq 2 ] || { cat "$out"; fail "knockout 0 clear left column 0's"; }
grep -q "export: refused: column 1 (mha) has no attention flow of its current text yet" "$out" ||
  { cat "$out"; fail "an early flow export was not refused"; }
[ ! -e "$work/early.npy" ] || fail "a refused export wrote a file"
grep -q "export: wrote $work/flow0.npy (1 panel)" "$out" || { cat "$out"; fail "the flow NPY export"; }
grep -q "export: wrote $work/flow0.png ([0-9]* x [0-9]* px, 1 panel)" "$out" || { cat "$out"; fail "the flow PNG export"; }

# 1c) beyond the context: both columns pooled over 2,048 held-out characters (tiled), loss by position over 2 windows;
# a learned-position column would stop at its limit (checked by test_engine), so both run here
out="$work/long.out"
script="idle; long 2048 2 1 0; long_wait 240"
"$bin" gui --headless --model "$model" --width 1400 --height 1000 --column mha --column sliding_window:window=4 \
  --script "$script" --max-seconds 300 >"$out" 2>&1 || { cat "$out"; fail "the long session failed"; }
[ "$(grep -c "^  long column: .*: map 512 x 512 in [0-9]* ms (tiled), loss [0-9.]* before 64, [0-9.]* after" "$out")" -eq 2 ] ||
  { cat "$out"; fail "expected a pooled map and a loss curve per column"; }

# 2) the one command that needs pixels says so (exit 3: a script failure), and writes nothing
out="$work/shot.out"
status=0
"$bin" gui --headless --model "$model" --script "idle; shot $work/x.png" >"$out" 2>&1 || status=$?
[ "$status" -eq 3 ] || { cat "$out"; fail "shot in a headless run: expected exit 3, got $status"; }
grep -q "'shot $work/x.png' needs pixels: run without --headless" "$out" || { cat "$out"; fail "no message for shot"; }
[ ! -e "$work/x.png" ] || fail "a headless shot wrote a file"

# 3) nothing to run: refused with a message
status=0
"$bin" gui --headless --model "$model" >"$work/none.out" 2>&1 || status=$?
[ "$status" -eq 2 ] || { cat "$work/none.out"; fail "--headless alone: expected exit 2, got $status"; }
grep -q "needs --script or --frames" "$work/none.out" || { cat "$work/none.out"; fail "no message for --headless alone"; }
echo "PASS: gui headless (a scripted session, the shot refusal, the bare --headless refusal)"
