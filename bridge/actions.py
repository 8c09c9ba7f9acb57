"""Actions and their F-curves, the one layer over Blender's two action models (legacy actions in
4.2-4.3, slotted actions from 4.4 on): keys written in each bone's own rotation mode, the
animator's keys read back as data (frames, values, handles), poses read from an action.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Euler, Quaternion

from ..inference.body import quat


# -- actions -----------------------------------------------------------------------------------

def _ensure_fcurve(action, obj, data_path: str, index: int, group: str):
    if hasattr(action, "fcurve_ensure_for_datablock"):  # Blender 4.4+: slotted actions
        return action.fcurve_ensure_for_datablock(obj, data_path, index=index, group_name=group)
    fc = action.fcurves.find(data_path, index=index)
    return fc or action.fcurves.new(data_path, index=index, action_group=group)


def action_fcurves(action, obj=None) -> list:
    """All F-curves of an action for this object's slot (or the first slot), on any Blender version."""
    if getattr(action, "is_action_layered", False) and len(action.layers):
        slot = None
        if obj is not None and obj.animation_data and obj.animation_data.action == action:
            slot = obj.animation_data.action_slot
        if slot is None and len(action.slots):
            slot = action.slots[0]
        out = []
        for layer in action.layers:
            for strip in layer.strips:
                bag = strip.channelbag(slot) if slot is not None else None
                if bag is not None:
                    out.extend(bag.fcurves)
        return out
    return list(getattr(action, "fcurves", []))


@dataclass(frozen=True)
class ChannelKeys:
    """The keys the animator set on one F-curve channel inside a frame range."""

    bone: str
    """Pose bone name; empty for the object's own channels."""
    channel: str
    """location, rotation_quaternion, rotation_euler, rotation_axis_angle or scale."""
    index: int
    """Component (x, y, z, or w, x, y, z)."""
    frames: np.ndarray
    """(K,) keyed frames, ascending."""
    values: np.ndarray
    """(K,) values at those frames."""
    handle_left: np.ndarray
    """(K, 2) left Bezier handles (frame, value)."""
    handle_right: np.ndarray
    """(K, 2) right Bezier handles (frame, value)."""
    interpolation: tuple[str, ...]
    """Each key's interpolation (BEZIER, LINEAR, CONSTANT, ...)."""
    key_types: tuple[str, ...] = ()
    """Each key's type (KEYFRAME, BREAKDOWN, ..., GENERATED for Marionette's in-between keys)."""


_BONE_PATH = re.compile(r'^pose\.bones\["((?:[^"\\]|\\.)*)"\]\.(\w+)$')


def read_keys(action, obj=None, frame_range: tuple[float, float] | None = None) -> dict[tuple[str, str, int], ChannelKeys]:
    """Which frames are keyed, per (bone, channel, index), with values and handles: the animator's keys as
    data, not the evaluated pose. Channels with no key inside `frame_range` (inclusive) are left out."""
    out = {}
    for fc in action_fcurves(action, obj):
        m = _BONE_PATH.match(fc.data_path)
        if m:
            bone, channel = m.group(1).replace('\\"', '"'), m.group(2)
        elif "." not in fc.data_path and "[" not in fc.data_path:
            bone, channel = "", fc.data_path
        else:
            continue
        kp = fc.keyframe_points
        n = len(kp)
        if n == 0:
            continue
        co, hl, hr = (np.zeros(2 * n, np.float64) for _ in range(3))
        kp.foreach_get("co", co)
        kp.foreach_get("handle_left", hl)
        kp.foreach_get("handle_right", hr)
        co, hl, hr = co.reshape(n, 2), hl.reshape(n, 2), hr.reshape(n, 2)
        keep = np.ones(n, bool) if frame_range is None else (co[:, 0] >= frame_range[0]) & (co[:, 0] <= frame_range[1])
        if not keep.any():
            continue
        interp = tuple(kp[i].interpolation for i in np.flatnonzero(keep))
        types = tuple(kp[i].type for i in np.flatnonzero(keep))
        out[(bone, channel, fc.array_index)] = ChannelKeys(bone, channel, fc.array_index, co[keep, 0], co[keep, 1],
                                                           hl[keep], hr[keep], interp, types)
    return out


def _set_keys(fc, frames: np.ndarray, values: np.ndarray) -> None:
    kp = fc.keyframe_points
    kp.add(len(frames))
    co = np.empty(2 * len(frames), dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    kp.foreach_set("co", co)
    fc.update()


def _key_rotation(action, obj, pb, frames: np.ndarray, q: np.ndarray) -> None:
    """Key a pose bone's rotation (quaternions (T, 4), local) in the bone's own rotation mode: an
    Euler bone gets continuous Euler keys, so the animator's earlier Euler-keyed actions, which play
    through the same mode, play exactly as before (switching the bone to quaternions would break them)."""
    q = quat.make_continuous(q)
    q *= np.sign(q[0, 0]) or 1.0  # start on the w >= 0 side: the same pose always gives the same keys
    mode = pb.rotation_mode
    if mode == "QUATERNION":
        path, values = "rotation_quaternion", q
    elif mode == "AXIS_ANGLE":
        angle = 2.0 * np.arctan2(np.linalg.norm(q[:, 1:], axis=1), q[:, 0])
        axis = q[:, 1:] / np.maximum(np.linalg.norm(q[:, 1:], axis=1, keepdims=True), 1e-12)
        axis[np.linalg.norm(q[:, 1:], axis=1) < 1e-12] = (0.0, 1.0, 0.0)
        path, values = "rotation_axis_angle", np.concatenate([angle[:, None], axis], axis=1)
    else:
        values = np.empty((len(q), 3))
        previous = None
        for t, (w, x, y, z) in enumerate(q):
            e = Quaternion((w, x, y, z)).to_euler(mode) if previous is None else \
                Quaternion((w, x, y, z)).to_euler(mode, previous)
            values[t] = e
            previous = e
        path = "rotation_euler"
    data_path = pb.path_from_id(path)
    for i in range(values.shape[1]):
        _set_keys(_ensure_fcurve(action, obj, data_path, i, pb.name), frames, values[:, i])


def _new_action(obj, name: str):
    """A new, empty Action on `obj`; the previous one gets a fake user so it stays in the file untouched."""
    if obj.animation_data is None:
        obj.animation_data_create()
    previous = obj.animation_data.action
    if previous is not None:
        previous.use_fake_user = True
    action = bpy.data.actions.new(name)
    obj.animation_data.action = action
    return action


def write_action(
    obj: bpy.types.Object,
    name: str,
    rotations: np.ndarray,
    translations: np.ndarray,
    skeleton,
    bone_names: list[str],
    frame_start: int,
    keyed_bones: set[str],
    moved_bones: set[str],
    object_location: np.ndarray | None = None,
):
    """Create a new Action on `obj` from local rotations/translations of `skeleton`.

    Rotation keys (in each bone's own rotation mode) for `keyed_bones`, location keys for
    `moved_bones`. The object's previous action is kept in the file (fake user) and plays as before.
    """
    action = _new_action(obj, name)
    T = rotations.shape[0]
    frames = frame_start + np.arange(T, dtype=np.float64)
    rest = skeleton.rest_local_rotations()
    for j, bname in enumerate(bone_names):
        if bname not in keyed_bones and bname not in moved_bones:
            continue
        pb = obj.pose.bones[bname]
        if bname in keyed_bones:
            _key_rotation(action, obj, pb, frames, rotations[:, j])
        if bname in moved_bones:
            # translation = offset + rest_rotation * location (see Skeleton.forward_kinematics)
            loc = quat.rotate(np.broadcast_to(quat.conj(rest[j]), (T, 4)), translations[:, j] - skeleton.offsets[j])
            path = pb.path_from_id("location")
            for i in range(3):
                _set_keys(_ensure_fcurve(action, obj, path, i, bname), frames, loc[:, i])
    if object_location is not None:
        for i in range(3):
            _set_keys(_ensure_fcurve(action, obj, "location", i, "Object Transforms"), frames, object_location[:, i])
    return action


def assign_action_slot(obj, action) -> None:
    """After `obj.animation_data.action = action`: on Blender 4.4+ make sure a slot drives the object."""
    ad = obj.animation_data
    if ad is None or not hasattr(ad, "action_slot") or ad.action_slot is not None:
        return
    for slot in getattr(action, "slots", ()):
        if slot.target_id_type == "OBJECT":
            ad.action_slot = slot
            return


def read_action(obj, action, skeleton, bone_names: list[str], frame_start: int, num_frames: int, frames=None):
    """Local rotations and translations of every bone, sampled at whole frames from an Action
    (or at the given, possibly fractional, `frames`)."""
    frames = frame_start + np.arange(num_frames, dtype=np.float64) if frames is None else np.asarray(frames, float)
    T = len(frames)
    rest = skeleton.rest_local_rotations()
    rot = np.tile(quat.IDENTITY, (T, len(bone_names), 1))
    loc = np.zeros((T, len(bone_names), 3))
    index = {n: j for j, n in enumerate(bone_names)}
    other = {}  # bone -> (mode, (T, 3 or 4)) for Euler and axis-angle keys
    for fc in action_fcurves(action, obj):
        path = fc.data_path
        if not path.startswith('pose.bones["'):
            continue
        bname = path[len('pose.bones["'):path.index('"]')].replace('\\"', '"')
        if bname not in index:
            continue
        values = np.array([fc.evaluate(f) for f in frames])
        if path.endswith("rotation_quaternion"):
            rot[:, index[bname], fc.array_index] = values
        elif path.endswith(".location"):
            loc[:, index[bname], fc.array_index] = values
        elif path.endswith(("rotation_euler", "rotation_axis_angle")) and bname in obj.pose.bones:
            mode = obj.pose.bones[bname].rotation_mode
            if (mode == "AXIS_ANGLE") == path.endswith("rotation_axis_angle") and mode != "QUATERNION":
                arr = other.setdefault(bname, (mode, np.zeros((T, 4 if mode == "AXIS_ANGLE" else 3))))[1]
                arr[:, fc.array_index] = values
    for bname, (mode, arr) in other.items():
        for t in range(T):
            if mode == "AXIS_ANGLE":
                r = Quaternion(arr[t, 1:], arr[t, 0])
            else:
                r = Euler(arr[t], mode).to_quaternion()
            rot[t, index[bname]] = (r.w, r.x, r.y, r.z)
    rot = quat.normalize(rot)
    trans = np.tile(skeleton.offsets, (T, 1, 1)) + quat.rotate(np.broadcast_to(rest, (T,) + rest.shape), loc)
    return rot, trans


def selected_key_range(obj) -> tuple[int, int] | None:
    """First and last frame of the keys selected in the Dope Sheet or Graph Editor on the active action."""
    action = obj.animation_data.action if obj is not None and obj.animation_data else None
    if action is None:
        return None
    frames = [k.co[0] for fc in action_fcurves(action, obj) for k in fc.keyframe_points if k.select_control_point]
    if not frames:
        return None
    return int(np.floor(min(frames))), int(np.ceil(max(frames)))


def key_range(action, obj) -> tuple[float, float]:
    """First and last keyed frame of an action ((0, 0) with no keys)."""
    frames = [k.co[0] for fc in action_fcurves(action, obj) for k in fc.keyframe_points]
    return (float(min(frames)), float(max(frames))) if frames else (0.0, 0.0)
