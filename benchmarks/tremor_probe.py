"""Where a frame-rate tremor comes from: the data, the denoiser, or the sampler (issue 12).

    python -m benchmarks.tremor_probe [--model DIR] [--split val] [--takes 8]

1. Denoiser leak: real wave and walk takes of the split, their features noised to diffusion step t
   (fixed seeds) and denoised once with their own sentence. Printed per t: the estimate's top-bin
   energy (the features' first difference, summed over features) as a multiple of the clean take's.
   Above 1 the denoiser lets the noise's frame-rate part through into its estimate, and DDIM carries
   that estimate into the next step.
2. Generated clips: the per-clip Nyquist share (`evaluator.nyquist_share`) of clips made from the
   split's own sentences, as median / mean / top five, against the real takes': the mean that
   `make bench` reports is carried by a few clips.
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch

from inference.body.motion import MotionClip
from inference.generation import representation as rep
from inference.generation.generate import Generator
from inference.generation.text import encode

from .evaluator import nyquist_share

STEPS = (100, 300, 500, 800)


def _top_bin(x: np.ndarray) -> float:
    e = np.abs(np.fft.rfft(np.diff(x, axis=0), axis=0)) ** 2
    return float(e[-1].sum())


@torch.no_grad()
def leak(gen: Generator, meta, rot, root, split: str, takes: int) -> dict:
    m = gen.model
    out = {}
    for kind, contents in (("wave", ("wave-both-hands", "wave-right-hand", "wave-left-hand")), ("walk", ("walk",))):
        clips = [c for c in meta["clips"] if c["split"] == split and not c["mirrored"] and c["content"] in contents]
        clips = clips[:takes]
        for t in STEPS:
            clean, est = [], []
            for i, c in enumerate(clips):
                n = min(c["length"], 120)
                q = torch.as_tensor(np.array(rot[c["start"]:c["start"] + n]), dtype=torch.float32)[None]
                r = torch.as_tensor(np.array(root[c["start"]:c["start"] + n]), dtype=torch.float32)[None]
                x0 = (rep.encode(q, r, meta["fps"]) - m.mean) / m.std
                noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(i))
                tt = torch.tensor([t])
                z = torch.zeros_like(x0)
                pred = m(gen.diffusion.q_sample(x0, tt, noise), tt,
                         torch.as_tensor(encode(meta["texts"][c["texts"][0]])), z, z)
                clean.append(_top_bin(x0[0].numpy()))
                est.append(_top_bin(pred[0].numpy()))
            out[f"{kind}_estimate_over_clean_t{t}"] = round(float(np.mean(est) / max(np.mean(clean), 1e-12)), 2)
        out[f"{kind}_takes"] = len(clips)
    return out


def generated(gen: Generator, meta, rot, root, split: str, limit: int = 80) -> dict:
    clips = [c for c in meta["clips"] if c["split"] == split and not c["mirrored"]]
    rng = random.Random(1)
    clips = rng.sample(clips, min(limit, len(clips)))
    g, r = [], []
    for i, c in enumerate(clips):
        n = int(np.clip(min(c["length"], 120), 20, 120))
        res = gen.generate(meta["texts"][rng.choice(c["texts"])], num_frames=n, seed=i)
        g.append(nyquist_share(res.clip.positions(), meta["fps"]))
        real = MotionClip(np.array(rot[c["start"]:c["start"] + n]), np.array(root[c["start"]:c["start"] + n]),
                          meta["fps"])
        r.append(nyquist_share(real.positions(), meta["fps"]))
    g = np.array(g)
    top = np.argsort(-g)[:5]
    return {"clips": len(clips), "gen_nyquist_median": float(np.median(g)), "gen_nyquist_mean": float(g.mean()),
            "real_nyquist_median": float(np.median(r)), "real_nyquist_mean": float(np.mean(r)),
            "gen_nyquist_top": [{"share": round(float(g[k]), 4), "content": clips[k]["content"]} for k in top]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--takes", type=int, default=8)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from training import build_dataset

    meta, rot, root, _ = build_dataset.load()
    gen = Generator(args.model, "cpu")
    out = {"model": str(gen.folder), "split": args.split}
    out.update(leak(gen, meta, rot, root, args.split, args.takes))
    out.update(generated(gen, meta, rot, root, args.split))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
