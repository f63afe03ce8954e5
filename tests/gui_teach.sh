#!/bin/sh
# The teaching layer in the window: the explanation panel of three variants, a per-layer column (a window in
# layer 0, MHA in layer 1), a band painted on a custom column (its computed share must change) and a scene
# round trip of both, and the scenario advisor for two scenarios. Screenshots stay in WORK_DIR. Usage: gui_teach.sh ATTNSCOPE_BINARY [WORK_DIR]
set -eu
bin=$1
work=${2:-$(mktemp -d)}
mkdir -p "$work"
. "$(dirname "$0")/gui_lib.sh"
model="$work/model"
tiny_model "$model"
export XDG_CONFIG_HOME="$work/config"
rm -rf "$XDG_CONFIG_HOME"
gui() {
  out=$1; shift
  run_x 1400x900 "$bin" gui --model "$model" --width 1400 --height 900 --max-seconds 120 "$@" >"$out" 2>&1 ||
    { cat "$out"; fail "$out: exited with an error"; }
  ! grep -q "internal error" "$out" || { cat "$out"; fail "$out: internal error"; }
}

# 1. explanation panels: mha, gqa (groups highlighted), sliding_window (window highlighted)
gui "$work/explain.out" --column mha --column gqa:groups=2 --column sliding_window:window=8 \
  --script "idle; explain 0 1; explain 1 1; explain 2 1; wait 3; idle; print; shot $work/explain.png"
[ "$(grep -c "explanation open" "$work/explain.out")" -ge 3 ] || { cat "$work/explain.out"; fail "explanations not open"; }

# 2. per-layer column: sliding_window in layer 0, mha in layer 1
gui "$work/layers.out" --column mha \
  --script "idle; per_layer 0 1; layer_variant 0 0 sliding_window; layer_param 0 0 window 4; idle; layer 0 0; wait 3;
            idle; print; shot $work/layers.png; layer 0 1; explain 0 1; wait 3; shot $work/layers_top.png;
            scene_save $work/layers.json"
grep -q "layers \[sliding_window,mha\]" "$work/layers.out" || { cat "$work/layers.out"; fail "no per-layer column"; }
grep -q '"layers"' "$work/layers.json" || fail "the scene has no per-layer field"

# 3. painted band on a custom column: % computed changes
gui "$work/mask.out" --column custom \
  --script "idle; print; mask_edit 0 1; mask 0 clear; mask 0 band 0 3; idle; wait 3; idle; print;
            shot $work/mask.png; scene_save $work/mask.json"
before=$(grep -o "computed [0-9.]*%" "$work/mask.out" | sed -n 1p)
after=$(grep -o "computed [0-9.]*%" "$work/mask.out" | sed -n 2p)
[ -n "$before" ] && [ -n "$after" ] && [ "$before" != "$after" ] || { cat "$work/mask.out"; fail "painting did not change the computed share ($before -> $after)"; }
grep -q "painted" "$work/mask.out" || fail "no painted mask in the state"
grep -q '"mask"' "$work/mask.json" || fail "the scene has no mask"

# 4. both scenes read back
gui "$work/reopen.out" --scene "$work/layers.json" --script "idle; print"
grep -q "layers \[sliding_window,mha\]" "$work/reopen.out" || { cat "$work/reopen.out"; fail "per-layer scene not restored"; }
gui "$work/reopen_mask.out" --scene "$work/mask.json" --script "idle; print"
grep -q "$after" "$work/reopen_mask.out" || { cat "$work/reopen_mask.out"; fail "painted scene not restored ($after)"; }
# 5. an MoE checkpoint: the routing strip under the text (which expert each character goes to, per layer)
moe="${ATTNSCOPE_ASSETS:-}/models/mha_moe"
if [ -f "$moe/model.safetensors" ]; then
  run_x 1400x900 "$bin" gui --model "$moe" --width 1400 --height 900 --max-seconds 120 --column mha \
    --script "idle; wait 2; idle; print; shot $work/moe.png" >"$work/moe.out" 2>&1 || { cat "$work/moe.out"; fail "moe run"; }
  grep -q "routing [0-9]* experts top-[0-9]" "$work/moe.out" || { cat "$work/moe.out"; fail "no routing from the MoE model"; }
fi
# 6. the scenario advisor: measured at 128 tokens for long-context inference, then re-ranked for memory-limited
#    decoding under a tiny budget without measuring again (the same timings, variants excluded for the budget)
gui "$work/advisor.out" --column mha --column sliding_window:window=8 \
  --script "idle; advisor long-context 128 2GB; advisor_wait 300; wait 1; shot $work/advisor_long.png;
            advisor_set memory-limited 2MiB; wait 1; shot $work/advisor_memory.png"
grep -q "advisor: long-context inference at 128 tokens, budget 2GB" "$work/advisor.out" || { cat "$work/advisor.out"; fail "no long-context ranking"; }
grep -q "advisor: memory-limited decoding at 128 tokens, budget 2MiB" "$work/advisor.out" || { cat "$work/advisor.out"; fail "no memory-limited ranking"; }
grep -q "advisor: 1 [a-z_]* score [0-9.]*: prefill [0-9.]* ms" "$work/advisor.out" || { cat "$work/advisor.out"; fail "no measured first place"; }
grep -q "advisor: - linformer excluded: sees future tokens" "$work/advisor.out" || fail "linformer not excluded"
grep -q "advisor: - [a-z_]* excluded: needs .* > budget 2.0 MiB" "$work/advisor.out" || { cat "$work/advisor.out"; fail "the budget excluded nothing"; }
echo "PASS: gui teach (explanations, per-layer column, painted mask, scenes; screenshots in $work)"
