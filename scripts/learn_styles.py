"""Learn the shipped style presets (assets/styles/) with the shipped learner, from training-split clips only.

    python -m scripts.learn_styles [--steps 300] [--styles elderly tired ...]

One preset per style label with enough data; each from 8 training-split takes of that style across
different contents (never test or validation clips). Licence CC BY-NC 4.0 (Bandai-Namco data).
"""
from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict

import numpy as np
import torch

from inference.generation.generate import Generator
from inference.generation.learner import LearnRequest, learn
from inference.body.motion import MotionClip
from inference.generation.style import LICENCE_SHIPPED, SHIPPED, StyleLibrary
from training import build_dataset

STYLES = {
    "elderly": "Moves like an elderly person: slower, bent forward, careful steps.",
    "tired": "Moves tiredly: low energy, drooping upper body, heavy steps.",
    "feminine": "A feminine manner: narrower steps, softer arm movement.",
    "masculine": "A masculine manner: wider stance and broader, firmer movement.",
    "youthful": "A youthful manner: light, quick and bouncy.",
    "active": "Energetic and lively: bigger, faster movement.",
}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--styles", nargs="*", default=list(STYLES))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    meta, rot, root, _ = build_dataset.load()
    gen = Generator(None, "cpu")
    lib = StyleLibrary(SHIPPED, read_only=())
    for style in args.styles:
        by_content = defaultdict(list)
        for c in meta["clips"]:
            if c["split"] == "train" and not c["mirrored"] and c["style"] == style and c["content"]:
                by_content[c["content"]].append(c)
        rng = random.Random(0)
        contents = sorted(by_content)
        rng.shuffle(contents)
        picked = [rng.choice(by_content[k]) for k in contents[:args.clips]]
        clips = [MotionClip(np.asarray(rot[c["start"]:c["start"] + c["length"]], np.float64),
                            np.asarray(root[c["start"]:c["start"] + c["length"]], np.float64), meta["fps"])
                 for c in picked]
        # the clips' label is known: the style starts from its own word (the Blender operator starts from
        # the likeliest word, which read these masculine takes as "chimpira")
        req = LearnRequest(style, clips, steps=args.steps, start=style, description=STYLES[style],
                           licence=LICENCE_SHIPPED,
                           data=f"{len(clips)} training-split takes of the Bandai-Namco Research Motion Dataset "
                                f"labelled '{style}' ({sum(c.num_frames for c in clips) / meta['fps']:.0f} s; "
                                f"contents: {', '.join(sorted(c['content'] for c in picked))})")
        t0 = time.time()
        adapter, card = learn(gen, req)
        lib.save(adapter, card, overwrite=True)
        print(style, f"{time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
