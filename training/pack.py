"""Pack a built dataset small enough to travel to a GPU machine, and unpack it there.

    python -m training.pack --out .gpu/pack          # here: originals only, rotations as float16
    python -m training.pack --unpack .gpu/pack --out DIR   # there: the dataset folder train.py reads

Mirrored clips are left out of the pack and made again on unpacking (`MotionClip.mirrored`);
rotations travel as w, x, y, z in steps of 1/8192 (0.01 degree) coded as second
differences between frames, which compress well; sentence embeddings as 8 bits per value with a
scale per sentence. Everything is lzma-compressed: about 40 MB for the whole set.
"""
from __future__ import annotations

import argparse
import json
import lzma
import sys
from pathlib import Path

import numpy as np

from inference.body.motion import MotionClip

from . import build_dataset


STEP = 8192


def _save(path: Path, a: np.ndarray) -> None:
    path.write_bytes(lzma.compress(json.dumps([a.dtype.str, a.shape]).encode() + b"\n" + a.tobytes(), preset=6))


def _load(path: Path) -> np.ndarray:
    head, _, body = lzma.decompress(path.read_bytes()).partition(b"\n")
    dtype, shape = json.loads(head)
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def pack(src: Path, out: Path) -> None:
    meta, rot, root, emb = build_dataset.load(src)
    keep = [c for c in meta["clips"] if not c["mirrored"]]
    q = np.concatenate([rot[c["start"]:c["start"] + c["length"]] for c in keep]).astype(np.float64)
    code = np.round(q * STEP).astype(np.int32)
    d2 = np.diff(np.diff(code, axis=0, prepend=0), axis=0, prepend=0)
    if np.abs(d2).max() > 32767:
        raise SystemExit("rotations change too fast between frames to pack as 16 bits")
    scale = np.abs(emb).max(axis=1, keepdims=True).clip(1e-6) / 127
    out.mkdir(parents=True, exist_ok=True)
    _save(out / "rot.xz", d2.astype(np.int16))
    _save(out / "root.xz", np.concatenate([root[c["start"]:c["start"] + c["length"]] for c in keep]))
    _save(out / "emb.xz", np.round(emb / scale).astype(np.int8))
    _save(out / "emb_scale.xz", scale.astype(np.float32))
    (out / "clips.json.xz").write_bytes(lzma.compress((src / "clips.json").read_bytes()))


def unpack(pack_dir: Path, out: Path) -> None:
    meta = json.loads(lzma.decompress((pack_dir / "clips.json.xz").read_bytes()))
    code = np.cumsum(np.cumsum(_load(pack_dir / "rot.xz").astype(np.int64), axis=0), axis=0)
    rot = (code / np.linalg.norm(code, axis=-1, keepdims=True)).astype(np.float32)
    root = _load(pack_dir / "root.xz")
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
    np.save(out / "text_emb.npy", (_load(pack_dir / "emb.xz") * _load(pack_dir / "emb_scale.xz")).astype(np.float16))
    (out / "clips.json").write_text(json.dumps(meta))


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
