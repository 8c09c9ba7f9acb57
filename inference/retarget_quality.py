"""How well a canonical clip lands on a rig: bone directions, planted feet, and the round trip back.

Used by the retargeting tests and `make bench` (keys retarget_*), on any `RestAlignment`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import quat
from .cleanup import contact_periods, contacts_from_motion
from .motion import MotionClip
from .skeleton import JOINT_NAMES

_FEET = [JOINT_NAMES.index(n) for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]


@dataclass
class RetargetQuality:
    coverage: float
    """Share of the 22 canonical joints the map found on the rig."""
    dir_err_mean_deg: float
    """Mean over bones and frames of the angle between a canonical bone and the rig's bone, world space."""
    dir_err_worst_bone_deg: float
    """The worst bone's mean angle."""
    foot_slide_cm: float
    """While a source foot joint (ankle or toe) is planted, how far the rig's joint travels over the
    ground (largest distance from where the contact began), mean over contacts, in cm."""
    source_foot_slide_cm: float
    """The same for the source clip's own joints."""
    round_trip_err: float
    """rig -> canonical -> rig: largest change of a mapped joint's local rotation matrix entry."""


def measure(align, clip: MotionClip, contacts: np.ndarray | None = None, foot_lock: bool = True) -> RetargetQuality:
    """Quality of retargeting `clip` with `align` alone (the rig posed by our own forward kinematics)."""
    rot, trans = align.from_canonical(clip)
    if foot_lock:
        rot, trans = align.lock_feet(rot, trans, clip)
    _, ps = align.skeleton.forward_kinematics(rot, trans)
    back = align.to_canonical(rot, trans, clip.fps)
    rot2, _ = align.from_canonical(back)
    mapped = [int(m) for m in align.mapping if m >= 0]
    rt = np.abs(quat.to_matrix(rot2[:, mapped]) - quat.to_matrix(rot[:, mapped])).max()
    return measure_posed(align, clip, ps, float(rt), contacts)


def measure_posed(align, clip: MotionClip, ps: np.ndarray, round_trip_err: float,
                  contacts: np.ndarray | None = None) -> RetargetQuality:
    """Quality from the rig's joint positions (T, J, 3) in its own space, however they were posed
    (e.g. as Blender evaluated the written keys, constraints included); only mapped joints are read."""
    T = clip.num_frames
    dirs = align.posed_direction_errors(ps, clip)
    ps = quat.rotate(np.broadcast_to(align.basis, (T, 1, 4)), ps)
    pc = clip.positions()
    per_bone = {k: float(v.mean()) for k, v in dirs.items()}
    ps = ps * align.scale  # metres, Z up
    slide_rig, slide_src = [], []
    if contacts is None:
        contacts = contacts_from_motion(clip, height=0.03, speed=0.1)  # truly planted joints only
    for col, j in enumerate(_FEET):
        a = align.mapping[j]
        if a < 0:
            continue
        for s0, e in contact_periods(contacts[:, col] > 0.5, min_frames=3):
            slide_rig.append(float(np.linalg.norm(ps[s0:e, a, :2] - ps[s0, a, :2], axis=-1).max()))
            slide_src.append(float(np.linalg.norm(pc[s0:e, j, :2] - pc[s0, j, :2], axis=-1).max()))
    return RetargetQuality(
        coverage=float((align.mapping >= 0).mean()),
        dir_err_mean_deg=float(np.mean(np.concatenate(list(dirs.values())))) if dirs else float("nan"),
        dir_err_worst_bone_deg=max(per_bone.values()) if per_bone else float("nan"),
        foot_slide_cm=100 * float(np.mean(slide_rig)) if slide_rig else 0.0,
        source_foot_slide_cm=100 * float(np.mean(slide_src)) if slide_src else 0.0,
        round_trip_err=round_trip_err,
    )
