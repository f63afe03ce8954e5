#!/bin/sh
# package_test.sh BUILD_DIR WORK_DIR: the Debian package as a user gets it. cpack packs the already built binary;
# the .deb is extracted (dpkg-deb -x) into a read-only root, and its binary runs from another folder with HOME
# and the XDG variables in WORK_DIR: the CLI, then the window under Xvfb for a few frames. lintian must report no
# error (its warnings are printed).
set -eu
build=$1
work=$2
[ -d "$work/root" ] && chmod -R u+w "$work/root"
rm -rf "$work"
mkdir -p "$work/root" "$work/home" "$work/cwd"
trap 'chmod -R u+w "$work/root" 2>/dev/null || true' EXIT
(cd "$build" && cpack -G DEB -B "$work/cpack" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/cpack/attnscope_*.deb)
echo "package: $deb ($(du -k "$deb" | cut -f1) KiB)"
dpkg-deb -x "$deb" "$work/root"
for f in usr/bin/attnscope usr/share/attnscope/tinyshakespeare.txt usr/share/attnscope/models/mha/model.safetensors \
  usr/share/attnscope/bench.json \
  usr/share/applications/attnscope.desktop usr/share/icons/hicolor/scalable/apps/attnscope.svg \
  usr/share/icons/hicolor/256x256/apps/attnscope.png; do
  [ -e "$work/root/$f" ] || { echo "missing in the package: $f"; exit 1; }
done
# the PNG icon: a 256 x 256 PNG with more than the ground's colour in it (cells drawn)
python3 - "$work/root/usr/share/icons/hicolor/256x256/apps/attnscope.png" <<'PY' || { echo "bad PNG icon"; exit 1; }
import struct, sys, zlib
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n' and d[12:16] == b'IHDR', 'not a PNG'
w, h = struct.unpack('>II', d[16:24])
assert (w, h) == (256, 256), (w, h)
idat, i = b'', 8
while i < len(d):
    n, = struct.unpack('>I', d[i:i + 4]); t = d[i + 4:i + 8]
    if t == b'IDAT': idat += d[i + 8:i + 8 + n]
    i += 12 + n
raw = zlib.decompress(idat)
assert len(raw) == 256 * (1 + 3 * 256), 'not 8-bit RGB'
rows = {raw[r * 769:(r + 1) * 769] for r in range(256)}
assert len(rows) > 8, 'no cells drawn'  # a plain square would give a handful of distinct rows
PY
chmod -R a-w "$work/root"
bin=$work/root/usr/bin/attnscope
cd "$work/cwd"
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/config" XDG_DATA_HOME="$work/home/data"
unset ATTNSCOPE_ASSETS
"$bin" --version | grep -q '^attnscope [0-9]'
"$bin" variants | grep -q sliding_window
"$bin" attend --text "ROMEO: hi" --format csv -o attend.csv
"$bin" eval --max-windows 2 | grep -q 'nats/char'
"$bin" render --variant mha --text "ROMEO: hi" -o map.png
[ -s attend.csv ] && [ -s map.png ]
if command -v xvfb-run >/dev/null; then
  xvfb-run -a -s "-screen 0 1280x800x24" "$bin" gui --width 1280 --height 800 \
    --script 'idle; expect_results; help_window about; wait 3; quit' >gui.log 2>&1 || { cat gui.log; exit 1; }
  # the data the window read came from the package's tree (the checkout the binary was built from is no fallback)
  grep -qx "  about: bundled data (read only): $work/root/usr/share/attnscope" gui.log ||
    { grep about: gui.log; echo "the installed window did not read its data from $work/root/usr/share/attnscope"; exit 1; }
  # what the window keeps went to the XDG folder, nothing into the (read-only) install tree
  [ -s "$XDG_CONFIG_HOME/attnscope/settings.json" ] || { echo "no settings.json in $XDG_CONFIG_HOME/attnscope"; exit 1; }
fi
if command -v lintian >/dev/null; then
  lintian "$deb" >"$work/lintian.txt" 2>&1 || true
  cat "$work/lintian.txt"
  if grep -q '^E:' "$work/lintian.txt"; then echo "lintian reports errors"; exit 1; fi
fi
echo "package test: ok"
