"""Foot contact cleanup: planted feet stay planted.

Where a foot is in contact with the ground (from the model's contact channels, or any (T, 4)
contact signal), its ankle is pinned to one spot per contact period and the leg is re-solved with
two-bone IK (hip, knee); the ankle keeps its world orientation, so the foot's angle is unchanged.
Frames next to a contact period blend back to the original motion, so nothing pops.
"""
from __future__ import annotations

import numpy as np

from . import quat
from .motion import MotionClip
from .skeleton import CANONICAL, JOINT_NAMES

_LEGS = {
    side: tuple(JOINT_NAMES.index(f"{side}_{j}") for j in ("hip", "knee", "ankle", "foot"))
    for side in ("left", "right")
}
_CONTACT_COLUMNS = {"left": (0, 1), "right": (2, 3)}
_ANKLE_REST = CANONICAL.rest_pose()[1][JOINT_NAMES.index("left_ankle"), 2]


def contact_periods(flags: np.ndarray, min_frames: int = 2) -> list[tuple[int, int]]:
    """[start, stop) runs of True at least `min_frames` long."""
    periods, start = [], None
    for i, f in enumerate(list(flags) + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            if i - start >= min_frames:
                periods.append((start, i))
            start = None
    return periods


def _median3(x: np.ndarray) -> np.ndarray:
    if len(x) < 3:
        return x
    padded = np.concatenate([x[:1], x, x[-1:]])
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return quat.between(a / np.linalg.norm(a, axis=-1, keepdims=True), b / np.linalg.norm(b, axis=-1, keepdims=True))


def two_bone_ik(orient: np.ndarray, pos: np.ndarray, legs: tuple[int, int, int], target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New world orientations of hip and knee (N, 4) that put the ankle on `target` (N, 3).

    The knee bends in its current plane; out-of-reach targets are approached as far as the leg allows.
    """
    h, k, a = legs
    pa, pb, pc = pos[:, h], pos[:, k], pos[:, a]
    lab = np.linalg.norm(pb - pa, axis=-1)
    lcb = np.linalg.norm(pb - pc, axis=-1)
    lat = np.clip(np.linalg.norm(target - pa, axis=-1), np.abs(lab - lcb) + 1e-4, lab + lcb - 1e-4)

    def angle(u, v):
        cu = u / np.linalg.norm(u, axis=-1, keepdims=True)
        cv = v / np.linalg.norm(v, axis=-1, keepdims=True)
        return np.arccos(np.clip((cu * cv).sum(-1), -1, 1))

    ac_ab0 = angle(pc - pa, pb - pa)
    ba_bc0 = angle(pa - pb, pc - pb)
    ac_ab1 = np.arccos(np.clip((lcb**2 - lab**2 - lat**2) / (-2 * lab * lat), -1, 1))
    ba_bc1 = np.arccos(np.clip((lat**2 - lab**2 - lcb**2) / (-2 * lab * lcb), -1, 1))
    axis = np.cross(pc - pa, pb - pa)
    n = np.linalg.norm(axis, axis=-1, keepdims=True)
    # a straight leg has no bend plane: bend the knee forward (-Y in the hip's frame is forward)
    fallback = quat.rotate(orient[:, h], np.tile([-1.0, 0.0, 0.0], (len(pa), 1)))
    axis = np.where(n > 1e-6, axis / np.maximum(n, 1e-12), fallback)
    r_hip = quat.from_axis_angle(axis, ac_ab1 - ac_ab0)
    r_knee = quat.from_axis_angle(axis, ba_bc1 - ba_bc0)
    hip = quat.mul(r_hip, orient[:, h])
    knee = quat.mul(quat.mul(r_hip, r_knee), orient[:, k])
    # where the ankle is now, then swing the whole leg about the hip onto the target
    knee_pos = pa + quat.rotate(hip, CANONICAL.offsets[k])
    ankle_pos = knee_pos + quat.rotate(knee, CANONICAL.offsets[a])
    swing = _rotation_between(ankle_pos - pa, target - pa)
    return quat.mul(swing, hip), quat.mul(swing, knee)


def contacts_from_motion(clip: MotionClip, height: float = 0.05, speed: float = 1.0) -> np.ndarray:
    """(T, 4) contact flags where a foot joint is within `height` of its rest height and slower than `speed` m/s."""
    _, pos = clip.forward_kinematics()
    idx = [JOINT_NAMES.index(n) for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]
    rest = CANONICAL.rest_pose()[1][idx, 2]
    feet = pos[:, idx]
    vel = np.zeros(feet.shape[:2])
    if len(feet) > 1:
        vel[1:] = np.linalg.norm(feet[1:, :, :2] - feet[:-1, :, :2], axis=-1) * clip.fps
        vel[0] = vel[1]
    return ((feet[..., 2] - rest < height) & (vel < speed)).astype(np.float64)


def lock_feet(clip: MotionClip, contacts: np.ndarray, threshold: float = 0.5, blend_frames: int = 5) -> MotionClip:
    """The clip with each planted foot's ankle held in place during its contact periods."""
    contacts = np.asarray(contacts, dtype=np.float64)
    if contacts.shape != (clip.num_frames, 4):
        raise ValueError(f"contacts must have shape ({clip.num_frames}, 4); got {contacts.shape}")
    rot = clip.rotations.copy()
    T = clip.num_frames
    parents = CANONICAL.parents
    for side, (h, k, a, _toe) in _LEGS.items():
        orient, pos = CANONICAL.forward_kinematics(rot, root_position=clip.root_translation)
        flags = _median3(contacts[:, list(_CONTACT_COLUMNS[side])].max(axis=1)) > threshold
        target = pos[:, a].copy()
        weight = np.zeros(T)
        for s, e in contact_periods(flags):
            spot = pos[s:e, a].mean(axis=0)
            spot[2] = max(spot[2], _ANKLE_REST)  # never pinned below the floor
            target[s:e] = spot
            weight[s:e] = 1.0
            for d in range(1, blend_frames + 1):  # ease in and out around the period (smoothstep)
                x = 1.0 - d / (blend_frames + 1)
                w = x * x * (3 - 2 * x)
                for f in (s - d, e - 1 + d):
                    if 0 <= f < T and w > weight[f]:
                        weight[f] = w
                        target[f] = spot
        moved = weight > 0
        if not moved.any():
            continue
        goal = pos[moved, a] + weight[moved, None] * (target[moved] - pos[moved, a])
        hip_w, knee_w = two_bone_ik(orient[moved], pos[moved], (h, k, a), goal)
        parent_w = orient[moved][:, parents[h]]
        rot[moved, h] = quat.mul(quat.conj(parent_w), hip_w)
        rot[moved, k] = quat.mul(quat.conj(hip_w), knee_w)
        rot[moved, a] = quat.mul(quat.conj(knee_w), orient[moved][:, a])  # the foot keeps its angle
    return MotionClip(rot, clip.root_translation, clip.fps)
