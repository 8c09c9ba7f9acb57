"""Random known-value masks for training: one model learns text-to-motion, in-betweening, body-part
editing and trajectory following because it sees all of them (CondMDI / MoGenTS-style masking).

The kinds follow what animators give: whole-pose keys every 0.3-3 s, holes of 2-60 frames between
known spans (in-betweening, and the overlap that joins long clips' windows), partial keys (some
joints on some frames), body parts kept over a range, root paths.
"""
from __future__ import annotations

import random

import torch

from inference.representation import CONTACT, NUM_FEATURES, ROOT, joint_feature_slices
from inference.skeleton import BODY_PARTS, JOINT_NAMES, NUM_JOINTS

POSE = slice(0, CONTACT.start)  # root + rotations: what an animator keys
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


def joint_columns(joints) -> list[int]:
    cols = []
    for name in joints:
        s = joint_feature_slices(JOINT_NAMES.index(name))
        cols.extend(range(s.start, s.stop))
    return cols


def _key_frames(length: int, rng: random.Random) -> list[int]:
    """Keys every 0.3-3 s (jittered), always including one near each end as animators do."""
    spacing = max(2, int(round(rng.uniform(0.3, 3.0) * FPS)))
    start = rng.randint(0, min(spacing - 1, max(0, length - 1)))
    frames = list(range(start, length, spacing))
    if rng.random() < 0.7:
        frames = sorted(set(frames) | {0, length - 1})
    return frames


def random_mask(length: int, rng: random.Random, kind: str | None = None) -> torch.Tensor:
    """(length, F) float mask, 1 = known, for a clip of `length` real frames."""
    m = torch.zeros(length, NUM_FEATURES)
    if kind is None:
        kind = rng.choices([k for k, _ in MASK_KINDS], [p for _, p in MASK_KINDS])[0]
    if kind == "none":
        return m
    if kind in ("keyframes", "keyframes_trajectory"):
        m[_key_frames(length, rng), POSE] = 1
        if kind == "keyframes_trajectory":
            m[:, 0:2] = 1
    elif kind == "holes":
        # known spans with 1-3 holes of 2-60 frames between them
        m[:, POSE] = 1
        for _ in range(rng.randint(1, 3)):
            size = rng.randint(2, min(60, max(2, length - 2)))
            a = rng.randint(1, max(1, length - size - 1))
            m[a:a + size, POSE] = 0
    elif kind == "ends":
        a = rng.randint(1, max(1, length // 3))
        b = rng.randint(1, max(1, length // 3))
        which = rng.random()
        if which < 0.4:
            m[:a, POSE] = 1
            m[length - b:, POSE] = 1
        elif which < 0.8:
            m[:a, POSE] = 1  # continuing a previous window
        else:
            m[length - b:, POSE] = 1
    elif kind == "body_part":
        parts = rng.sample(BODY_PARTS, rng.randint(1, 2))
        joints = sorted({j for p in parts for j in p.joints})
        cols = joint_columns(joints)
        if any(p.root_translation for p in parts):
            cols += list(range(ROOT.start, ROOT.stop))
        sel = torch.zeros(NUM_FEATURES, dtype=torch.bool)
        sel[cols] = True
        if rng.random() < 0.5:  # keep everything but the parts (regenerating the parts)
            sel = ~sel
            sel[CONTACT] = False
        rows = slice(None)
        if rng.random() < 0.3:  # the edit covers a range; the rest of the clip is known whole
            a = rng.randint(0, length // 2)
            b = rng.randint(a + 1, length)
            m[:, POSE] = 1
            m[a:b] = 0
            rows = slice(a, b)
        m[rows, sel] = 1
    elif kind == "trajectory":
        cols = [0, 1, 2] if rng.random() < 0.5 else [0, 1]
        if rng.random() < 0.5:
            m[:, cols] = 1
        else:
            for f in _key_frames(length, rng):
                m[f, cols] = 1
    elif kind == "partial_keys":
        # some joints (a body part or a random set) keyed on some frames, e.g. only the hands
        frames = _key_frames(length, rng)
        if rng.random() < 0.5:
            joints = rng.choice(BODY_PARTS).joints or ("pelvis",)
        else:
            joints = rng.sample(JOINT_NAMES, rng.randint(1, NUM_JOINTS // 2))
        cols = joint_columns(joints)
        for f in frames:
            m[f, cols] = 1
        if rng.random() < 0.5:
            m[frames, 0:3] = 1
    else:
        raise ValueError(kind)
    return m


def key_distance_weights(mask: torch.Tensor, valid: torch.Tensor, scale: float = 4.0, gain: float = 2.0):
    """(B, T) loss weights: 1 + gain at free frames right next to known ones, decaying with the
    distance (frames) to the nearest known frame; where the model must meet a key counts most."""
    known = mask[..., : CONTACT.start].amax(-1) > 0  # (B, T) any pose value known
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
