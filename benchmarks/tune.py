"""Choose sampling defaults (steps, guidance, output smoothing, sampler eta) on the VALIDATION split.

    python -m benchmarks.tune [--model DIR] [--limit 80] [--eta 0 1] [--seeds 3]

Prints one line per setting: content/style accuracy, FID, skate ratio, jitter, Nyquist share (mean
and median over clips), seconds per clip; with --seeds N, means over N runs with other seeds.
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

from inference.generation import defaults
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
    ap.add_argument("--eta", type=float, nargs="*", default=[defaults.ETA],
                    help="sampler stochasticity (0 deterministic DDIM, 1 ancestral)")
    ap.add_argument("--drop-alternation", type=int, nargs="*", default=[int(defaults.DROP_ALTERNATION)],
                    help="1: the sampler drops the frame-rate alternation from every estimate but the last")
    ap.add_argument("--seeds", type=int, default=1,
                    help="runs per setting, each with other seeds; figures are their means (the Nyquist "
                         "share is carried by a few clips and moves with the seed)")
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
    for steps, g, sm, fl, eta, drop in itertools.product(args.steps, args.guidance, args.smoothing, args.foot_lock,
                                                         args.eta, args.drop_alternation):
        gen.eta, gen.drop_alternation = eta, bool(drop)
        runs = []
        t0 = time.time()
        for r in range(args.seeds):
            feats, phys = [], []
            for i, (c, p) in enumerate(zip(val, prompts)):
                n = int(np.clip(min(c["length"], MAX_FRAMES), MIN_FRAMES, MAX_FRAMES))
                res = gen.generate(p, num_frames=n, seed=i + 1000 * r, steps=steps, guidance=g, smoothing=sm,
                                   foot_lock=bool(fl))
                feats.append(motion_features(res.clip.rotations, res.clip.root_translation, fps))
                phys.append(physical(res.clip.positions(), fps))
            emb, pc, ps = ev.predict(feats)
            nyq = [p["nyquist_share"] for p in phys]
            runs.append({"content_acc": float((pc == yc).mean()), "style_acc": float((ps == ys).mean()),
                         "fid": fid(real_emb, emb), "skate": float(np.mean([p["skate"] for p in phys])),
                         "jitter": float(np.mean([p["jitter"] for p in phys])), "nyquist_share": float(np.mean(nyq)),
                         "nyquist_median": float(np.median(nyq))})
        mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        print(json.dumps({"steps": steps, "guidance": g, "smoothing": sm, "foot_lock": fl, "eta": eta,
                          "drop_alternation": drop, "seeds": args.seeds, "content_acc": round(mean["content_acc"], 3),
                          "style_acc": round(mean["style_acc"], 3), "fid": round(mean["fid"], 2),
                          "skate": round(mean["skate"], 3), "jitter": round(mean["jitter"], 1),
                          "nyquist_share": round(mean["nyquist_share"], 4),
                          "nyquist_median": round(mean["nyquist_median"], 5),
                          "s_per_clip": round((time.time() - t0) / (len(val) * args.seeds), 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
