"""Skeletons and forward kinematics, and the one canonical skeleton everything else derives from.

A `Skeleton` describes any joint hierarchy (the canonical one, a BVH file's, an armature's) by
parents, rest offsets and rest orientations. The canonical skeleton is a 22-joint humanoid with
the SMPL / HumanML3D topology in metres, Z up, facing -Y (Blender's front view), left = +X.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import quat


@dataclass(frozen=True)
class Skeleton:
    """A joint hierarchy in its zero pose (all local rotations identity)."""

    names: tuple[str, ...]
    """Joint names, parents before children."""
    parents: tuple[int, ...]
    """Index of each joint's parent, -1 for the root."""
    offsets: np.ndarray = field(repr=False)
    """(J, 3) position of each joint in its parent's frame in the zero pose; the root's is its rest position."""
    rest_rotations: np.ndarray | None = field(default=None, repr=False)
    """(J, 4) orientation of each joint frame relative to its parent's in the zero pose (w, x, y, z).
    None means identity everywhere, as in BVH files."""

    def __post_init__(self):
        n = len(self.names)
        if len(self.parents) != n:
            raise ValueError(f"Skeleton has {n} names but {len(self.parents)} parents.")
        if len(set(self.names)) != n:
            raise ValueError("Skeleton joint names must be unique.")
        for j, p in enumerate(self.parents):
            if p >= j:
                raise ValueError(f"Joint '{self.names[j]}' must come after its parent.")
        if j_roots := [j for j, p in enumerate(self.parents) if p < 0]:
            if j_roots != [0]:
                raise ValueError("Skeleton must have exactly one root, the first joint.")
        offsets = np.asarray(self.offsets, dtype=np.float64).reshape(n, 3)
        object.__setattr__(self, "offsets", offsets)
        if self.rest_rotations is not None:
            object.__setattr__(self, "rest_rotations", quat.normalize(np.asarray(self.rest_rotations).reshape(n, 4)))

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"No joint named '{name}' in this skeleton.") from None

    def children(self, j: int) -> list[int]:
        return [c for c, p in enumerate(self.parents) if p == j]

    def rest_local_rotations(self) -> np.ndarray:
        if self.rest_rotations is None:
            return np.tile(quat.IDENTITY, (len(self), 1))
        return self.rest_rotations

    def forward_kinematics(
        self, rotations: np.ndarray, translations: np.ndarray | None = None, root_position: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """World orientations and positions of every joint.

        rotations: (..., J, 4) local rotations applied after each joint's rest orientation.
        translations: (..., J, 3) per-joint local translations (defaults to the rest offsets).
        root_position: (..., 3) overrides the root's translation.
        Returns (orientations (..., J, 4), positions (..., J, 3)).
        """
        rotations = np.asarray(rotations, dtype=np.float64)
        lead = rotations.shape[:-2]
        if translations is None:
            translations = np.broadcast_to(self.offsets, lead + self.offsets.shape)
        translations = np.array(translations, dtype=np.float64)
        if root_position is not None:
            translations[..., 0, :] = root_position
        local = quat.mul(np.broadcast_to(self.rest_local_rotations(), rotations.shape), rotations)
        orient = np.empty_like(local)
        pos = np.empty(lead + (len(self), 3))
        for j, p in enumerate(self.parents):
            if p < 0:
                orient[..., j, :] = local[..., j, :]
                pos[..., j, :] = translations[..., j, :]
            else:
                orient[..., j, :] = quat.mul(orient[..., p, :], local[..., j, :])
                pos[..., j, :] = pos[..., p, :] + quat.rotate(orient[..., p, :], translations[..., j, :])
        return orient, pos

    def rest_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World orientations and positions in the zero pose."""
        return self.forward_kinematics(np.tile(quat.IDENTITY, (len(self), 1)))

    def chain_length(self, names: list[str]) -> float:
        """Rest length of a chain of joints given from top to bottom (e.g. hip, knee, ankle)."""
        _, pos = self.rest_pose()
        idx = [self.index(n) for n in names]
        return float(sum(np.linalg.norm(pos[b] - pos[a]) for a, b in zip(idx, idx[1:])))


@dataclass(frozen=True)
class BodyPart:
    """A named group of canonical joints that an animator can select (for masks, edits, UI)."""

    name: str
    label: str
    joints: tuple[str, ...]
    root_translation: bool = False
    """True where the group also covers the root's path over the ground."""


def _build_canonical() -> tuple[Skeleton, dict[str, str]]:
    # (name, parent, offset in metres: x = left, y = back, z = up). Left side listed; right is mirrored.
    # Proportions follow the SMPL neutral body, cleaned into a symmetric T-pose with straight legs.
    joints: list[tuple[str, str | None, tuple[float, float, float]]] = [
        ("pelvis", None, (0.0, 0.0, 0.96)),
        ("left_hip", "pelvis", (0.06, 0.0, -0.09)),
        ("right_hip", "pelvis", (-0.06, 0.0, -0.09)),
        ("spine1", "pelvis", (0.0, 0.02, 0.12)),
        ("left_knee", "left_hip", (0.0, 0.0, -0.385)),
        ("right_knee", "right_hip", (0.0, 0.0, -0.385)),
        ("spine2", "spine1", (0.0, -0.02, 0.14)),
        ("left_ankle", "left_knee", (0.0, 0.0, -0.40)),
        ("right_ankle", "right_knee", (0.0, 0.0, -0.40)),
        ("spine3", "spine2", (0.0, 0.0, 0.055)),
        ("left_foot", "left_ankle", (0.0, -0.13, -0.06)),
        ("right_foot", "right_ankle", (0.0, -0.13, -0.06)),
        ("neck", "spine3", (0.0, 0.02, 0.215)),
        ("left_collar", "spine3", (0.075, 0.01, 0.125)),
        ("right_collar", "spine3", (-0.075, 0.01, 0.125)),
        ("head", "neck", (0.0, -0.05, 0.065)),
        ("left_shoulder", "left_collar", (0.125, 0.0, 0.035)),
        ("right_shoulder", "right_collar", (-0.125, 0.0, 0.035)),
        ("left_elbow", "left_shoulder", (0.255, 0.0, 0.0)),
        ("right_elbow", "right_shoulder", (-0.255, 0.0, 0.0)),
        ("left_wrist", "left_elbow", (0.265, 0.0, 0.0)),
        ("right_wrist", "right_elbow", (-0.265, 0.0, 0.0)),
    ]
    names = tuple(n for n, _, _ in joints)
    parents = tuple(-1 if p is None else names.index(p) for _, p, _ in joints)
    offsets = np.array([o for _, _, o in joints])
    mirror = {}
    for n in names:
        if n.startswith("left_"):
            mirror[n] = "right_" + n[5:]
        elif n.startswith("right_"):
            mirror[n] = "left_" + n[6:]
        else:
            mirror[n] = n
    return Skeleton(names, parents, offsets), mirror


CANONICAL, _MIRROR_NAMES = _build_canonical()
"""The canonical skeleton (22 joints)."""

JOINT_NAMES = CANONICAL.names
NUM_JOINTS = len(CANONICAL)
MIRROR_INDEX = np.array([CANONICAL.index(_MIRROR_NAMES[n]) for n in JOINT_NAMES])
"""For each canonical joint, the index of its left/right counterpart (itself on the mid-line)."""

LEFT_RIGHT_PAIRS = tuple(
    (n, _MIRROR_NAMES[n]) for n in JOINT_NAMES if n.startswith("left_")
)

FEET = ("left_ankle", "left_foot", "right_ankle", "right_foot")
"""Joints whose contact with the ground is tracked."""


@dataclass(frozen=True)
class ContactThresholds:
    """When a foot joint counts as planted: lower than `height` above its rest height and slower
    than `speed` over the ground. Every foot-contact test in the project uses one of the named
    thresholds below, each for its own purpose."""

    height: float
    """metres above the joint's rest height (canonical skeleton)"""
    speed: float
    """metres per second over the ground"""


CONTACT_FEATURES = ContactThresholds(0.05, 0.5)
"""The model's four contact channels: what the training data says and known values carry."""
CONTACT_PIN = ContactThresholds(0.05, 1.25)
"""Feet pinned after sampling (the foot lock): low, and not in full stride (validation, 8-block
weights, one seed: 1.0 m/s left a skate ratio of 0.133, FID 25.6; 1.25 with `cleanup.PIN_MAX_SPEED`
0.123, FID 26.1; a 6-cm height 0.120 but FID 27.0)."""
CONTACT_RIG = ContactThresholds(0.04, 0.2)
"""Feet the rig-side relock holds still on a rig of other proportions: clearly planted ones."""
CONTACT_PLANTED = ContactThresholds(0.03, 0.1)
"""Truly planted joints, for measurements (foot slide, sole flips, heights against the floor)."""

LEG_CHAIN = ("left_hip", "left_knee", "left_ankle")
"""Used to compare leg lengths between skeletons (root motion is scaled by their ratio)."""

_SIDES = {"left": "Left", "right": "Right"}
BODY_PARTS: tuple[BodyPart, ...] = (
    *(
        BodyPart(f"{s}_arm", f"{label} Arm", tuple(f"{s}_{j}" for j in ("collar", "shoulder", "elbow", "wrist")))
        for s, label in _SIDES.items()
    ),
    *(
        BodyPart(f"{s}_leg", f"{label} Leg", tuple(f"{s}_{j}" for j in ("hip", "knee", "ankle", "foot")))
        for s, label in _SIDES.items()
    ),
    BodyPart("torso", "Torso", ("spine1", "spine2", "spine3")),
    BodyPart("head", "Head", ("neck", "head")),
    BodyPart(
        "upper_body",
        "Upper Body",
        ("spine1", "spine2", "spine3", "neck", "head")
        + tuple(f"{s}_{j}" for s in _SIDES for j in ("collar", "shoulder", "elbow", "wrist")),
    ),
    BodyPart(
        "lower_body",
        "Lower Body",
        ("pelvis",) + tuple(f"{s}_{j}" for s in _SIDES for j in ("hip", "knee", "ankle", "foot")),
        root_translation=True,
    ),
    BodyPart("root_trajectory", "Root Trajectory", (), root_translation=True),
)
BODY_PART_BY_NAME = {p.name: p for p in BODY_PARTS}


def canonical_forward_kinematics_torch(rotmats, root_position, offsets=None):
    """Batched FK on the canonical skeleton in torch (differentiable, for training losses).

    rotmats: (..., J, 3, 3) local rotation matrices; root_position: (..., 3).
    Returns joint positions (..., J, 3).
    """
    import torch

    if offsets is None:
        offsets = torch.as_tensor(CANONICAL.offsets, dtype=rotmats.dtype, device=rotmats.device)
    glob = [None] * NUM_JOINTS
    pos = [None] * NUM_JOINTS
    for j, p in enumerate(CANONICAL.parents):
        if p < 0:
            glob[j] = rotmats[..., j, :, :]
            pos[j] = root_position
        else:
            glob[j] = glob[p] @ rotmats[..., j, :, :]
            pos[j] = pos[p] + (glob[p] @ offsets[j].unsqueeze(-1)).squeeze(-1)
    return torch.stack(pos, dim=-2)
