"""Build the training set: every readable Bandai-Namco and CMU clip on the canonical skeleton.

    python -m training.build_dataset [--out DIR] [--exclude-style happy] [--exclude-content kick]

Each clip is converted to the canonical skeleton, resampled to the model's frame rate, put on the
floor, and stored with a left/right mirrored copy (the text is mirrored too). Text per clip: several
sentences made from the Bandai-Namco content and style labels; CMU captions whose time span overlaps
a segment; the CMU trial description otherwise. Clips are split by take/trial into train, val and
test; test is never trained on. Arrays go to a cache folder outside git (default .cache/dataset).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from inference.body.bvh import read_bvh
from inference.body.motion import MotionClip
from inference.retargeting.retarget import bvh_to_canonical
from inference.body.skeleton import CANONICAL, JOINT_NAMES
from inference.generation.style_words import STYLE_WORDS
from inference.generation.text import mirror_text

from . import data

REPO = Path(__file__).resolve().parent.parent
FPS = 20.0
FORMAT_VERSION = 3
TEXTS_PER_CLIP = 24

# ----------------------------------------------------------------------------------------- labels
# Dataset-1 and dataset-2 name some styles differently; these are the same style.
STYLE_ALIASES = {"masculinity": "masculine", "old": "elderly", "exhausted": "tired", "children": "childish"}

# Mirror image of a content label (the mirrored clip gets the mirrored label).
def mirror_label(label: str) -> str:
    return mirror_text(label)


CONTENT_PHRASES: dict[str, list[str]] = {
    "walk": ["walks forward", "walks straight ahead", "is walking forward", "takes some steps forward", "walks"],
    "run": ["runs forward", "jogs forward", "is running forward", "runs"],
    "dash": ["dashes forward", "sprints forward", "runs forward as fast as possible", "sprints"],
    "walk-back": ["walks backward", "walks backwards", "steps backward", "moves backwards step by step"],
    "walk-left": ["walks to the left", "walks sideways to the left", "moves to the left", "steps to the left"],
    "walk-right": ["walks to the right", "walks sideways to the right", "moves to the right", "steps to the right"],
    "walk-turn-left": ["walks and turns left", "walks forward and turns to the left", "turns left while walking",
                       "walks in a curve to the left"],
    "walk-turn-right": ["walks and turns right", "walks forward and turns to the right", "turns right while walking",
                        "walks in a curve to the right"],
    "bow": ["bows", "bows politely", "takes a bow", "bends forward in a bow"],
    "bye": ["waves goodbye", "waves goodbye once", "says goodbye with a wave"],
    "byebye": ["waves bye-bye", "keeps waving bye-bye", "waves bye-bye again and again"],
    "guide": ["gestures to guide someone", "shows someone the way with a hand gesture", "points the way for someone"],
    "respond": ["responds to someone", "answers someone with a gesture", "reacts and responds"],
    "call": ["calls someone over", "beckons someone to come closer", "calls out to someone"],
    "punch": ["punches", "throws punches", "throws a punch"],
    "kick": ["kicks", "kicks forward", "does a kick"],
    "slash": ["slashes with a sword", "swings a sword", "makes slashing attacks"],
    "dance-short": ["dances", "does a short dance", "dances a little"],
    "dance-long": ["dances", "performs a long dance", "keeps dancing"],
    "raise-up-left-hand": ["raises the left hand", "raises the left arm", "lifts the left hand up",
                           "puts the left hand up"],
    "raise-up-right-hand": ["raises the right hand", "raises the right arm", "lifts the right hand up",
                            "puts the right hand up"],
    "raise-up-both-hands": ["raises both hands", "raises both arms", "lifts both hands up", "puts both hands up"],
    "wave-left-hand": ["waves with the left hand", "waves the left hand", "waves using the left arm"],
    "wave-right-hand": ["waves with the right hand", "waves the right hand", "waves using the right arm"],
    "wave-both-hands": ["waves with both hands", "waves both hands", "waves using both arms"],
}

# style -> (adverbial phrases, subjects that carry the style)
# Adverbs per style: the runtime's own list (the learner starts a style from the likeliest of them).
_STYLED_SUBJECTS: dict[str, list[str]] = {
    "active": ["an energetic person", "a lively person"], "elderly": ["an elderly person", "an old person"],
    "tired": ["a tired person", "an exhausted person"], "feminine": ["a feminine person"],
    "masculine": ["a masculine person", "a manly person"], "youthful": ["a young person", "a youthful person"],
    "childish": ["a child", "a childish person"], "happy": ["a happy person", "a cheerful person"],
    "sad": ["a sad person", "a gloomy person"], "not-confident": ["a shy person", "an insecure person"],
    "musical": ["a musical person"], "angry": ["an angry person"], "proud": ["a proud person"],
    "giant": ["a giant"], "chimpira": ["a thug"],
}
STYLE_PHRASES: dict[str, tuple[list[str], list[str]]] = {
    "normal": (["", "", "normally", "in a neutral way"], ["a person", "someone"]),
    **{k: (list(STYLE_WORDS[k]), v) for k, v in _STYLED_SUBJECTS.items()},
}
SUBJECTS = ["a person", "someone", "a man", "a woman", "the character", "a figure", "he", "she", "a character",
            "the person", "somebody", "a guy", "a lady", "the actor"]

# More ways of saying the same content: extra verbs, and phrasings that put the motion first.
CONTENT_EXTRA: dict[str, list[str]] = {
    "walk": ["strolls forward", "walks ahead", "goes for a walk", "paces forward"],
    "run": ["runs ahead", "runs straight ahead", "goes for a jog"],
    "dash": ["races forward", "bolts forward", "runs at full speed"],
    "walk-back": ["backs up", "retreats step by step", "walks in reverse"],
    "walk-left": ["sidesteps to the left", "shuffles to the left"],
    "walk-right": ["sidesteps to the right", "shuffles to the right"],
    "walk-turn-left": ["walks and veers left", "curves left while walking"],
    "walk-turn-right": ["walks and veers right", "curves right while walking"],
    "bow": ["bows down", "gives a bow", "bends at the waist to bow"],
    "bye": ["waves farewell", "gives a goodbye wave"],
    "byebye": ["waves goodbye repeatedly", "keeps waving farewell"],
    "guide": ["guides someone with the hand", "directs someone with an arm gesture"],
    "respond": ["replies with a gesture", "nods and responds"],
    "call": ["waves someone over", "signals someone to come"],
    "punch": ["boxes", "strikes with the fists"],
    "kick": ["kicks with a leg", "throws a kick"],
    "slash": ["attacks with a sword", "swings a blade"],
    "raise-up-left-hand": ["holds up the left hand", "lifts the left arm overhead"],
    "raise-up-right-hand": ["holds up the right hand", "lifts the right arm overhead"],
    "raise-up-both-hands": ["holds up both hands", "lifts both arms overhead", "throws both hands up"],
    "wave-left-hand": ["gives a wave with the left hand", "waves hello with the left hand"],
    "wave-right-hand": ["gives a wave with the right hand", "waves hello with the right hand"],
    "wave-both-hands": ["waves hello with both hands", "waves both arms"],
}

# Style synonyms and tempo words beyond STYLE_PHRASES (adverbs only: they combine with any content).
STYLE_EXTRA: dict[str, list[str]] = {
    "normal": ["casually", "in an ordinary way", "calmly"],
    "active": ["vigorously", "briskly", "with enthusiasm", "quickly and energetically"],
    "elderly": ["slowly like an old man", "frailly", "stiffly like an elderly person", "slowly and carefully"],
    "tired": ["sluggishly", "slowly and wearily", "drained of energy", "lethargically"],
    "feminine": ["gracefully", "elegantly", "in a ladylike way"],
    "masculine": ["in a macho way", "with broad confident movements", "like a tough guy"],
    "youthful": ["playfully", "with a spring in the step", "in a young and bouncy way"],
    "childish": ["like a kid", "playfully like a little child"],
    "happy": ["joyfully", "merrily"],
    "sad": ["sorrowfully", "dejectedly"],
    "not-confident": ["nervously", "insecurely"],
    "angry": ["furiously", "aggressively"],
    "proud": ["confidently", "with pride"],
}


def style_key(style: str) -> str:
    return STYLE_ALIASES.get(style, style)


def bandai_sentences(content: str, style: str, n: int, rng: random.Random) -> list[str]:
    """`n` distinct natural sentences for a Bandai-Namco (content, style) label."""
    verbs = CONTENT_PHRASES.get(content, [content.replace("-", " ")]) + CONTENT_EXTRA.get(content, [])
    advs, styled = STYLE_PHRASES.get(style, ([style.replace("-", " ")], ["a person"]))
    advs = advs + STYLE_EXTRA.get(style, [])
    options = set()
    for verb in verbs:
        for adv in advs:
            for subj in SUBJECTS:
                options.add(f"{subj} {verb} {adv}".strip())
                if adv:
                    options.add(f"{adv}, {subj} {verb}".strip())
                    if adv.endswith("ly") and " " not in adv:  # "she slowly walks forward"
                        options.add(f"{subj} {adv} {verb}")
        for subj in styled:
            options.add(f"{subj} {verb}")
    options = sorted(options)
    rng.shuffle(options)
    return options[:n]


# ------------------------------------------------------------------------------------------ clips
def ground(clip: MotionClip) -> MotionClip:
    """Shift the clip vertically so that the feet rest on z = 0 when they are planted."""
    rest = CANONICAL.rest_pose()[1]
    pos = clip.positions()
    feet = [JOINT_NAMES.index(n) for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]
    lowest = (pos[:, feet, 2] - rest[feet, 2]).min(axis=1)
    floor = float(np.percentile(lowest, 10))
    root = clip.root_translation.copy()
    root[:, 2] -= floor
    return MotionClip(clip.rotations, root, clip.fps)


def _stable_fraction(key: str) -> float:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0x100000000


def split_for(key: str, test: float = 0.1, val: float = 0.05) -> str:
    u = _stable_fraction(key)
    return "test" if u < test else "val" if u < test + val else "train"


BANDAI_RE = re.compile(r"dataset-(\d)_(.+)_([a-z-]+)_(\d+)\.bvh$")


def _load_bandai(path: str) -> tuple[np.ndarray, np.ndarray]:
    clip = ground(bvh_to_canonical(read_bvh(path)).downsample(FPS))
    return clip.rotations.astype(np.float32), clip.root_translation.astype(np.float32)


def _drop_tpose(clip: MotionClip) -> MotionClip:
    """cgspeed-derived CMU files prepend a T-pose frame; drop a first frame that jumps away from the rest."""
    if clip.num_frames > 2:
        pos = clip.positions()
        if np.abs(pos[0] - pos[1]).max() > 0.15:
            return clip.slice(1, clip.num_frames)
    return clip


def _load_cmu(path: str, fps: float) -> tuple[np.ndarray, np.ndarray, int]:
    clip = bvh_to_canonical(read_bvh(path, fps=fps))
    dropped = clip.num_frames
    clip = _drop_tpose(clip)
    dropped -= clip.num_frames
    clip = ground(clip.downsample(FPS))
    return clip.rotations.astype(np.float32), clip.root_translation.astype(np.float32), dropped


FORMAT_PREFERENCE = ("bvh_cgspeed", "bvh_daz", "bvh_daz_scaled", "bvh_max_scaled", "bvh_from_fbx")


def bandai_sources(exclude_content=(), exclude_style=()) -> list[dict]:
    root = data.bandai_dir()
    if root is None:
        return []
    out = []
    for path in sorted(root.glob("*/data/*.bvh")):
        m = BANDAI_RE.match(path.name)
        if not m:
            continue
        ds, content, style, take = m.group(1), m.group(2), style_key(m.group(3)), m.group(4)
        if content in exclude_content or style in exclude_style or m.group(3) in exclude_style:
            continue
        # Contents with very few files stay in training: holding them out would leave nothing to learn.
        out.append(dict(source=f"bandai{ds}", file=str(path), name=path.stem, content=content, style=style,
                        take=int(take)))
    counts = Counter(s["content"] for s in out)
    for s in out:
        s["split"] = split_for(s["name"]) if counts[s["content"]] >= 10 else "train"
    return out


def cmu_sources() -> list[dict]:
    root = data.cmu_dir()
    if root is None:
        return []
    rows = list(csv.DictReader(open(root / "manifest.csv", newline="")))
    by_trial: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["format"] in FORMAT_PREFERENCE and (root / r["local_file"]).is_file():
            by_trial[r["trial_id"]].append(r)
    captions: dict[str, list[dict]] = defaultdict(list)
    with open(root / "captions" / "cmu_captions.csv", newline="") as f:
        for r in csv.DictReader(f):
            captions[r["cmu_trial_id"]].append(r)
    out = []
    for trial, files in sorted(by_trial.items()):
        best = min(files, key=lambda r: FORMAT_PREFERENCE.index(r["format"]))
        out.append(dict(source="cmu", file=str(root / best["local_file"]), name=trial, fps=float(best["fps"]),
                        format=best["format"], captions=captions.get(trial, []), split=split_for("cmu" + trial)))
    return out


def cmu_segments(src: dict, num_frames: int, dropped: int) -> list[tuple[int, int, list[str]]]:
    """(start, stop, texts) at FPS: one segment per captioned time span, else the whole trial."""
    spans: dict[tuple[float, float], list[str]] = defaultdict(list)
    description = []
    for c in src["captions"]:
        text = c["caption"].strip()
        if not text:
            continue
        if c["start_s"] and c["end_s"]:
            spans[(float(c["start_s"]), float(c["end_s"]))].append(text)
        else:
            description.append(text)
    shift = dropped / src["fps"]
    segs = []
    for (a, b), texts in sorted(spans.items()):
        start, stop = int(round((a - shift) * FPS)), int(round((b - shift) * FPS))
        start, stop = max(0, start), min(num_frames, stop)
        if stop - start >= int(FPS):  # overlaps the clip by at least a second
            segs.append((start, stop, sorted(set(texts))))
    if not segs:
        texts = [d.lower() for d in description] or ["a person moves"]
        segs.append((0, num_frames, texts))
    return segs


# ------------------------------------------------------------------------------------------ check
class DataError(SystemExit):
    """Converted data that no body could perform; the build stops rather than train on it."""


def check_twist(clips: list[tuple[str, np.ndarray]], max_share: float = 0.02) -> None:
    """Stop when converted clips carry implausible bone twist (a thigh half a turn round, a spine a
    quarter turn): the rest alignment has lost a bone's roll. A few odd clips (acrobatics) may pass."""
    from inference.retargeting.retarget_quality import TWIST_LIMIT_DEG, bone_twist_deg, implausible_twists

    # a bone whose roll is lost is twisted the same way in every clip of its source: the typical
    # clip must show every joint within the limit (shoulders included)
    medians: dict[str, list[float]] = defaultdict(list)
    for _, rot in clips:
        for joint, tw in bone_twist_deg(rot).items():
            medians[joint].append(float(np.median(tw)))
    typical = {j: float(np.median(v)) for j, v in medians.items()}
    if wrong := {j: m for j, m in typical.items() if abs(m) > TWIST_LIMIT_DEG}:
        raise DataError("The converted clips are twisted about their own bones: median twist "
                        + ", ".join(f"{j} {m:.0f} deg" for j, m in wrong.items()) + ".")
    bad = [(f, tw) for f, rot in clips if (tw := implausible_twists(rot))]
    if len(bad) > max_share * max(1, len(clips)):
        examples = "; ".join(f"{Path(f).name}: " + ", ".join(f"{k} {v:.0f} deg" for k, v in tw.items())
                             for f, tw in bad[:3])
        raise DataError(f"{len(bad)} of {len(clips)} converted clips have implausible bone twist ({examples}).")


# ------------------------------------------------------------------------------------------ build
def build(out: Path, exclude_content=(), exclude_style=(), workers: int = 2, verbose: bool = True) -> dict:
    t0 = time.time()
    bandai = bandai_sources(exclude_content, exclude_style)
    cmu = cmu_sources()
    if not bandai and not cmu:
        raise SystemExit(f"no motion data found (looked in {data.shared_data_dir()})")
    with ProcessPoolExecutor(workers) as pool:
        b_arrays = list(pool.map(_load_bandai, [s["file"] for s in bandai], chunksize=16))
        c_arrays = list(pool.map(_load_cmu, [s["file"] for s in cmu], [s["fps"] for s in cmu]))
    if verbose:
        print(f"converted {len(bandai)} Bandai-Namco + {len(cmu)} CMU files in {time.time() - t0:.0f}s", flush=True)
    check_twist([(s["file"], a[0]) for s, a in zip(bandai + cmu, b_arrays + c_arrays)])

    rng = random.Random(0)
    rot_chunks, root_chunks, clips, texts = [], [], [], []
    text_index: dict[str, int] = {}
    offset = 0

    def text_ids(items):
        ids = []
        for t in items:
            if t not in text_index:
                text_index[t] = len(texts)
                texts.append(t)
            ids.append(text_index[t])
        return ids

    def add(meta: dict, rot: np.ndarray, root: np.ndarray, sentences: list[str]):
        nonlocal offset
        for mirrored in (False, True):
            if mirrored:
                m = MotionClip(rot, root, FPS).mirrored()
                r, t = m.rotations.astype(np.float32), m.root_translation.astype(np.float32)
                sents = [mirror_text(s) for s in sentences]
            else:
                r, t, sents = rot, root, sentences
            entry = dict(meta, start=offset, length=len(r), mirrored=mirrored, texts=text_ids(sents))
            if mirrored:
                for key in ("content",):
                    if entry.get(key):
                        entry[key] = mirror_label(entry[key])
            clips.append(entry)
            rot_chunks.append(r)
            root_chunks.append(t)
            offset += len(r)

    for src, (rot, root) in zip(bandai, b_arrays):
        meta = {k: src[k] for k in ("source", "name", "content", "style", "take", "split")}
        add(meta, rot, root, bandai_sentences(src["content"], src["style"], TEXTS_PER_CLIP, rng))
    for src, (rot, root, dropped) in zip(cmu, c_arrays):
        for k, (a, b, sents) in enumerate(cmu_segments(src, len(rot), dropped)):
            meta = dict(source="cmu", name=f"{src['name']}#{k}", content="", style="", take=0, split=src["split"])
            add(meta, rot[a:b], root[a:b], sents)

    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "rotations.npy", np.concatenate(rot_chunks))
    np.save(out / "root.npy", np.concatenate(root_chunks))
    if verbose:
        print(f"encoding {len(texts)} sentences", flush=True)
    from inference.generation.text import encode

    np.save(out / "text_emb.npy", encode(texts).astype(np.float16))
    contents = sorted({c["content"] for c in clips if c["content"]})
    styles = sorted({c["style"] for c in clips if c["style"]})
    meta = dict(version=FORMAT_VERSION, fps=FPS, clips=clips, texts=texts, contents=contents, styles=styles,
                exclude_content=sorted(exclude_content), exclude_style=sorted(exclude_style))
    (out / "clips.json").write_text(json.dumps(meta))
    stats = summarize(meta)
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    if verbose:
        print(json.dumps(stats, indent=1))
        print(f"wrote {out} in {time.time() - t0:.0f}s")
    return stats


def summarize(meta: dict) -> dict:
    fps = meta["fps"]
    stats: dict = {"fps": fps, "texts": len(meta["texts"])}
    for split in ("train", "val", "test"):
        cs = [c for c in meta["clips"] if c["split"] == split and not c["mirrored"]]
        by_src = Counter(c["source"] for c in cs)
        hours = defaultdict(float)
        for c in cs:
            hours[c["source"]] += c["length"] / fps / 3600
        stats[split] = {s: {"clips": by_src[s], "hours": round(hours[s], 3)} for s in sorted(by_src)}
    orig = [c for c in meta["clips"] if not c["mirrored"]]
    stats["contents"] = dict(sorted(Counter(c["content"] for c in orig if c["content"]).items()))
    stats["styles"] = dict(sorted(Counter(c["style"] for c in orig if c["style"]).items()))
    return stats


def default_dir() -> Path:
    return Path(os.environ.get("MARIONETTE_CACHE", REPO / ".cache")) / "dataset"


def load(path: Path | None = None) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """(meta, rotations (N,22,4), root (N,3), text embeddings (M,384)) of a built dataset."""
    path = Path(path or default_dir())
    meta = json.loads((path / "clips.json").read_text())
    return (meta, np.load(path / "rotations.npy", mmap_mode="r"), np.load(path / "root.npy", mmap_mode="r"),
            np.load(path / "text_emb.npy").astype(np.float32))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="output folder (default .cache/dataset)")
    ap.add_argument("--exclude-content", nargs="*", default=[], help="content labels to leave out (e.g. kick)")
    ap.add_argument("--exclude-style", nargs="*", default=[], help="style labels to leave out (e.g. happy)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    out = args.out
    if out is None:
        out = default_dir()
        if args.exclude_content or args.exclude_style:
            tag = "-".join(["no"] + sorted(args.exclude_content) + sorted(args.exclude_style))
            out = out.with_name(f"dataset_{tag}")
    exclude_style = {style_key(s) for s in args.exclude_style}
    build(out, set(args.exclude_content), exclude_style, args.workers)


if __name__ == "__main__":
    sys.exit(main())
