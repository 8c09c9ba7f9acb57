#!/usr/bin/env bash
# One training sitting on a lent GPU machine (the `device` tool): the same train.py as on the CPU.
# Here: python -m training.pack --out .gpu/pack; then run this there with .gpu carried.
#
# RUNS lists the runs trained side by side on the one GPU (each with its own batch-building workers),
# as "name:extra arguments" separated by ";". A new run starts from the shipped weights
# (--init assets/models/marionette-base); a deeper one starts with its extra blocks as the identity.
# Writes $OUT/<run>_ema.tar and $OUT/<run>_model.tar (EMA and raw weights as model folders) and $OUT/<run>.log for each run.
set -euo pipefail
MIN=${MIN:-7}
PY=${PY:-python3}
RUNS=${RUNS:-gpu:}
WORKERS=${WORKERS:-10}
export PYTHONUNBUFFERED=1 MARIONETTE_CACHE=${MARIONETTE_CACHE:-/tmp/mcache}
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader || true
[ -f "$MARIONETTE_CACHE/dataset/clips.json" ] || $PY -m training.pack --unpack .gpu/pack --out "$MARIONETTE_CACHE/dataset"
IFS=';' read -ra specs <<< "$RUNS"
for spec in "${specs[@]}"; do
  name=${spec%%:*}
  extra=${spec#*:}
  # shellcheck disable=SC2086
  $PY -m training.train --run "$name" --data "$MARIONETTE_CACHE/dataset" --init assets/models/marionette-base \
    --batch "${BATCH:-256}" --lr "${LR:-6e-4}" --decay --minutes "$MIN" --workers "$WORKERS" --log-every 200 \
    --save-minutes 2 $extra >"$OUT/$name.log" 2>&1 &
done
wait || true
for spec in "${specs[@]}"; do
  name=${spec%%:*}
  for w in ema model; do
    rm -rf "/tmp/export/$name/$w"
    $PY -m training.train --run "$name" --data "$MARIONETTE_CACHE/dataset" --export "/tmp/export/$name/$w" \
      --weights "$w" >>"$OUT/$name.log" 2>&1
    tar -C "/tmp/export/$name" -cf "$OUT/${name}_$w.tar" "$w"
  done
  tail -3 "$OUT/$name.log"
done
ls -la "$OUT"
