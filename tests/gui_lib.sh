# Shared by the GUI test scripts (sourced): failure, running under Xvfb when there is no display, and the tiny
# deterministic model they all drive. Needs $bin (the attnscope binary) and $work (the work folder).
fail() { echo "FAIL: $*"; exit 1; }
# run_x WxH COMMAND...: the command on the current display, or under xvfb-run with a WxH screen.
run_x() {
  size=$1
  shift
  if [ -n "${DISPLAY:-}" ]; then "$@"; else xvfb-run -a -s "-screen 0 ${size}x24" "$@"; fi
}
# tiny_model DIR: a 2-layer, d 32, 4-head, context-64 checkpoint (2 steps: seconds), trained once.
tiny_model() {
  if [ ! -f "$1/model.safetensors" ]; then
    "$bin" train --out "$1" --steps 2 --layers 2 --d-model 32 --heads 4 --context 64 --batch 2 \
      --eval-every 1000 >"$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
  fi
}
