"""Choose sampling defaults (steps, guidance, output smoothing) on the VALIDATION split.

    python -m benchmarks.tune [--model DIR] [--limit 80]

Prints one line per setting: content/style accuracy, FID, skate ratio, jitter, seconds per clip.
The test split is never touched here; `make bench` reports test figures for the chosen defaults.
"""
from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from inference.generation.generate import Generator
from inference.body.motion import MotionClip
from training import build_dataset

from .evaluator import MAX_FRAMES, MIN_FRAMES, Evaluator, center_crop, fid, motion_features, physical

REPO = Path(__file__).resolve().parent.parent


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=80)
    ap.add_argument("--steps", type=int, nargs="*", default=[10])
    ap.add_argument("--guidance", type=float, nargs="*", default=[1.5, 2.5, 4.0])
    ap.add_argument("--smoothing", type=float, nargs="*", default=[0.0, 1.0, 1.5, 2.0])
    ap.add_argument("--foot-lock", type=int, nargs="*", default=[0, 1])
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    meta, rot, root, _ = build_dataset.load()
    rot, root = np.asarray(rot), np.asarray(root)
    fps = meta["fps"]
    ev = Evaluator.load()
    val = [c for c in meta["clips"] if c["split"] == "val" and c["content"] and not c["mirrored"]]
    val = random.Random(0).sample(val, min(args.limit, len(val)))
    yc = np.array([ev.contents.index(c["content"]) for c in val])
    ys = np.array([ev.styles.index(c["style"]) for c in val])
    real = []
    for c in val:
        sl = center_crop(c["length"])
        real.append(motion_features(rot[c["start"]:c["start"] + c["length"]][sl],
                                    root[c["start"]:c["start"] + c["length"]][sl], fps))
    real_emb, real_c, real_s = ev.predict(real)
    print(json.dumps({"val_clips": len(val), "real_content_acc": float((real_c == yc).mean()),
                      "real_style_acc": float((real_s == ys).mean())}))
    gen = Generator(args.model, "cpu")
    rng = random.Random(1)
    prompts = [meta["texts"][rng.choice(c["texts"])] for c in val]
    for steps, g, sm, fl in itertools.product(args.steps, args.guidance, args.smoothing, args.foot_lock):
        feats, phys = [], []
        t0 = time.time()
        for i, (c, p) in enumerate(zip(val, prompts)):
            n = int(np.clip(min(c["length"], MAX_FRAMES), MIN_FRAMES, MAX_FRAMES))
            res = gen.generate(p, num_frames=n, seed=i, steps=steps, guidance=g, smoothing=sm, foot_lock=bool(fl))
            feats.append(motion_features(res.clip.rotations, res.clip.root_translation, fps))
            phys.append(physical(res.clip.positions(), fps))
        emb, pc, ps = ev.predict(feats)
        print(json.dumps({"steps": steps, "guidance": g, "smoothing": sm, "foot_lock": fl,
                          "content_acc": round(float((pc == yc).mean()), 3), "style_acc": round(float((ps == ys).mean()), 3),
                          "fid": round(fid(real_emb, emb), 2), "skate": round(float(np.mean([p["skate"] for p in phys])), 3),
                          "jitter": round(float(np.mean([p["jitter"] for p in phys])), 1),
                          "nyquist_share": round(float(np.mean([p["nyquist_share"] for p in phys])), 4),
                          "s_per_clip": round((time.time() - t0) / len(val), 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
