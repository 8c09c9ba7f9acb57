"""How far a style moves a take as it turns up: the shipped presets on six everyday prompts (4 s,
seed = prompt index), mean world joint distance between strength 1 and 0 and between 1 and 0.5, with
the styles left out of the first steps (`defaults.UNSTYLED_FROM`) and styled at every step.

    python -m benchmarks.style_take [--styles elderly tired]
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

PROMPTS = ("a person walks forward", "a person waves with the right hand", "a person raises both hands",
           "a person walks and turns left", "a person dashes forward", "a person bows")


def main(argv=None):
    from inference.generation import defaults
    from inference.generation.generate import Generator
    from inference.generation.request import Style

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--styles", nargs="*", default=["elderly", "tired", "masculine", "feminine"])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    gen = Generator(None, "cpu")
    out = {}
    for style in args.styles:
        for label, unstyled_from in (("every step", 10**9), ("left out first", defaults.UNSTYLED_FROM)):
            gen.unstyled_from = unstyled_from
            d10, d105 = [], []
            for i, prompt in enumerate(PROMPTS):
                pos = {}
                for s in (0.0, 0.5, 1.0):
                    adapters = gen.style_adapters((Style(style, s, ""),)) if s else ()
                    pos[s] = gen.generate(prompt, seconds=4.0, seed=i, adapters=adapters).clip.positions()
                d10.append(float(np.linalg.norm(pos[1.0] - pos[0.0], axis=-1).mean()))
                d105.append(float(np.linalg.norm(pos[1.0] - pos[0.5], axis=-1).mean()))
            out[f"{style}, {label}"] = {"strength 1 - 0 (m)": round(float(np.mean(d10)), 3),
                                        "strength 1 - 0.5 (m)": round(float(np.mean(d105)), 3)}
            print(style, label, out[f"{style}, {label}"], flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
