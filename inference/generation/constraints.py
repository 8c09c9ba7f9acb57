"""Constraints: known values on the canonical skeleton plus a mask over frames x features.

Every mode is a constraint: text to motion has none, in-betweening keys whole or partial poses,
body-part editing keeps joints, a root path keeps the pelvis's ground position. Training draws its
random masks from the same builders (`training/masks.py`), so the model learns exactly the masks the
runtime gives it. Body parts and their labels come from `skeleton.BODY_PARTS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from . import defaults
from ..body.motion import MotionClip, MotionError
from .representation import CONTACT, NUM_FEATURES, ROOT, joint_feature_slices
from ..body.skeleton import BODY_PART_BY_NAME, BODY_PARTS, JOINT_NAMES, NUM_JOINTS

POSE = slice(0, CONTACT.start)
"""Root position + joint rotations: what an animator keys (the contact columns are never known)."""

__all__ = ["Constraints", "POSE", "joint_columns", "part_columns", "keyframe_mask", "joint_mask",
           "trajectory_mask", "body_part_mask", "BODY_PARTS"]


# ----------------------------------------------------------------------------------- columns
def joint_columns(joints: Iterable[str]) -> list[int]:
    """Feature columns of the given canonical joints' rotations, in the order given."""
    cols: list[int] = []
    for name in joints:
        if name not in JOINT_NAMES:
            raise MotionError(f"Unknown joint '{name}'; the canonical joints are: {', '.join(JOINT_NAMES)}.")
        s = joint_feature_slices(JOINT_NAMES.index(name))
        cols.extend(range(s.start, s.stop))
    return cols


def part_columns(parts: Iterable) -> np.ndarray:
    """(F,) bool: the columns of body parts (names or `BodyPart`s), the root path where a part has it."""
    sel = np.zeros(NUM_FEATURES, bool)
    for p in parts:
        part = BODY_PART_BY_NAME.get(p) if isinstance(p, str) else p
        if part is None:
            raise MotionError(f"Unknown body part '{p}'; choose from: {', '.join(BODY_PART_BY_NAME)}.")
        sel[joint_columns(part.joints)] = True
        if part.root_translation:
            sel[ROOT] = True
    return sel


def _rows(frames):
    return slice(None) if frames is None else np.asarray(list(frames), dtype=int)


# ----------------------------------------------------------------------------------- masks
def keyframe_mask(num_frames: int, frames) -> np.ndarray:
    """Whole poses (root + every joint) known on the given frame indices."""
    m = np.zeros((num_frames, NUM_FEATURES), bool)
    m[np.asarray(list(frames), dtype=int), POSE] = True
    return m


def joint_mask(num_frames: int, joints, root: bool = False, frames=None) -> np.ndarray:
    """The given canonical joints' rotations known (on all frames, or on `frames`); `root` adds the root path."""
    m = np.zeros((num_frames, NUM_FEATURES), bool)
    rows = _rows(frames)
    sel = np.zeros(NUM_FEATURES, bool)
    sel[joint_columns(joints)] = True
    m[rows] |= sel
    if root:
        m[rows, ROOT] = True
    return m


def trajectory_mask(num_frames: int, frames=None, height: bool = False) -> np.ndarray:
    """The root's ground position (and its height if `height`) known on all frames or on `frames`."""
    m = np.zeros((num_frames, NUM_FEATURES), bool)
    m[_rows(frames), 0:3 if height else 2] = True
    return m


def body_part_mask(num_frames: int, parts, keep: bool = True, frames: tuple[int, int] | None = None) -> np.ndarray:
    """Body parts known (`keep`) or regenerated (`keep=False`: every other pose column known).

    frames: (start, stop) range the edit covers; outside it the whole pose is known.
    """
    sel = part_columns(parts)
    if not keep:
        sel = ~sel
        sel[CONTACT] = False
    m = np.zeros((num_frames, NUM_FEATURES), bool)
    rows = slice(None)
    if frames is not None:
        a, b = frames
        m[:, POSE] = True
        m[a:b] = False
        rows = slice(a, b)
    m[rows, sel] = True
    return m


# ------------------------------------------------------------------------------- constraints
@dataclass(frozen=True)
class Constraints:
    """Known values (a reference clip in its world frame) and where they hold.

    Made through the named constructors; `a | b` keeps what either keeps (same reference clip).
    """

    known: MotionClip = field(repr=False)
    """The reference motion on the canonical skeleton; values outside `mask` are ignored."""
    mask: np.ndarray = field(repr=False)
    """(frames, 139) bool, True = this value of `known` is kept exactly."""
    drafted: np.ndarray | None = field(default=None, repr=False)
    """(frames, 139) weights in [0, 1] or None: values (outside `mask`) first drafted by the prompt
    alone, with no constraint (`Generator.generate`, `apply_draft`). Weight 1 holds the draft's value
    like a known one; between 0 and 1 the value stays free but the sampler starts from a blend of
    the known value and the draft's (a crossfade that the model then makes its own). Used where the
    known values would otherwise decide what the prompt should: a walk's kept legs pull regenerated
    arms back into the walk's swing. Whole joints (and root coordinates) only."""
    key_guidance: float = 1.0
    """Guidance on the known values (`sampler.Guided` known_scale): above 1 the free frames follow
    what the known values imply more strongly than the model's own conditioning does. Keys set
    `defaults.KEY_GUIDANCE`; kept body parts and root paths keep 1 (there the prompt should lead)."""

    carry: bool = False
    """Where a drafted root path ends away from the known motion after it (a range edited in the
    middle of an action): True moves that motion with the draft's end, turned and shifted rigidly
    over the ground, so the path continues from where the draft arrives (`apply_draft`); False makes
    the draft return to it (the draft is made with the root keyed at both of its ends)."""

    def __post_init__(self):
        m = np.asarray(self.mask)
        if m.shape != (self.known.num_frames, NUM_FEATURES):
            raise MotionError(f"A constraint mask must have shape ({self.known.num_frames}, {NUM_FEATURES}) to "
                              f"match its {self.known.num_frames}-frame reference; got {m.shape}.")
        if m[:, CONTACT].any():
            raise MotionError("Foot contacts cannot be constrained; key the feet's rotations and the root instead.")
        object.__setattr__(self, "mask", m.astype(bool))
        if not 0.0 <= float(self.key_guidance) <= 10.0:
            raise MotionError(f"Key guidance must be between 0 and 10; got {self.key_guidance:g}.")
        if self.drafted is not None:
            d = np.clip(np.asarray(self.drafted, np.float64), 0.0, 1.0)
            if d.shape != m.shape or d[:, CONTACT].any():
                raise MotionError(f"A draft mask must have shape {m.shape} and leave the foot contacts alone.")
            object.__setattr__(self, "drafted", np.where(m, 0.0, d))

    @property
    def num_frames(self) -> int:
        return self.known.num_frames

    @property
    def any(self) -> bool:
        return bool(self.mask.any())

    def __or__(self, other: "Constraints") -> "Constraints":
        if other.known is not self.known:
            raise MotionError("Constraints can only be combined over the same reference motion.")
        drafts = [d for d in (self.drafted, other.drafted) if d is not None]
        return Constraints(self.known, self.mask | other.mask, np.maximum.reduce(drafts) if drafts else None,
                           max(self.key_guidance, other.key_guidance), self.carry or other.carry)

    def with_draft(self, drafted: np.ndarray, carry: bool = False) -> "Constraints":
        """These constraints with `drafted` values taken from a prompt-only draft (see `drafted`, `carry`)."""
        return Constraints(self.known, self.mask, drafted, self.key_guidance, carry)

    @classmethod
    def pose_keys(cls, known: MotionClip, frames) -> "Constraints":
        """Whole-pose keys: root and every joint on the given frames."""
        return cls(known, keyframe_mask(known.num_frames, frames), key_guidance=defaults.KEY_GUIDANCE)

    @classmethod
    def partial_keys(cls, known: MotionClip, keys: Mapping[int, Iterable[str]], root_frames=()) -> "Constraints":
        """Some joints keyed on some frames ({frame: joint names}); `root_frames`: frames whose root is keyed."""
        m = np.zeros((known.num_frames, NUM_FEATURES), bool)
        for frame, joints in keys.items():
            m[int(frame), joint_columns(joints)] = True
        if len(root_frames):
            m[np.asarray(list(root_frames), dtype=int), ROOT] = True
        return cls(known, m, key_guidance=defaults.KEY_GUIDANCE)

    @classmethod
    def body_parts(cls, known: MotionClip, parts, keep: bool = True,
                   frames: tuple[int, int] | None = None) -> "Constraints":
        """Parts from `skeleton.BODY_PARTS` (by name) kept, or regenerated with the rest kept (`keep=False`)."""
        return cls(known, body_part_mask(known.num_frames, parts, keep, frames))

    @classmethod
    def root_path(cls, known: MotionClip, frames=None, height: bool = False) -> "Constraints":
        """The root's ground path (and height) on all frames or on `frames`."""
        return cls(known, trajectory_mask(known.num_frames, frames, height))

    @classmethod
    def joints(cls, known: MotionClip, joints, frames=None, root: bool = False) -> "Constraints":
        """Joints x frames: the joints' rotations (and the root path) kept on all frames or on `frames`."""
        return cls(known, joint_mask(known.num_frames, joints, root, frames))


def apply_draft(known: MotionClip, drafted: np.ndarray, draft: MotionClip, carry: bool = False) -> MotionClip:
    """`known` with the `drafted` joints' rotations and root coordinates taken from `draft` (same
    length), blended by the weights in `drafted` (1: the draft's value; between: slerp/lerp). A
    drafted root path is turned and moved so that, on the first drafted frame, the draft faces and
    stands where `known` does: the new path starts where the old one is.

    carry: `known` after the drafted root's held frames (weight 1) is moved rigidly over the ground
    (`MotionClip.moved_on_ground`) so that on the last drafted frame it stands where the draft does
    (and faces its way, where the pelvis is drafted too): the motion after an edited range continues
    from where the new path arrives instead of pulling it back."""
    import torch

    from ..body import quat
    from .representation import heading, quat_to_matrix

    if draft.num_frames != known.num_frames:
        raise MotionError(f"The draft has {draft.num_frames} frames; the constraints {known.num_frames}.")
    drafted = np.asarray(drafted, np.float64)
    rot, root = known.rotations.copy(), known.root_translation.copy()
    d_rot, d_root = draft.rotations, draft.root_translation
    rows_root = np.flatnonzero(drafted[:, ROOT].max(axis=1) > 0)
    if len(rows_root):
        r0 = rows_root[0]
        yaw = heading(quat_to_matrix(torch.as_tensor(np.stack([known.rotations[r0, 0], d_rot[r0, 0]]))))
        turn = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), float(yaw[0] - yaw[1]))
        n = draft.num_frames
        d_root = quat.rotate(np.broadcast_to(turn, (n, 4)), d_root - d_root[r0] * [1.0, 1.0, 0.0])
        d_root[:, :2] += known.root_translation[r0, :2]
        d_rot = d_rot.copy()
        d_rot[:, 0] = quat.mul(np.broadcast_to(turn, (n, 4)), d_rot[:, 0])
        if carry:
            r1 = rows_root[-1]
            held = np.flatnonzero(drafted[:, ROOT].max(axis=1) >= 1.0)
            after = (held[-1] if len(held) else r1) + 1
            pelvis = drafted[r1, joint_columns([JOINT_NAMES[0]])].min() > 0
            spin = 0.0
            if pelvis:
                y = heading(quat_to_matrix(torch.as_tensor(np.stack([known.rotations[r1, 0], d_rot[r1, 0]]))))
                spin = float(y[1] - y[0])
            at = quat.rotate(quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), spin), known.root_translation[r1])
            rest = MotionClip(rot[after:], root[after:], known.fps).moved_on_ground(spin, d_root[r1, :2] - at[:2])
            rot[after:], root[after:] = rest.rotations, rest.root_translation
        for k in range(3):
            w = drafted[:, k]
            root[:, k] += w * (d_root[:, k] - root[:, k])
    for j in range(NUM_JOINTS):
        w = drafted[:, joint_columns([JOINT_NAMES[j]])].min(axis=1)
        rows = w > 0
        if rows.any():
            rot[rows, j] = quat.slerp(rot[rows, j], d_rot[rows, j], w[rows])
            rot[w >= 1.0, j] = d_rot[w >= 1.0, j]  # exact where held
    return MotionClip(rot, root, known.fps)
