"""In-betweening at the scene's frame rate around a model that runs at its own: the animator's keyed
frames become known values on the model's grid without moving, rounding or resampling any of them.

Each gap between consecutive keyed frames becomes a whole number of model frames (at least one), so
every keyed frame lands exactly on a model frame with its exact pose; the model's motion is then
time-scaled back onto the scene frames of each gap (slerp/lerp between model frames). A gap is
stretched by at most half a model frame over its length (0 for gaps of whole 1/20 s; keys closer
than one model frame, at 60 fps and up, get one), and nothing is ever interpolated at a keyed frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..body import quat
from .constraints import Constraints
from ..body.motion import MotionClip, MotionError
from ..body.skeleton import JOINT_NAMES, NUM_JOINTS


class InbetweenError(MotionError):
    """Keys that cannot be in-betweened; the message says what to change."""


@dataclass(frozen=True)
class KeyedPoses:
    """The animator's keyed frames inside a range, as canonical poses and what was keyed on each."""

    frames: np.ndarray = field(repr=False)
    """(K,) keyed scene frames, strictly ascending (fractional frames allowed)."""
    poses: MotionClip = field(repr=False)
    """K canonical poses: the action evaluated at each keyed frame (its fps is the scene's)."""
    joints: np.ndarray = field(repr=False)
    """(K, 22) bool: the joint's rotation is keyed on that frame (any of its channels)."""
    root: np.ndarray = field(repr=False)
    """(K,) bool: the root's position is keyed on that frame."""

    def __post_init__(self):
        f = np.asarray(self.frames, np.float64)
        j, r = np.asarray(self.joints, bool), np.asarray(self.root, bool)
        if f.ndim != 1 or self.poses.num_frames != len(f) or j.shape != (len(f), NUM_JOINTS) or r.shape != (len(f),):
            raise InbetweenError("Keyed frames, poses and what was keyed on each must have the same length.")
        if len(f) > 1 and not (np.diff(f) > 0).all():
            raise InbetweenError("Keyed frames must be strictly ascending.")
        keyed = j.any(axis=1) | r
        f, j, r = f[keyed], j[keyed], r[keyed]
        poses = MotionClip(self.poses.rotations[keyed], self.poses.root_translation[keyed], self.poses.fps) \
            if keyed.any() else self.poses
        if len(f) < 2:
            raise InbetweenError("In-betweening needs at least two keyed frames inside the frame range "
                                 f"(found {len(f)}); key poses on two or more frames, or widen the range.")
        object.__setattr__(self, "frames", f)
        object.__setattr__(self, "poses", poses)
        object.__setattr__(self, "joints", j)
        object.__setattr__(self, "root", r)

    @property
    def scene_fps(self) -> float:
        return self.poses.fps


def model_frames(frames: np.ndarray, scene_fps: float, model_fps: float) -> np.ndarray:
    """(K,) model-frame index of each keyed frame: each gap rounded to whole model frames (at least 1)."""
    gaps = np.maximum(1, np.round(np.diff(np.asarray(frames, np.float64)) * model_fps / scene_fps)).astype(int)
    return np.concatenate([[0], np.cumsum(gaps)]).astype(int)


def constraints(keys: KeyedPoses, model_fps: float) -> tuple[Constraints, np.ndarray]:
    """Known values on the model's grid and their mask, and each key's model frame.

    Frames between keys hold an interpolation of the keys only so that the reference clip is a valid
    motion; the mask never marks them known.
    """
    idx = model_frames(keys.frames, keys.scene_fps, model_fps)
    n = int(idx[-1]) + 1
    seg = np.clip(np.searchsorted(idx, np.arange(n), side="right") - 1, 0, len(idx) - 2)
    a = (np.arange(n) - idx[seg]) / (idx[seg + 1] - idx[seg])
    rot = quat.slerp(keys.poses.rotations[seg], keys.poses.rotations[seg + 1],
                     np.repeat(a[:, None], NUM_JOINTS, 1))
    root = keys.poses.root_translation[seg] * (1 - a[:, None]) + keys.poses.root_translation[seg + 1] * a[:, None]
    rot[idx], root[idx] = keys.poses.rotations, keys.poses.root_translation  # exact, not a slerp at 0
    known = MotionClip(rot, root, model_fps)
    joints = {int(i): [name for name, on in zip(JOINT_NAMES, row) if on] for i, row in zip(idx, keys.joints)}
    return Constraints.partial_keys(known, joints, root_frames=idx[keys.root]), idx


def to_scene(clip: MotionClip, keys: KeyedPoses, idx: np.ndarray, frames: np.ndarray) -> MotionClip:
    """The model's clip (on its grid) at the given scene frames (inside the keyed span), time-scaled per gap.

    A scene frame that is a keyed frame gets the model frame of its key as it is (no interpolation).
    """
    frames = np.asarray(frames, np.float64)
    kf = keys.frames
    if frames.min() < kf[0] - 1e-9 or frames.max() > kf[-1] + 1e-9:
        raise InbetweenError("Frames to fill must lie between the first and the last keyed frame.")
    seg = np.clip(np.searchsorted(kf, frames, side="right") - 1, 0, len(kf) - 2)
    u = idx[seg] + (frames - kf[seg]) / (kf[seg + 1] - kf[seg]) * (idx[seg + 1] - idx[seg])
    # along the smooth curve through the model's frames: no velocity kink at each of them
    return clip.sample_smooth(u, keys.scene_fps)


def fill_frames(keys: KeyedPoses, every: int = 1) -> np.ndarray:
    """Whole scene frames strictly between the first and last key that get keys, on every `every`-th
    frame counted from the key before (the keyed frames themselves are never in the list)."""
    if every < 1:
        raise InbetweenError(f"Key every N frames needs N of 1 or more; got {every}.")
    out = []
    kf = keys.frames
    for a, b in zip(kf[:-1], kf[1:]):
        f = np.arange(np.floor(a) + 1, np.ceil(b))
        f = f[(f > a) & (f < b)]
        out.append(f[((f - np.floor(a)) % every) == 0] if every > 1 else f)
    return np.concatenate(out) if out else np.zeros(0)
