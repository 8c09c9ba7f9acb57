"""Random known-value masks for training: one model learns text-to-motion, in-betweening, body-part
editing and trajectory following because it sees all of them (CondMDI / MoGenTS-style masking).

The kinds follow what animators give: whole-pose keys every 0.3-3 s, holes of 2-60 frames between
known spans (in-betweening, and the overlap that joins long clips' windows), partial keys (some
joints on some frames), body parts kept over a range, root paths.
"""
from __future__ import annotations

import random

import numpy as np
import torch

from inference.generation.constraints import POSE, body_part_mask, joint_mask, keyframe_mask, trajectory_mask
from inference.generation.representation import NUM_FEATURES
from inference.body.skeleton import BODY_PARTS, JOINT_NAMES, NUM_JOINTS

FPS = 20.0

# (name, probability)
MASK_KINDS = (
    ("none", 0.22),
    ("keyframes", 0.16),
    ("holes", 0.14),
    ("ends", 0.08),
    ("body_part", 0.12),
    ("trajectory", 0.10),
    ("partial_keys", 0.10),
    ("keyframes_trajectory", 0.08),
)


def _key_frames(length: int, rng: random.Random) -> list[int]:
    """Keys every 0.3-3 s (jittered), always including one near each end as animators do."""
    spacing = max(2, int(round(rng.uniform(0.3, 3.0) * FPS)))
    start = rng.randint(0, min(spacing - 1, max(0, length - 1)))
    frames = list(range(start, length, spacing))
    if rng.random() < 0.7:
        frames = sorted(set(frames) | {0, length - 1})
    return frames


def random_mask(length: int, rng: random.Random, kind: str | None = None) -> torch.Tensor:
    """(length, F) float mask, 1 = known, for a clip of `length` real frames.

    Built with the runtime's own constructors (`inference.generation.constraints`), so training sees exactly the
    masks a user's keys, kept parts and root paths produce.
    """
    if kind is None:
        kind = rng.choices([k for k, _ in MASK_KINDS], [p for _, p in MASK_KINDS])[0]
    if kind == "none":
        m = np.zeros((length, NUM_FEATURES), bool)
    elif kind in ("keyframes", "keyframes_trajectory"):
        m = keyframe_mask(length, _key_frames(length, rng))
        if kind == "keyframes_trajectory":
            m |= trajectory_mask(length)
    elif kind == "holes":
        # known spans with 1-3 holes of 2-60 frames between them
        known = np.ones(length, bool)
        for _ in range(rng.randint(1, 3)):
            size = rng.randint(2, min(60, max(2, length - 2)))
            a = rng.randint(1, max(1, length - size - 1))
            known[a:a + size] = False
        m = keyframe_mask(length, np.flatnonzero(known))
    elif kind == "ends":
        a = rng.randint(1, max(1, length // 3))
        b = rng.randint(1, max(1, length // 3))
        which = rng.random()
        frames = np.arange(length)
        if which < 0.4:
            frames = frames[(frames < a) | (frames >= length - b)]
        elif which < 0.8:
            frames = frames[:a]  # continuing a previous window
        else:
            frames = frames[length - b:]
        m = keyframe_mask(length, frames)
    elif kind == "body_part":
        parts = rng.sample(BODY_PARTS, rng.randint(1, 2))
        keep = not rng.random() < 0.5  # else keep everything but the parts (regenerating the parts)
        frames = None
        if rng.random() < 0.3:  # the edit covers a range; the rest of the clip is known whole
            a = rng.randint(0, length // 2)
            b = rng.randint(a + 1, length)
            frames = (a, b)
        m = body_part_mask(length, parts, keep, frames)
    elif kind == "trajectory":
        height = rng.random() < 0.5
        m = trajectory_mask(length, None if rng.random() < 0.5 else _key_frames(length, rng), height)
    elif kind == "partial_keys":
        # some joints (a body part or a random set) keyed on some frames, e.g. only the hands
        frames = _key_frames(length, rng)
        if rng.random() < 0.5:
            joints = rng.choice(BODY_PARTS).joints or ("pelvis",)
        else:
            joints = rng.sample(JOINT_NAMES, rng.randint(1, NUM_JOINTS // 2))
        m = joint_mask(length, joints, frames=frames)
        if rng.random() < 0.5:
            m |= trajectory_mask(length, frames, height=True)
    else:
        raise ValueError(kind)
    return torch.from_numpy(m.astype(np.float32))


def key_distance_weights(mask: torch.Tensor, valid: torch.Tensor, scale: float = 4.0, gain: float = 2.0):
    """(B, T) loss weights: 1 + gain at free frames right next to known ones, decaying with the
    distance (frames) to the nearest known frame; where the model must meet a key counts most."""
    known = mask[..., POSE].amax(-1) > 0  # (B, T) any pose value known
    b, t = known.shape
    idx = torch.arange(t, device=mask.device, dtype=torch.float32).expand(b, t)
    big = torch.full_like(idx, 1e6)
    prev = torch.cummax(torch.where(known, idx, -big), dim=1).values
    nxt = torch.flip(torch.cummin(torch.flip(torch.where(known, idx, big), [1]), dim=1).values, [1])
    dist = torch.minimum(idx - prev, nxt - idx)
    w = 1.0 + gain * torch.exp(-(dist - 1).clamp_min(0) / scale)
    w = torch.where(known, torch.ones_like(w), w)
    w = torch.where(known.any(1, keepdim=True), w, torch.ones_like(w))
    return w * valid
