#!/usr/bin/env bash
# `attnscope render` end to end on the bundled checkpoint: every output format, the shipped scenes, --force,
# and that bad paths, sizes and scene files give one clear line and leave no file behind.
set -uo pipefail
bin="$1"
here="$(cd "$(dirname "$0")" && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }
text="ROMEO:
But, soft!"

# PNG: a real PNG, identical bytes on a second run
"$bin" render --text "$text" --compare mha,gqa:groups=2,mqa -o "$tmp/c.png" 2> "$tmp/c.err"
check "png written" '[ "$(head -c 8 "$tmp/c.png" | od -An -tx1 | tr -d " \n")" = "89504e470d0a1a0a" ] && grep -q "3 panels" "$tmp/c.err"'
"$bin" render --text "$text" --compare mha,gqa:groups=2,mqa -o "$tmp/c2.png" 2>/dev/null
check "same inputs give the same bytes" 'cmp -s "$tmp/c.png" "$tmp/c2.png"'

# existing files need --force
"$bin" render --text "$text" -o "$tmp/c.png" 2> "$tmp/e1"; s=$?
check "existing file is kept without --force" '[ $s -eq 1 ] && grep -q "exists: add --force" "$tmp/e1" && cmp -s "$tmp/c.png" "$tmp/c2.png"'
"$bin" render --text "$text" -o "$tmp/c.png" --force 2>/dev/null
check "--force overwrites" '! cmp -s "$tmp/c.png" "$tmp/c2.png"'

# SVG: well-formed XML with vector text: title, axis titles, character labels
"$bin" render --text "$text" --variant gqa --param groups=4 --layer 1 --head 2 -o "$tmp/g.svg" 2>/dev/null
check "svg is well-formed with its labels" 'python3 - "$tmp/g.svg" <<PY
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
assert any("gqa (groups=4)" in t and "layer 1, head 2" in t for t in texts), texts[:5]
assert "query" in texts and "key" in texts
assert "R" in texts and "\u21b5" in texts and "\u2423" in texts  # characters, newline and space labels
assert any(i.get("{http://www.w3.org/1999/xlink}href", "").startswith("data:image/png;base64,") for i in root.iter("{http://www.w3.org/2000/svg}image"))
PY'

# CSV / NPY / JSON: the raw matrix, the same numbers as `attnscope attend`
"$bin" render --text "$text" --layer 2 --head 5 -o "$tmp/m.csv" 2>/dev/null
"$bin" attend --text "$text" --layer 2 --head 5 -o "$tmp/a.csv" 2>/dev/null
check "csv holds the attend matrix" 'python3 - "$tmp/m.csv" "$tmp/a.csv" <<PY
import sys
r = [[float(x) for x in l.split(",")] for l in open(sys.argv[1])]
a = [[float(x) for x in l.split(",")] for l in open(sys.argv[2])]
assert len(r) == len(a) == 17 and all(len(x) == 17 for x in r)
assert all(abs(p - q) <= 1e-5 * max(1, abs(q)) for x, y in zip(r, a) for p, q in zip(x, y))
PY'
"$bin" render --text "$text" --grid -o "$tmp/g.npy" 2>/dev/null
"$bin" attend --text "$text" --format npy -o "$tmp/a.npy" 2>/dev/null
check "grid npy is [L, H, T, S] and equals attend's" 'python3 - "$tmp/g.npy" "$tmp/a.npy" <<PY
import sys, struct
def load(p):
    b = open(p, "rb").read(); n = 10 + int.from_bytes(b[8:10], "little")
    return b[:n], struct.unpack("<%df" % ((len(b) - n) // 4), b[n:])
hg, g = load(sys.argv[1]); ha, a = load(sys.argv[2])
assert b"(4,8,17,17)" in hg, hg
assert len(g) == len(a) == 4 * 8 * 17 * 17 and max(abs(x - y) for x, y in zip(g, a)) < 1e-6
PY'
"$bin" render --text "$text" --compare mha,mqa --view diff --colormap diverging -o "$tmp/d.json" 2>/dev/null
check "diff json: A, B and A - B with KL per row" 'python3 - "$tmp/d.json" <<PY
import sys, json
d = json.load(open(sys.argv[1]))
p = d["panels"]; assert d["shape"] == [3, 17, 17] and [x["view"] for x in p] == ["heatmap", "heatmap", "diff"]
assert all(abs(p[2]["values"][i][j] - (p[0]["values"][i][j] - p[1]["values"][i][j])) < 1e-6 for i in range(17) for j in range(17))
assert len(p[2]["row_stat"]) == 17 and "KL(mha" in p[2]["caption"]
PY'
"$bin" render --text "$text" --variant strided --param stride=8 --view mask --colormap cividis --scale log --png-scale 2 -o "$tmp/mask.png" 2>/dev/null
check "mask view at png-scale 2" '[ -s "$tmp/mask.png" ]'

# the shipped scenes render, to PNG and SVG, without skipping anything
for f in "$here"/../assets/scenes/*.json; do
  n=$(basename "$f" .json)
  "$bin" render --scene "$f" -o "$tmp/$n.png" 2> "$tmp/$n.err" && "$bin" render --scene "$f" -o "$tmp/$n.svg" 2>> "$tmp/$n.err"
  check "scene $n renders cleanly" '[ -s "$tmp/$n.png" ] && [ -s "$tmp/$n.svg" ] && ! grep -q "scene:" "$tmp/$n.err"'
done
"$bin" render --scene "$here/../assets/scenes/mla_rank.json" --colormap magma -o "$tmp/mla_magma.png" 2>/dev/null
check "style flags override a scene" '[ -s "$tmp/mla_magma.png" ] && ! cmp -s "$tmp/mla_magma.png" "$tmp/mla_rank.png"'

# bad input: one line, non-zero status, no file left behind
one_line() { [ "$(wc -l < "$1")" -eq 1 ]; }
"$bin" render --text "$text" -o /nonexistent/dir/x.png 2> "$tmp/e2"; s=$?
check "unwritable path" '[ $s -eq 1 ] && one_line "$tmp/e2" && grep -q "does not exist" "$tmp/e2" && [ ! -e /nonexistent/dir/x.png ]'
"$bin" render --text "$text" -o "$tmp/x.bmp" 2> "$tmp/e3"; s=$?
check "unknown output format" '[ $s -eq 1 ] && one_line "$tmp/e3" && grep -q "must end in .png, .svg" "$tmp/e3"'
"$bin" render --text "$(head -c 256 "$here/../assets/tinyshakespeare.txt")" --grid --zoom 8 --png-scale 4 -o "$tmp/huge.png" 2> "$tmp/e4"; s=$?
check "absurd size" '[ $s -eq 1 ] && one_line "$tmp/e4" && grep -q "more than 16384 a side" "$tmp/e4" && [ -z "$(ls "$tmp" | grep huge)" ]'
"$bin" render --text "$text" --view diff -o "$tmp/d.png" 2> "$tmp/e5"; s=$?
check "diff needs two variants" '[ $s -eq 1 ] && grep -q "needs two variants" "$tmp/e5"'
"$bin" render --text "$text" --compare mha,gqa:groups=3 -o "$tmp/g3.png" 2> "$tmp/e6"; s=$?
check "impossible parameter" '[ $s -eq 1 ] && one_line "$tmp/e6" && grep -q "does not divide" "$tmp/e6" && [ ! -e "$tmp/g3.png" ]'
"$bin" render --text "$text" --layer 9 -o "$tmp/l9.png" 2> "$tmp/e7"; s=$?
check "layer out of range" '[ $s -eq 1 ] && grep -q "layer 9, the model has 4" "$tmp/e7"'
"$bin" render --text "$text" --compare mha,bogus -o "$tmp/b.png" 2> "$tmp/e8"; s=$?
check "unknown variant" '[ $s -eq 1 ] && one_line "$tmp/e8" && grep -q "bogus" "$tmp/e8"'
"$bin" render --scene "$tmp/c.err" -o "$tmp/s.png" 2> "$tmp/e9"; s=$?
check "scene that is not JSON" '[ $s -eq 1 ] && one_line "$tmp/e9" && grep -q "is not JSON" "$tmp/e9" && [ ! -e "$tmp/s.png" ]'
echo '{"columns": [{"variant": "nope"}]}' > "$tmp/none.json"
"$bin" render --scene "$tmp/none.json" -o "$tmp/s.png" 2> "$tmp/e10"; s=$?
check "scene without usable columns" '[ $s -eq 1 ] && grep -q "unknown variant .nope." "$tmp/e10" && [ ! -e "$tmp/s.png" ]'
cat > "$tmp/partial.json" <<'JSON'
{"version": 0, "text": "ROMEO:\nhi", "colormap": "rainbow",
 "columns": [{"variant": "mha"}, {"variant": "nope"}, {"variant": "mqa", "head": 99}, {"variant": "gqa", "params": {"groups": 3}}]}
JSON
"$bin" render --scene "$tmp/partial.json" -o "$tmp/partial.png" 2> "$tmp/e11"; s=$?
check "partial scene renders what it can and says what it skipped" '[ $s -eq 0 ] && [ -s "$tmp/partial.png" ] && grep -q "1 panel)" "$tmp/e11" && grep -q "scene version 0" "$tmp/e11" && grep -q "rainbow" "$tmp/e11" && grep -q "unknown variant .nope." "$tmp/e11" && grep -q "head 99" "$tmp/e11" && grep -q "does not divide" "$tmp/e11"'
"$bin" render --scene "$tmp/partial.json" --text hi -o "$tmp/p2.png" 2>/dev/null; s=$?
check "--scene excludes --text" '[ $s -eq 2 ]'
check "no temporary files left" '[ -z "$(ls -a "$tmp" | grep "\.tmp\.")" ]'

echo "$fails failures"
[ "$fails" -eq 0 ]
