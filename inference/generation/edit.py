"""Body-part editing: some joints of an existing motion regenerated inside a frame range, the rest kept.

The source motion (read at the scene's frame rate) is put on the model's grid anchored at the
range's first frame; inside the range every joint the animator keeps (and the root path, unless it
is edited) is known on every model frame, and a few seconds around the range are known as whole
poses, so the sampler (`diffusion.spread_known`) brings the edited joints in and out of the range
without a jump. The model's motion is then sampled back at the scene's frames inside the range.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..body import quat
from .constraints import Constraints
from ..body.motion import MotionClip, MotionError
from ..body.skeleton import BODY_PART_BY_NAME, JOINT_NAMES, NUM_JOINTS

CONTEXT_SECONDS = 2.0
"""Motion around the range (as whole poses) the model sees, so the edit continues it."""


class EditError(MotionError):
    """An edit that cannot run; the message says what to change."""


@dataclass(frozen=True)
class EditedParts:
    """What an edit regenerates: canonical joints and whether the root path is among them."""

    joints: tuple[str, ...]
    """Canonical joint names, in skeleton order."""
    root: bool = False
    """The root's path (its position over the ground and height) is regenerated too."""
    parts: tuple[str, ...] = ()
    """Body-part names (`skeleton.BODY_PARTS`) the joints came from; empty for selected bones."""

    def __post_init__(self):
        bad = [j for j in self.joints if j not in JOINT_NAMES]
        if bad:
            raise EditError(f"Unknown joint(s) {', '.join(bad)}; the canonical joints are: {', '.join(JOINT_NAMES)}.")
        object.__setattr__(self, "joints", tuple(j for j in JOINT_NAMES if j in set(self.joints)))
        if not self.joints and not self.root:
            raise EditError("Choose the body parts to regenerate (or select their bones in Pose Mode).")

    @classmethod
    def from_parts(cls, parts: Iterable[str]) -> "EditedParts":
        parts = tuple(parts)
        unknown = [p for p in parts if p not in BODY_PART_BY_NAME]
        if unknown:
            raise EditError(f"Unknown body part(s) {', '.join(unknown)}; choose from: {', '.join(BODY_PART_BY_NAME)}.")
        joints = [j for p in parts for j in BODY_PART_BY_NAME[p].joints]
        return cls(tuple(joints), any(BODY_PART_BY_NAME[p].root_translation for p in parts), parts)

    @property
    def joint_indices(self) -> np.ndarray:
        return np.array([JOINT_NAMES.index(j) for j in self.joints], int)

    @property
    def kept_joints(self) -> tuple[str, ...]:
        return tuple(j for j in JOINT_NAMES if j not in self.joints)


@dataclass(frozen=True)
class EditPlan:
    """The request's constraints and how the model's grid sits on the scene's frames."""

    constraints: Constraints = field(repr=False)
    times: np.ndarray = field(repr=False)
    """(N,) scene frame of each model frame (fractional)."""
    span: tuple[float, float]
    """First and last scene frame of the edit."""


def _at(clip: MotionClip, u: np.ndarray, fps: float) -> MotionClip:
    """`clip` at fractional frame indices `u` (slerp rotations, lerp root), labelled `fps`."""
    u = np.clip(np.asarray(u, np.float64), 0, clip.num_frames - 1)
    i0 = np.floor(u).astype(int)
    i1 = np.minimum(i0 + 1, clip.num_frames - 1)
    a = u - i0
    rot = quat.slerp(clip.rotations[i0], clip.rotations[i1], np.repeat(a[:, None], NUM_JOINTS, 1))
    root = clip.root_translation[i0] * (1 - a[:, None]) + clip.root_translation[i1] * a[:, None]
    exact = a < 1e-12  # on a source frame: its values as they are (no slerp at 0)
    rot[exact], root[exact] = clip.rotations[i0[exact]], clip.root_translation[i0[exact]]
    return MotionClip(rot, root, fps)


def check_span(first: float, last: float, span: tuple[float, float]) -> tuple[int, int]:
    """The edit's (start, end) as whole frames inside the action's [first, last], or an `EditError`."""
    if last - first < 1:
        raise EditError("The action is empty or one frame long: there is no motion to edit. "
                        "Generate or key an action of at least two frames first.")
    a, b = int(round(span[0])), int(round(span[1]))
    if b < a:
        raise EditError(f"The frame range {a}-{b} ends before it starts; set the end after the start.")
    if a < first or b > last:
        raise EditError(f"The frame range {a}-{b} lies outside the action's frames {first:g}-{last:g}; "
                        "pick a range inside the action (or press Whole Action).")
    return a, b


def plan(source: MotionClip, first: float, span: tuple[float, float], edited: EditedParts, model_fps: float,
         context_seconds: float = CONTEXT_SECONDS, max_seconds: float | None = None) -> EditPlan:
    """Constraints for regenerating `edited` within `span` (scene frames, inclusive) of `source`.

    source: the action at the scene's frame rate, one frame per whole scene frame from `first`.
    """
    last = first + source.num_frames - 1
    a, b = check_span(first, last, span)
    step = source.fps / model_fps  # scene frames per model frame
    ctx = context_seconds * source.fps
    k0 = -int(np.floor((a - max(first, a - ctx)) / step + 1e-9))
    k1 = int(np.floor((min(last, b + ctx) - a) / step + 1e-9))
    k1 = max(k1, int(np.ceil((b - a) / step - 1e-9)))  # the grid covers the range's last frame
    times = a + np.arange(k0, k1 + 1) * step
    n = len(times)
    if max_seconds is not None and n / model_fps > max_seconds:
        raise EditError(f"The edit with its context spans {n / model_fps:.1f} s; Marionette edits up to "
                        f"{max_seconds - 2 * context_seconds:g} s at a time. Narrow the frame range and edit it in parts.")
    known = _at(source, times - first, model_fps)
    inside = np.flatnonzero((times > a - step + 1e-9) & (times < b + step - 1e-9))
    outside = np.setdiff1d(np.arange(n), inside)
    c = Constraints.joints(known, edited.kept_joints, frames=inside, root=not edited.root)
    if len(outside):
        c = c | Constraints.pose_keys(known, outside)
    return EditPlan(c, times, (float(a), float(b)))


def to_scene(clip: MotionClip, p: EditPlan, frames: np.ndarray, scene_fps: float) -> MotionClip:
    """The model's clip (on the plan's grid) at the given scene frames (slerp/lerp between model frames)."""
    u = np.interp(np.asarray(frames, np.float64), p.times, np.arange(len(p.times)))
    return _at(clip, u, scene_fps)


def joints_of_bones(bones: Iterable[str], bone_of_joint: dict[str, str | Iterable[str]]) -> tuple[str, ...]:
    """Canonical joints played by the given rig bones ({joint: bone or bones} from the rig's map)."""
    chosen = set(bones)
    out = []
    for j in JOINT_NAMES:
        b = bone_of_joint.get(j)
        names = {b} if isinstance(b, str) else set(b or ())
        if names & chosen:
            out.append(j)
    return tuple(out)
