#!/usr/bin/env python3
"""Soak the window with real X input (issue 20): the program under Xvfb on the bundled model with six columns, and
random clicks, drags, wheel turns and keys sent by xdotool for SOAK_SECONDS (default 3600). The resident memory
(VmRSS) is sampled every 5 s; the run passes when the program is still alive at the end and its last sample is
within 50 MiB of the sample taken after the first minute.

Usage: scripts/soak_x.py [--seconds N] [--out DIR] [--seed S] [--binary build/attnscope]
Writes DIR/rss.tsv (seconds, kB), DIR/actions.log (one line per action), DIR/gui.log (the program's output),
DIR/end.png (the window at the end, taken by the program's own script: `sleep` keeps the window live, so the
X input reaches it meanwhile; `print` logs its state) and DIR/summary.txt.
Needs xvfb (Xvfb), xdotool. Nothing is clicked in the top 30 pixels (the menu bar: File > Quit would end the run).
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time

W, H = 1920, 1080
COLUMNS = ["mha", "gqa:groups=2", "mqa", "sliding_window:window=32", "linear", "mla"]
KEYS = list("abcdefghijklmnopqrstuvwxyz") + ["space", "BackSpace", "Left", "Right", "Up", "Down", "Return",
                                              "Escape", "Home", "End", "Delete", "period", "comma"]


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def free_display():
    for n in range(90, 200):
        if not os.path.exists("/tmp/.X%d-lock" % n):
            return n
    raise SystemExit("soak_x: no free X display number in 90..199")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", "3600")))
    ap.add_argument("--out", default="soak-report")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--binary", default="build/attnscope")
    a = ap.parse_args()
    for tool in ("Xvfb", "xdotool"):
        if not shutil.which(tool):
            raise SystemExit("soak_x: %s is not installed (apt-get install xvfb xdotool)" % tool)
    if not os.access(a.binary, os.X_OK):
        raise SystemExit("soak_x: %s is not an executable: build the program first" % a.binary)
    os.makedirs(a.out, exist_ok=True)
    disp = free_display()
    env = dict(os.environ, DISPLAY=":%d" % disp, XDG_CONFIG_HOME=os.path.join(a.out, "config"))
    xvfb = subprocess.Popen(["Xvfb", ":%d" % disp, "-screen", "0", "%dx%dx24" % (W, H), "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    shot = os.path.abspath(os.path.join(a.out, "end.png"))
    cmd = [a.binary, "gui", "--width", str(W), "--height", str(H),
           "--script", "sleep %d; print; shot %s; sleep 600" % (a.seconds + 5, shot)]
    for c in COLUMNS:
        cmd += ["--column", c]
    log = open(os.path.join(a.out, "gui.log"), "w")
    gui = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    rng = random.Random(a.seed)
    actions = open(os.path.join(a.out, "actions.log"), "w")
    samples = []
    counts = {}

    def xdo(*args):
        subprocess.run(["xdotool"] + [str(x) for x in args], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)

    def act():
        r = rng.random()
        x, y = rng.randrange(W), rng.randrange(30, H)
        if r < 0.35:
            kind = "click"
            xdo("mousemove", x, y, "click", 1)
        elif r < 0.55:
            kind = "drag"
            dx, dy = rng.randint(-300, 300), rng.randint(-60, 60)
            xdo("mousemove", x, y, "mousedown", 1)
            for s in range(1, 5):
                xdo("mousemove", max(0, min(W - 1, x + dx * s // 4)), max(30, min(H - 1, y + dy * s // 4)))
            xdo("mouseup", 1)
        elif r < 0.70:
            kind = "wheel"
            xdo("mousemove", x, y, "click", "--repeat", rng.randint(1, 3), rng.choice([4, 5]))
        elif r < 0.90:
            kind = "key"
            xdo("key", "--delay", 20, *[rng.choice(KEYS) for _ in range(rng.randint(1, 4))])
        else:
            kind = "move"
            xdo("mousemove", x, y)
        counts[kind] = counts.get(kind, 0) + 1
        actions.write("%.1f %s %d %d\n" % (time.time() - t0, kind, x, y))

    t0 = time.time()
    next_sample = 0.0
    died = None
    try:
        time.sleep(3)
        while True:
            now = time.time() - t0
            if gui.poll() is not None:
                died = "the program exited with status %d after %.0f s" % (gui.returncode, now)
                break
            if now >= next_sample:
                kb = rss_kb(gui.pid)
                if kb:
                    samples.append((now, kb))
                next_sample += 5
            if now >= a.seconds:
                break
            act()
            time.sleep(rng.uniform(0.05, 0.3))
    finally:
        actions.close()
        for _ in range(60):  # the script's `shot`, 5 s after the input stopped
            if died or os.path.exists(shot) or gui.poll() is not None:
                break
            time.sleep(1)
        if gui.poll() is None:
            gui.send_signal(signal.SIGTERM)
            try:
                gui.wait(timeout=30)
            except subprocess.TimeoutExpired:
                gui.kill()
        xvfb.terminate()
    with open(os.path.join(a.out, "rss.tsv"), "w") as f:
        for t, kb in samples:
            f.write("%.0f\t%d\n" % (t, kb))
    first = next((kb for t, kb in samples if t >= 60), None)
    lines = ["soak_x: %d s of random X input (seed %d), columns %s" % (a.seconds, a.seed, " ".join(COLUMNS)),
             "actions: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())) +
             " (%d in all)" % sum(counts.values())]
    ok = died is None and first is not None
    if died:
        lines.append("FAIL: " + died)
    if samples:
        last, peak = samples[-1][1], max(kb for _, kb in samples)
        lines.append("RSS: after 1 min %s MiB, at the end %.1f MiB, peak %.1f MiB, %d samples" %
                     ("%.1f" % (first / 1024) if first else "-", last / 1024, peak / 1024, len(samples)))
        if first is not None:
            grew = (last - first) / 1024
            lines.append("growth after the first minute: %+.1f MiB (limit +50)" % grew)
            ok = ok and grew <= 50
    lines.append("PASS" if ok else "FAIL")
    text = "\n".join(lines) + "\n"
    open(os.path.join(a.out, "summary.txt"), "w").write(text)
    sys.stdout.write(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
