"""`MotionClip`: motion on the canonical skeleton, the currency between every part of Marionette."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import quat
from .skeleton import CANONICAL, MIRROR_INDEX, NUM_JOINTS


DOWNSAMPLE_SIGMA = 0.35
"""`MotionClip.downsample`'s Gaussian, in new frames: from 30 to 20 fps it keeps 97.6 % of a 2-Hz
swing and 55 % of what sits at the new rate's limit (10 Hz)."""


class MotionError(ValueError):
    """A clip or motion file that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class MotionClip:
    """Canonical-skeleton motion: local joint rotations, the root's world position, a frame rate."""

    rotations: np.ndarray = field(repr=False)
    """(T, 22, 4) local rotations (w, x, y, z) relative to the canonical T-pose."""
    root_translation: np.ndarray = field(repr=False)
    """(T, 3) world position of the pelvis in metres (Z up)."""
    fps: float = 30.0
    """Frames per second."""

    def __post_init__(self):
        rot = np.asarray(self.rotations, dtype=np.float64)
        root = np.asarray(self.root_translation, dtype=np.float64)
        if rot.ndim != 3 or rot.shape[1:] != (NUM_JOINTS, 4):
            raise MotionError(f"Rotations must have shape (frames, {NUM_JOINTS}, 4); got {rot.shape}.")
        if root.shape != (rot.shape[0], 3):
            raise MotionError(f"Root translation must have shape ({rot.shape[0]}, 3); got {root.shape}.")
        if rot.shape[0] == 0:
            raise MotionError("The motion has no frames.")
        if not (np.isfinite(rot).all() and np.isfinite(root).all()):
            raise MotionError("The motion contains NaN or infinite values.")
        norms = np.linalg.norm(rot, axis=-1)
        if np.any(norms < 1e-6):
            raise MotionError("The motion contains zero-length rotations.")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise MotionError(f"Frame rate must be positive; got {self.fps}.")
        object.__setattr__(self, "rotations", rot / norms[..., None])
        object.__setattr__(self, "root_translation", root)
        object.__setattr__(self, "fps", float(self.fps))

    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame plus one frame."""
        return self.num_frames / self.fps

    def forward_kinematics(self) -> tuple[np.ndarray, np.ndarray]:
        """World orientations (T, J, 4) and joint positions (T, J, 3)."""
        return CANONICAL.forward_kinematics(self.rotations, root_position=self.root_translation)

    def positions(self) -> np.ndarray:
        return self.forward_kinematics()[1]

    def _frames_at(self, fps: float) -> int:
        """How many frames the clip spans at `fps` (first and last frame at the same times)."""
        if not (np.isfinite(fps) and fps > 0):
            raise MotionError(f"Frame rate must be positive; got {fps}.")
        return max(1, int(round((self.num_frames - 1) * fps / self.fps)) + 1)

    def resample(self, fps: float) -> "MotionClip":
        """The same motion at another frame rate (slerp for rotations, linear for the root)."""
        n_out = self._frames_at(fps)
        if abs(fps - self.fps) < 1e-9:
            return self
        src_t = np.arange(n_out) * (self.fps / fps)
        src_t = np.clip(src_t, 0, self.num_frames - 1)
        i0 = np.floor(src_t).astype(int)
        i1 = np.minimum(i0 + 1, self.num_frames - 1)
        a = src_t - i0
        rot = quat.slerp(self.rotations[i0], self.rotations[i1], np.repeat(a[:, None], NUM_JOINTS, axis=1))
        root = self.root_translation[i0] * (1 - a[:, None]) + self.root_translation[i1] * a[:, None]
        return MotionClip(rot, root, fps)

    def sample_smooth(self, u: np.ndarray, fps: float | None = None) -> "MotionClip":
        """The motion at fractional frame indices `u` along a Catmull-Rom curve through every frame.

        Unlike slerp/lerp between neighbours (`resample`), whose velocity jumps at every source frame,
        the curve's velocity is continuous: showing 20-fps motion at 24, 30 or 60 fps does not add a
        kink at each of the model's frames. Whole indices give the frames themselves. Rotations are
        taken with continuous signs, interpolated as four numbers and normalised; the root likewise.
        """
        u = np.clip(np.asarray(u, dtype=np.float64), 0, self.num_frames - 1)
        n = self.num_frames
        if n == 1:
            return MotionClip(self.rotations[np.zeros(len(u), int)], self.root_translation[np.zeros(len(u), int)],
                              self.fps if fps is None else fps)
        i = np.minimum(np.floor(u).astype(int), n - 2)
        a = u - i

        q = self.rotations.copy()
        flip = np.cumprod(np.sign((q[1:] * q[:-1]).sum(-1) + 1e-12), axis=0)
        q[1:] *= flip[..., None]

        def curve(x, a):
            # one frame carried on past each end at the end's own velocity, so the ends keep their speed
            x = np.concatenate([2 * x[:1] - x[1:2], x, 2 * x[-1:] - x[-2:-1]])
            p0, p1, p2, p3 = x[i], x[i + 1], x[i + 2], x[i + 3]
            return p1 + 0.5 * a * ((p2 - p0) + a * ((2 * p0 - 5 * p1 + 4 * p2 - p3) + a * (3 * (p1 - p2) + p3 - p0)))

        rot = curve(q, a[:, None, None])
        root = curve(self.root_translation, a[:, None])
        k = np.round(u).astype(int)
        whole = np.abs(u - k) < 1e-12
        rot[whole], root[whole] = self.rotations[k[whole]], self.root_translation[k[whole]]
        return MotionClip(rot, root, self.fps if fps is None else fps)

    def at_rate(self, fps: float) -> "MotionClip":
        """The motion as it should be shown at another frame rate: `downsample` going down, the smooth
        curve through every frame (`sample_smooth`) going up."""
        n_out = self._frames_at(fps)
        if abs(fps - self.fps) < 1e-9:
            return self
        if fps < self.fps:
            return self.downsample(fps)
        return self.sample_smooth(np.arange(n_out) * (self.fps / fps), fps)

    def downsample(self, fps: float, sigma: float = DOWNSAMPLE_SIGMA) -> "MotionClip":
        """The same motion at a lower frame rate, every new frame made alike.

        `resample` reads each new frame at a point of the source: from 30 to 20 fps every other new
        frame is a source frame and the one between is halfway between two, cut across every curve.
        A fast gesture then alternates between the two kinds of frame, a tremor at the new rate.
        Here each new frame is a Gaussian-weighted mean of the source frames around it (`sigma` in new
        frames; rotations sign-matched, averaged and normalised), so all frames see the same filter.
        Above the source rate it is `resample`.
        """
        n_out = self._frames_at(fps)
        if fps >= self.fps - 1e-9 or self.num_frames < 2:
            return self.resample(fps)
        centre = np.arange(n_out) * (self.fps / fps)  # in source frames
        s = sigma * self.fps / fps
        reach = int(np.ceil(3 * s)) + 1
        offs = np.arange(-reach, reach + 1)
        near = np.clip(np.round(centre).astype(int), 0, self.num_frames - 1)
        src = near[:, None] + offs[None]  # (n_out, K)
        valid = (src >= 0) & (src < self.num_frames)
        src = np.clip(src, 0, self.num_frames - 1)
        w = np.exp(-0.5 * ((src - centre[:, None]) / s) ** 2) * valid
        w /= w.sum(axis=1, keepdims=True)
        q = self.rotations[src]  # (n_out, K, J, 4)
        q = q * np.sign((q * self.rotations[near][:, None]).sum(-1, keepdims=True) + 1e-12)
        rot = (w[..., None, None] * q).sum(axis=1)
        root = (w[..., None] * self.root_translation[src]).sum(axis=1)
        return MotionClip(rot, root, fps)

    def mirrored(self) -> "MotionClip":
        """Left and right swapped: the motion reflected through the character's mid-plane (x = 0)."""
        rot = self.rotations[:, MIRROR_INDEX] * np.array([1.0, 1.0, -1.0, -1.0])
        root = self.root_translation * np.array([-1.0, 1.0, 1.0])
        return MotionClip(rot, root, self.fps)

    def reversed(self) -> "MotionClip":
        """Played backwards in time (the same poses and path, last frame first)."""
        return MotionClip(self.rotations[::-1].copy(), self.root_translation[::-1].copy(), self.fps)

    def moved_on_ground(self, yaw: float, shift) -> "MotionClip":
        """Turned by `yaw` radians about the vertical axis through the origin, then shifted by `shift`
        (x, y) over the ground: the whole motion, path and facing, carried rigidly; heights unchanged."""
        turn = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), float(yaw))
        n = self.num_frames
        rot = self.rotations.copy()
        rot[:, 0] = quat.mul(np.broadcast_to(turn, (n, 4)), rot[:, 0])
        root = quat.rotate(np.broadcast_to(turn, (n, 4)), self.root_translation)
        root[:, :2] += np.asarray(shift, np.float64)[:2]
        return MotionClip(rot, root, self.fps)

    def slice(self, start: int, stop: int) -> "MotionClip":
        return MotionClip(self.rotations[start:stop], self.root_translation[start:stop], self.fps)

    @staticmethod
    def rest(num_frames: int = 1, fps: float = 30.0) -> "MotionClip":
        rot = np.tile(quat.IDENTITY, (num_frames, NUM_JOINTS, 1))
        root = np.tile(CANONICAL.offsets[0], (num_frames, 1))
        return MotionClip(rot, root, fps)
