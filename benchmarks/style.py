"""Style bench (issue 16): learn a style from a few held-out clips, then generate *other* contents.

    python -m benchmarks.style [--limit N] [--styles elderly tired ...] [--steps S] [--split val] [--out out/style.json]

For each style: up to 5 test-split clips of that style showing two or three contents (never the
training split, so the adapter cannot have seen them in the base model's data either), learned with
the shipped learner (`inference/learner.py`, clips given without words, as in Blender); then prompts
for the contents the clips did not show, worded without the style, are generated at strength 0, 0.5
and 1 and read by the shipped evaluator. Restyle: test clips of the *normal* style restyled with the
learned adapter, measuring the kept root path and foot contacts. See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from inference.generation.learner import LearnRequest, learn
from inference.body.motion import MotionClip
from inference.generation.restyle import kept_error, restyle
from training import build_dataset
from training.build_dataset import CONTENT_PHRASES

from .evaluator import Evaluator, motion_features, pad_batch

REPO = Path(__file__).resolve().parent.parent
STYLES = ("elderly", "tired", "feminine", "masculine", "youthful", "active")
MAX_CLIPS = 5
FRAMES = 80
PROMPTS_PER_STYLE = 24
"""Every other content at least once (the first ones twice), a seed each. With 12, one prompt moved a
style's figure by 0.08; the 28.7 k weights' test content kept read 0.78 with 12 and 0.75 with 24."""


def clip_of(rot, root, c) -> MotionClip:
    s, n = c["start"], c["length"]
    return MotionClip(np.asarray(rot[s:s + n], np.float64), np.asarray(root[s:s + n], np.float64), 20.0)


def style_clips(meta, style: str, seed: int = 0, split: str = "test") -> tuple[list[dict], list[str]]:
    """Up to 5 clips of `style` from its two or three most common contents in `split` (>= 10 s in all)."""
    test = [c for c in meta["clips"] if c["split"] == split and not c["mirrored"] and c["style"] == style
            and c["content"]]
    rng = random.Random(seed)
    contents = [k for k, _ in Counter(c["content"] for c in test).most_common()]
    for k in (2, 3):
        chosen = contents[:k]
        pool = [c for c in test if c["content"] in chosen]
        rng.shuffle(pool)
        # at least one clip of each chosen content, then the rest, up to 5
        picked = [next(c for c in pool if c["content"] == ct) for ct in chosen]
        picked += [c for c in pool if c not in picked][:MAX_CLIPS - len(picked)]
        if sum(c["length"] for c in picked) / meta["fps"] >= 10.0 and len(picked) >= 3:
            return picked, chosen
    raise RuntimeError(f"not enough {split} clips of style {style}")


@torch.no_grad()
def style_probs(ev: Evaluator, clips: list[MotionClip]) -> tuple[np.ndarray, np.ndarray]:
    """(style probabilities (N, styles), predicted content indices (N,))."""
    feats = [motion_features(c.rotations, c.root_translation, c.fps) for c in clips]
    x, v = pad_batch([f.frames for f in feats])
    emb = ev.model.features(x, v)
    return torch.softmax(ev.model.style_head(emb), -1).numpy(), ev.model.content_head(emb).argmax(-1).numpy()


def measure(gen, meta, rot, root, ev: Evaluator, styles=STYLES, limit: int = 0, steps: int | None = None,
            shift: bool = True, detail: bool = False, verbose: bool = True, split: str = "test") -> dict:
    from inference.generation.learner import DEFAULT_STEPS

    per_prompt = min(limit, PROMPTS_PER_STYLE) if limit else PROMPTS_PER_STYLE
    learn_s, rows, restyle_errs = [], [], []
    normal = [c for c in meta["clips"] if c["split"] == split and not c["mirrored"] and c["style"] == "normal"
              and c["content"] in ("walk", "walk-turn-left", "walk-turn-right", "raise-up-both-hands")]
    out_styles, skipped = {}, []
    for style in styles:
        try:
            picked, chosen = style_clips(meta, style, split=split)
        except RuntimeError:  # the split holds too little of this style to learn it from
            skipped.append(style)
            continue
        req = LearnRequest(style, [clip_of(rot, root, c) for c in picked], steps=steps or DEFAULT_STEPS, shift=shift,
                           detail=detail)
        t0 = time.perf_counter()
        adapter, card = learn(gen, req)
        learn_s.append(time.perf_counter() - t0)
        others = [k for k in ev.contents if k not in chosen and k in CONTENT_PHRASES]
        rng = random.Random(1)
        prompts = [(k, "a person " + rng.choice(CONTENT_PHRASES[k])) for k in rng.sample(others, len(others))]
        prompts = (prompts * 2)[:per_prompt]
        target = ev.styles.index(style)
        res = {}
        for strength in (0.0, 0.5, 1.0):
            clips = [gen.generate(p, num_frames=FRAMES, seed=i, adapters=((adapter, strength),)).clip
                     for i, (_, p) in enumerate(prompts)]
            probs, content = style_probs(ev, clips)
            res[strength] = (probs, content)
        yc = np.array([ev.contents.index(k) for k, _ in prompts])
        p0, c0 = res[0.0]
        p1, c1 = res[1.0]
        ph, _ = res[0.5]
        row = {
            "style_acc": float((p1.argmax(-1) == target).mean()),
            "style_base_acc": float((p0.argmax(-1) == target).mean()),
            "content_acc": float((c1 == yc).mean()),
            "base_content_acc": float((c0 == yc).mean()),
            "monotone": float(((ph[:, target] >= p0[:, target]) & (p1[:, target] >= ph[:, target])).mean()),
            "learn_s": round(learn_s[-1], 1),
            "clips": len(picked), "clip_seconds": round(req.seconds, 1), "contents": chosen,
            "captions": card.extra["captions"],
        }
        errs = []
        for c in normal[:max(1, min(3, per_prompt // 4))]:
            orig = clip_of(rot, root, c)
            orig = orig.slice(0, min(orig.num_frames, 120))
            r = restyle(gen, orig, ((adapter, 1.0),), seed=0)
            errs.append(kept_error(orig, r.clip))
        row["restyle_root_m"] = max(e["root_m"] for e in errs)
        row["restyle_contact_slide_m"] = max(e["contact_slide_m"] for e in errs)
        restyle_errs += [max(e.values()) for e in errs]
        out_styles[style] = row
        rows.append(row)
        if verbose:
            print(style, json.dumps(row), flush=True)
    base_c = np.mean([r["base_content_acc"] for r in rows])
    return {
        "style_acc": float(np.mean([r["style_acc"] for r in rows])),
        "style_base_acc": float(np.mean([r["style_base_acc"] for r in rows])),
        "style_content_acc": float(np.mean([r["content_acc"] for r in rows]) / max(base_c, 1e-9)),
        "style_content_acc_abs": float(np.mean([r["content_acc"] for r in rows])),
        "style_strength_monotone": float(np.mean([r["monotone"] for r in rows])),
        "style_learn_s_cpu": float(max(learn_s)),
        "restyle_kept_err_max": float(max(restyle_errs)),
        "style_prompts_per_style": per_prompt,
        "style_by_style": out_styles,
        "style_skipped": skipped,
    }


def main(argv=None):
    from inference.generation.generate import Generator

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=0, help="prompts per style (quick checks)")
    ap.add_argument("--styles", nargs="*", default=list(STYLES))
    ap.add_argument("--steps", type=int, default=None, help="learning steps (default: the learner's)")
    ap.add_argument("--no-shift", action="store_true",
                    help="learn without the condition shift (ablation: low-rank layers only, implies --detail)")
    ap.add_argument("--detail", action="store_true", help="also learn the low-rank layers (LearnRequest.detail)")
    ap.add_argument("--split", default="test", choices=["test", "val"],
                    help="where the style clips and restyled takes come from (val: for choosing settings)")
    ap.add_argument("--style-guidance-factor", type=float, default=None,
                    help="styles guided at this multiple of the text guidance (default: the Generator's)")
    ap.add_argument("--noisy-content-from", type=int, default=None,
                    help="diffusion step from which a read prompt keeps its whole content offset "
                    "(default: the Generator's)")
    ap.add_argument("--unstyled-from", type=int, default=None,
                    help="diffusion step from which styles are left out (default: the Generator's; 1000: never)")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "style.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    meta, rot, root, _ = build_dataset.load()
    gen = Generator(args.model, "cpu")
    if args.style_guidance_factor is not None:
        gen.style_guidance_factor = args.style_guidance_factor
    if args.noisy_content_from is not None:
        gen.noisy_content_from = args.noisy_content_from
    if args.unstyled_from is not None:
        gen.unstyled_from = args.unstyled_from
    out = measure(gen, meta, rot, root, Evaluator.load(), args.styles, args.limit, args.steps, not args.no_shift,
                  args.detail or args.no_shift, split=args.split)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "style_by_style"}, indent=1))


if __name__ == "__main__":
    main()
