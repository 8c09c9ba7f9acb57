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
import torch

from ..body import quat
from .constraints import Constraints, joint_columns
from . import representation as rep
from .representation import ROOT
from ..body.motion import MotionClip, MotionError
from ..body.skeleton import BODY_PART_BY_NAME, JOINT_NAMES, NUM_JOINTS

CONTEXT_SECONDS = 2.0
"""Motion around the range (as whole poses) the model sees, so the edit continues it."""
DRAFT_MARGIN_SECONDS = 0.4
MARGIN_SHARE = 4
"""Inside the range, the edited joints follow a draft of the prompt alone except this close to the
range's ends, where the model joins the draft to the source (at most a quarter of the range each)."""


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
         context_seconds: float = CONTEXT_SECONDS, max_seconds: float | None = None,
         draft_margin_seconds: float | None = DRAFT_MARGIN_SECONDS, carry_rest: bool = True) -> EditPlan:
    """Constraints for regenerating `edited` within `span` (scene frames, inclusive) of `source`.

    source: the action at the scene's frame rate, one frame per whole scene frame from `first`.

    The edited joints are drafted from the prompt alone inside the range (`Constraints.drafted`),
    but for `draft_margin_seconds` at each end that meets known motion, where the model joins the
    draft to the source and to the kept joints (None: no draft, the model regenerates the joints with the kept ones in view).
    A model sampled with a walk's legs known makes the arms swing as the walk's do whatever the
    prompt says; drafted first, they do what it says.

    carry_rest: with the root path regenerated in a range the action goes on after, the action
    after the range moves with the new path's end (`Constraints.carry`, `carried`): a walk drafted
    into a standing clip walks on, and the rest plays where it arrived. False: the new path comes
    back to the old one by the range's end (a travelling prompt then steps more than it travels).
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
    # free: the range's frames and the model frames between its ends and the scene frames next to
    # them; from those scene frames out, the source is known (the edit returns to it by then)
    inside = np.flatnonzero((times > a - 1 + 1e-9) & (times < b + 1 - 1e-9))
    outside = np.setdiff1d(np.arange(n), inside)
    c = Constraints.joints(known, edited.kept_joints, frames=inside, root=not edited.root)
    if len(outside):
        c = c | Constraints.pose_keys(known, outside)
    if draft_margin_seconds is not None:
        margin = min(int(round(draft_margin_seconds * model_fps)), len(inside) // MARGIN_SHARE)
        # a margin only where the range meets known motion (a range that runs to the clip's end
        # has nothing to join there)
        lead = margin if len(inside) and (outside < inside[0]).any() else 0
        tail = margin if len(inside) and (outside > inside[-1]).any() else 0
        if len(inside) - lead - tail > 0:
            # held in the core; in the margins a crossfade from the source, which the model reworks
            w = np.ones(len(inside))
            x = (np.arange(1, lead + 1)) / (lead + 1)
            w[:lead] = x * x * (3 - 2 * x)
            x = (np.arange(tail, 0, -1)) / (tail + 1)
            w[len(inside) - tail:] = x * x * (3 - 2 * x)
            drafted = np.zeros(c.mask.shape)
            cols = joint_columns(edited.joints) + (list(range(ROOT.start, ROOT.stop)) if edited.root else [])
            drafted[np.ix_(inside, cols)] = w[:, None]
            c = c.with_draft(drafted, carry=carry_rest and edited.root)
    return EditPlan(c, times, (float(a), float(b)))


@dataclass(frozen=True)
class Carry:
    """How the motion after an edited range moved with a regenerated root path: turned by `yaw`
    (radians, about the vertical axis through the origin) and then shifted by `shift` (x, y) over
    the ground (`MotionClip.moved_on_ground`), in the source clip's frame."""

    yaw: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)

    @property
    def moves(self) -> bool:
        """Whether the motion after the range moved at all (more than 0.1 mm or 0.001 degrees)."""
        return abs(self.yaw) > 2e-5 or float(np.hypot(*self.shift)) > 1e-4

    def apply(self, clip: MotionClip) -> MotionClip:
        return clip.moved_on_ground(self.yaw, self.shift)


def carried(clip: MotionClip, p: EditPlan) -> Carry:
    """How `clip` (the model's result on the plan's grid) moved the motion after the range: the
    transform that takes the source's last known frame to the result's (identity where nothing
    after the range was carried)."""
    c = p.constraints
    after = np.flatnonzero(p.times > p.span[1] + 1 - 1e-9)
    if not c.carry or not len(after):
        return Carry()
    k = int(after[-1])
    src, res = c.known, clip
    facing = rep.heading(rep.quat_to_matrix(torch.as_tensor(np.stack([src.rotations[k, 0], res.rotations[k, 0]]))))
    yaw = float(facing[1] - facing[0])
    yaw = float((yaw + np.pi) % (2 * np.pi) - np.pi)
    at = MotionClip(src.rotations[k:k + 1], src.root_translation[k:k + 1], src.fps).moved_on_ground(yaw, (0.0, 0.0))
    shift = res.root_translation[k, :2] - at.root_translation[0, :2]
    return Carry(yaw, (float(shift[0]), float(shift[1])))


def to_scene(clip: MotionClip, p: EditPlan, frames: np.ndarray, scene_fps: float) -> MotionClip:
    """The model's clip (on the plan's grid) at the given scene frames, along the smooth curve through
    its frames (`MotionClip.sample_smooth`: no velocity kink at each model frame)."""
    u = np.interp(np.asarray(frames, np.float64), p.times, np.arange(len(p.times)))
    return clip.sample_smooth(u, scene_fps)


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
