#!/usr/bin/env bash
# One training sitting on a lent GPU machine (the `device` tool): the same train.py as on the CPU.
# Here: python -m training.pack --out .gpu/pack; then run this there with .gpu carried.
# Writes $OUT/models.tar (EMA and raw weights as model folders), $OUT/resume.pt, $OUT/log.jsonl.
set -euo pipefail
MIN=${MIN:-7}
export PYTHONUNBUFFERED=1 MARIONETTE_CACHE=/tmp/mcache
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader || true
python3 -m training.pack --unpack .gpu/pack --out /tmp/mcache/dataset
python3 -m training.train --run gpu --data /tmp/mcache/dataset --init assets/models/marionette-base \
  --batch "${BATCH:-256}" --lr "${LR:-6e-4}" --decay --minutes "$MIN" --workers 10 --log-every 200 --save-minutes 2 \
  ${EXTRA:-} || true
cp /tmp/mcache/runs/gpu/log.jsonl "$OUT/log.jsonl" || true
mkdir -p /tmp/export
python3 -m training.train --run gpu --data /tmp/mcache/dataset --export /tmp/export/ema --weights ema
python3 -m training.train --run gpu --data /tmp/mcache/dataset --export /tmp/export/raw --weights model
tar -C /tmp/export -cf "$OUT/models.tar" ema raw
python3 - <<'PY'
import os, torch
ck = torch.load("/tmp/mcache/runs/gpu/ckpt.pt", map_location="cpu", weights_only=False)
torch.save(dict(config=ck["config"], state=ck["state"],
                model={k: v.half() if v.is_floating_point() and k not in ("mean", "std") else v for k, v in ck["model"].items()},
                ema={k: v.half() if v.is_floating_point() and k not in ("mean", "std") else v for k, v in ck["ema"].items()}),
           os.environ["OUT"] + "/resume.pt")
PY
ls -la "$OUT"
