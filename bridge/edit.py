"""The bridge's part for body-part edits: which of a rig's channels play which canonical joints, and
splicing regenerated channels into a copy of an action inside a frame range, leaving every other
channel, and every frame outside the range, exactly as it was.
"""
from __future__ import annotations

import numpy as np

import bpy

from .actions import _BONE_PATH, _ensure_fcurve, action_fcurves, key_range, selected_key_range  # noqa: F401
from .armature import armature_alignment
from .clips import _root_carrier
from .control_rigs import control_layer

ROTATIONS = ("rotation_quaternion", "rotation_euler", "rotation_axis_angle")


def _parse(path: str) -> tuple[str, str]:
    m = _BONE_PATH.match(path)
    return (m.group(1).replace('\\"', '"'), m.group(2)) if m else ("", path)


class RigChannels:
    """How a rig's keyed bones stand for canonical joints (its bone map, or a control rig's controls)."""

    def __init__(self, obj):
        from ..inference.body.skeleton import JOINT_NAMES

        align = armature_alignment(obj)
        names = list(align.skeleton.names)
        mapped = {names[int(m)]: JOINT_NAMES[j] for j, m in enumerate(align.mapping) if m >= 0}
        pelvis = names[int(align.mapping[0])]
        self.root_bones = {pelvis}
        carrier, _ = _root_carrier(obj, align)
        if carrier is not None:
            self.root_bones.add(carrier)
        self.joint_of: dict[str, str] = dict(mapped)
        layer = control_layer(obj)
        if layer is not None:  # the controls are what is keyed; each stands for the bone it drives
            self.joint_of.update({c: mapped[r] for c, r, _ in layer.controls if r in mapped})
            self.root_bones |= {c for c, r, loc in layer.controls if loc and mapped.get(r) == JOINT_NAMES[0]}

    def bones_of_joint(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for b, j in self.joint_of.items():
            out.setdefault(j, []).append(b)
        return out

    def is_edited(self, bone: str, channel: str, joints: set[str], root: bool) -> bool:
        """Whether an F-curve (bone, channel) plays an edited joint or, for `root`, the root's path."""
        if not bone:
            return channel == "location" and root  # the armature object's travel
        if channel in ROTATIONS:
            return self.joint_of.get(bone) in joints
        if channel == "location":
            if bone in self.root_bones:
                return root
            return self.joint_of.get(bone) in joints
        return False


def selected_bones(obj) -> list[str]:
    """Names of the bones selected in Pose Mode (Blender 4.x keeps selection on the bone, 5.x on the pose bone)."""
    out = []
    for pb in obj.pose.bones:
        sel = getattr(pb, "select", None)
        if sel is None:
            sel = pb.bone.select
        if sel:
            out.append(pb.name)
    return out


def nan_channels(action, obj) -> list[str]:
    """Channels with a key (or handle) that is not a number."""
    out = []
    for fc in action_fcurves(action, obj):
        n = len(fc.keyframe_points)
        for attr in ("co", "handle_left", "handle_right"):
            v = np.zeros(2 * n)
            fc.keyframe_points.foreach_get(attr, v)
            if not np.isfinite(v).all():
                out.append(f"{fc.data_path}[{fc.array_index}]")
                break
    return out


# ------------------------------------------------------------------------------- splicing
def _correct(p0, p1, p2, p3):
    """Blender's correction of a Bezier segment whose handles overlap in time (`correct_bezpart`)."""
    h1, h2 = p0 - p1, p3 - p2
    length, l1, l2 = p3[0] - p0[0], abs(h1[0]), abs(h2[0])
    if l1 + l2 > length > 0:
        fac = length / (l1 + l2)
        p1, p2 = p0 - fac * h1, p3 - fac * h2
    return p1, p2


def _split_at(fc, frame: float):
    """A key at `frame` that leaves the curve's shape unchanged (de Casteljau on the Bezier segment;
    the value there on linear and constant ones); its handles and its neighbours' are frozen (FREE)."""
    kp = fc.keyframe_points
    co = np.array([k.co[0] for k in kp])
    value = fc.evaluate(frame)
    i1 = int(np.searchsorted(co, frame))
    if 0 < i1 < len(kp) and kp[i1 - 1].interpolation == "BEZIER":
        k0, k1 = kp[i1 - 1], kp[i1]
        p0, p3 = np.array(k0.co), np.array(k1.co)
        p1, p2 = _correct(p0, np.array(k0.handle_right), np.array(k1.handle_left), p3)
        lo, hi = 0.0, 1.0
        for _ in range(60):  # time is monotonic on a corrected segment
            u = 0.5 * (lo + hi)
            x = (1 - u) ** 3 * p0[0] + 3 * (1 - u) ** 2 * u * p1[0] + 3 * (1 - u) * u * u * p2[0] + u ** 3 * p3[0]
            lo, hi = (u, hi) if x < frame else (lo, u)
        u = 0.5 * (lo + hi)
        a, b, c = p0 + u * (p1 - p0), p1 + u * (p2 - p1), p2 + u * (p3 - p2)
        d, e = a + u * (b - a), b + u * (c - b)
        f = d + u * (e - d)
        for k in (k0, k1):
            k.handle_left_type = k.handle_right_type = "FREE"
        k0.handle_right, k1.handle_left = tuple(a), tuple(c)
        new = kp.insert(frame, float(f[1]), options={"FAST"})
        new.interpolation = "BEZIER"
        new.handle_left_type = new.handle_right_type = "FREE"
        new.co = (frame, float(f[1]))
        new.handle_left, new.handle_right = tuple(d), tuple(e)
        return new
    prev = kp[i1 - 1] if i1 > 0 else None
    for k in (prev, kp[i1] if i1 < len(kp) else None):
        if k is not None:
            k.handle_left_type = k.handle_right_type = "FREE"
    new = kp.insert(frame, value, options={"FAST"})
    new.co = (frame, value)
    new.interpolation = prev.interpolation if prev is not None else "BEZIER"
    new.handle_left_type = new.handle_right_type = "FREE"
    new.handle_left, new.handle_right = (frame - 1 / 3, value), (frame + 1 / 3, value)
    return new


def _anchor(fc, frame: float):
    """The key at `frame` (made by splitting the curve there if there is none), its handles frozen."""
    for k in fc.keyframe_points:
        if abs(k.co[0] - frame) < 1e-6:
            k.handle_left_type = k.handle_right_type = "FREE"
            return k
    return _split_at(fc, frame)


def splice(fc, frames: np.ndarray, values: np.ndarray, left: float | None, right: float | None,
           hold: float | None = None) -> None:
    """Replace the keys of `fc` between the anchors `left` and `right` (exclusive; None: no anchor on
    that side) by keys at `frames`; the curve outside the anchors keeps its exact shape.
    hold: the value of a channel that had no keys (its pose value), for a new F-curve."""
    kp = fc.keyframe_points
    if len(kp) == 0 and hold is not None:
        for f in (left, right):
            if f is not None:
                k = kp.insert(f, hold, options={"FAST"})
                k.handle_left_type = k.handle_right_type = "FREE"
                k.handle_left, k.handle_right = (f - 1 / 3, hold), (f + 1 / 3, hold)
    anchors = {f: _anchor(fc, f) for f in (left, right) if f is not None and len(kp)}
    lo = left if left is not None else frames[0] - 0.5
    hi = right if right is not None else frames[-1] + 0.5
    for i in reversed(range(len(kp))):
        if lo + 1e-6 < kp[i].co[0] < hi - 1e-6:
            kp.remove(kp[i], fast=True)
    n0 = len(kp)
    kp.add(len(frames))
    for i, (f, v) in enumerate(zip(frames, values)):
        k = kp[n0 + i]
        k.co = (float(f), float(v))
        k.interpolation = "BEZIER"
        k.handle_left_type = k.handle_right_type = "AUTO_CLAMPED"
    fc.update()
    # the anchors' inner handles: a third of the way towards the first/last regenerated key
    by_frame = {round(k.co[0], 6): k for k in fc.keyframe_points}
    if left is not None and round(left, 6) in by_frame:
        k = by_frame[round(left, 6)]
        k.interpolation = "BEZIER"
        k.handle_right = (left + (frames[0] - left) / 3, k.co[1] + (values[0] - k.co[1]) / 3)
    if right is not None and round(right, 6) in by_frame:
        k = by_frame[round(right, 6)]
        k.handle_left = (right - (right - frames[-1]) / 3, k.co[1] - (k.co[1] - values[-1]) / 3)
    fc.update()
    del anchors


def merge_edit(obj, source, regenerated, target, span: tuple[int, int], channels: RigChannels,
               joints: set[str], root: bool) -> int:
    """Splice the edited channels of `regenerated` (an action written by `write_clip` over `span`) into
    `target` (a copy of `source`, or `source` itself) on the whole frames of `span`.

    Channels that play no edited joint are not touched at all. Rotations are matched to the source
    at the range's ends (quaternion sign, whole Euler turns), so the curve does not flip there.
    Returns the number of channels written.
    """
    a, b = span
    first, last = key_range(source, obj)
    left = a - 1 if a - 1 >= first else None
    right = b + 1 if b + 1 <= last else None
    frames = np.arange(a, b + 1, dtype=np.float64)
    old = {(fc.data_path, fc.array_index): fc for fc in action_fcurves(target, obj)}
    by_path: dict[str, list] = {}
    for fc in action_fcurves(regenerated, obj):
        bone, channel = _parse(fc.data_path)
        if channels.is_edited(bone, channel, joints, root):
            by_path.setdefault(fc.data_path, []).append(fc)
    written = 0
    for path, fcs in by_path.items():
        bone, channel = _parse(path)
        vals = {fc.array_index: np.array([fc.evaluate(f) for f in frames]) for fc in fcs}
        ref_frame = left if left is not None else right

        def before(i):  # the source's value at the anchor (or the pose's, for a channel never keyed)
            fc = old.get((path, i))
            if fc is not None and len(fc.keyframe_points):
                return fc.evaluate(ref_frame)
            return _pose_value(obj, bone, channel, i)

        if ref_frame is not None and channel == "rotation_quaternion" and len(vals) == 4:
            q_src = np.array([before(i) for i in range(4)])
            q_new = np.array([vals[i][0 if left is not None else -1] for i in range(4)])
            if float(q_src @ q_new) < 0:
                vals = {i: -v for i, v in vals.items()}
        elif ref_frame is not None and channel == "rotation_euler":
            for i, v in vals.items():
                v += np.round((before(i) - v[0 if left is not None else -1]) / (2 * np.pi)) * 2 * np.pi
        for i, v in vals.items():
            fc = old.get((path, i))
            hold = None
            if fc is None:
                group = bone or "Object Transforms"
                fc = _ensure_fcurve(target, obj, path, i, group)
                hold = _pose_value(obj, bone, channel, i)
            splice(fc, frames, v, left, right, hold)
            written += 1
    return written


def _pose_value(obj, bone: str, channel: str, index: int) -> float:
    """The value a channel that was never keyed plays: its rest value (the object's own location)."""
    if not bone:
        return float(getattr(obj, channel)[index])
    return {"rotation_quaternion": (1.0, 0.0, 0.0, 0.0), "rotation_axis_angle": (0.0, 0.0, 1.0, 0.0),
            "scale": (1.0, 1.0, 1.0)}.get(channel, (0.0, 0.0, 0.0, 0.0))[index]


def carry_rest(obj, source, target, after: int, carry, fps: float, channels: RigChannels, joints: set[str],
               scale_root: bool = True, root_motion: str = "HIP") -> int:
    """Move the keys of `target` after frame `after` on the root's path (and the edited pelvis) with
    a regenerated root path's end (`inference.generation.edit.Carry`, in the canonical frame the
    action is read in), so the motion after an edited range continues from where the new path
    arrives instead of jumping back to the old one.

    The motion after `after` is read from `source` and written twice on the side, as it is and
    carried; each key of an edited channel (`channels.is_edited`) moves by the difference of the two
    at its frame, its handles with it: the keys stay on their frames, their number and
    interpolation as they were, and a channel the carry does not change is not touched.
    Returns the number of channels moved."""
    from .clips import read_clip, write_clip

    first, last = key_range(source, obj)
    lo, hi = int(after) + 1, int(np.floor(last))
    if hi < lo or not carry.moves:
        return 0
    clip = read_clip(obj, source, lo, hi - lo + 1, fps, scale_root=scale_root)
    sides = []
    try:
        for c in (clip, carry.apply(clip)):
            sides.append(write_clip(obj, c, "marionette carry (temporary)", lo, fps=None, scale_root=scale_root,
                                    root_motion=root_motion, foot_lock=False, level_feet=False))
        plain, moved = ({(fc.data_path, fc.array_index): fc for fc in action_fcurves(a, obj)} for a in sides)
        written = 0
        for fc in action_fcurves(target, obj):
            key = (fc.data_path, fc.array_index)
            bone, channel = _parse(fc.data_path)
            if key not in moved or key not in plain or not channels.is_edited(bone, channel, joints, True):
                continue
            kps = [k for k in fc.keyframe_points if k.co[0] > after + 1e-6]
            deltas = []
            for k in kps:
                f = min(max(float(k.co[0]), lo), hi)  # keys past the last whole frame: the last frame's move
                d = moved[key].evaluate(f) - plain[key].evaluate(f)
                if channel == "rotation_euler":
                    d = (d + np.pi) % (2 * np.pi) - np.pi  # the smallest turn, never a whole one
                deltas.append(d)
            if not deltas or max(abs(d) for d in deltas) < 1e-9:
                continue
            for k, d in zip(kps, deltas):
                k.co[1] += d
                k.handle_left[1] += d
                k.handle_right[1] += d
            prev = [k for k in fc.keyframe_points if k.co[0] <= after + 1e-6]
            k = kps[0]
            if prev and abs(k.co[0] - (after + 1)) < 1e-6 and k.handle_left_type == "FREE":
                # the anchor `merge_edit` froze next to the range: its inner handle still points at the
                # last regenerated key, from where the anchor now is
                p0 = max(prev, key=lambda q: q.co[0])
                x = k.handle_left[0]
                k.handle_left = (x, k.co[1] + (p0.co[1] - k.co[1]) * (k.co[0] - x) / max(k.co[0] - p0.co[0], 1e-9))
            fc.update()
            written += 1
        return written
    finally:
        for a in sides:
            bpy.data.actions.remove(a)
