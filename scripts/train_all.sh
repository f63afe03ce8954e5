#!/usr/bin/env bash
# Trains the shipped comparison checkpoints: one model per attention variant, the same size and the same
# budget for every one (4 layers, d_model 128, 8 heads, context 256, batch 32, STEPS steps, seed 1337).
# Usage: scripts/train_all.sh [BIN] [OUTDIR] [NAME...]   (default: every name in the table below)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/attnscope}
out=${2:-assets/models}
shift $(( $# > 2 ? 2 : $# )) || true
steps=${STEPS:-300}
# name | variant | extra flags
table="mha_budget|mha|
mha_alibi|mha|--position alibi
mha_learned|mha|--position learned
mqa|mqa|
gqa|gqa|--param groups=2
mla|mla|
sliding_window|sliding_window|--param window=32
strided|strided|
bigbird|bigbird|
lsh|lsh|
linear|linear|
performer|performer|
cosformer|cosformer|
linformer_causal|linformer_causal|
mta|mta|
differential|differential|"
want=("$@")
while IFS='|' read -r name variant flags; do
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " =~ " $name " ]]; then continue; fi
  echo "=== $name ($variant $flags): $steps steps"
  # shellcheck disable=SC2086
  "$bin" train --variant "$variant" $flags --out "$out/$name" --steps "$steps" --warmup 30 --eval-every 100 \
    --seed 1337 --dtype fp16
done <<< "$table"
