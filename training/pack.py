"""Pack a built dataset small enough to travel to a GPU machine, and unpack it there.

    python -m training.pack --out .gpu/pack          # here: originals only, rotations as float16
    python -m training.pack --unpack .gpu/pack --out DIR   # there: the dataset folder train.py reads

Mirrored clips are left out of the pack and made again on unpacking (`MotionClip.mirrored`);
rotations travel as 16-bit x, y, z (w >= 0 is implied) coded as differences between frames, which
compress well; sentence embeddings as 8 bits per value with a scale per sentence.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from inference.motion import MotionClip

from . import build_dataset


def pack(src: Path, out: Path) -> None:
    meta, rot, root, emb = build_dataset.load(src)
    keep = [c for c in meta["clips"] if not c["mirrored"]]
    q = np.concatenate([rot[c["start"]:c["start"] + c["length"]] for c in keep]).astype(np.float64)
    q *= np.where(q[..., :1] < 0, -1.0, 1.0)
    code = np.round(q[..., 1:] * 32767).astype(np.int32)
    starts = np.cumsum([0] + [c["length"] for c in keep])[:-1]
    delta = code.copy()
    delta[1:] -= code[:-1]
    delta[starts] = code[starts]  # each clip starts afresh
    scale = np.abs(emb).max(axis=1, keepdims=True).clip(1e-6) / 127
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "pack.npz", delta=delta.astype(np.int32), starts=starts,
                        root=np.concatenate([root[c["start"]:c["start"] + c["length"]] for c in keep]),
                        emb=np.round(emb / scale).astype(np.int8), emb_scale=scale.astype(np.float32))
    shutil.copy(src / "clips.json", out / "clips.json")


def unpack(pack_dir: Path, out: Path) -> None:
    meta = json.loads((pack_dir / "clips.json").read_text())
    z = np.load(pack_dir / "pack.npz")
    delta, starts = z["delta"], z["starts"]
    code = np.empty_like(delta)
    bounds = list(starts) + [len(delta)]
    for a, b in zip(bounds, bounds[1:]):
        code[a:b] = np.cumsum(delta[a:b], axis=0)
    xyz = code / 32767.0
    w = np.sqrt(np.clip(1 - (xyz ** 2).sum(-1, keepdims=True), 0, None))
    rot = np.concatenate([w, xyz], -1)
    rot = (rot / np.linalg.norm(rot, axis=-1, keepdims=True)).astype(np.float32)
    root = z["root"]
    rots, roots, at = [], [], 0
    for c in meta["clips"]:
        if not c["mirrored"]:
            r, t = rot[at:at + c["length"]], root[at:at + c["length"]]
            at += c["length"]
        else:  # always right after its original (build_dataset.build adds them in pairs)
            m = MotionClip(rots[-1], roots[-1], meta["fps"]).mirrored()
            r, t = m.rotations.astype(np.float32), m.root_translation.astype(np.float32)
        assert len(r) == c["length"]
        rots.append(r)
        roots.append(t)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "rotations.npy", np.concatenate(rots))
    np.save(out / "root.npy", np.concatenate(roots))
    np.save(out / "text_emb.npy", (z["emb"] * z["emb_scale"]).astype(np.float16))
    shutil.copy(pack_dir / "clips.json", out / "clips.json")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=None, help="built dataset (default .cache/dataset)")
    ap.add_argument("--unpack", type=Path, default=None, help="a pack folder to unpack into --out")
    args = ap.parse_args(argv)
    if args.unpack:
        unpack(args.unpack, args.out)
    else:
        pack(args.data or build_dataset.default_dir(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
