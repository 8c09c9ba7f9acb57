"""Build the prompt reader shipped beside the weights (`inference.generation.reader`).

    python -m training.reader --model assets/models/marionette-base     # write reader.npz there (no offsets)
    python -m training.reader --model DIR --check                       # accuracy on the dev prompts only
    python -m training.reader --model DIR --shifts                      # also learn the content offsets
    python -m training.reader --model DIR --keep-shifts                 # new classifiers, the folder's offsets

Two linear classifiers over the sentence embedding, both trained on the training split's sentences:
which content a prompt names (the Bandai-Namco contents, plus "free" for CMU's captions) and which
style it names (Bandai-Namco's styles). The sentence encoder's neighbourhoods blur direction and
manner words (the nearest training sentence to "she walks backwards slowly" walks forwards); a
classifier trained on the labels weighs the words that separate them. Beside them, a bank of
training sentences per (content, style), from which the runtime picks the one it reads a prompt as.

Chosen on `training/paraphrases_dev.json` (never on the bench's paraphrases): on those 108 prompts
the content classifier reads 0.90, the five nearest training sentences 0.85.

With --shifts, an offset per content (`content_shift`) is learned on the frozen model (textual
inversion: only the offset added to the take's sentence embedding is trained, on the model's own
denoising loss over that content's training windows, text-to-motion masks), then each content keeps
the scale (0.5 or 1) whose motion the bench's evaluator recognises best on the dev prompts (ties: the
smaller), when that beats no offset by `SHIFT_MIN_GAIN`; an offset that does not help is not shipped.
"""
from __future__ import annotations

import argparse
import collections
import json
import random
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from inference.generation.reader import FREE

from . import build_dataset

BANK_PER_PAIR = 8
"""Training sentences kept per (content, style) for the runtime to read prompts as."""
L2 = 1.0
"""Weight of 0.5 |W|^2 against the summed cross-entropy (logistic regression with C = 1)."""
BALANCE = 0.5
"""Each training sentence weighs count(its content) ** -BALANCE in the content classifier's loss (mean
weight 1). The data holds 20 turning walks for every sidestep, so unweighted (0) the classifier read
sideways walks as turns ("a figure cheerfully walks to the left", a test take's own sentence, as a
turning walk with 0.96); 1 would weigh each content alike. Chosen on the dev prompts (see the
module's text)."""
DEV = Path(__file__).resolve().parent / "paraphrases_dev.json"


def class_weights(labels: list[str], power: float) -> np.ndarray:
    """Per sample count(its label) ** -power, scaled to a mean of 1 (power 0: every sample 1)."""
    count = collections.Counter(labels)
    w = np.array([float(count[v]) ** -power for v in labels])
    return w * (len(w) / w.sum())


def fit_softmax(x: np.ndarray, labels: list[str], l2: float = L2, iters: int = 200,
                weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Multinomial logistic regression (weights (K, D), bias (K,), class names), fitted with L-BFGS;
    `weights` (N,) scale each sample's cross-entropy (None: all 1)."""
    classes = sorted(set(labels))
    y = torch.as_tensor([classes.index(v) for v in labels])
    xt = torch.as_tensor(np.asarray(x, np.float32), dtype=torch.float64)
    sw = torch.ones(len(labels), dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    w = torch.zeros(len(classes), xt.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=iters, tolerance_grad=1e-6, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (F.cross_entropy(xt @ w.T + b, y, reduction="none") * sw).sum() + 0.5 * l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().float().numpy(), b.detach().float().numpy(), classes


def training_sentences(meta: dict) -> tuple[list[int], list[str], list[str]]:
    """(sentence ids, content, style) of every training-split sentence; CMU captions are `FREE` with no style."""
    content: dict[int, collections.Counter] = {}
    style: dict[int, collections.Counter] = {}
    for c in meta["clips"]:
        if c["split"] != "train":
            continue
        for t in c["texts"]:
            content.setdefault(t, collections.Counter())[c["content"] or FREE] += 1
            if c["content"]:
                style.setdefault(t, collections.Counter())[c["style"]] += 1
    ids = sorted(content)
    return (ids, [content[t].most_common(1)[0][0] for t in ids],
            [style[t].most_common(1)[0][0] if t in style else "" for t in ids])


def build(meta: dict, emb: np.ndarray, per_pair: int = BANK_PER_PAIR, seed: int = 0) -> tuple[dict, list[str]]:
    """The reader's arrays (for reader.npz) and its bank's sentences (for reader.json)."""
    ids, contents, styles = training_sentences(meta)
    x = emb[ids].astype(np.float32)
    cw, cb, cclasses = fit_softmax(x, contents, weights=class_weights(contents, BALANCE))
    labelled = [i for i, s in enumerate(styles) if s]
    sw, sb, sclasses = fit_softmax(x[labelled], [styles[i] for i in labelled])
    # the bank: a few sentences per (content, style): the first of each pair and a random few more
    by_pair: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    for i, (c, s) in enumerate(zip(contents, styles)):
        if c != FREE:
            by_pair[(c, s)].append(i)
    rng = random.Random(seed)
    chosen = []
    for key in sorted(by_pair):
        rows = by_pair[key]
        chosen += rows[:1] + rng.sample(rows[1:], min(per_pair - 1, len(rows) - 1))
    arrays = dict(
        content_w=cw, content_b=cb, content_classes=np.array(cclasses),
        style_w=sw, style_b=sb, style_classes=np.array(sclasses),
        bank=x[chosen].astype(np.float16),
        bank_content=np.array([cclasses.index(contents[i]) for i in chosen], np.int16),
        bank_style=np.array([sclasses.index(styles[i]) for i in chosen], np.int16),
    )
    return arrays, [meta["texts"][ids[i]] for i in chosen]


def write(folder: Path, data: Path | None = None, shifts: bool = False, keep_shifts: bool = False) -> None:
    """Write reader.npz + reader.json into a model folder, from the built dataset at `data`; with
    `shifts`, learn and select the content offsets (`learn_shifts`, `select_shifts`) as well, and
    record the choice in reader_shifts.json. With `keep_shifts`, the folder's offsets (learned on its
    weights, not on the classifiers) and their record are kept as they are. Without either, the reader
    has no offsets (they belong to the weights they were learned on) and a reader_shifts.json left from
    before is removed."""
    meta, _, _, emb = build_dataset.load(data)
    arrays, sentences = build(meta, emb)
    keep = keep_shifts and not shifts
    if keep:  # the folder's offsets, and their record, stay as they are
        with np.load(Path(folder) / "reader.npz") as old:
            if "content_shift" in old.files:
                if [str(c) for c in old["content_classes"]] != [str(c) for c in arrays["content_classes"]]:
                    raise ValueError("the folder's offsets are for other contents: learn them again (--shifts)")
                arrays["content_shift"] = old["content_shift"]
    np.savez_compressed(Path(folder) / "reader.npz", **arrays)
    (Path(folder) / "reader.json").write_text(json.dumps(sentences, indent=0))
    record = Path(folder) / "reader_shifts.json"
    if not shifts and not keep:  # the folder's reader has no offsets now: no record may say it has
        record.unlink(missing_ok=True)
    elif shifts:  # learned on the reader just written (its contents), then written again with the offsets
        chosen_shift, chosen = select_shifts(folder, learn_shifts(folder, data))
        arrays["content_shift"] = chosen_shift.astype(np.float16)
        np.savez_compressed(Path(folder) / "reader.npz", **arrays)
        record.write_text(json.dumps(chosen, indent=1))


SHIFT_STEPS, SHIFT_LR, SHIFT_BATCH, SHIFT_FRAMES = 150, 5e-3, 8, 60
"""Adam steps, learning rate, windows per step and frames per window of one content's offset."""
SHIFT_SCALES = (0.0, 0.5, 1.0)
"""Scales of the learned offset tried per content on the dev prompts."""
SHIFT_MIN_GAIN = 0.15
"""An offset is kept only when its content's dev prompts read right this much more often than without
it (2 of a content's 12 generations): a gain of one generation is within a seed's luck."""


def learn_shifts(folder: Path, data: Path | None = None, contents: list[str] | None = None, seed: int = 0,
                 steps: int = SHIFT_STEPS, log=print) -> np.ndarray:
    """(contents, 384) offsets for the reader's contents (zero for `FREE`, and for those not in `contents`)."""
    from inference.generation import representation as rep
    from inference.generation.diffusion import Diffusion
    from inference.generation.model import Denoiser
    from inference.generation.reader import PromptReader

    from .train import WindowSampler, draw_steps, losses

    reader = PromptReader.load(folder)
    model = Denoiser.load(folder)
    for p in model.parameters():
        p.requires_grad_(False)
    diffusion = Diffusion(model.config.diffusion_steps)
    mean, std = model.mean.detach(), model.std.detach()
    meta, rot, root, emb = build_dataset.load(data)
    rot, root, emb = np.asarray(rot), np.asarray(root), torch.from_numpy(np.asarray(emb))
    out = np.zeros((len(reader.contents), emb.shape[1]), np.float32)
    for k, content in enumerate(reader.contents):
        clips = [c for c in meta["clips"] if c["content"] == content and c["split"] == "train" and c["length"] >= 10]
        if content == FREE or (contents is not None and content not in contents) or not clips:
            continue
        sampler = WindowSampler(dict(meta, clips=clips), rot, root, emb, "train", seed + k)
        torch.manual_seed(seed + k)
        d = torch.zeros(emb.shape[1], requires_grad=True)
        opt = torch.optim.Adam([d], lr=SHIFT_LR)
        first = last = 0.0
        n = max(1, min(20, steps // 2))  # steps averaged at each end for the log
        for i in range(steps):
            q, r, valid, text = sampler.batch(SHIFT_BATCH, SHIFT_FRAMES)
            x0 = (rep.encode(q, r, sampler.fps) - mean) / std
            t = draw_steps(SHIFT_BATCH, diffusion.steps)
            loss = losses(model, diffusion, x0, t, text + d, x0, torch.zeros_like(x0), valid, mean, std,
                          sampler.fps)["total"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            first = first + loss.item() if i < n else first
            last = last + loss.item() if i >= steps - n else last
        out[k] = d.detach().numpy()
        log(f"{content}: |offset| {np.linalg.norm(out[k]):.3f}, loss {first / n:.3f} -> {last / n:.3f}")
    return out


def dev_accuracy(folder: Path, shift: np.ndarray, seeds: int = 2, frames: int = 80) -> dict[str, float]:
    """Per content: the share of the dev prompts' generated motion (seeds 0..seeds-1) that the bench's
    evaluator recognises as that content, with the reader's offsets set to `shift`."""
    from benchmarks.evaluator import Evaluator, motion_features
    from inference.generation.generate import Generator

    gen = Generator(folder, "cpu")
    gen.reader().content_shift = np.asarray(shift, np.float32)
    ev = Evaluator.load()
    prompts, truth = dev_prompts()
    hits: dict[str, list[bool]] = collections.defaultdict(list)
    for p, t in zip(prompts, truth):
        for seed in range(seeds):
            clip = gen.generate(p, num_frames=frames, seed=seed).clip
            got = ev.contents[ev.predict([motion_features(clip.rotations, clip.root_translation, clip.fps)])[1][0]]
            hits[t].append(got == t)
    return {c: float(np.mean(h)) for c, h in hits.items()}


def select_shifts(folder: Path, shifts: np.ndarray, scales=SHIFT_SCALES, log=print,
                  table: dict | None = None) -> tuple[np.ndarray, dict]:
    """Each content's offset at the scale whose dev prompts read best (ties: the smaller scale), or none
    when that is not `SHIFT_MIN_GAIN` better than none. table: {scale: {content: dev accuracy}} already
    measured (`dev_accuracy`); scale 0 must be among the scales."""
    from inference.generation.reader import PromptReader

    contents = PromptReader.load(folder).contents
    table = table or {s: dev_accuracy(folder, shifts * s) for s in scales}
    for s, acc in table.items():
        log(f"scale {s}: dev content {np.mean(list(acc.values())):.3f} " +
            " ".join(f"{c}={a:.2f}" for c, a in sorted(acc.items())))
    out, chosen = np.zeros_like(shifts), {}
    for k, c in enumerate(contents):
        if c not in table[0.0]:
            continue
        best = max(table, key=lambda s: (table[s][c], -s))
        if table[best][c] < table[0.0][c] + SHIFT_MIN_GAIN - 1e-9:
            best = 0.0
        out[k] = shifts[k] * best
        chosen[c] = dict(scale=best, dev_acc={str(s): table[s][c] for s in table})
    return out, chosen


def dev_prompts() -> tuple[list[str], list[str]]:
    d = {k: v for k, v in json.loads(DEV.read_text()).items() if not k.startswith("_")}
    return [s for v in d.values() for s in v], [k for k, v in d.items() for _ in v]


def check(folder: Path) -> dict:
    """How the shipped reader reads the dev prompts: content accuracy and each prompt's reading."""
    from inference.generation.reader import PromptReader
    from inference.generation.text import encode

    reader = PromptReader.load(folder)
    prompts, truth = dev_prompts()
    readings = [reader.read(e, p) for e, p in zip(encode(prompts), prompts)]
    got = [r.content for r in readings]
    return {"dev_prompts": len(prompts), "content_acc": float(np.mean([g == t for g, t in zip(got, truth)])),
            "readings": [[p, t, r.content, r.sentence] for p, t, r in zip(prompts, truth, readings)]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="model folder to write reader.npz/reader.json into")
    ap.add_argument("--data", type=Path, default=None, help="dataset folder (default .cache/dataset)")
    ap.add_argument("--check", action="store_true", help="only report the dev prompts' readings")
    ap.add_argument("--shifts", action="store_true", help="also learn and select the content offsets (~12 min)")
    ap.add_argument("--keep-shifts", action="store_true",
                    help="rebuild the classifiers and the bank, keeping the folder's learned offsets")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.check:
        write(args.model, args.data, args.shifts, args.keep_shifts)
    out = check(args.model)
    for p, t, c, s in out["readings"]:
        print(f"{'  ' if c == t else '! '}{p!r} ({t}) -> {c}: {s!r}")
    print(json.dumps({k: v for k, v in out.items() if k != "readings"}))


if __name__ == "__main__":
    main()
