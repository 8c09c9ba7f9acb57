"""Reading and writing BVH files of any joint hierarchy, with each joint's own channel order.

Euler angles are converted with scipy's `Rotation` (intrinsic, in the order the channels are
listed). Position channels, where a joint has them, are its local translation (they replace the
offset), which is how Blender, MotionBuilder and the CMU conversions write them.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from . import quat
from .motion import MotionError
from .skeleton import Skeleton

_ROT = {"Xrotation": "X", "Yrotation": "Y", "Zrotation": "Z"}
_POS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}


@dataclass(frozen=True)
class BvhMotion:
    """The contents of a BVH file: a skeleton, its channels and per-frame local transforms."""

    skeleton: Skeleton
    channels: tuple[tuple[str, ...], ...]
    """Channel names of each joint, in file order."""
    end_sites: tuple[np.ndarray | None, ...] = field(repr=False)
    """Offset of each joint's End Site, None where it has none."""
    rotations: np.ndarray = field(repr=False)
    """(T, J, 4) local rotations (w, x, y, z)."""
    translations: np.ndarray = field(repr=False)
    """(T, J, 3) local translations (the offsets, or the position channels where present)."""
    frame_time: float
    """Seconds per frame, as declared (some files declare the wrong rate; see `with_fps`)."""

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]

    def with_fps(self, fps: float) -> "BvhMotion":
        return BvhMotion(self.skeleton, self.channels, self.end_sites, self.rotations, self.translations, 1.0 / fps)

    def slice(self, start: int, stop: int | None = None) -> "BvhMotion":
        rot = self.rotations[start:stop]
        if rot.shape[0] == 0:
            raise MotionError("The selected frame range is empty.")
        return BvhMotion(
            self.skeleton, self.channels, self.end_sites, rot, self.translations[start:stop], self.frame_time
        )

    def forward_kinematics(self) -> tuple[np.ndarray, np.ndarray]:
        return self.skeleton.forward_kinematics(self.rotations, self.translations)

    def with_end_sites(self) -> tuple[Skeleton, np.ndarray, np.ndarray]:
        """Skeleton, rotations and translations with every End Site as a joint "<parent>_end".

        Some files end a limb at an End Site (Daz CMU feet have no toe joint), which still tells
        which way the foot points.
        """
        sk = self.skeleton
        names, parents, offsets = list(sk.names), list(sk.parents), list(sk.offsets)
        for j, site in enumerate(self.end_sites):
            if site is not None and f"{sk.names[j]}_end" not in names:
                names.append(f"{sk.names[j]}_end")
                parents.append(j)
                offsets.append(site)
        extra = len(names) - len(sk)
        T = self.num_frames
        rot = np.concatenate([self.rotations, np.tile(quat.IDENTITY, (T, extra, 1))], axis=1)
        trans = np.concatenate([self.translations, np.tile(np.array(offsets[len(sk):]).reshape(extra, 3), (T, 1, 1))], axis=1)
        return Skeleton(tuple(names), tuple(parents), np.array(offsets)), rot, trans


def _rotation_order(channels: tuple[str, ...]) -> str:
    return "".join(_ROT[c] for c in channels if c in _ROT)


class _Tokens:
    def __init__(self, text: str, path: str):
        self.tokens = text.split()
        self.i = 0
        self.path = path

    def next(self) -> str:
        if self.i >= len(self.tokens):
            raise MotionError(f"{self.path}: the file ends in the middle of the skeleton; it may be truncated.")
        t = self.tokens[self.i]
        self.i += 1
        return t

    def expect(self, word: str) -> None:
        t = self.next()
        if t != word:
            raise MotionError(f"{self.path}: expected '{word}' but found '{t}'; this is not a valid BVH file.")

    def number(self) -> float:
        t = self.next()
        try:
            v = float(t)
        except ValueError:
            raise MotionError(f"{self.path}: expected a number but found '{t}'.") from None
        if not math.isfinite(v):
            raise MotionError(f"{self.path}: the skeleton contains a non-finite number ('{t}').")
        return v


def read_bvh(path: str | os.PathLike, fps: float | None = None) -> BvhMotion:
    """Read a BVH file. `fps` overrides the declared frame time (CMU conversions often declare it wrong)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MotionError(f"BVH file not found: {path}")
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise MotionError(f"{path}: not a text file; is it really a BVH file?") from None
    return parse_bvh(text, path, fps)


def parse_bvh(text: str, path: str = "<bvh>", fps: float | None = None) -> BvhMotion:
    head, sep, motion_text = text.partition("MOTION")
    if "HIERARCHY" not in head:
        raise MotionError(f"{path}: no HIERARCHY section; this is not a BVH file.")
    if not sep:
        raise MotionError(f"{path}: the file ends before its MOTION section; it may be truncated.")
    tok = _Tokens(head[head.index("HIERARCHY") + len("HIERARCHY"):], path)

    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end_sites: list[np.ndarray | None] = []

    def parse_joint(parent: int) -> None:
        name = tok.next()
        if name in names:
            raise MotionError(f"{path}: joint name '{name}' appears twice.")
        j = len(names)
        names.append(name)
        parents.append(parent)
        end_sites.append(None)
        tok.expect("{")
        tok.expect("OFFSET")
        offsets.append([tok.number(), tok.number(), tok.number()])
        chans: tuple[str, ...] = ()
        while True:
            t = tok.next()
            if t == "CHANNELS":
                n = int(tok.number())
                chans = tuple(tok.next() for _ in range(n))
                unknown = [c for c in chans if c not in _ROT and c not in _POS]
                if unknown:
                    raise MotionError(f"{path}: joint '{name}' has unknown channels {unknown}.")
            elif t == "JOINT":
                if len(channels) <= j:
                    channels.append(chans)
                parse_joint(j)
            elif t == "End":
                tok.expect("Site")
                tok.expect("{")
                tok.expect("OFFSET")
                end_sites[j] = np.array([tok.number(), tok.number(), tok.number()])
                tok.expect("}")
            elif t == "}":
                break
            else:
                raise MotionError(f"{path}: unexpected '{t}' in joint '{name}'.")
        if len(channels) <= j:
            channels.append(chans)

    tok.expect("ROOT")
    parse_joint(-1)
    # Joints were appended depth-first, so channels are in the same order as names.
    skeleton = Skeleton(tuple(names), tuple(parents), np.array(offsets))

    m = re.search(r"Frames:\s*(\S+)", motion_text)
    ft = re.search(r"Frame\s+Time:\s*(\S+)", motion_text)
    if not m or not ft:
        raise MotionError(f"{path}: the MOTION section has no 'Frames:' or 'Frame Time:' line.")
    try:
        n_frames = int(m.group(1))
        frame_time = float(ft.group(1))
    except ValueError:
        raise MotionError(f"{path}: cannot read the frame count or frame time.") from None
    if n_frames <= 0:
        raise MotionError(f"{path}: the file has no frames of motion.")
    if fps is not None:
        frame_time = 1.0 / fps
    if not (math.isfinite(frame_time) and frame_time > 0):
        raise MotionError(f"{path}: invalid frame time {ft.group(1)}; pass the frame rate explicitly.")

    data_text = motion_text[ft.end():]
    try:
        values = np.array(data_text.split(), dtype=np.float64)
    except ValueError:
        raise MotionError(f"{path}: the motion data contains something that is not a number.") from None
    n_chan = sum(len(c) for c in channels)
    if n_chan == 0:
        raise MotionError(f"{path}: the skeleton has no animation channels.")
    if values.size < n_frames * n_chan:
        got = values.size // n_chan
        raise MotionError(f"{path}: declares {n_frames} frames but holds only {got}; the file may be truncated.")
    values = values[: n_frames * n_chan].reshape(n_frames, n_chan)
    if not np.isfinite(values).all():
        raise MotionError(f"{path}: the motion data contains NaN or infinite values.")

    J = len(names)
    rotations = np.tile(quat.IDENTITY, (n_frames, J, 1))
    translations = np.tile(skeleton.offsets, (n_frames, 1, 1))
    col = 0
    for j, chans in enumerate(channels):
        block = values[:, col : col + len(chans)]
        col += len(chans)
        rot_cols = [i for i, c in enumerate(chans) if c in _ROT]
        if rot_cols:
            rotations[:, j] = quat.from_euler(block[:, rot_cols], _rotation_order(chans))
        for i, c in enumerate(chans):
            if c in _POS:
                translations[:, j, _POS[c]] = block[:, i]
    return BvhMotion(skeleton, tuple(channels), tuple(end_sites), rotations, translations, frame_time)


def write_bvh(path: str | os.PathLike, motion: BvhMotion, precision: int = 6) -> None:
    """Write a BVH file; channel orders and End Sites are kept as they are in `motion`."""
    sk = motion.skeleton
    fmt = f"{{:.{precision}f}}"
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        ind = "\t" * depth
        kind = "ROOT" if sk.parents[j] < 0 else "JOINT"
        lines.append(f"{ind}{kind} {sk.names[j]}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}\tOFFSET " + " ".join(fmt.format(v) for v in sk.offsets[j]))
        lines.append(f"{ind}\tCHANNELS {len(motion.channels[j])} " + " ".join(motion.channels[j]))
        for c in sk.children(j):
            emit(c, depth + 1)
        if motion.end_sites[j] is not None:
            lines.append(f"{ind}\tEnd Site")
            lines.append(f"{ind}\t{{")
            lines.append(f"{ind}\t\tOFFSET " + " ".join(fmt.format(v) for v in motion.end_sites[j]))
            lines.append(f"{ind}\t}}")
        lines.append(f"{ind}}}")

    emit(0, 0)
    # the MOTION columns follow the hierarchy's depth-first order, whatever the skeleton's joint order
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in sk.children(j):
            visit(c)

    visit(0)
    lines.append("MOTION")
    lines.append(f"Frames: {motion.num_frames}")
    lines.append(f"Frame Time: {motion.frame_time:.8f}")

    cols = []
    for j in order:
        chans = motion.channels[j]
        rot_order = _rotation_order(chans)
        euler = quat.to_euler(motion.rotations[:, j], rot_order) if rot_order else None
        r = 0
        for c in chans:
            if c in _ROT:
                cols.append(euler[:, r])
                r += 1
            else:
                cols.append(motion.translations[:, j, _POS[c]])
    table = np.stack(cols, axis=1) if cols else np.zeros((motion.num_frames, 0))
    line_fmt = " ".join([fmt] * table.shape[1])
    lines.extend(line_fmt.format(*row) for row in table)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
