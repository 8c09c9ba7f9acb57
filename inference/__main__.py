"""Command line, without Blender.

    python -m inference generate --prompt "a person waves with the right hand" --seconds 4 --seed 3 --out clip.bvh

Writes a BVH on the canonical skeleton (Y up, metres, 'ZXY' rotation channels), which Blender's BVH
importer and Marionette's own *Import Motion* read as is.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .body import quat
from .body.bvh import BvhMotion, write_bvh
from .body.motion import MotionClip, MotionError
from .body.skeleton import CANONICAL, NUM_JOINTS

# Z-up -> Y-up: (x, y, z) -> (x, z, -y), a -90 degree turn about X.
_Z_TO_Y = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])


def clip_to_bvh(clip: MotionClip, y_up: bool = True) -> BvhMotion:
    """A canonical clip as a BVH motion (every joint rotates; the pelvis also has position channels)."""
    basis = _Z_TO_Y if y_up else np.eye(3)
    b = quat.from_matrix(basis)
    rot = quat.mul(quat.mul(np.broadcast_to(b, clip.rotations.shape), clip.rotations),
                   np.broadcast_to(quat.conj(b), clip.rotations.shape))
    offsets = CANONICAL.offsets @ basis.T
    from .body.skeleton import Skeleton

    sk = Skeleton(CANONICAL.names, CANONICAL.parents, offsets)
    trans = np.tile(offsets, (clip.num_frames, 1, 1))
    trans[:, 0] = clip.root_translation @ basis.T
    channels = tuple(
        (("Xposition", "Yposition", "Zposition") if j == 0 else ()) + ("Zrotation", "Xrotation", "Yrotation")
        for j in range(NUM_JOINTS)
    )
    ends = tuple(
        (np.array([0.0, 0.1, 0.0]) @ basis.T if not sk.children(j) else None) for j in range(NUM_JOINTS)
    )
    return BvhMotion(sk, channels, ends, rot, trans, 1.0 / clip.fps)


def cmd_generate(args) -> int:
    import torch

    from .generation.generate import Generator

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        gen = Generator(args.model, args.device)
        res = gen.generate(args.prompt, seconds=args.seconds, seed=args.seed, steps=args.steps,
                           guidance=args.guidance, read_prompt=not args.literal)
    except MotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    clip = res.clip.at_rate(args.fps) if args.fps else res.clip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bvh(out, clip_to_bvh(clip))
    print(f"wrote {out}: {clip.num_frames} frames at {clip.fps:g} fps ({time.perf_counter() - t0:.2f} s)")
    if res.read_as:
        print(f'read the prompt as "{res.read_as}" (--literal: as written)')
    return 0


def main(argv=None) -> int:
    from .generation.generate import DEFAULT_GUIDANCE, DEFAULT_STEPS

    ap = argparse.ArgumentParser(prog="python -m inference", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="text to a BVH file")
    g.add_argument("--prompt", required=True)
    g.add_argument("--seconds", type=float, default=4.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--literal", action="store_true", help="give the model the prompt as written, not as read")
    g.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    g.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    g.add_argument("--fps", type=float, default=0, help="resample to this rate (default: the model's)")
    g.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g.add_argument("--threads", type=int, default=2)
    g.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    return cmd_generate(args)


if __name__ == "__main__":
    sys.exit(main())
