#!/usr/bin/env bash
# End-to-end checks of the command line on the bundled checkpoint: outputs, formats, and that bad input gives
# one clear line and a non-zero status, never a crash or a half-written file.
set -uo pipefail
bin="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }

text="First Citizen:
Before we proceed any further, hear me speak."

# variants
"$bin" variants > "$tmp/v.txt"; check "variants lists the exact family" 'grep -q "^mha" "$tmp/v.txt" && grep -q "^gqa" "$tmp/v.txt" && grep -q "groups=1..64" "$tmp/v.txt"'
"$bin" variants --json > "$tmp/v.json"; check "variants --json is JSON with parameters" 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert any(v[\"name\"]==\"gqa\" and v[\"params\"][0][\"name\"]==\"groups\" for v in d)" "$tmp/v.json"'

# attend: one head as CSV, rows sum to 1, T rows of T columns, causal zeros above the diagonal
"$bin" attend --text "$text" --layer 0 --head 0 > "$tmp/a.csv" 2> "$tmp/a.err"
n=$(printf "%s" "$text" | wc -c)
check "attend csv has T rows" '[ "$(wc -l < "$tmp/a.csv")" -eq "$n" ]'
check "attend csv rows sum to 1 and are causal" 'awk -F, -v n="$n" "{s=0; for(i=1;i<=NF;i++){s+=\$i; if(i>NR && \$i!=0) bad=1}; if (NF!=n || s<0.999 || s>1.001) bad=1} END{exit bad}" "$tmp/a.csv"'
check "attend reports timing and loss" 'grep -q "forward .* ms, loss" "$tmp/a.err"'
"$bin" attend --text "$text" --format npy -o "$tmp/a.npy" 2>/dev/null
check "attend npy holds [4, 8, T, T]" 'python3 -c "import sys; b=open(sys.argv[1],\"rb\").read(); assert b\"(4,8,$n,$n)\" in b[:128]; assert len(b)-(10+int.from_bytes(b[8:10],\"little\"))==4*8*$n*$n*4" "$tmp/a.npy"'
"$bin" attend --text "$text" --layer 3 --format json -o "$tmp/a.json" 2>/dev/null
check "attend json of one layer" 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"shape\"]==[8,$n,$n] and len(d[\"layers\"][0])==8" "$tmp/a.json"'
"$bin" attend --variant gqa --param groups=2 --text "$text" --layer 0 --head 7 > /dev/null 2> "$tmp/g.err"
check "gqa runs in its trained checkpoint, as in the window" 'grep -q "gqa (groups=2) \[trained\]" "$tmp/g.err"'
"$bin" attend --variant gqa --param groups=2 --convert --text "$text" --layer 0 --head 7 > /dev/null 2> "$tmp/g.err"
check "--convert: gqa converted from the mha checkpoint" 'grep -q "gqa (groups=2) \[converted from mha\]" "$tmp/g.err"'
"$bin" attend --variant gqa --param groups=4 --text "$text" --layer 0 --head 7 > /dev/null 2> "$tmp/g.err"
check "gqa with other groups than trained converts" 'grep -q "gqa (groups=4) \[converted from mha\]" "$tmp/g.err"'
"$bin" attend --variant cross --text "$text" --kv-text "O Romeo, Romeo" --layer 1 --head 0 > "$tmp/c.csv" 2>/dev/null
check "cross attends the second text" '[ "$(head -1 "$tmp/c.csv" | tr , "\n" | wc -l)" -eq 14 ]'

# bad input: clear one-line errors and non-zero status
"$bin" attend --bogus 2> "$tmp/e1"; s=$?
check "unknown flag: status 2, one line" '[ $s -eq 2 ] && [ "$(wc -l < "$tmp/e1")" -eq 1 ]'
"$bin" attend --text "naïve café" 2> "$tmp/e2" > /dev/null; s=$?
check "characters outside the vocabulary are reported" '[ $s -eq 1 ] && grep -q "2 characters are not in the vocabulary: .ï. at line 1, column 3" "$tmp/e2"'
"$bin" attend --text "naïve café" --unknown=skip --layer 0 --head 0 > /dev/null 2>&1; check "--unknown=skip" '[ $? -eq 0 ]'
"$bin" attend --text "" 2> "$tmp/e3"; s=$?
check "empty text" '[ $s -ne 0 ] && grep -q "give --text\|empty" "$tmp/e3"'
head -c 300 "$(dirname "$0")/../assets/tinyshakespeare.txt" > "$tmp/long.txt"
"$bin" attend --text-file "$tmp/long.txt" > /dev/null 2>&1; s=$?
check "RoPE past the context of 256: 300 characters run" '[ $s -eq 0 ]'
"$bin" attend --model "$(dirname "$0")/../assets/models/mha_learned" --text-file "$tmp/long.txt" 2> "$tmp/e4" > /dev/null; s=$?
check "learned positions past the context: one line naming the limit" '[ $s -eq 1 ] && [ "$(wc -l < "$tmp/e4")" -eq 1 ] && grep -q "limit of 256: learned absolute positions" "$tmp/e4"'
head -c 1100 "$(dirname "$0")/../assets/tinyshakespeare.txt" > "$tmp/longer.txt"
"$bin" attend --text-file "$tmp/longer.txt" 2> "$tmp/e4" > /dev/null; s=$?
check "text past the full maps' limit: one line naming 1024 and the long-text commands" '[ $s -eq 1 ] && [ "$(wc -l < "$tmp/e4")" -eq 1 ] && grep -q "stop at 1024" "$tmp/e4" && grep -q "render --length" "$tmp/e4"'
"$bin" attend --variant gqa --param groups=3 --text "$text" 2> "$tmp/e5" > /dev/null; s=$?
check "impossible parameter" '[ $s -eq 1 ] && grep -q "does not divide" "$tmp/e5"'
"$bin" attend --param window=3 --text "$text" 2> "$tmp/e6" > /dev/null; s=$?
check "unknown parameter" '[ $s -eq 1 ] && grep -q "has no parameter .window." "$tmp/e6"'
"$bin" attend --text "$text" -o /nonexistent/dir/out.csv 2> "$tmp/e7"; s=$?
check "unwritable output path" '[ $s -eq 1 ] && [ ! -e /nonexistent/dir/out.csv ] && [ "$(wc -l < "$tmp/e7")" -eq 1 ]'
"$bin" attend --model "$tmp/nomodel" --text a 2> "$tmp/e8"; s=$?
check "missing checkpoint" '[ $s -eq 1 ] && grep -q "is not a directory" "$tmp/e8"'
"$bin" attend --text hi --device tpu 2> /dev/null; check "bad device value" '[ $? -eq 2 ]'

# generate: seeded, uses the cache
a=$("$bin" generate --prompt "ROMEO:" --tokens 40 --seed 3 2>/dev/null); b=$("$bin" generate --prompt "ROMEO:" --tokens 40 --seed 3 2>/dev/null)
check "generate is seeded" '[ "$a" = "$b" ] && [ ${#a} -ge 46 ]'
"$bin" generate --prompt "ROMEO:" --tokens 10 --temperature 0 2> "$tmp/gen.err" > /dev/null
check "generate reports the cache" 'grep -q "KV cache [0-9]* bytes" "$tmp/gen.err"'
# streaming past the context: a window's cache stays at its size (no refill); learned positions refuse in one line
"$bin" generate --variant sliding_window --prompt "ROMEO:" --tokens 600 --temperature 0 --stream 2> "$tmp/st.err" > /dev/null
check "generate --stream runs past the context" 'grep -q "600 tokens" "$tmp/st.err" && grep -q "after 606 positions (largest [0-9]* bytes; streamed past the 256-character context" "$tmp/st.err"'
"$bin" generate --model "$(dirname "$0")/../assets/models/mha_learned" --prompt "ROMEO:" --tokens 600 --stream 2> "$tmp/st2.err" > /dev/null; s=$?
check "generate --stream: learned positions refuse, one line" '[ $s -eq 1 ] && [ "$(wc -l < "$tmp/st2.err")" -eq 1 ] && grep -q "the stream has 606 characters, past this model.s limit of 256: learned absolute positions" "$tmp/st2.err"'

# eval
"$bin" eval --max-windows 20 > "$tmp/ev.txt"; check "eval prints nats and bits" 'grep -q "validation loss [0-9.]* nats/char, [0-9.]* bits/char" "$tmp/ev.txt"'

# train a tiny model, use it, and resume an interrupted run
"$bin" train --out "$tmp/tiny" --steps 30 --eval-every 10 --layers 1 --d-model 32 --heads 2 --context 32 --batch 4 > "$tmp/tr.txt" 2>&1
check "train writes a checkpoint" '[ -f "$tmp/tiny/model.safetensors" ] && [ -f "$tmp/tiny/config.json" ] && [ -f "$tmp/tiny/loss.csv" ] && ! ls "$tmp/tiny" | grep -q tmp'
"$bin" attend --model "$tmp/tiny" --text "to be" --layer 0 --head 1 > /dev/null 2>&1; check "attend on the new checkpoint" '[ $? -eq 0 ]'
mkdir -p "$tmp/models" && cp -r "$tmp/tiny" "$tmp/models/tiny"
"$bin" eval --all --models "$tmp/models" --max-windows 4 --markdown --plot "$tmp/curves.png" > "$tmp/all.md" 2> "$tmp/all.err"
# the last column: the difference to the MHA checkpoint of the same budget; tiny is that checkpoint itself
# ("reference", not a difference of +0 to itself)
check "eval --all: a Markdown row per checkpoint and the loss curves" 'grep -q "^| \`tiny\` | mha (impl=naive) | [0-9]* | 30 | [0-9.]* | [0-9.]* | [0-9]* | 0m[0-9]*s | reference |$" "$tmp/all.md" && grep -q "| vs MHA (same budget) |$" "$tmp/all.md" && head -c 8 "$tmp/curves.png" | od -c | grep -q "P   N   G"'
"$bin" eval --all --models "$tmp/nothing_here" > /dev/null 2> "$tmp/alle"; s=$?
check "eval --all: a missing folder is one line" '[ $s -eq 1 ] && [ "$(wc -l < "$tmp/alle")" -eq 1 ]'

# kv: the KV-cache calculator
"$bin" kv --preset llama-3-8b --seq 131072 > "$tmp/kv.txt"
check "kv: Llama-3-8B GQA fp16 at 128K is 16.0 GiB" 'grep -q "^GQA .* 16.0 GiB" "$tmp/kv.txt" && grep -q "^MHA .* 64.0 GiB" "$tmp/kv.txt"'
"$bin" kv --preset deepseek-v2 --seq 4096 --dtype bf16 --json > "$tmp/kv.json"
check "kv --json: DeepSeek-V2 MLA is 60 * 576 * 2 * 4096 B" 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); r=[x for x in d[\"rows\"] if x[\"variant\"]==\"MLA\"][0]; assert r[\"bytes\"]==60*576*2*4096 and not r[\"assumed\"]" "$tmp/kv.json"'
"$bin" kv --list > "$tmp/kvl.txt"; check "kv --list shows the bundled model" 'grep -q "^bundled  *4  *8  *8  *16" "$tmp/kvl.txt"'
"$bin" kv --custom layers=2,heads=8,kv_heads=2,head_dim=32 --seq 1000 --dtype fp32 > "$tmp/kvc.txt"
check "kv --custom" 'grep -q "^GQA .* 1000.0 KiB" "$tmp/kvc.txt"'
for bad in "--preset gpt-5 --seq 10" "--preset llama-2-7b --seq 0" "--preset llama-2-7b --seq 1048577" "--preset llama-2-7b --seq 10 --dtype int4"; do
  "$bin" kv $bad > /dev/null 2> "$tmp/kve"; s=$?
  check "kv $bad: one-line error" '[ $s -ne 0 ] && [ "$(wc -l < "$tmp/kve")" -eq 1 ]'
done

# bench: two variants, two short lengths, JSON, CSV and a PNG
"$bin" bench --variants mha,sliding_window --lengths 64,128 --repeats 1 --decode-tokens 4 --json "$tmp/b.json" --csv "$tmp/b.csv" --plot "$tmp/b.png" > "$tmp/b.txt" 2> "$tmp/b.err"
check "bench writes JSON with every point measured" 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); p=d[\"points\"]; assert len(p)==4 and all(x[\"status\"]==\"ok\" and x[\"median_ms\"]>0 and x[\"decode_tokens_per_s\"]>0 for x in p) and d[\"gemm_2048_gflops\"]>0 and len(d[\"slopes\"])==2" "$tmp/b.json"'
check "bench writes CSV and PNG, prints the slope" '[ "$(wc -l < "$tmp/b.csv")" -eq 5 ] && head -c 8 "$tmp/b.png" | od -c | grep -q "P   N   G" && grep -q "O(n^" "$tmp/b.txt" && grep -q "ETA" "$tmp/b.err"'
"$bin" bench --variants linformer --lengths 64 --repeats 1 --json "$tmp/bl.json" > /dev/null 2>&1
check "bench: a non-causal variant reports n/a for decode" 'python3 -c "import json,sys; p=json.load(open(sys.argv[1]))[\"points\"][0]; assert p[\"status\"]==\"ok\" and p[\"decode_tokens_per_s\"] is None and p[\"decode_note\"]==\"n/a (non-causal)\"" "$tmp/bl.json"'
"$bin" bench --variants nosuch --lengths 64 2> "$tmp/be"; s=$?
check "bench: unknown variant, one line" '[ $s -eq 1 ] && [ "$(wc -l < "$tmp/be")" -eq 1 ]'

# teaching layer: explanations, per-layer mixing, painted masks
"$bin" explain sliding_window > "$tmp/x.txt"; check "explain prints the formula with its sliders" 'grep -q "sliders in {braces}: window" "$tmp/x.txt" && grep -q "^  when" "$tmp/x.txt"'
"$bin" explain nope 2> "$tmp/x.err" > /dev/null; s=$?; check "explain unknown variant" '[ $s -ne 0 ] && grep -q "unknown variant .nope." "$tmp/x.err"'
"$bin" explain --all --markdown > "$tmp/xa.md"; check "explain --all --markdown: a section per registered variant" '[ "$(grep -c "^### " "$tmp/xa.md")" -eq "$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$tmp/v.json")" ] && grep -q "^### sliding_window$" "$tmp/xa.md" && grep -q "^| \`window\` | int | " "$tmp/xa.md"'
"$bin" explain 2> "$tmp/xn.err" > /dev/null; s=$?; check "explain without a name or --all" '[ $s -eq 2 ] && grep -q "variant is required" "$tmp/xn.err"'
"$bin" attend --layer-variants "sliding_window:window=4,sliding_window:window=4,mha,mha" --text "$text" --layer 0 --head 0 > "$tmp/lv.csv" 2>/dev/null
check "per-layer mixing: layer 0 is a window of 4" 'awk -F, "{n=0; for(i=1;i<=NF;i++) if(\$i>0) n++; if(n>4) bad=1} END{exit bad}" "$tmp/lv.csv"'
"$bin" attend --layer-variants "mha,mha" --text "$text" 2> "$tmp/lv.err" > /dev/null; s=$?
check "per-layer mixing needs one entry per layer" '[ $s -eq 1 ] && grep -qi "layer" "$tmp/lv.err"'
printf '1000\n1100\n0110\n0011\n' > "$tmp/mask.txt"
"$bin" attend --variant custom --mask-file "$tmp/mask.txt" --text "abcd" --layer 0 --head 0 > "$tmp/cm.csv" 2>/dev/null
check "painted mask from a file" '[ "$(sed -n 4p "$tmp/cm.csv" | cut -d, -f1-2)" = "0,0" ]'

# heads: role scores per layer x head, the induction probe, knock-outs, rollout and log-probabilities
"$bin" heads --text "$text" --period 40 --ablate --json "$tmp/h.json" --rollout "$tmp/h.npy" --logprobs "$tmp/h.csv" > "$tmp/h.txt" 2>/dev/null
check "heads: a row per layer x head with its roles" '[ "$(grep -cE "^ +[0-3] +[0-7] " "$tmp/h.txt")" -eq 32 ] && grep -q "induction probe: 40 random letters twice" "$tmp/h.txt"'
check "heads --json: bounded scores in [0, 1], knock-outs, the probe" 'python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); b=[r[\"name\"] for r in d[\"roles\"] if r[\"bounded\"]]
assert len(d[\"heads\"])==32 and d[\"probe\"][\"period\"]==40 and \"induction\" in b
assert all(0<=h[\"scores\"][n]<=1 for h in d[\"heads\"] for n in b)
assert len(d[\"layer_knockout\"][\"text_loss_change\"])==4 and d[\"layer_knockout\"][\"text_loss_change\"][0]>0" "$tmp/h.json"'
check "heads --rollout: [T, T] npy" 'python3 -c "import sys; b=open(sys.argv[1],\"rb\").read(); assert b\"($n,$n)\" in b[:128]" "$tmp/h.npy"'
check "heads --logprobs: a row per predicted character" '[ "$(wc -l < "$tmp/h.csv")" -eq "$n" ] && sed -n 2p "$tmp/h.csv" | grep -q "^1,\"i\",-"'
"$bin" bench --window 2> "$tmp/bw.err" > /dev/null; s=$?
check "bench --window alone: it goes with --interactive" '[ $s -eq 1 ] && grep -q "goes with --interactive" "$tmp/bw.err"'
env -u DISPLAY "$bin" bench --interactive --window 2> "$tmp/bw.err" > /dev/null; s=$?
check "bench --interactive --window without a display says so at once" '[ $s -eq 1 ] && grep -q "needs a display: run it under xvfb-run" "$tmp/bw.err"'
"$bin" heads --text "$text" --threshold nope=0.3 2> "$tmp/h.err" > /dev/null; s=$?
check "heads: unknown role in --threshold, one line" '[ $s -eq 1 ] && [ "$(wc -l < "$tmp/h.err")" -eq 1 ] && grep -q "previous_token" "$tmp/h.err"'
"$bin" heads --text "$text" --period 200 2> "$tmp/h.err" > /dev/null; s=$?
check "heads: a probe longer than the context" '[ $s -eq 1 ] && grep -q "period must lie in 2..128" "$tmp/h.err"'
"$bin" attend --text "$text" --layer 0 --head 0 --logprobs "$tmp/lp.json" > /dev/null 2>&1
check "attend --logprobs json: T - 1 log-probabilities, all <= 0" 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d[\"logprobs\"])==$n-1 and max(d[\"logprobs\"])<=0" "$tmp/lp.json"'

# past the training context: loss by position (JSON: one mean per position), pooled heatmaps, the learned-position limit
"$bin" extrapolate --variants sliding_window,mha_alibi --length 512 --windows 2 --json "$tmp/x.json" --plot "$tmp/x.png" > "$tmp/x.out" 2> "$tmp/x.err"
check "extrapolate: a mean loss at each of 512 positions per column, and the plot" 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d[\"columns\"]; assert d[\"context\"]==256 and [x[\"spec\"] for x in c]==[\"sliding_window\",\"mha_alibi\"] and all(len(x[\"mean_loss\"])==512 and 0<min(x[\"mean_loss\"]) for x in c)" "$tmp/x.json" && [ -s "$tmp/x.png" ]'
"$bin" extrapolate --variants mha_learned --length 512 2> "$tmp/x.err" > /dev/null; s=$?
check "extrapolate: learned positions stop at the context, one line" '[ $s -eq 1 ] && [ "$(wc -l < "$tmp/x.err")" -eq 1 ] && grep -q "past this model.s limit of 256: learned absolute positions" "$tmp/x.err"'
"$bin" extrapolate --variants mha --length 32767 --windows 16 2> "$tmp/x.err" > /dev/null; s=$?
check "extrapolate: windows that do not fit the held-out text" '[ $s -eq 1 ] && grep -q "at most 3 windows of this length" "$tmp/x.err"'
"$bin" render --length 2048 --compare sliding_window,longformer --pixels 256 -o "$tmp/p.json" 2> "$tmp/p.err"
check "render --length: two pooled 256 x 256 maps" 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"shape\"]==[2,256,256] and max(max(r) for r in d[\"panels\"][0][\"values\"])>0.1" "$tmp/p.json"'

for c in variants attend generate eval train kv bench explain advise render heads extrapolate; do
  "$bin" $c --help > /dev/null 2>&1 || fail "$c --help"
done
echo "$fails failure(s)"
[ "$fails" -eq 0 ]
