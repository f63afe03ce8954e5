#!/bin/sh
# GUI export, scenes, presentation mode and the scaling panel, driven by script commands under Xvfb:
#  1. exports the comparison (PNG at 1x and 2x, SVG), a heatmap (CSV, NPY), a sparsity mask (JSON) and the
#     difference window (PNG); the comparison's PNG must equal `attnscope render` of the scene saved from the view,
#     the 2x one be twice its size, the SVG parse; an existing file is not overwritten without confirmation and
#     unwritable paths are reported with no file left behind; a saved scene, opened again, restores the columns;
#  2. `gui --scene F` opens a scene, presentation mode goes fullscreen with large fonts and Page Down moves to
#     the folder's next scene (another title); `attnscope --scene MISSING` reports the file;
#  3. the scaling panel measures at least 2 points for each of 2 variants within a short bound.
# Screenshots stay in WORK_DIR. Usage: gui_export.sh ATTNSCOPE_BINARY [WORK_DIR]
set -eu
bin=$1
work=${2:-$(mktemp -d)}
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
run_x() {  # run_x ARGS...: under the current display, or a private Xvfb
  if [ -n "${DISPLAY:-}" ]; then "$@"; else xvfb-run -a -s "-screen 0 1400x900x24" "$@"; fi
}
png_size() { python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24); assert d[:8]==b"\x89PNG\r\n\x1a\n"; print("%dx%d" % struct.unpack(">II", d[16:24]))' "$1"; }
export XDG_CONFIG_HOME="$work/config" HOME="$work/home"  # the dialog's default folder: $HOME/Pictures/attnscope
unset XDG_PICTURES_DIR  # (no user-dirs.dirs in the fresh XDG_CONFIG_HOME either)
rm -rf "$XDG_CONFIG_HOME" "$HOME" "$work/out"
mkdir -p "$work/out"
o="$work/out"
assets=${ATTNSCOPE_ASSETS:-$(dirname "$0")/../assets}

# ---- 1. exports and the scene round trip (the bundled model, as `attnscope render` uses by default)
script="idle
export $o/all.png png 1 all
export $o/all2.png png 2 all
export $o/all.svg svg 1 all
export $o/head0.csv csv 1 heatmap 0
export $o/head0.npy npy 1 heatmap 0
export $o/mask1.json json 1 sparsity 1
diff 0 1; idle
export $o/diff.png png 1 diff
export $o/all.png png 1 all
export $o/no-such-folder/x.png png 1 all
export /proc/attnscope-export-test.png png 1 all
export_dialog all; wait 3; click @export_button; wait 15
click @export_button; wait 5; shot $work/export_confirm.png; click @export_overwrite; wait 15; move -10 -10
export $o/view.png png 1 all
scene_save $o/scene.json
add_column mqa; idle; expect_columns 3
scene_open $o/scene.json; idle; expect_columns 2; expect_results; print
add_column mqa; idle; open_recent 0; idle; expect_columns 2; print_recent
help_window shortcuts; help_window about; theme light; wait 3; shot $work/help_light.png; print; theme dark
help_window close; wait 2
export_dialog heatmap 1; wait 5; shot $work/export_dialog.png"
out="$work/export.out"
run_x "$bin" gui --column mha --column sliding_window:window=8 --text "ROMEO: But, soft! what light through yonder window breaks?" \
  --width 1400 --height 900 --script "$script" --max-seconds 120 >"$out" 2>&1 || { cat "$out"; fail "gui exited with an error"; }
cat "$out"
for f in view.png all.png all2.png all.svg head0.csv head0.npy mask1.json diff.png scene.json; do
  [ -s "$o/$f" ] || fail "no $f exported"
done
grep -q "export: wrote $o/all.png" "$out" || fail "the first PNG export is not reported"
grep -q "export: refused: '$o/all.png' exists" "$out" || fail "overwriting an existing file was not refused"
[ "$(grep -c "export: wrote $o/all.png " "$out")" -eq 1 ] || fail "the existing PNG was written twice"
grep -q "export: refused: .*no-such-folder.* does not exist" "$out" || fail "a missing folder is not reported"
grep -q "export: failed: .*attnscope-export-test" "$out" || fail "an unwritable path is not reported"
[ ! -e /proc/attnscope-export-test.png ] || fail "a file was left at the unwritable path"
ls /proc/attnscope-export-test.png.tmp.* >/dev/null 2>&1 && fail "a partial file was left behind"
[ ! -e "$o/no-such-folder" ] || fail "the missing folder was created"
s1=$(png_size "$o/all.png"); s2=$(png_size "$o/all2.png")
w1=${s1%x*} h1=${s1#*x} w2=${s2%x*} h2=${s2#*x}
[ "$w2" -eq $((w1 * 2)) ] && [ "$h2" -eq $((h1 * 2)) ] || fail "the 2x PNG is $s2, the 1x one $s1"
python3 -c 'import sys, xml.etree.ElementTree as E; r=E.parse(sys.argv[1]).getroot(); assert r.tag.endswith("svg"), r.tag' \
  "$o/all.svg" || fail "the SVG does not parse"
python3 -c 'import json, sys; d=json.load(open(sys.argv[1])); assert d' "$o/mask1.json" || fail "the JSON does not parse"
python3 -c 'import sys; assert open(sys.argv[1], "rb").read(6) == b"\x93NUMPY"' "$o/head0.npy" || fail "head0.npy is not an NPY file"
# File > Open Recent, the Help windows and the theme
grep -q "scene: opened $o/scene.json (recent 0)" "$out" || fail "open_recent 0 did not open the saved scene"
[ "$(grep -m1 '^  recent: ' "$out")" = "  recent: $o/scene.json" ] || fail "the saved scene is not the newest recent one"
[ "$(grep -c '^  shortcut: ' "$out")" -ge 10 ] || fail "the Keyboard and mouse window lists fewer than 10 shortcuts"
grep -q "^  about: settings and window layout: $XDG_CONFIG_HOME/attnscope$" "$out" || fail "About does not name the settings folder"
grep -q "^  about: exports (by default): $HOME/Pictures/attnscope$" "$out" || fail "About does not name the exports folder"
grep -q "theme light$" "$out" || fail "theme light did not switch the theme"
[ -s "$work/help_light.png" ] || fail "no screenshot of the Help windows"
python3 -c 'import json, sys; r=json.load(open(sys.argv[1]))["recent_scenes"]; assert r[0] == sys.argv[2], r' \
  "$XDG_CONFIG_HOME/attnscope/settings.json" "$o/scene.json" || fail "settings.json does not keep the recent scenes"
grep -q "column 0: mha(.*) layer 0 head 0" "$out" && grep -q "column 1: sliding_window(.*window=8.*) layer 0 head 0" "$out" ||
  fail "opening the saved scene did not restore the columns"
# the same figure as the CLI: render the saved scene and compare the bytes
"$bin" render --scene "$o/scene.json" -o "$o/cli.png" >"$work/render.log" 2>&1 || { cat "$work/render.log"; fail "render failed"; }
cmp -s "$o/cli.png" "$o/view.png" || fail "the GUI's PNG differs from attnscope render of the same scene"
[ -s "$work/export_dialog.png" ] || fail "no screenshot of the export dialog"
dialog_png="$HOME/Pictures/attnscope/comparison-mha-sliding-window-window-8.png"
[ "$(grep -c "export: wrote $dialog_png " "$out")" -eq 2 ] || fail "the dialog did not write $dialog_png, then overwrite it once confirmed"

# ---- 2. presentation mode over the bundled scenes
script="idle; present on; wait 3; idle; wait 3; print_scene; shot $work/present.png
page_down; idle; wait 3; print_scene; shot $work/present_next.png
present off; wait 3; print_scene"
out="$work/present.out"
run_x "$bin" gui --scene "$assets/scenes/kernels_vs_softmax.json" --width 1400 --height 900 --script "$script" \
  --max-seconds 120 >"$out" 2>&1 || { cat "$out"; fail "gui --scene exited with an error"; }
cat "$out"
t1=$(grep '^scene: ' "$out" | sed -n 1p | sed 's/.*title "\([^"]*\)".*/\1/')
t2=$(grep '^scene: ' "$out" | sed -n 2p | sed 's/.*title "\([^"]*\)".*/\1/')
[ "$t1" = "Kernelised attention: effective matrices of linear and Performer vs softmax" ] || fail "the scene's title is '$t1'"
[ -n "$t2" ] && [ "$t2" != "$t1" ] || fail "page_down did not change the scene title ('$t1' -> '$t2')"
grep '^scene: ' "$out" | sed -n 1p | grep -q "present 1, fullscreen 1, font 28 px" || fail "presentation mode is not fullscreen with large fonts"
grep '^scene: ' "$out" | sed -n 3p | grep -q "present 0, fullscreen 0, font 16 px" || fail "leaving presentation mode did not restore the window"
if run_x "$bin" --scene "$work/missing-scene.json" >"$work/missing.out" 2>&1; then fail "a missing scene file was accepted"; fi
grep -q "missing-scene.json" "$work/missing.out" || { cat "$work/missing.out"; fail "the missing scene file is not named"; }

# ---- 3. the scaling panel: 2 variants, 2 lengths each, in the background
script="idle; scaling 128 256 1; scaling_wait 2 150; wait 3; shot $work/scaling.png"
out="$work/scaling.out"
run_x "$bin" gui --column mha --column linear --width 1400 --height 900 --script "$script" --max-seconds 200 \
  >"$out" 2>&1 || { cat "$out"; fail "the scaling run exited with an error"; }
cat "$out"
for v in mha linear; do
  [ "$(grep -c "scaling point: $v T=.* ok" "$out")" -ge 2 ] || fail "fewer than 2 measured points for $v"
done
echo "PASS: gui export (PNG $s1 and $s2, SVG, CSV, NPY, JSON; scenes; presentation '$t1' -> '$t2'; scaling)"
