#!/bin/sh
# GUI soak (issue 10): the real program under Xvfb, driven by the script runner with thousands of random but valid
# actions from a fixed seed: typing into the text box, whole texts (empty, too long for the context, unknown
# characters), slider drags, columns added and removed, variants and parameters switched (impossible ones
# included), layers, heads, views, scales, colormaps, zoom, the diff view, arrow keys, passages, UI scale.
# Asserts: a clean exit, no script failure, every error shown in a column is one of the known clear messages,
# the end state (everything set back to valid) has a result in every column and no error, and the resident memory
# does not keep growing (sampled from /proc/PID/status; after the warm-up, last <= first * 1.5 + 100 MB).
# Bounded in time: SOAK_SECONDS (default 60) of actions, the count calibrated by a short first run
# (SOAK_ACTIONS fixes it instead); SOAK_SEED picks another random sequence.
# Usage: gui_soak.sh ATTNSCOPE_BINARY [WORK_DIR]
set -eu
bin=$1
work=${2:-$(mktemp -d)}
seconds=${SOAK_SECONDS:-60}
seed=${SOAK_SEED:-1010}
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

model="$work/model"  # a tiny checkpoint of our own (2 layers, 4 heads, context 64), as gui_smoke.sh
if [ ! -f "$model/model.safetensors" ]; then
  "$bin" train --out "$model" --steps 2 --layers 2 --d-model 32 --heads 4 --context 64 --batch 2 \
    --eval-every 1000 >"$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
fi
"$bin" variants --json >"$work/variants.json"

# gen.py N SEED OUT VARIANTS_JSON: N random valid actions, a state check every 50, and a valid end state.
cat >"$work/gen.py" <<'PY'
import json, random, sys
n, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
variants = {v["name"]: v for v in json.load(open(sys.argv[4]))}
rng = random.Random(seed)
LAYERS, HEADS, MAXCOL = 2, 4, 4  # more columns than fit at 1280 px would hide their buttons
vocab = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
cols = ["mha", "gqa"]          # the --column arguments below
exact = True                   # no remove click yet (a click can miss: the real columns may then differ)
lines = []
def text():
    r = rng.random()
    if r < 0.05: return ""                                      # empty
    if r < 0.15: return "".join(rng.choice(vocab) for _ in range(rng.randint(65, 400)))  # past the context
    if r < 0.25: return "caf\u00e9 na\u00efve " + "".join(rng.choice(vocab) for _ in range(20))  # unknown chars
    return "".join(rng.choice(vocab) for _ in range(rng.randint(1, 64))).replace(";", ",")
def esc(t):  # the script's text command: \n for newlines, no ';' (separator)
    return t.replace("\n", "\\n").replace(";", ",")
def value(p):
    if p["type"] == "choice": return str(rng.randrange(len(p["choices"])))
    if p["type"] == "bool": return str(rng.randint(0, 1))
    if p["type"] == "int": return str(rng.randint(int(p["min"]), int(p["max"])))
    return "%.3f" % rng.uniform(p["min"], p["max"])
names = [v for v in variants]
DRAGGABLE = {"sliding_window.window", "dilated.window", "block_local.block", "longformer.window", "sinks.window",
             "lsh.buckets", "softcap.cap", "performer.features", "linformer.k", "nystrom.landmarks", "mla.rank",
             "tiled.br", "differential.lambda"}
def act():
    global exact
    c = rng.randrange(len(cols))
    v = variants[cols[c]]
    # sliders always shown (divisor parameters are combos: a drag would open a popup)
    sliders = [p for p in v["params"] if cols[c] + "." + p["name"] in DRAGGABLE]
    r = rng.random()
    if r < 0.08: lines.append("text " + esc(text()))
    elif r < 0.12:
        t = "".join(rng.choice(vocab[1:]) for _ in range(rng.randint(1, 12))).replace(";", ",")
        lines.extend(["click @text", "type " + t, "move -10 -10"])
    elif r < 0.24:
        cols[c] = rng.choice(names)
        lines.append("variant %d %s" % (c, cols[c]))
    elif r < 0.38 and v["params"]:
        p = rng.choice(v["params"])
        lines.append("param %d %s %s" % (c, p["name"], value(p)))
    elif r < 0.42:
        # (parameter sliders only while the script's column model is exact: a missed remove click shifts them)
        what = rng.choice(["layer", "head"] + (["param." + p["name"] for p in sliders] if exact else []))
        lines.extend(["drag @col%d.%s %d 0" % (c, what, rng.randint(-300, 300)), "move -10 -10"])
    elif r < 0.52: lines.append("layer %d %d" % (c, rng.randrange(LAYERS)))
    elif r < 0.58: lines.append("head %d %d" % (c, rng.randrange(HEADS)))
    elif r < 0.62 and len(cols) < MAXCOL:
        cols.append(rng.choice(names))
        lines.append("add_column " + cols[-1])
    elif r < 0.66 and len(cols) > 1:
        # settled first: a result arriving moves the header's buttons between frames, and the click would miss
        lines.extend(["idle", "wait 2", "click @col%d.remove" % c, "wait 3", "move -10 -10"])
        del cols[c]  # (a click that misses leaves one more column: indices below len(cols) stay valid)
        exact = False
    elif r < 0.69: lines.append("view %d %s" % (c, rng.choice(["weights", "mask"])))
    elif r < 0.72: lines.append("scale " + rng.choice(["linear", "log", "row"]))
    elif r < 0.75: lines.append("colormap " + rng.choice(["viridis", "magma", "cividis", "gray"]))
    elif r < 0.77: lines.append("exclude_first %d" % rng.randint(0, 1))
    elif r < 0.79: lines.append("link %d" % rng.randint(0, 1))
    elif r < 0.82: lines.append("zoom %d %.2f" % (c, rng.choice([1, 1, 1.5, 2, 4, 8])))
    elif r < 0.85: lines.append("zoom %d 1" % c)  # (the diff window would cover the column buttons: at the end)
    elif r < 0.90: lines.extend(["move 5 5", "key " + rng.choice(["left", "right", "up", "down"]), "move -10 -10"])
    elif r < 0.92: lines.append("source passage")
    elif r < 0.93: lines.append("uiscale %.2f" % rng.choice([0.9, 1.0, 1.0, 1.25]))
    elif r < 0.94: lines.append("idle")
    elif r < 0.96: lines.append("wait %d" % rng.randint(1, 4))
    else: lines.append("layer %d %d" % (c, rng.randrange(LAYERS)))
for i in range(n):
    act()
    if i % 50 == 49: lines.extend(["idle", "print"])
# the end: every column valid again, on a valid text
lines.append("text ROMEO: But, soft! what light through yonder window breaks")
for c in range(len(cols)): lines.extend(["variant %d %s" % (c, rng.choice(["mha", "mqa", "sliding_window"])), "layer %d 1" % c])
lines.append("diff 0 %d signed" % (len(cols) - 1))
lines.extend(["idle", "expect_results", "print"])
open(out, "w").write("\n".join(lines) + "\n")
PY

# run_gui NAME SCRIPT: a scripted run in the background; its PID in $work/NAME.pid, RSS samples (seconds since
# the start, kB) in $work/NAME.rss, the output in $work/NAME.out. Returns the program's status.
run_gui() {
  name=$1
  export XDG_CONFIG_HOME="$work/config_$name"
  rm -rf "$XDG_CONFIG_HOME" "$work/$name.pid" "$work/$name.rss"
  xvfb-run -a -s "-screen 0 1280x800x24" sh -c 'echo $$ >"$0"; exec "$@"' "$work/$name.pid" \
    "$bin" gui --model "$model" --width 1280 --height 800 --column mha --column gqa:groups=2 \
    --script "$2" --max-seconds 120 >"$work/$name.out" 2>&1 &
  wrapper=$!
  t0=$(date +%s)
  while [ ! -s "$work/$name.pid" ] && kill -0 "$wrapper" 2>/dev/null; do sleep 0.1; done
  pid=$(cat "$work/$name.pid" 2>/dev/null || echo 0)
  limit=$((seconds * 4 + 300))
  while kill -0 "$wrapper" 2>/dev/null; do
    rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$(($(date +%s) - t0)) $rss" >>"$work/$name.rss"
    if [ $(($(date +%s) - t0)) -gt "$limit" ]; then
      echo "FAIL: $name: still running after $limit s (hang?)"; kill "$pid" 2>/dev/null || true
    fi
    sleep 0.5
  done
  wait "$wrapper"
}

# 1) calibration: 150 actions, to size the real run to SOAK_SECONDS
if [ -n "${SOAK_ACTIONS:-}" ]; then
  actions=$SOAK_ACTIONS
else
  python3 "$work/gen.py" 150 "$seed" "$work/probe.script" "$work/variants.json"
  run_gui probe "$work/probe.script" || { tail -30 "$work/probe.out"; fail "the calibration run failed"; }
  # the script's own timestamps (t=SECONDS), first to last command: the start-up does not count
  ms=$(sed -n 's/^t=\([0-9.]*\) s  script: .*/\1/p' "$work/probe.out" | awk 'NR == 1 { a = $1 } { b = $1 } END { printf "%d", (b - a) * 1000 }')
  [ "${ms:-0}" -ge 100 ] || ms=100
  actions=$((150 * seconds * 1000 / ms))
  [ "$actions" -ge 300 ] || actions=300
  echo "calibration: 150 actions in ${ms} ms -> $actions actions for ${seconds} s"
fi

# 2) the soak
python3 "$work/gen.py" "$actions" "$((seed + 1))" "$work/soak.script" "$work/variants.json"
lines=$(wc -l <"$work/soak.script")
t0=$(date +%s)
status=0
run_gui soak "$work/soak.script" || status=$?
took=$(($(date +%s) - t0))
out="$work/soak.out"
grep -a 'attnscope gui: script\|still computing\|internal error\|terminate called\|Segmentation\|Aborted' "$out" | head -5
[ "$status" -eq 0 ] || { tail -40 "$out"; fail "attnscope gui exited with status $status after $took s"; }

# every error a column showed is one of the known clear messages (impossible parameters, texts the model cannot
# take); anything else is a bug
known='does not divide|has no parameter|must be even|the text is empty: type at least one character|cannot convert|outside [0-9.]*\.\.[0-9.]*|must be a multiple|must divide|needs a second text|at most .* for this model|larger than the context|exceeds|is too large for|heads? .* not divisible|must be at most|must be at least'
grep -a '^  column [0-9]*: .*: error: ' "$out" | sed 's/^  column [0-9]*: [^:]*: error: //' | sort | uniq -c | sort -rn >"$work/errors.txt" || true
unknown=$(sed 's/^ *[0-9]* //' "$work/errors.txt" | grep -Ev "$known" || true)
echo "errors shown in columns (count, message):"
head -20 "$work/errors.txt"
[ -z "$unknown" ] || { echo "$unknown" | head -10; fail "columns showed errors that are not among the known clear messages"; }
grep -aq 'internal error' "$out" && fail "an internal error was shown"

# the end state: every column has its result, none an error
final=$(grep -a '^attnscope gui: frame' "$out" | tail -1)
echo "final: $final"
echo "$final" | grep -q ' 0 errors' || fail "the end state still shows an error"
echo "$final" | sed 's/.* \([0-9]*\) columns, \([0-9]*\) results.*/\1 \2/' | { read -r c r; [ "$c" = "$r" ] ; } ||
  fail "not every column has a result at the end"
prints=$(grep -ac '^attnscope gui: frame' "$out")
removes=$(grep -ac 'script: click @col[0-9]*.remove' "$out" || true)
echo "column remove clicks: $removes; columns at the end: $(echo "$final" | sed 's/.* \([0-9]*\) columns.*/\1/')"
frames=$(echo "$final" | sed 's/^attnscope gui: frame \([0-9]*\),.*/\1/')

# resident memory: after the warm-up (the first 20% of the run, at least 5 s), the last sample against the first
awk -v took="$took" '
  { t[NR] = $1; r[NR] = $2 }
  END {
    if (NR < 4) { print "FAIL: only " NR " RSS samples"; exit 1 }
    warm = took * 0.2; if (warm < 5) warm = 5
    first = 0
    for (i = 1; i <= NR; i++) if (t[i] >= warm) { first = r[i]; ft = t[i]; break }
    if (!first) { first = r[int(NR / 2)]; ft = t[int(NR / 2)] }
    last = r[NR]; max = 0
    for (i = 1; i <= NR; i++) if (r[i] > max) max = r[i]
    limit = first * 1.5 + 100 * 1024
    printf "RSS: first %.1f MB (t=%d s, after warm-up), last %.1f MB (t=%d s), max %.1f MB, limit %.1f MB, %d samples\n",
           first / 1024, ft, last / 1024, t[NR], max / 1024, limit / 1024, NR
    if (last > limit) { print "FAIL: resident memory keeps growing"; exit 1 }
  }' "$work/soak.rss" || exit 1

echo "PASS: gui soak: $actions actions ($lines script lines) in $took s, $frames frames, $prints state checks (seed $((seed + 1)))"
