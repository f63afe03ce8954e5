#!/usr/bin/env bash
# Trains the shipped comparison checkpoints with the bundled mha's recipe: one model per attention variant, the
# same size and the same budget for every one (4 layers, d_model 128, 8 heads, context 256, batch 32, STEPS = 1000
# steps, warm-up 50, seed 1337, validation every 100 steps on the whole held-out split).
# Usage: scripts/train_all.sh [BIN] [OUTDIR] [NAME...]   (default: every name in the table below, in its order)
# Resumable: a run works in $WORKDIR/NAME (default build/train/NAME) and writes a resumable state every 100 steps;
# a later call resumes the unfinished one (--resume) and skips every checkpoint in OUTDIR that already records
# STEPS steps. A finished run's config.json, model.safetensors and loss.csv are then copied into OUTDIR/NAME.
# Threads: OMP_NUM_THREADS (LibTorch) as set by the caller, e.g. 1 to leave a core free.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/attnscope}
out=${2:-assets/models}
shift $(( $# > 2 ? 2 : $# )) || true
steps=${STEPS:-1000}
work=${WORKDIR:-build/train}
# name | variant | extra flags
table="performer|performer|
gqa|gqa|--param groups=2
mqa|mqa|
mla|mla|
sliding_window|sliding_window|--param window=32
linear|linear|
mha_alibi|mha|--position alibi
mha_learned|mha|--position learned
mha_moe|mha|--moe-experts 4 --moe-k 1
strided|strided|
bigbird|bigbird|
lsh|lsh|
cosformer|cosformer|
linformer_causal|linformer_causal|
mta|mta|
differential|differential|
mha|mha|"
recorded_steps() {  # the steps a shipped checkpoint records (0 when there is none)
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["training"]["steps"])' "$1/config.json" 2>/dev/null || echo 0
}
want=("$@")
while IFS='|' read -r name variant flags; do
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " =~ " $name " ]]; then continue; fi
  dir="$work/$name"
  if [ "$(recorded_steps "$out/$name")" = "$steps" ] && [ ! -e "$dir/train_state.safetensors" ]; then
    echo "=== $name: done ($steps steps recorded in $out/$name)"
    continue
  fi
  resume=""
  [ -e "$dir/train_state.safetensors" ] && resume="--resume"
  echo "=== $name ($variant $flags): $steps steps ${resume:+(resuming)}"
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  "$bin" train --variant "$variant" $flags --out "$dir" --steps "$steps" --warmup 50 --eval-every 100 \
    --eval-windows 0 --seed 1337 --dtype fp16 $resume
  if [ ! -e "$dir/train_state.safetensors" ] && [ -e "$dir/config.json" ]; then
    mkdir -p "$out/$name"
    # The recorded command names the shipped folder and no --resume: the command that reproduces the checkpoint.
    python3 - "$dir/config.json" "$dir" "$out/$name" <<'PY'
import json, sys
path, work, shipped = sys.argv[1:4]
c = json.load(open(path))
c["training"]["command"] = c["training"]["command"].replace("--out " + work, "--out " + shipped).replace(" --resume", "")
json.dump(c, open(path, "w"), indent=2, sort_keys=True)
PY
    for f in config.json model.safetensors loss.csv; do cp "$dir/$f" "$out/$name/$f.tmp.$$" && mv "$out/$name/$f.tmp.$$" "$out/$name/$f"; done
    echo "=== $name: finished, copied into $out/$name"
  else
    echo "=== $name: interrupted (resumable state in $dir)"; exit 1
  fi
done <<< "$table"
