"""Moving motion between the canonical skeleton and any other humanoid skeleton.

A `BoneMap` names, for each canonical joint, the joint of another skeleton that plays its role.
`RestAlignment` then works out, once per skeleton, a constant rotation per mapped joint that
relates the two joint frames, from the skeletons' zero poses alone:

* where a canonical joint has several mapped children (pelvis, upper chest), the rotation that
  best fits the directions to all of them (Kabsch);
* where it has one, the bone's direction and its roll from its neighbours, the same anatomical
  axis read on both skeletons: the knee's hinge (the plane of hip, knee and ankle) for thigh and
  shin, the ankle's for the foot, the elbow's for the arm, the body's left-right axis for the spine
  and neck, its forward axis for the collar bones. A rig's rest pose shows these axes; a zero pose
  that is no pose at all (Bandai-Namco's lies along the X axis) does not, so BVH motion gives its
  own frames to read them from. A bone's roll is never left to the smallest swing, which picks an
  arbitrary half turn when the bone's zero-pose direction is opposite to the canonical one;
* at end joints (head, hands, toes), the parent's frame.

With those, world orientations carry over directly (W_canonical = A · W_other · C), which keeps
every bone's world direction; root motion is scaled by the ratio of leg lengths. The same
alignment runs both ways, so canonical motion can be written onto any mapped rig.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..body import quat
from ..body.motion import MotionClip, MotionError
from ..body.skeleton import CANONICAL, CONTACT_PLANTED, CONTACT_RIG, LEG_CHAIN, NUM_JOINTS, Skeleton

RIG_MAP_DIR = Path(__file__).resolve().parents[2] / "assets" / "rig_maps"

UP_AXIS_TO_Z = {
    "Z": quat.IDENTITY,
    # Y-up files (BVH, glTF) facing +Z become Z-up facing -Y: +90 degrees about X.
    "Y": quat.from_axis_angle(np.array([1.0, 0.0, 0.0]), np.pi / 2),
}
UP_AXES = (*UP_AXIS_TO_Z, "auto")
"""'auto': BVH files come Y-up or Z-up (re-exported from Blender); the motion itself tells which."""


class RetargetError(MotionError):
    """A skeleton or bone map that cannot be used for retargeting; the message says why."""


@dataclass(frozen=True)
class BoneMap:
    """Which joint of another skeleton plays each canonical joint's role."""

    name: str
    joints: dict[str, str] = field(repr=False)
    """canonical joint name -> other skeleton's joint name"""
    up: str = "Z"
    """The other skeleton's up axis ("Y" for BVH files, "Z" for Blender armatures)."""

    def __post_init__(self):
        unknown = sorted(set(self.joints) - set(CANONICAL.names))
        if unknown:
            raise RetargetError(f"Bone map '{self.name}' names unknown canonical joints: {', '.join(unknown)}.")
        if self.up not in UP_AXES:
            raise RetargetError(f"Bone map '{self.name}': up axis must be one of {', '.join(UP_AXES)}.")

    @staticmethod
    def load(path: str | os.PathLike) -> "BoneMap":
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise RetargetError(f"Cannot read bone map {path}: {e}") from None
        return BoneMap(data.get("name", Path(path).stem), dict(data["joints"]), data.get("up", "Z"))

    def coverage(self, names: tuple[str, ...] | list[str]) -> float:
        """Fraction of canonical joints this map finds in a skeleton with these joint names."""
        present = set(names)
        return sum(1 for v in self.joints.values() if v in present) / NUM_JOINTS


_REQUIRED = ("pelvis", *LEG_CHAIN, *("right_" + n[5:] for n in LEG_CHAIN))
"""Canonical joints every map must find: without the hips and legs there is no motion to place."""


def builtin_maps() -> list[BoneMap]:
    return [BoneMap.load(p) for p in sorted(RIG_MAP_DIR.glob("*.json"))]


def _name_prefixes(names) -> list[str]:
    """"" and, where every joint shares one, a namespace prefix such as "mixamorig:" or "Neo_"."""
    common = os.path.commonprefix(list(names))
    cut = max(common.rfind(":"), common.rfind("_"))
    return [""] + ([common[: cut + 1]] if cut >= 0 else [])


def detect_map(
    names: tuple[str, ...] | list[str],
    up: str | None = None,
    skeleton: Skeleton | None = None,
    positions: np.ndarray | None = None,
    up_vector: np.ndarray | None = None,
) -> BoneMap:
    """The built-in map that covers most of these joint names, restricted to the names present;
    failing that (and given the skeleton), a map found from the skeleton's shape.

    `up` overrides the map's up axis (Blender armatures are always Z up, whatever their names).
    positions: (J, 3) an upright pose of `skeleton` to read its shape from (default: its rest pose).
    up_vector: where up is in the skeleton's space, when that is not simply `up` (a rotated armature).
    """
    best, best_cov, best_prefix = None, 0.0, ""
    for prefix in _name_prefixes(names):
        stripped = [n[len(prefix):] for n in names if n.startswith(prefix)]
        for m in builtin_maps():
            cov = m.coverage(stripped)
            if cov > best_cov:
                best, best_cov, best_prefix = m, cov, prefix
    present = set(names)
    joints = {k: best_prefix + v for k, v in best.joints.items() if best_prefix + v in present} if best else {}
    # Names that half match but miss the hips or a leg (a renamed pelvis): the shape tells more.
    incomplete = any(n not in joints for n in _REQUIRED)
    if (best is None or best_cov < 0.5 or incomplete) and skeleton is not None:
        from .automap import StructureError, map_by_structure

        for axis in [up] if up else ["Y", "Z"]:
            try:
                found = map_by_structure(skeleton, axis if up_vector is None else up_vector, positions)
                return BoneMap("Found from the skeleton's shape", found, axis)
            except StructureError:
                continue
    if best is None or best_cov < 0.5:
        raise RetargetError(
            "This skeleton's joint names match no known humanoid rig (Bandai-Namco, CMU, Mixamo, Rigify, ...)"
            + (" and its shape shows no legs, spine and head" if skeleton is not None else "")
            + "; it may not be a humanoid, or it needs a bone map."
        )
    return BoneMap(best.name, joints, up or best.up)


def map_indices(skeleton: Skeleton, bone_map: BoneMap) -> np.ndarray:
    """(22,) index of each canonical joint's counterpart in `skeleton`, -1 where unmapped; checks the map."""
    mapping = np.full(NUM_JOINTS, -1)
    for cj, sname in bone_map.joints.items():
        if sname not in skeleton.names:
            raise RetargetError(f"The bone map points at '{sname}', which this skeleton does not have.")
        mapping[CANONICAL.index(cj)] = skeleton.index(sname)
    missing = [n for n in _REQUIRED if mapping[CANONICAL.index(n)] < 0]
    if missing:
        raise RetargetError(
            "Cannot find the legs and hips of this skeleton (missing: " + ", ".join(missing) + "); "
            "it may not be a humanoid."
        )
    used = mapping[mapping >= 0]
    if len(set(used.tolist())) != len(used):
        raise RetargetError("The bone map uses the same joint for two roles.")
    return mapping


def _stands(skeleton: Skeleton, mapping: np.ndarray, basis: np.ndarray) -> bool:
    """Whether the skeleton's rest pose stands upright (head or neck over the ankles) once `basis` has
    turned it Z up: a rig's does; a BVH zero pose may lie along an axis."""
    _, p0 = skeleton.rest_pose()
    p = quat.rotate(np.asarray(basis, float), p0)
    top = next((mapping[CANONICAL.index(n)] for n in ("head", "neck", "spine3", "spine2")
                if mapping[CANONICAL.index(n)] >= 0), -1)
    if top < 0:
        return False
    v = p[top] - p[[mapping[CANONICAL.index(n)] for n in ("left_ankle", "right_ankle")]].mean(axis=0)
    return bool(v[2] > 0.8 * np.linalg.norm(v))


def facing_basis(skeleton: Skeleton, bone_map: BoneMap, basis: np.ndarray) -> np.ndarray:
    """`basis` (a rotation standing the skeleton Z up) turned about Z so that the skeleton's rest pose
    faces -Y, the canonical forward: canonical motion then moves a rig the way the rig itself faces
    (a rig facing +Y is not turned half round). Unchanged where the rest pose does not stand."""
    mapping = map_indices(skeleton, bone_map)
    if not _stands(skeleton, mapping, basis):
        return np.asarray(basis, float)
    _, p0 = skeleton.rest_pose()
    p = quat.rotate(np.asarray(basis, float), p0)
    left = p[mapping[CANONICAL.index("left_hip")]] - p[mapping[CANONICAL.index("right_hip")]]
    forward = np.cross(left, [0.0, 0.0, 1.0])[:2]
    if np.linalg.norm(forward) < 1e-9:
        return np.asarray(basis, float)
    yaw = np.arctan2(forward[0], -forward[1])  # angle from -Y to forward, about +Z
    return quat.normalize(quat.mul(quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), -yaw), np.asarray(basis, float)))


def estimate_basis(skeleton: Skeleton, bone_map: BoneMap, rotations, translations) -> np.ndarray:
    """Rotation taking the motion's up axis to +Z: the axis along which the head is, on average,
    farthest above the ankles (BVH zero poses are not always upright, so the rest pose cannot tell)."""
    mapping = map_indices(skeleton, bone_map)
    _, ps = skeleton.forward_kinematics(rotations, translations)
    top = next(mapping[CANONICAL.index(n)] for n in ("head", "neck", "spine3", "spine2", "spine1", "pelvis")
               if mapping[CANONICAL.index(n)] >= 0)
    ankles = [mapping[CANONICAL.index(n)] for n in ("left_ankle", "right_ankle")]
    v = (ps[:, top] - ps[:, ankles].mean(axis=1)).mean(axis=0)
    axis = int(np.argmax(np.abs(v)))
    up = np.zeros(3)
    up[axis] = np.sign(v[axis]) or 1.0
    if axis == 2:
        return quat.IDENTITY if up[2] > 0 else quat.from_axis_angle(np.array([1.0, 0.0, 0.0]), np.pi)
    if axis == 1:
        # Keep the usual Y-up convention (facing +Z becomes facing -Y).
        return quat.from_axis_angle(np.array([1.0, 0.0, 0.0]), np.pi / 2 * up[1])
    return quat.between(up, np.array([0.0, 0.0, 1.0]))


def _bone_targets(j: int, mapping: np.ndarray, p0: np.ndarray, tol: float) -> list[int]:
    """Mapped descendants that give joint j's bone its direction, skipping ones at the same place
    (CMU BVH puts LowerBack exactly on Hips)."""
    out = []
    for k in _nearest_mapped_descendants(j, mapping):
        if np.linalg.norm(p0[mapping[k]] - p0[mapping[j]]) > tol:
            out.append(k)
        else:
            out.extend(_bone_targets(k, mapping, p0, tol))
    return out


def _fit_frame(j: int, kids, dc: dict, ds: dict) -> np.ndarray:
    """Offset for a joint with several children: the mid-line child (spine, neck) fixes the main
    axis exactly and the left/right pair fixes the roll; without both, a least-squares fit."""
    names = {k: CANONICAL.names[k] for k in kids}
    mid = [k for k in kids if not names[k].startswith(("left_", "right_"))]
    left = [k for k in kids if names[k].startswith("left_")]
    right = [k for k in kids if names[k].startswith("right_")]
    if len(mid) == 1 and len(left) == 1 and len(right) == 1:
        def frame(primary, side):
            e1 = primary / np.linalg.norm(primary)
            e2 = side - np.dot(side, e1) * e1
            e2 /= np.linalg.norm(e2)
            return np.stack([e1, e2, np.cross(e1, e2)], axis=1)

        fc = frame(dc[mid[0]], dc[left[0]] - dc[right[0]])
        fs = frame(ds[mid[0]], ds[left[0]] - ds[right[0]])
        return quat.from_matrix(fs @ fc.T)
    return quat.fit_rotation(np.array([dc[k] for k in kids]), np.array([ds[k] for k in kids]))


_SIDE_PREFIX = ("left_", "right_")
_MIN_BEND = np.radians(20.0)
"""A knee or elbow bent less than this shows no reliable hinge; the foot or body axis stands in."""


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1e-9, v / np.where(n > 1e-9, n, 1.0), np.nan)


def _bend(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.arccos(np.clip((_unit(a) * _unit(b)).sum(-1), -1.0, 1.0))


def _roll_references(j: int, pos: dict[str, np.ndarray]) -> list[np.ndarray]:
    """World directions (T, 3) that fix the roll of canonical joint j's bone, best first (NaN rows
    where a frame does not show it). `pos` holds world positions (T, 3) of the mapped canonical joints.
    The same rules run on the canonical skeleton and on any other, so both read the same anatomy."""
    name = CANONICAL.names[j]
    side = next((s for s in _SIDE_PREFIX if name.startswith(s)), "")
    part = name[len(side):]
    P = lambda n: pos.get(side + n if side else n)  # noqa: E731

    def first(*names):
        return next((pos[n] for n in names if n in pos), None)

    top = first("neck", "spine3", "spine2", "spine1")
    hips_left = None
    if "left_hip" in pos and "right_hip" in pos:
        hips_left = pos["left_hip"] - pos["right_hip"]
    forward = None
    if hips_left is not None and top is not None and "pelvis" in pos:
        forward = np.cross(hips_left, top - pos["pelvis"])  # -Y on the canonical skeleton
    refs: list[np.ndarray] = []
    if part in ("hip", "knee") and P("knee") is not None and P("ankle") is not None:
        thigh, shin = P("knee") - P("hip"), P("ankle") - P("knee")
        bone = thigh if part == "hip" else shin
        hinge = np.cross(thigh, shin)
        refs.append(np.where((_bend(thigh, shin) > _MIN_BEND)[:, None], hinge, np.nan))
        if P("foot") is not None:
            refs.append(np.cross(P("foot") - P("ankle"), bone))
        if forward is not None:
            refs.append(np.cross(forward, bone))
    elif part == "ankle" and P("foot") is not None and P("knee") is not None:
        refs.append(np.cross(P("foot") - P("ankle"), P("knee") - P("ankle")))
    elif part in ("shoulder", "elbow") and P("elbow") is not None and P("wrist") is not None:
        upper, fore = P("elbow") - P("shoulder"), P("wrist") - P("elbow")
        bone = upper if part == "shoulder" else fore
        refs.append(np.where((_bend(upper, fore) > _MIN_BEND)[:, None], np.cross(upper, fore), np.nan))
        if forward is not None:
            refs.append(np.cross(bone, forward))
    elif part == "collar" and forward is not None:
        refs.append(forward)
    elif name in ("spine1", "spine2", "spine3", "neck", "head"):
        if name != "spine1" and "left_shoulder" in pos and "right_shoulder" in pos:
            refs.append(pos["left_shoulder"] - pos["right_shoulder"])
        if hips_left is not None:
            refs.append(hips_left)
    return refs


def _local_roll_axes(refs: list[np.ndarray], orient: np.ndarray, bone: np.ndarray) -> list[np.ndarray | None]:
    """Each reference in the joint's local frame (orient: (T, 4) its world orientations), square to
    the local bone direction, averaged over the frames that show it; None where too few frames do or
    they disagree."""
    out = []
    for ref in refs:
        local = quat.rotate(quat.conj(orient), ref)
        local = _unit(local - (local @ bone)[:, None] * bone)
        ok = np.isfinite(local).all(axis=1)
        mean = local[ok].mean(axis=0) if ok.sum() >= max(1, int(0.05 * len(ok))) else np.zeros(3)
        out.append(mean / np.linalg.norm(mean) if np.linalg.norm(mean) > 0.3 else None)
    return out


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    e1 = primary / np.linalg.norm(primary)
    e2 = secondary - np.dot(secondary, e1) * e1
    e2 /= np.linalg.norm(e2)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=1)


def _canonical_bent_pose() -> np.ndarray:
    """World orientations (1, 22, 4) and positions (1, 22, 3) of the canonical skeleton with knees bent back and elbows bent forward by 40 degrees:
    its hinges, which define the canonical limbs' rolls, are visible in it."""
    q = np.tile(quat.IDENTITY, (1, NUM_JOINTS, 1))
    bend = np.radians(40.0)
    for side, sign in (("left", -1.0), ("right", 1.0)):
        q[0, CANONICAL.index(f"{side}_knee")] = quat.from_axis_angle(np.array([1.0, 0.0, 0.0]), bend)
        q[0, CANONICAL.index(f"{side}_elbow")] = quat.from_axis_angle(np.array([0.0, 0.0, sign]), bend)
    return CANONICAL.forward_kinematics(q)


_CANONICAL_BENT_W, _CANONICAL_BENT = _canonical_bent_pose()

PLANTED_SOLE_UP = {
    "left_ankle": np.array([0.0252, 0.2291, 0.9731]),
    "right_ankle": np.array([0.0072, 0.2293, 0.9733]),
}
"""Where "up" points in the canonical ankle's own frame while the foot stands flat, as the training
data has it (mean over 25,000 planted frames per foot of 400 training clips: both foot joints
within 3 cm of their rest heights and slower than 0.1 m/s; spread 3-4 degrees). The converted
motion keeps each source's foot bone direction, which is not the canonical foot's: a flat foot in
the data is the canonical foot pitched about 13 degrees toes down. A rig's sole is aligned to this
(its rest pose stands flat), so soles come out flat on the rig, not tilted by that pitch."""
PLANTED_ANKLE_LIFT = 0.0285
"""How far above its rest height the canonical ankle is while the foot stands flat, in the same
training frames (metres; the toe is within 0.2 cm of its rest height there)."""
FLAT_FOOT_MIN_FRAMES = 6
"""Frames with a flat planted foot that a clip needs before its own flat foot is read."""
FLAT_ANKLE_TOLERANCE = 0.015
"""How far above `PLANTED_ANKLE_LIFT` a still ankle over a planted toe may be for the foot to count
as flat (metres)."""
TOE_PITCH_MAX_DEG = 10.0
"""Most a sole-aligned rig foot is pitched about its ankle, while only its toe is planted, to keep
the toe at its planted height (`RestAlignment._ease_toe_pitch`); the rest is the leg lock's."""
HIP_SHIFT_MAX = 0.08
"""Most `RestAlignment.fit_stride` moves the hips (share of the leg length) to keep planted feet on
their spots without bending the legs."""
HIP_TRAVEL_FIT_MAX = 0.05
"""Most `RestAlignment.fit_stride` rescales the travel over the ground (share, either way) to fit the
rig's own stride."""
HIP_SHIFT_SMOOTH_S = 0.05
"""Gaussian smoothing of that move (seconds, one sigma): it changes as contacts begin and end. At 0.05 s
the hips' acceleration stays within 7 % of the source's (99th percentile, real walks on the bench
rigs); 0.1 s halves what the move takes off the legs' direction error."""
FLAT_FOOT_MAX_DEG = 30.0
"""A clip's flat foot further than this from `PLANTED_SOLE_UP` is not a convention but a pose (a
foot planted on its side): it is left as it is."""
_CANONICAL_HIP_MID = CANONICAL.offsets[[CANONICAL.index("left_hip"), CANONICAL.index("right_hip")]].mean(axis=0)


def _nearest_mapped_descendants(j: int, mapped: np.ndarray) -> list[int]:
    out = []
    for c in CANONICAL.children(j):
        out.extend([c] if mapped[c] >= 0 else _nearest_mapped_descendants(c, mapped))
    return out


def _nearest_mapped_ancestor(j: int, mapped: np.ndarray) -> int:
    p = CANONICAL.parents[j]
    while p >= 0 and mapped[p] < 0:
        p = CANONICAL.parents[p]
    return p


@dataclass(frozen=True)
class RestAlignment:
    """The constant relation between the canonical skeleton and one other mapped skeleton."""

    skeleton: Skeleton
    bone_map: BoneMap
    mapping: np.ndarray = field(repr=False)
    """(22,) index into `skeleton` for each canonical joint, -1 where unmapped."""
    basis: np.ndarray = field(repr=False)
    """(4,) rotation from the other skeleton's world axes to the canonical ones."""
    offsets: np.ndarray = field(repr=False)
    """(22, 4) per-joint frame offsets C with W_canonical = basis · W_other · C."""
    targets: tuple[tuple[int, ...], ...] = field(repr=False)
    """For each canonical joint, the mapped descendants whose directions define its bone."""
    scale: float = 1.0
    """Canonical metres per unit of the other skeleton (by leg length)."""
    ground: float = 0.0
    """How much higher (other skeleton's units, along its up) its ankles stand at rest than the
    canonical ankles scaled by leg length: the root is raised by this, so a rig's feet land on its own
    floor, not at the canonical ankle height (0 for motion sources, whose zero pose need not stand)."""
    by_sole: tuple[int, ...] = ()
    """Canonical joints (the ankles of a rig that stands at rest) aligned by the sole, not by the
    bone: their bone direction is the rig's own foot pitch, not the canonical one."""

    @staticmethod
    def build(skeleton: Skeleton, bone_map: BoneMap, basis: np.ndarray | None = None,
              reference: tuple[np.ndarray, np.ndarray] | None = None) -> "RestAlignment":
        """Align `skeleton` to the canonical one. `basis` (a rotation to Z-up) defaults to the map's up
        axis; maps with up = "auto" need it (see `estimate_basis`).

        reference: world orientations (T, J, 4) and positions (T, J, 3) of `skeleton` in poses that
        show its anatomy (knees and elbows that bend, feet that point forward), from which each bone's
        roll is read; default the rest pose, which shows it on any rig a mesh is bound to."""
        mapping = map_indices(skeleton, bone_map)
        if basis is None:
            if bone_map.up == "auto":
                raise RetargetError(f"Bone map '{bone_map.name}' needs the up axis; estimate it from the motion.")
            basis = UP_AXIS_TO_Z[bone_map.up]
        w0, p0 = skeleton.rest_pose()
        _, pc = CANONICAL.rest_pose()
        tol = 1e-6 * max(1e-9, float(np.ptp(p0, axis=0).max()))
        offsets = np.tile(quat.IDENTITY, (NUM_JOINTS, 1))
        targets: list[tuple[int, ...]] = []
        ref_w, ref_p = (w0[None], p0[None]) if reference is None else reference
        if ref_w.shape[1:] != w0.shape or ref_p.shape[1:] != p0.shape:
            raise RetargetError("The reference poses do not match the skeleton.")
        canonical_pos = {n: _CANONICAL_BENT[:, i] for i, n in enumerate(CANONICAL.names)}
        # a rig bound to a mesh stands flat-footed at rest; motion sources' zero poses need not
        stands = reference is None and _stands(skeleton, mapping, basis)
        # the canonical skeleton itself (the Marionette armature, in any units) carries the motion as it is
        same = False
        if (mapping >= 0).all():
            mine = quat.rotate(np.broadcast_to(np.asarray(basis, float), (NUM_JOINTS, 4)), p0[mapping] - p0[mapping[0]])
            size = np.linalg.norm(mine, axis=1).max()
            same = size > 0 and bool(np.allclose(mine / size * np.linalg.norm(pc - pc[0], axis=1).max(), pc - pc[0],
                                                 atol=1e-4))
        by_sole: list[int] = []
        source_pos = {n: ref_p[:, mapping[i]] for i, n in enumerate(CANONICAL.names) if mapping[i] >= 0}
        for j in range(NUM_JOINTS):
            m = mapping[j]
            kids = tuple(_bone_targets(j, mapping, p0, tol)) if m >= 0 else ()
            targets.append(kids)
            if m < 0:
                continue
            a = _nearest_mapped_ancestor(j, mapping)
            if a < 0:
                # The root inherits the world: canonical and other zero poses agree.
                inherited = quat.mul(quat.conj(w0[m]), quat.conj(basis))
            else:
                rel0 = quat.mul(quat.conj(w0[mapping[a]]), w0[m])
                inherited = quat.mul(quat.conj(rel0), offsets[a])
            dc = {k: pc[k] - pc[j] for k in kids}
            ds = {k: quat.rotate(quat.conj(w0[m]), p0[mapping[k]] - p0[m]) for k in kids}
            if len(kids) >= 2:
                offsets[j] = _fit_frame(j, kids, dc, ds)
            elif len(kids) == 1:
                k = kids[0]
                dcu, dsu = dc[k] / np.linalg.norm(dc[k]), ds[k] / np.linalg.norm(ds[k])
                rolls_c = _local_roll_axes(_roll_references(j, canonical_pos), _CANONICAL_BENT_W[:, j], dcu)
                rolls_s = _local_roll_axes(_roll_references(j, source_pos), ref_w[:, m], dsu)
                # the first anatomical axis both skeletons show (the rules list the same axes in order)
                pair = next(((c, o) for c, o in zip(rolls_c, rolls_s) if c is not None and o is not None), None)
                name = CANONICAL.names[j]
                if name in PLANTED_SOLE_UP and stands and not same:
                    # The foot: the rig's sole at rest is the data's flat foot (direction follows)
                    up_s = quat.rotate(quat.conj(w0[m]), quat.rotate(quat.conj(basis), np.array([0.0, 0.0, 1.0])))
                    offsets[j] = quat.from_matrix(_frame(up_s, dsu) @ _frame(PLANTED_SOLE_UP[name], dcu).T)
                    by_sole.append(j)
                elif pair is not None:
                    offsets[j] = quat.from_matrix(_frame(dsu, pair[1]) @ _frame(dcu, pair[0]).T)
                else:
                    swing = quat.between(dc[k], quat.rotate(quat.conj(inherited), ds[k]))
                    offsets[j] = quat.mul(inherited, swing)
            else:
                offsets[j] = inherited

        legs = []
        for side in ("left_", "right_"):
            idx = [mapping[CANONICAL.index(side + n[5:])] for n in LEG_CHAIN]
            legs.append(sum(np.linalg.norm(p0[y] - p0[x]) for x, y in zip(idx, idx[1:])))
        src_leg = float(np.mean(legs))
        if src_leg < 1e-9:
            raise RetargetError("This skeleton's legs have no length in the rest pose.")
        scale = CANONICAL.chain_length(list(LEG_CHAIN)) / src_leg
        ground = 0.0
        if stands:
            up = quat.rotate(np.asarray(basis, float), p0)[:, 2]
            ankles = [mapping[CANONICAL.index(n)] for n in ("left_ankle", "right_ankle")]
            rig_ankle = float(up[ankles].mean())
            if 0.0 < rig_ankle < 0.3 * src_leg:  # the rig stands on its floor (z = 0) at rest
                lift = PLANTED_ANKLE_LIFT if by_sole else 0.0  # where a flat canonical foot has its ankle
                ground = rig_ankle - (pc[CANONICAL.index("left_ankle"), 2] + lift) / scale
        return RestAlignment(skeleton, bone_map, mapping, np.asarray(basis, float), offsets, tuple(targets), scale,
                             ground, tuple(by_sole))

    # -- other skeleton -> canonical ---------------------------------------------------------

    def to_canonical(
        self, rotations: np.ndarray, translations: np.ndarray | None, fps: float, scale_root: bool = True
    ) -> MotionClip:
        """Convert motion of the other skeleton (local rotations, local translations) to a clip."""
        rotations = np.asarray(rotations, dtype=np.float64)
        if rotations.ndim != 3 or rotations.shape[1:] != (len(self.skeleton), 4):
            raise MotionError(f"Expected rotations of shape (frames, {len(self.skeleton)}, 4); got {rotations.shape}.")
        if not np.isfinite(rotations).all() or (translations is not None and not np.isfinite(translations).all()):
            raise MotionError("The motion contains NaN or infinite values.")
        ws, ps = self.skeleton.forward_kinematics(rotations, translations)
        return self.posed_to_canonical(ws, ps, fps, scale_root=scale_root)

    def posed_to_canonical(self, ws: np.ndarray, ps: np.ndarray, fps: float, scale_root: bool = True) -> MotionClip:
        """A clip from the other skeleton's posed joints: world orientations (T, J, 4) and positions
        (T, J, 3). Only mapped joints are read, so poses evaluated by Blender (constraints, control
        rigs) can come in directly."""
        T = ws.shape[0]
        _, pc = CANONICAL.rest_pose()
        wc = np.empty((T, NUM_JOINTS, 4))
        for j in range(NUM_JOINTS):
            m = self.mapping[j]
            if m < 0:
                # Unmapped (e.g. a middle spine joint the other skeleton lacks): rigid with its parent.
                wc[:, j] = wc[:, CANONICAL.parents[j]]
                continue
            w = quat.mul(quat.mul(np.broadcast_to(self.basis, (T, 4)), ws[:, m]), self.offsets[j])
            kids = self.targets[j]
            if len(kids) == 1 and j not in self.by_sole:
                # Lines the bone up exactly even where unmapped joints in between have moved.
                k = kids[0]
                want = quat.rotate(np.broadcast_to(self.basis, (T, 4)), ps[:, self.mapping[k]] - ps[:, m])
                have = quat.rotate(w, np.broadcast_to(pc[k] - pc[j], (T, 3)))
                ok = np.linalg.norm(want, axis=-1) > 1e-9
                fix = quat.between(have[ok], want[ok])
                w[ok] = quat.mul(fix, w[ok])
            wc[:, j] = w
        local = np.empty_like(wc)
        for j, p in enumerate(CANONICAL.parents):
            local[:, j] = wc[:, j] if p < 0 else quat.mul(quat.conj(wc[:, p]), wc[:, j])
        # Skeletons put the pelvis joint in different places, but agree on where the hips are:
        # the root follows the midpoint between the hip joints.
        k = self.scale if scale_root else 1.0
        hips = ps[:, self._hip_indices()].mean(axis=1)
        root = k * quat.rotate(np.broadcast_to(self.basis, (T, 4)), hips) - quat.rotate(wc[:, 0], _CANONICAL_HIP_MID)
        root[:, 2] -= k * self.ground
        return MotionClip(quat.make_continuous(local), root, fps)

    def _hip_indices(self) -> list[int]:
        return [int(self.mapping[CANONICAL.index(n)]) for n in ("left_hip", "right_hip")]

    def hip_midpoint(self, rotations, translations) -> np.ndarray:
        """(T, 3) midpoint of the hips of the other skeleton in canonical axes and metres."""
        _, ps = self.skeleton.forward_kinematics(rotations, translations)
        T = ps.shape[0]
        return self.scale * quat.rotate(np.broadcast_to(self.basis, (T, 4)), ps[:, self._hip_indices()].mean(axis=1))

    # -- canonical -> other skeleton ---------------------------------------------------------

    def from_canonical(self, clip: MotionClip, scale_root: bool = True,
                       carrier: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Local rotations (T, J, 4) and translations (T, J, 3) of the other skeleton for a clip.

        Joints the map does not name keep their rest pose relative to their parent.
        carrier: an ancestor of the pelvis that carries its travel, for a pelvis that cannot move on
        its own (a Blender bone connected to its parent): it moves, at rest, so the pelvis lands where
        it should; the pelvis and the joints in between keep their rest offsets.
        """
        sk = self.skeleton
        T = clip.num_frames
        wc, pc = clip.forward_kinematics()
        inv_basis = np.broadcast_to(quat.conj(self.basis), (T, 4))
        rest_local = sk.rest_local_rotations()
        w0, p0 = sk.rest_pose()
        by_source = {int(m): j for j, m in enumerate(self.mapping) if m >= 0}
        ws = np.empty((T, len(sk), 4))
        local = np.empty((T, len(sk), 4))
        for b, p in enumerate(sk.parents):
            parent_w = np.broadcast_to(quat.IDENTITY, (T, 4)) if p < 0 else ws[:, p]
            if b in by_source:
                j = by_source[b]
                ws[:, b] = quat.mul(quat.mul(inv_basis, wc[:, j]), quat.conj(self.offsets[j]))
            else:
                ws[:, b] = quat.mul(parent_w, np.broadcast_to(rest_local[b], (T, 4)))
            local[:, b] = quat.mul(quat.conj(quat.mul(parent_w, np.broadcast_to(rest_local[b], (T, 4)))), ws[:, b])
        translations = np.tile(sk.offsets, (T, 1, 1))
        k = self.scale if scale_root else 1.0
        pelvis = int(self.mapping[0])
        hip_mid_world = quat.rotate(inv_basis, pc[:, [1, 2]].mean(axis=1) / k + [0.0, 0.0, self.ground])
        hip_mid_local = quat.rotate(quat.conj(w0[pelvis]), p0[self._hip_indices()].mean(axis=0) - p0[pelvis])
        target = hip_mid_world - quat.rotate(ws[:, pelvis], np.broadcast_to(hip_mid_local, (T, 3)))
        parent = sk.parents[pelvis]
        if carrier is not None:
            # everything from the carrier down to the pelvis keeps its rest shape
            place = target - (p0[pelvis] - p0[carrier])
            above = sk.parents[carrier]
            translations[:, carrier] = place if above < 0 else quat.rotate(
                np.broadcast_to(quat.conj(w0[above]), (T, 4)), place - p0[above])
        elif parent < 0:
            translations[:, pelvis] = target
        else:
            # Joints above the pelvis (a "root" bone, BVH's joint_Root) stay in their rest pose.
            translations[:, pelvis] = quat.rotate(np.broadcast_to(quat.conj(w0[parent]), (T, 4)), target - p0[parent])
        local = quat.make_continuous(local)
        return local, self.attach_detached(local, translations)

    def level_feet(self, clip: MotionClip) -> MotionClip:
        """The clip with its own flat foot made the one this rig's soles are aligned to.

        Motion sources disagree on where the foot bone points while the sole is flat (the canonical
        clip keeps each source's foot direction): in the training data the flat canonical foot is
        pitched about 13 degrees toes down for Bandai-Namco's second set but 20 degrees less for
        CMU, and other sets differ again. `PLANTED_SOLE_UP` is one average, so a clip from another
        source lands on a rig with its planted soles tilted (heel or toes in the air). Here each
        foot's "up", in its own ankle frame, is read from the frames where the clip's foot stands flat
        (toe planted by `CONTACT_PLANTED`, ankle still and low), and the ankle's rotation is turned by the one constant
        rotation that makes it `PLANTED_SOLE_UP`; the root is moved up or down so that the ankles of
        those frames stand `PLANTED_ANKLE_LIFT` above their rest height, and the toe joint's mean
        rotation over them is taken off, so a flat foot's toes rest on the rig. A foot with fewer than
        `FLAT_FOOT_MIN_FRAMES` such frames, or one that would turn by more than `FLAT_FOOT_MAX_DEG`,
        is left as it is; so is every clip on a rig not aligned by the sole.

        For motion that comes from elsewhere (generated, imported): motion read from this rig
        already has the rig's flat foot, and stays as it is.
        """
        if not self.by_sole or clip.num_frames < FLAT_FOOT_MIN_FRAMES:
            return clip
        from .cleanup import contacts_from_motion

        w, pos = clip.forward_kinematics()
        planted = contacts_from_motion(clip, CONTACT_PLANTED)
        rest_z = CANONICAL.rest_pose()[1][:, 2]
        rot = clip.rotations.copy()
        lifts = []
        for side, toe_col in (("left", 1), ("right", 3)):
            j = CANONICAL.index(f"{side}_ankle")
            # flat: the toe planted, the ankle still and no higher than a flat foot has it (a lifting
            # heel rises and moves; the ankle's own planted test would sit right at that height)
            speed = np.zeros(clip.num_frames)
            speed[1:] = np.linalg.norm(np.diff(pos[:, j], axis=0), axis=-1) * clip.fps
            speed[0] = speed[min(1, clip.num_frames - 1)]
            f = ((planted[:, toe_col] > 0.5) & (speed < CONTACT_PLANTED.speed)
                 & (pos[:, j, 2] - rest_z[j] < PLANTED_ANKLE_LIFT + FLAT_ANKLE_TOLERANCE))
            if j not in self.by_sole or f.sum() < FLAT_FOOT_MIN_FRAMES:
                continue
            up = quat.rotate(quat.conj(w[f, j]), np.array([0.0, 0.0, 1.0])).mean(axis=0)
            target = PLANTED_SOLE_UP[f"{side}_ankle"]
            if quat.angle_between(up, target) > FLAT_FOOT_MAX_DEG:
                continue
            turn = quat.between(target, up)  # W' = W * turn: the flat frames' up becomes `target`
            rot[:, j] = quat.mul(rot[:, j], np.broadcast_to(turn, rot[:, j].shape))
            toe = CANONICAL.index(f"{side}_foot")
            if self.mapping[toe] >= 0:
                # The toe joint ends the canonical chain, so its rotation moves nothing there; on a
                # rig it bends the toe bone. Sources bend it by their own rest convention (about 17
                # degrees up for Bandai-Namco while the sole is flat): flat frames get the rig's rest.
                q = rot[f, toe] * np.sign(rot[f, toe, :1] + 1e-12)
                mean = q.mean(axis=0)
                mean /= np.linalg.norm(mean)
                rot[:, toe] = quat.mul(rot[:, toe], np.broadcast_to(quat.conj(mean), rot[:, toe].shape))
            lifts.append(float(np.mean(pos[f, j, 2] - rest_z[j])))
        root = clip.root_translation.copy()
        if lifts:
            root[:, 2] += PLANTED_ANKLE_LIFT - float(np.mean(lifts))
        return MotionClip(rot, root, clip.fps)

    def travel_in_rig(self, travel: np.ndarray, scale_root: bool = True) -> np.ndarray:
        """Travel over the ground (T, 2), canonical metres, as (T, 3) displacements in the other
        skeleton's own axes and units (its up axis and leg-length scale)."""
        k = self.scale if scale_root else 1.0
        d = np.zeros((len(travel), 3))
        d[:, :2] = travel
        return quat.rotate(np.broadcast_to(quat.conj(self.basis), (len(travel), 4)), d) / k

    def detached(self) -> list[tuple[int, int]]:
        """(bone, anchor) for mapped bones that hang elsewhere in the rig than under the bone of
        their canonical parent: game rigs keep feet as IK targets under the root (RobotExpressive).
        Such a bone is moved (location keys) to where it would be if it were fixed to its anchor."""
        out = []
        for j in range(1, NUM_JOINTS):
            b = int(self.mapping[j])
            a = _nearest_mapped_ancestor(j, self.mapping)
            if b < 0 or a < 0:
                continue
            anchor = int(self.mapping[a])
            p = self.skeleton.parents[b]
            while p >= 0 and p != anchor:
                p = self.skeleton.parents[p]
            if p < 0:
                out.append((b, anchor))
        return out

    def attach_detached(self, rotations: np.ndarray, translations: np.ndarray) -> np.ndarray:
        """`translations` with every detached bone (see `detached`) placed rigidly on its anchor."""
        pairs = self.detached()
        if not pairs:
            return translations
        translations = np.array(translations, dtype=np.float64)
        w0, p0 = self.skeleton.rest_pose()
        T = rotations.shape[0]
        for b, anchor in pairs:
            ws, ps = self.skeleton.forward_kinematics(rotations, translations)
            rel = quat.mul(ws[:, anchor], np.broadcast_to(quat.conj(w0[anchor]), (T, 4)))
            target = ps[:, anchor] + quat.rotate(rel, np.broadcast_to(p0[b] - p0[anchor], (T, 3)))
            p = self.skeleton.parents[b]
            translations[:, b] = quat.rotate(quat.conj(ws[:, p]), target - ps[:, p])
        return translations

    def moved_bones(self) -> list[int]:
        """Bones that need location keys: the pelvis (root motion) and detached bones."""
        return [int(self.mapping[0])] + [b for b, _ in self.detached()]

    def _planted_legs(self, clip: MotionClip):
        """(legs, flags, plain): side -> rig (hip, knee, ankle, toe or -1) for each mapped leg; side ->
        (ankle planted, toe planted) per frame of `clip`; the legs whose foot hangs under the shin."""
        from .cleanup import _median3, contacts_from_motion

        contacts = contacts_from_motion(clip, CONTACT_RIG)
        legs, flags = {}, {}
        detached = dict(self.detached())
        for side, cols in (("left", (0, 1)), ("right", (2, 3))):
            idx = [int(self.mapping[CANONICAL.index(f"{side}_{n}")]) for n in ("hip", "knee", "ankle", "foot")]
            if min(idx[:3]) >= 0:
                legs[side] = tuple(idx)
                flags[side] = (_median3(contacts[:, cols[0]]) > 0.5, _median3(contacts[:, cols[1]]) > 0.5)
        plain = {s: leg for s, leg in legs.items() if leg[2] not in detached}
        return legs, flags, plain

    def fit_stride(self, clip: MotionClip, scale_root: bool = True) -> MotionClip:
        """The clip with its root moved so that, on this rig, planted feet stay on their spots with
        the legs on the clip's own directions (`_shift_hips`): what the rig-side foot lock
        (`replant_feet_on_rig`) would otherwise do by bending the legs.

        A canonical-clip step, like `level_feet`, before the travel is split off, so the hips keyed
        with the travel and the object keyed with it follow the same path. For motion from elsewhere
        (generated, imported); motion read from this rig, or passing through an animator's keys,
        keeps its root path as it is."""
        rot, trans = self.from_canonical(clip, scale_root=scale_root)
        _, flags, plain = self._planted_legs(clip)
        shift = self._shift_hips(rot, trans, plain, flags, clip.fps)
        if shift is None:
            return clip
        k = self.scale if scale_root else 1.0
        delta = k * quat.rotate(np.broadcast_to(self.basis, (clip.num_frames, 4)), shift)
        return MotionClip(clip.rotations, clip.root_translation + delta, clip.fps)

    def replant_feet_on_rig(self, rotations: np.ndarray, translations: np.ndarray, clip: MotionClip,
                            planted: MotionClip | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The rig-side foot lock (the canonical clip's own is `cleanup.pin_planted_feet`): rotations and translations (from `from_canonical(clip)`) with the rig's planted feet held in
        place wherever the clip's are planted: removes the slide that different leg proportions would
        add (`fit_stride` first leaves it less to do). Detached bones (see `detached`) are placed
        again on their re-solved anchors.

        planted: the clip whose feet say where they are planted, where that is not `clip` (the clip
        before `fit_stride` moved its root: its feet slide by the move, the rig's do not)."""
        from .cleanup import lock_feet_skeleton

        legs, flags, plain = self._planted_legs(clip if planted is None else planted)
        forward = quat.rotate(quat.conj(self.basis), np.array([0.0, -1.0, 0.0]))
        # heights are left free here: the rig's floor is where its own feet are
        free = (-np.inf, -np.inf)
        rotations = self._ease_toe_pitch(rotations, translations, plain, flags)
        rotations = lock_feet_skeleton(self.skeleton, rotations, translations, plain, flags, forward, free,
                                       fps=clip.fps)
        for side in set(legs) - set(plain):
            # A foot outside the leg chain: solve the leg as a chain ending on where the foot is fixed.
            chain, rot, trans = self._leg_chain(rotations, translations, legs[side])
            rot = lock_feet_skeleton(chain, rot, trans, {side: (1, 2, 3, 4 if legs[side][3] >= 0 else -1)},
                                     flags, forward, free, fps=clip.fps)
            rotations = rotations.copy()
            rotations[:, legs[side][0]] = rot[:, 1]
            rotations[:, legs[side][1]] = rot[:, 2]
        return rotations, self.attach_detached(rotations, translations)

    def _shift_hips(self, rotations, translations, legs, flags, fps, blend_frames: int = 5):
        """How far to move the whole body, per frame (T, 3), in the rig's world axes and units, so
        that its planted feet stay on their spots with the legs on the source's directions (None
        where no leg can say).

        A rig whose thigh and shin are not in the source's proportions, posed by the source's
        directions, covers a slightly different stride than its scaled travel: its planted ankle
        drifts over each contact, and the lock would hold it by bending the leg. Two moves of the
        whole body take most of that drift without turning any bone: the travel over the ground is
        scaled by the one factor that best keeps planted ankles still (at most
        `HIP_TRAVEL_FIT_MAX` either way), and what is left, the mean over the planted feet of the
        lock's move (interpolated where no foot is planted, smoothed over `HIP_SHIFT_SMOOTH_S`,
        at most `HIP_SHIFT_MAX` of the leg), moves the hips. The lock keeps what the two feet
        disagree on."""
        from .cleanup import MAX_PLANTED_SPEED, _ankle_targets, contact_periods

        if not legs:
            return None
        sk = self.skeleton
        _, pos = sk.forward_kinematics(rotations, translations)
        T = len(rotations)
        up = quat.rotate(quat.conj(self.basis), np.array([0.0, 0.0, 1.0]))
        pelvis = int(self.mapping[0])
        travel = pos[:, pelvis] - pos[0, pelvis]
        travel -= np.outer(travel @ up, up)  # over the ground only
        moves, leg_len = [], []
        for side, (h, k, a, t) in legs.items():
            fa, ft = flags[side]
            if t < 0:
                ft = np.zeros_like(ft)
            leg = np.linalg.norm(translations[0, k]) + np.linalg.norm(translations[0, a])
            leg_len.append(leg)
            _, target = _ankle_targets(fa, ft, pos[:, a], pos[:, t] if t >= 0 else pos[:, a], -np.inf, -np.inf,
                                       blend_frames, MAX_PLANTED_SPEED * leg / fps)
            disp = target - pos[:, a]
            on = (fa | ft) & (np.abs(disp).sum(axis=1) > 0)
            moves.append((disp, contact_periods(on, min_frames=2)))
        # the travel scale: each contact's drift against the travel over it (both about their means)
        num = den = 0.0
        for disp, spans in moves:
            for s0, e in spans:
                dc = disp[s0:e] - disp[s0:e].mean(axis=0)
                tc = travel[s0:e] - travel[s0:e].mean(axis=0)
                num += float((dc * tc).sum())
                den += float((tc * tc).sum())
        alpha = float(np.clip(num / den, -HIP_TRAVEL_FIT_MAX, HIP_TRAVEL_FIT_MAX)) if den > 1e-12 else 0.0
        trend = alpha * travel
        total = np.zeros((T, 3))
        count = np.zeros(T)
        for disp, spans in moves:
            for s0, e in spans:
                g = trend[s0:e]
                total[s0:e] += disp[s0:e] - (g - g.mean(axis=0))
                count[s0:e] += 1
        have = count > 0
        shift = trend
        if have.any():
            frames = np.arange(T)
            rest = np.stack([np.interp(frames, frames[have], total[have, i] / count[have]) for i in range(3)],
                            axis=1)
            sigma = HIP_SHIFT_SMOOTH_S * fps
            r = int(np.ceil(3 * sigma))
            kern = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
            kern /= kern.sum()
            padded = np.pad(rest, ((r, r), (0, 0)), mode="edge")
            rest = np.stack([np.convolve(padded[:, i], kern, mode="valid") for i in range(3)], axis=1)
            cap = HIP_SHIFT_MAX * float(np.mean(leg_len))
            n = np.linalg.norm(rest, axis=1, keepdims=True)
            shift = trend + rest * np.minimum(1.0, cap / np.maximum(n, 1e-12))
        return shift

    def _ease_toe_pitch(self, rotations, translations, legs, flags, blend_frames: int = 5):
        """Rotations with each foot pitched (about its ankle, at most `TOE_PITCH_MAX_DEG`) so that,
        while only its toe is planted, the rig's toe stays at its planted height by itself.

        A rig foot longer or shorter than the source's, turned by the source's ankle as the heel
        lifts, would sink its toe into the floor or lift it; the foot lock would then hold the toe by
        bending the whole leg. Pitching the foot a few degrees instead keeps the legs on the source's
        directions; what the cap leaves is still the lock's."""
        from .cleanup import contact_periods

        sk = self.skeleton
        rot = rotations.copy()
        up = quat.rotate(quat.conj(self.basis), np.array([0.0, 0.0, 1.0]))
        limit = np.radians(TOE_PITCH_MAX_DEG)
        rest = sk.rest_local_rotations()
        T = len(rot)
        orient, pos = sk.forward_kinematics(rot, translations)  # each side turns only its own foot
        for side, (h, k, a, t) in legs.items():
            fa, ft = flags[side]
            if t < 0 or not ft.any() or CANONICAL.index(f"{side}_ankle") not in self.by_sole:
                continue
            theta = np.zeros(T)
            for s0, e in contact_periods(ft):
                spot = float(np.mean(pos[s0:e, t] @ up))
                for f in range(s0, e):
                    if fa[f]:
                        continue
                    v = pos[f, t] - pos[f, a]
                    axis = np.cross(v, up)
                    n = np.linalg.norm(axis)
                    if n < 1e-9:
                        continue
                    axis /= n
                    A, B = float(v @ up), float(np.cross(axis, v) @ up)
                    C = A + (spot - float(pos[f, t] @ up))
                    R = np.hypot(A, B)
                    if R < 1e-12:
                        continue
                    phi = np.arctan2(B, A)
                    c = np.arccos(np.clip(C / R, -1.0, 1.0))
                    th = min(phi + c, phi - c, key=abs)
                    theta[f] = np.clip((th + np.pi) % (2 * np.pi) - np.pi, -limit, limit)
            if not theta.any():
                continue
            # ease in and out over the free frames next to each pitched span
            eased = theta.copy()
            for f in range(T):
                if theta[f] != 0:
                    continue
                for d in range(1, blend_frames + 1):
                    for g in (f - d, f + d):
                        if 0 <= g < T and theta[g] != 0:
                            x = 1.0 - d / (blend_frames + 1)
                            w = x * x * (3 - 2 * x)
                            if abs(w * theta[g]) > abs(eased[f]):
                                eased[f] = w * theta[g]
            frames = np.flatnonzero(eased)
            v = pos[frames, t] - pos[frames, a]
            axis = np.cross(v, up)
            axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
            turn = quat.from_axis_angle(axis, eased[frames])
            world = quat.mul(turn, orient[frames, a])
            parent = quat.mul(orient[frames, sk.parents[a]], np.broadcast_to(rest[a], (len(frames), 4)))
            rot[frames, a] = quat.mul(quat.conj(parent), world)
        return rot

    def _leg_chain(self, rotations, translations, leg):
        """A small skeleton (hip's parent, hip, knee, ankle[, toe]) in which the ankle hangs under the
        knee as it does at rest, posed like the rig (the hip's parent carries its world pose)."""
        sk = self.skeleton
        h, k, a, t = leg
        ws, ps = sk.forward_kinematics(rotations, translations)
        w0, p0 = sk.rest_pose()
        rest = sk.rest_local_rotations()
        bones = [sk.parents[h], h, k, a] + ([t] if t >= 0 else [])
        offsets = [np.zeros(3), sk.offsets[h], sk.offsets[k], quat.rotate(quat.conj(w0[k]), p0[a] - p0[k])]
        rests = [quat.IDENTITY, rest[h], rest[k], quat.mul(quat.conj(w0[k]), w0[a])]
        if t >= 0:
            offsets.append(sk.offsets[t])
            rests.append(rest[t])
        chain = Skeleton(tuple(f"_{i}" for i in range(len(bones))), tuple(range(-1, len(bones) - 1)),
                         np.array(offsets), np.array(rests))
        T = rotations.shape[0]
        rot = np.tile(quat.IDENTITY, (T, len(bones), 1))
        trans = np.tile(chain.offsets, (T, 1, 1))
        rot[:, 0] = ws[:, bones[0]]
        trans[:, 0] = ps[:, bones[0]]
        rot[:, 1], rot[:, 2] = rotations[:, h], rotations[:, k]
        rot[:, 3] = quat.mul(quat.conj(quat.mul(ws[:, k], np.broadcast_to(rests[3], (T, 4)))), ws[:, a])
        if t >= 0:
            rot[:, 4], trans[:, 4] = rotations[:, t], translations[:, t]
        return chain, rot, trans

    def bone_direction_errors(self, rotations, translations, clip: MotionClip) -> dict[str, np.ndarray]:
        """Per canonical bone (limbs, spine, neck, collar bones), the angle in degrees, per frame,
        between its world direction in `clip` and the same bone of the other skeleton posed by
        (rotations, translations). The pelvis-to-hip and chest-to-collar offsets are left out:
        skeletons place those joints differently by design."""
        _, ps = self.skeleton.forward_kinematics(rotations, translations)
        return self.posed_direction_errors(ps, clip)

    def posed_direction_errors(self, ps: np.ndarray, clip: MotionClip) -> dict[str, np.ndarray]:
        """`bone_direction_errors` from the other skeleton's joint positions (T, J, 3), however they
        were posed (e.g. as Blender evaluates them); only mapped joints are read."""
        T = ps.shape[0]
        ps = quat.rotate(np.broadcast_to(self.basis, (T, 1, 4)), ps)
        pc = clip.positions()
        out = {}
        for j in range(NUM_JOINTS):
            if len(self.targets[j]) != 1 or j in self.by_sole:
                continue  # hip and collar offsets, and foot pitch, are where skeletons differ by design
            for k in self.targets[j]:
                a, b = self.mapping[j], self.mapping[k]
                out[f"{CANONICAL.names[j]}->{CANONICAL.names[k]}"] = quat.angle_between(
                    pc[:, k] - pc[:, j], ps[:, b] - ps[:, a]
                )
        return out


ROOT_MOTION = ("HIP", "OBJECT", "IN_PLACE")
"""Where a clip's travel over the ground goes on a rig: keyed on the hips, keyed on the armature
object (the hips keep only height and sway), or dropped (in place)."""


def split_root_motion(clip: MotionClip, root_motion: str) -> tuple[MotionClip, np.ndarray | None]:
    """The clip for the rig's bones and the travel taken off it: for "HIP", the clip itself and None;
    otherwise the clip with its root held over frame 0's ground point (height and sway kept) and the
    travel over the ground (T, 2), canonical metres from frame 0 ("OBJECT" keys it on the object,
    "IN_PLACE" drops it)."""
    if root_motion not in ROOT_MOTION:
        raise MotionError(f"Root motion must be one of {', '.join(ROOT_MOTION)}; got {root_motion!r}.")
    if root_motion == "HIP":
        return clip, None
    root = clip.root_translation.copy()
    travel = root[:, :2] - root[0, :2]
    root[:, :2] = root[0, :2]
    return MotionClip(clip.rotations, root, clip.fps), travel


def bvh_to_canonical(motion, bone_map: BoneMap | None = None, scale_root: bool = True) -> MotionClip:
    """Convert a `BvhMotion` (any known humanoid BVH) to a canonical clip."""
    skeleton, rotations, translations = motion.with_end_sites()
    if bone_map is None:
        first = skeleton.forward_kinematics(rotations[:1], translations[:1])[1][0]
        bone_map = detect_map(skeleton.names, skeleton=skeleton, positions=first)
    basis = None
    if bone_map.up == "auto":
        basis = estimate_basis(skeleton, bone_map, rotations, translations)
    # A BVH zero pose need not be a pose (Bandai-Namco's lies along X): the motion shows the anatomy.
    ws, ps = skeleton.forward_kinematics(rotations, translations)
    align = RestAlignment.build(skeleton, bone_map, basis, reference=(ws, ps))
    clip = align.posed_to_canonical(ws, ps, motion.fps, scale_root=scale_root)
    return _ground_relative_root(clip, motion, align, scale_root)


_FOOT_JOINTS = [CANONICAL.index(n) for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]


def _ground_relative_root(clip: MotionClip, motion, align: RestAlignment, scale_root: bool) -> MotionClip:
    """Character Creator and iClone write the root's position channels relative to its OFFSET, where
    the format (and every other exporter) has them replace it: read the usual way, such a character
    walks about a metre under the floor. Where adding the OFFSET back puts the feet on the floor, it is
    added."""
    offset = motion.skeleton.offsets[0]
    if not any(c.endswith("position") for c in motion.channels[0]) or not np.any(offset):
        return clip
    k = align.scale if scale_root else 1.0
    shift = k * quat.rotate(np.asarray(align.basis), offset)
    _, pc = CANONICAL.rest_pose()
    rest = pc[_FOOT_JOINTS, 2].min()
    floor = float(np.median(clip.positions()[:, _FOOT_JOINTS, 2].min(axis=1)))
    if abs(floor - rest) > 0.25 and abs(floor + shift[2] - rest) < 0.5 * abs(floor - rest):
        return MotionClip(clip.rotations, clip.root_translation + shift, clip.fps)
    return clip
