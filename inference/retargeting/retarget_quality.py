"""How well a canonical clip lands on a rig: bone directions, planted feet, and the round trip back.

Used by the retargeting tests and `make bench` (keys retarget_*), on any `RestAlignment`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..body import quat
from .cleanup import contact_periods, contacts_from_motion
from ..body.motion import MotionClip
from ..body.skeleton import CONTACT_PLANTED, JOINT_NAMES

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
        rot, trans = align.replant_feet_on_rig(rot, trans, clip)
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
        contacts = contacts_from_motion(clip, CONTACT_PLANTED)  # truly planted joints only
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


TWIST_LIMIT_DEG = 45.0
"""A joint whose median twist about its own bone is larger than this is implausible: bodies do not
stand with a thigh turned half round or a spine twisted a quarter turn."""
SHOULDER_TWIST_LIMIT_DEG = 120.0
"""The upper arm's own rotation really does reach 90 degrees for long stretches (a hand raised to
wave turns the humerus a quarter turn), so only larger twists are implausible there."""


def bone_twist_deg(rotations: np.ndarray) -> dict[str, np.ndarray]:
    """Per canonical joint with one child, the twist (degrees, -180..180) of its local rotation about
    its own bone (swing-twist decomposition), per frame. rotations: (T, 22, 4) canonical local."""
    from ..body.skeleton import CANONICAL

    rotations = np.asarray(rotations, dtype=np.float64)
    out = {}
    for j, name in enumerate(CANONICAL.names):
        kids = CANONICAL.children(j)
        if len(kids) != 1:
            continue
        axis = CANONICAL.offsets[kids[0]] / np.linalg.norm(CANONICAL.offsets[kids[0]])
        q = rotations[:, j]
        angle = np.degrees(2 * np.arctan2(q[:, 1:] @ axis, q[:, 0]))
        out[name] = (angle + 180.0) % 360.0 - 180.0
    return out


def implausible_twists(rotations: np.ndarray, limit: float = TWIST_LIMIT_DEG) -> dict[str, float]:
    """Joints whose median twist about their own bone exceeds `limit` degrees (the shoulders
    SHOULDER_TWIST_LIMIT_DEG), with that median."""
    out = {}
    for n, t in bone_twist_deg(rotations).items():
        lim = max(limit, SHOULDER_TWIST_LIMIT_DEG) if n.endswith("_shoulder") else limit
        if abs(m := float(np.median(t))) > lim:
            out[n] = m
    return out


# -- twist: each bone's secondary axis, not only its direction ------------------------------------

SECONDARY_AXES = (
    ("left_hip", "knee"), ("right_hip", "knee"), ("left_knee", "knee"), ("right_knee", "knee"),
    ("left_ankle", "sole"), ("right_ankle", "sole"), ("left_wrist", "palm"), ("right_wrist", "palm"),
    ("spine3", "chest"),
)
"""(canonical joint, anatomical axis) pairs measured: where the knee points (on the thigh and on the
shin), the sole's normal, the palm's normal, the chest's forward. Bone directions cannot see these."""

SOLE_FLIP_DEG = 90.0
"""A planted foot whose sole normal is more than this from straight down is flipped."""


@dataclass
class TwistQuality:
    twist_err_mean_deg: float
    """Mean over axes and frames of the angle between the source's and the rig's secondary axis."""
    twist_err_max_deg: float
    """The largest such angle on any frame."""
    by_axis_deg: dict
    """Mean angle per measured joint."""
    sole_flip_share: float
    """Share of planted foot-frames (source contacts) where the rig's sole faces up more than down."""


def _rest_axes(ws: np.ndarray, ps: np.ndarray, joint: dict[str, int]) -> dict[str, np.ndarray] | None:
    """Each SECONDARY_AXES axis in its joint's local frame, read from an upright rest pose (world
    orientations ws (J, 4), positions ps (J, 3), Z up); None where the rest pose is no standing pose
    (a BVH zero pose lying along an axis) and so shows no anatomy."""
    P = lambda n: ps[joint[n]]  # noqa: E731
    top = P("head") if "head" in joint else P("neck")
    ankles = 0.5 * (P("left_ankle") + P("right_ankle"))
    height = top - ankles
    if height[2] < 0.8 * np.linalg.norm(height):
        return None
    left = P("left_hip") - P("right_hip")
    forward = np.cross(left, [0.0, 0.0, 1.0])
    forward[2] = 0.0
    forward /= np.linalg.norm(forward)

    def square(v, bone):
        if np.linalg.norm(bone) < 1e-9 * np.ptp(ps):
            return None  # joints at one place (a twist bone over its parent) show no bone to roll about
        bone = bone / np.linalg.norm(bone)
        v = v - np.dot(v, bone) * bone
        return v / np.linalg.norm(v)

    out = {}
    for name, kind in SECONDARY_AXES:
        side = name.split("_")[0] if "_" in name else ""
        child = {"left_hip": "left_knee", "right_hip": "right_knee", "left_knee": "left_ankle",
                 "right_knee": "right_ankle", "left_ankle": "left_foot", "right_ankle": "right_foot",
                 "spine3": "neck"}.get(name)
        if name not in joint or (child is not None and child not in joint):
            continue
        if kind == "palm":
            elbow = f"{side}_elbow"
            if elbow not in joint:
                continue
            fore = P(name) - P(elbow)
            axis = square(np.cross(fore, forward), fore)
            axis = None if axis is None else (1.0 if side == "left" else -1.0) * axis
        elif kind == "sole":
            axis = np.array([0.0, 0.0, -1.0])  # a rig stands flat-footed at rest, whatever its foot bone
        else:
            axis = square(forward, P(child) - P(name))
        if axis is not None:
            out[name] = quat.rotate(quat.conj(ws[joint[name]]), axis)
    return out


def twist_quality(align, clip: MotionClip, ws: np.ndarray, contacts: np.ndarray | None = None) -> TwistQuality | None:
    """How well each bone's secondary axis (see SECONDARY_AXES) carries over: `ws` (T, J, 4) are the
    rig's world orientations in its own space, however posed; only mapped joints are read. Each axis
    is fixed to its bone as the rest pose shows it (a skinned mesh's kneecap, sole and palm are). None
    when the rig's rest pose is no standing pose."""
    from ..body.skeleton import CANONICAL

    T = clip.num_frames
    names = CANONICAL.names
    w0, p0 = align.skeleton.rest_pose()
    basis = np.asarray(align.basis)
    w0 = quat.mul(np.broadcast_to(basis, w0.shape), w0)
    p0 = quat.rotate(np.broadcast_to(basis, (len(p0), 4)), p0)
    rig_joint = {n: int(align.mapping[i]) for i, n in enumerate(names) if align.mapping[i] >= 0}
    rig_axes = _rest_axes(w0, p0, rig_joint)
    if rig_axes is None:
        return None
    cw0, cp0 = CANONICAL.rest_pose()
    can_axes = _rest_axes(cw0, cp0, {n: i for i, n in enumerate(names)})
    from .retarget import PLANTED_SOLE_UP

    for name, up in PLANTED_SOLE_UP.items():  # the canonical foot's sole as the data stands on it
        can_axes[name] = -up / np.linalg.norm(up)
    wc, _ = clip.forward_kinematics()
    wr = quat.mul(np.broadcast_to(basis, ws.shape), ws)
    errs, soles = {}, {}
    for name, local in rig_axes.items():
        j = names.index(name)
        a_src = quat.rotate(wc[:, j], np.broadcast_to(can_axes[name], (T, 3)))
        a_rig = quat.rotate(wr[:, rig_joint[name]], np.broadcast_to(local, (T, 3)))
        errs[name] = quat.angle_between(a_src, a_rig)
        if name.endswith("_ankle"):
            soles[name] = a_rig
    if contacts is None:
        contacts = contacts_from_motion(clip, CONTACT_PLANTED)
    flips = []
    for col, name in ((0, "left_ankle"), (2, "right_ankle")):
        if name in soles:
            planted = contacts[:, col] > 0.5
            down = np.degrees(np.arccos(np.clip(-soles[name][planted, 2], -1.0, 1.0)))
            flips.extend((down > SOLE_FLIP_DEG).tolist())
    allv = np.concatenate(list(errs.values()))
    return TwistQuality(
        twist_err_mean_deg=float(allv.mean()),
        twist_err_max_deg=float(allv.max()),
        by_axis_deg={k: float(v.mean()) for k, v in errs.items()},
        sole_flip_share=float(np.mean(flips)) if flips else 0.0,
    )
