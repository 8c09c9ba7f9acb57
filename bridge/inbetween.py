"""The animator's keys around in-betweening: the keyed poses in a frame range, and writing only the
frames between keys, the animator's own keys kept exactly.
"""
from __future__ import annotations

import bpy
import numpy as np


from .actions import ChannelKeys, _BONE_PATH, _ensure_fcurve, action_fcurves, read_keys
from .armature import armature_alignment
from .clips import _root_carrier, read_clip, scene_fps
from .control_rigs import control_layer


# -- in-betweening: the animator's keys in, in-between keys out ---------------------------------

GENERATED = "GENERATED"
"""Key type of Marionette's in-between keys: drawn apart in the Dope Sheet, replaced by a new run."""

_ROTATIONS = ("rotation_quaternion", "rotation_euler", "rotation_axis_angle")


def _animator_keys(keys: dict) -> dict:
    """`read_keys` output without Marionette's own in-between keys (GENERATED)."""
    out = {}
    for k, ck in keys.items():
        mine = np.array([t != GENERATED for t in ck.key_types] if ck.key_types else [True] * len(ck.frames))
        if mine.any():
            out[k] = ChannelKeys(ck.bone, ck.channel, ck.index, ck.frames[mine], ck.values[mine], ck.handle_left[mine],
                                 ck.handle_right[mine], tuple(np.array(ck.interpolation)[mine]),
                                 tuple(np.array(ck.key_types)[mine]) if ck.key_types else ())
    return out


def keyed_poses(obj, action, frame_range: tuple[float, float], scale_root: bool = True):
    """The animator's keyed frames inside `frame_range` as canonical poses (`inbetween.KeyedPoses`),
    and the keys themselves (`read_keys` without earlier in-between keys).

    A joint counts as keyed on a frame when any rotation channel of its bone (on a control rig: of a
    control that follows it) is keyed there; the root when the hip bone's location (or the bone that
    carries its travel, or the torso control's) is. The pose on a keyed frame is the action evaluated
    there, so the keyed channels come in exactly and the rest as the F-curves give them.
    """
    from ..inference.generation.inbetween import InbetweenError, KeyedPoses
    from ..inference.body.skeleton import NUM_JOINTS

    keys = _animator_keys(read_keys(action, obj, frame_range))
    if not keys:
        raise InbetweenError(f"The action '{action.name}' has no keys between frames {frame_range[0]:g} and "
                             f"{frame_range[1]:g}; key some poses there or change the frame range.")
    for k, ck in keys.items():
        if not (np.isfinite(ck.values).all() and np.isfinite(ck.handle_left).all()
                and np.isfinite(ck.handle_right).all()):
            raise InbetweenError(f"The key values of '{k[0] or 'object'}' {k[1]}[{k[2]}] are not numbers (NaN); "
                                 "fix or delete those keys first.")
    align = armature_alignment(obj)
    names = list(align.skeleton.names)
    joint_of = {names[int(m)]: j for j, m in enumerate(align.mapping) if m >= 0}
    root_bones = {names[int(align.mapping[0])]}
    carrier, _ = _root_carrier(obj, align)
    if carrier is not None:
        root_bones.add(carrier)
    layer = control_layer(obj)
    if layer is not None:  # controls stand for the bones they drive
        joint_of = {c: joint_of[r] for c, r, _ in layer.controls if r in joint_of}
        root_bones = {c for c, r, loc in layer.controls if loc and joint_of.get(c) == 0}
    rot_frames: dict[int, set] = {}
    root_frames: set = set()
    for (bone, channel, _), ck in keys.items():
        if channel in _ROTATIONS and bone in joint_of:
            rot_frames.setdefault(joint_of[bone], set()).update(ck.frames.tolist())
        elif channel == "location" and bone in root_bones:
            root_frames.update(ck.frames.tolist())
    if not rot_frames and not root_frames:
        bones = sorted({b for b, _, _ in keys if b})
        raise InbetweenError("The keys in the frame range are only on bones Marionette does not animate "
                             f"({', '.join(bones[:5]) or 'the object'}); key the body's bones (see the Bone Map).")
    frames = np.array(sorted(set().union(*rot_frames.values(), root_frames)), np.float64)
    fps = scene_fps(bpy.context.scene)
    joints = np.zeros((len(frames), NUM_JOINTS), bool)
    for j, fs in rot_frames.items():
        joints[:, j] = np.isin(frames, list(fs))
    root = np.isin(frames, list(root_frames))
    if len(frames) < 2:
        raise InbetweenError(f"In-betweening needs at least two keyed frames inside the frame range; found only "
                             f"frame {frames[0]:g}. Key another pose, or widen the range.")
    poses = read_clip(obj, action, int(frames[0]), len(frames), fps, scale_root=scale_root, frames=frames)
    return KeyedPoses(frames, poses, joints, root), keys


def locked_channels(action, obj) -> list[str]:
    """Data paths of the action's locked F-curves (the animator froze them)."""
    return sorted({f"{fc.data_path}[{fc.array_index}]" for fc in action_fcurves(action, obj) if fc.lock})


def merge_inbetweens(obj, target, source, span: tuple[float, float], fill: np.ndarray) -> int:
    """Key the in-between frames of `target` from the dense `source` action (a clip written by `write_clip`).

    For every channel `source` drives: earlier in-between keys inside `span` are removed, the
    animator's keys (every other key) are left exactly as they are (frame, value,
    interpolation, handle types; hand-set FREE/ALIGNED handles keep their positions), and every frame
    in `fill` where the channel has no animator key gets a GENERATED key. The small miss between the
    model and each animator key (retargeting round trip, rig foot lock) is spread over the frames
    between, so the curve passes through every key without a jump; at the ends of the span, unkeyed
    channels meet their old curve, so the frames outside it join on. Returns the number of keys written.
    """
    a0, a1 = span
    fill = np.asarray(fill, np.float64)
    written = 0
    # group quaternion / Euler channels per bone: signs and turns are matched on the whole rotation
    src = {(fc.data_path, fc.array_index): fc for fc in action_fcurves(source, obj)}
    old = {(fc.data_path, fc.array_index): fc for fc in action_fcurves(target, obj)}
    for (path, index), sfc in src.items():
        m = _BONE_PATH.match(path)
        bone, channel = (m.group(1).replace('\\"', '"'), m.group(2)) if m else ("", path)
        tfc = old.get((path, index))
        mine = _own_keys(tfc, span)
        akf = mine.frames if mine is not None else np.zeros(0)
        anchors = sorted(set(akf.tolist()) | {a0, a1})
        if tfc is not None:
            anchor_val = np.array([_animator_value(mine, f) if f in akf else tfc.evaluate(f) for f in anchors])
        else:
            anchor_val = np.array([sfc.evaluate(f) for f in anchors])
        frames = fill[~np.isin(fill, akf)]
        if not len(frames):
            continue
        s_frames = np.array([sfc.evaluate(f) for f in frames])
        s_anchor = np.array([sfc.evaluate(f) for f in anchors])
        seg = np.clip(np.searchsorted(anchors, frames, side="right") - 1, 0, len(anchors) - 1)
        if channel == "rotation_quaternion":
            sign = np.array([_quat_sign(src, old, path, f, tfc is not None) for f in anchors])
            s_frames, s_anchor = s_frames * sign[seg], s_anchor * sign
        elif channel == "rotation_euler":
            turns = np.round((anchor_val - s_anchor) / (2 * np.pi)) * 2 * np.pi
            s_frames, s_anchor = s_frames + turns[seg], s_anchor + turns
        miss = anchor_val - s_anchor
        values = s_frames + np.interp(frames, anchors, miss)
        if tfc is None:
            group = sfc.group.name if sfc.group is not None else bone or "Object Transforms"
            tfc = _ensure_fcurve(target, obj, path, index, group)
        kp = tfc.keyframe_points
        for i in reversed(range(len(kp))):  # earlier in-betweens inside the span go
            if kp[i].type == GENERATED and a0 <= kp[i].co[0] <= a1:
                kp.remove(kp[i], fast=True)
        n0 = len(kp)
        kp.add(len(frames))
        co = np.empty(2 * len(frames))
        co[0::2], co[1::2] = frames, values
        new = [kp[n0 + i] for i in range(len(frames))]
        for k, (f, v) in zip(new, zip(frames, values)):
            k.co = (f, v)
            k.type = GENERATED
            k.interpolation = "BEZIER"
            k.handle_left_type = k.handle_right_type = "AUTO_CLAMPED"
        tfc.update()
        _restore_handles(tfc, mine)
        written += len(frames)
    return written


def _own_keys(fc, span) -> ChannelKeys | None:
    """The animator's keys (not GENERATED) of one F-curve inside `span`, as they are before the merge."""
    if fc is None:
        return None
    kp = fc.keyframe_points
    keep = [i for i in range(len(kp)) if kp[i].type != GENERATED and span[0] <= kp[i].co[0] <= span[1]]
    if not keep:
        return None
    pick = [kp[i] for i in keep]
    return ChannelKeys("", fc.data_path, fc.array_index, np.array([k.co[0] for k in pick]),
                       np.array([k.co[1] for k in pick]), np.array([tuple(k.handle_left) for k in pick]),
                       np.array([tuple(k.handle_right) for k in pick]), tuple(k.interpolation for k in pick),
                       tuple(k.type for k in pick))


def _animator_value(keys, frame) -> float:
    return float(keys.values[np.flatnonzero(keys.frames == frame)[0]])


def _quat_sign(src, old, path, frame, has_target) -> float:
    """+1 or -1: the sign that brings the source quaternion onto the target's at `frame`."""
    if not has_target:
        return 1.0
    s = np.array([src[(path, i)].evaluate(frame) if (path, i) in src else 0.0 for i in range(4)])
    t = np.array([old[(path, i)].evaluate(frame) if (path, i) in old else s[i] for i in range(4)])
    return -1.0 if float(s @ t) < 0 else 1.0


def _restore_handles(fc, keys) -> None:
    """Hand-set handles (FREE, ALIGNED) of the animator's keys back where the animator put them
    (Blender recomputes automatic handles from the new neighbours, as it does for any key)."""
    if keys is None:
        return
    by_frame = {float(k.co[0]): k for k in fc.keyframe_points}
    for i, f in enumerate(keys.frames):
        k = by_frame.get(float(f))
        if k is None:
            continue
        if k.handle_left_type in ("FREE", "ALIGNED"):
            k.handle_left = tuple(keys.handle_left[i])
        if k.handle_right_type in ("FREE", "ALIGNED"):
            k.handle_right = tuple(keys.handle_right[i])
