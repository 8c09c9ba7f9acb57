"""Random known-value masks for training: one model learns text-to-motion, in-betweening, body-part
editing and trajectory following because it sees all of them (CondMDI / MoGenTS-style masking)."""
from __future__ import annotations

import random

import torch

from inference.representation import CONTACT, NUM_FEATURES, ROOT, joint_feature_slices
from inference.skeleton import BODY_PARTS, JOINT_NAMES, NUM_JOINTS

POSE = slice(0, CONTACT.start)  # root + rotations: what an animator keys

# (name, probability)
MASK_KINDS = (
    ("none", 0.25),
    ("keyframes", 0.15),
    ("ends", 0.10),
    ("body_part", 0.15),
    ("trajectory", 0.15),
    ("joints_frames", 0.10),
    ("keyframes_trajectory", 0.10),
)


def joint_columns(joints) -> list[int]:
    cols = []
    for name in joints:
        s = joint_feature_slices(JOINT_NAMES.index(name))
        cols.extend(range(s.start, s.stop))
    return cols


def random_mask(length: int, rng: random.Random, kind: str | None = None) -> torch.Tensor:
    """(length, F) float mask, 1 = known, for a clip of `length` real frames."""
    m = torch.zeros(length, NUM_FEATURES)
    if kind is None:
        kind = rng.choices([k for k, _ in MASK_KINDS], [p for _, p in MASK_KINDS])[0]
    if kind == "none":
        return m
    if kind in ("keyframes", "keyframes_trajectory"):
        k = rng.randint(1, min(6, length))
        frames = rng.sample(range(length), k)
        m[frames, POSE] = 1
        if kind == "keyframes_trajectory":
            m[:, 0:2] = 1
    elif kind == "ends":
        a = rng.randint(1, max(1, length // 3))
        b = rng.randint(1, max(1, length // 3))
        which = rng.random()
        if which < 0.4:
            m[:a, POSE] = 1
            m[length - b:, POSE] = 1
        elif which < 0.7:
            m[:a, POSE] = 1
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
        m[:, sel] = 1
    elif kind == "trajectory":
        cols = [0, 1, 2] if rng.random() < 0.5 else [0, 1]
        if rng.random() < 0.5:
            m[:, cols] = 1
        else:
            k = rng.randint(1, min(8, length))
            for f in rng.sample(range(length), k):
                m[f, cols] = 1
    elif kind == "joints_frames":
        p_joint, p_frame = rng.uniform(0.1, 0.6), rng.uniform(0.05, 0.5)
        jm = torch.rand(length, NUM_JOINTS) < p_joint
        fm = torch.rand(length) < p_frame
        jm &= fm[:, None]
        rot = jm[:, :, None].expand(length, NUM_JOINTS, 6).reshape(length, -1)
        m[:, 3:CONTACT.start] = rot.float()
        m[fm, 0:3] = (torch.rand(3) < 0.5).float()
    else:
        raise ValueError(kind)
    return m
