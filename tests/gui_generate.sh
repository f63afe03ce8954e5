#!/bin/sh
# Lockstep generation in three columns (mha, gqa, sliding_window W = 32) under Xvfb: past 32 tokens the window
# evicts, so the measured cache bytes diverge (mha > gqa, the window capped at 32 tokens); the scrubber moves back;
# the KV-cache calculator opens; a held-out text streamed past the context keeps the window bounded while the RoPE
# model's loss climbs. Usage: gui_generate.sh ATTNSCOPE_BINARY [WORK_DIR]
set -eu
bin=$1
work=${2:-$(mktemp -d)}
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
run_x() {
  if [ -n "${DISPLAY:-}" ]; then "$@"; else xvfb-run -a -s "-screen 0 1600x1000x24" "$@"; fi
}
export XDG_CONFIG_HOME="$work/config"
rm -rf "$XDG_CONFIG_HOME"
out="$work/generate.out"
run_x "$bin" gui --width 1600 --height 1000 --column mha --column gqa:groups=2 --column sliding_window:window=32 \
  --script "idle; generate_options 0.8 20 3; generate_start ROMEO:\\n; idle; generate_step 44; idle; wait 3;
            shot $work/generate_end.png; print; scrub 10; wait 3; shot $work/generate_scrub.png; print;
            kv_calc llama-3-8b 131072 1 fp16; wait 3; shot $work/kv_calc.png; print" \
  --max-seconds 180 >"$out" 2>&1 || { cat "$out"; fail "the run exited with an error"; }
grep -q "internal error" "$out" && { cat "$out"; fail "internal error"; }
for f in generate_end generate_scrub kv_calc; do [ -s "$work/$f.png" ] || fail "no screenshot $f.png"; done
# The first print: the newest step (44 tokens after the 7-character prompt: position 50, 51 tokens).
bytes() {  # bytes COLUMN NTH_PRINT
  grep "^  gen column $1:" "$out" | sed -n "$2p" | sed -n 's/.*cache \([0-9]*\) B.*/\1/p'
}
held() { grep "^  gen column $1:" "$out" | sed -n "$2p" | sed -n 's/.* holds \([0-9]*\) of \([0-9]*\) tokens.*/\1 \2/p'; }
grep "^  gen" "$out"
grep -q "generation: session 1, 44 steps, cursor 43, stream shared" "$out" || fail "expected 44 steps at the newest"
mha=$(bytes 0 1) gqa=$(bytes 1 1) win=$(bytes 2 1)
[ -n "$mha" ] && [ -n "$gqa" ] && [ -n "$win" ] || fail "no cache bytes printed"
[ "$mha" -gt "$gqa" ] || fail "mha cache ($mha B) should exceed gqa ($gqa B)"
[ "$mha" -gt "$win" ] || fail "mha cache ($mha B) should exceed the window's ($win B)"
# every column reads the same 51 tokens; the window holds 32 of them, the others all
[ "$(held 0 1)" = "51 51" ] || fail "mha holds $(held 0 1)"
[ "$(held 2 1)" = "32 51" ] || fail "sliding_window holds $(held 2 1), expected 32 of 51"
# capped: the window's bytes equal 32 tokens' worth of mha's per-token bytes
[ $((win * 51)) -eq $((mha * 32)) ] || fail "window cache $win B is not 32/51 of mha's $mha B"
# the scrubber moved back: step 10 (position 17, 18 tokens), every cache smaller, nothing evicted yet
grep -q "generation: session 1, 44 steps, cursor 10," "$out" || fail "the scrubber did not move to step 10"
[ "$(held 2 2)" = "18 18" ] || fail "at step 10 the window should hold 18 of 18, holds $(held 2 2)"
[ "$(bytes 0 2)" -lt "$mha" ] || fail "scrubbing back should show a smaller mha cache"
[ "$(bytes 2 2)" -eq "$(bytes 0 2)" ] || fail "before the window fills, window and mha caches are equal"
grep -q "kv calculator: preset" "$out" || fail "the KV calculator did not open"
# Streaming a held-out text past the context (600 positions, the context is 256): every column reads it, the window
# keeps 32 tokens and the sinks 4 + 32 (the same window) however long the stream, the dense cache all of them; past
# the context the RoPE model's loss climbs above the window's. The fourth column is the same window on the mha
# weights (convert=1): its own model, so its loss is not the trained window's.
out2="$work/stream.out"
run_x "$bin" gui --width 1600 --height 1000 --column mha --column sliding_window:window=32 --column sinks:window=32 \
  --column sliding_window:window=32,convert=1 \
  --script "idle; generate_stream heldout; generate_length 600; generate_start; idle; generate_step 599; idle; wait 3;
            shot $work/generate_stream.png; print" \
  --max-seconds 240 >"$out2" 2>&1 || { cat "$out2"; fail "the streaming run exited with an error"; }
grep "^  gen" "$out2"
grep -q "generation: session 1, 599 steps, cursor 598, stream heldout (driver column 0), positions 600, full 1" "$out2" ||
  fail "expected a held-out stream of 599 steps to position 600"
[ -s "$work/generate_stream.png" ] || fail "no screenshot generate_stream.png"
held2() { grep "^  gen column $1:" "$out2" | head -1 | sed -n 's/.* holds \([0-9]*\) of \([0-9]*\) tokens.*/\1 \2/p'; }
loss2() { grep "^  gen column $1:" "$out2" | head -1 | sed -n 's/.*, loss \([0-9.]*\).*/\1/p'; }
[ "$(held2 0)" = "600 600" ] || fail "streamed mha holds $(held2 0)"
[ "$(held2 1)" = "32 600" ] || fail "streamed window holds $(held2 1), expected 32 of 600"
[ "$(held2 2)" = "36 600" ] || fail "streamed sinks hold $(held2 2), expected 4 + 32 of 600"
[ "$(held2 3)" = "32 600" ] || fail "the converted window holds $(held2 3), expected 32 of 600"
[ "$(loss2 1)" != "$(loss2 3)" ] || fail "the converted window decodes with the trained window's model (loss $(loss2 3))"
awk -v m="$(loss2 0)" -v w="$(loss2 1)" 'BEGIN { exit !(m > w + 0.5) }' ||
  fail "past the context the RoPE mha loss ($(loss2 0)) should be well above the window's ($(loss2 1))"
echo "PASS: gui generate (mha $mha B > gqa $gqa B; window capped at $win B; scrubbed back to step 10)"
