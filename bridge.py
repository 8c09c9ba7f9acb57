"""The one place that converts between Blender data and numpy: armatures to `Skeleton`s, and
canonical clips to and from keyframed Actions (legacy actions in 4.2-4.3, slotted from 4.4 on).

Everything here runs on the main thread.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

import bpy
import numpy as np
from mathutils import Euler, Matrix, Quaternion

from .inference import quat
from .inference.motion import MotionClip, MotionError
from .inference.retarget import RIG_MAP_DIR, BoneMap, RestAlignment, RetargetError, detect_map, facing_basis
from .inference.skeleton import CANONICAL

CANONICAL_MAP = BoneMap("Marionette canonical", {n: n for n in CANONICAL.names}, "Z")


# -- armatures ---------------------------------------------------------------------------------

def armature_skeleton(obj: bpy.types.Object) -> tuple["Skeleton", list[str]]:
    """The armature's rest pose as a `Skeleton` (armature space, Z up), with bones parents-first."""
    from .inference.skeleton import Skeleton

    if obj is None or obj.type != "ARMATURE":
        raise RetargetError("Select an armature: the active object is not one.")
    bones = list(obj.data.bones)
    if not bones:
        raise RetargetError(f"Armature '{obj.name}' has no bones.")
    order: list = []
    pending = [b for b in bones if b.parent is None]
    while pending:
        b = pending.pop(0)
        order.append(b)
        pending[0:0] = list(b.children)
    names = [b.name for b in order]
    index = {n: i for i, n in enumerate(names)}
    # Several top-level bones (Rigify's generated rig, game rigs): a virtual root keeps one hierarchy.
    virtual = sum(1 for b in order if b.parent is None) > 1
    all_names = (["__armature__"] if virtual else []) + names
    parents, offsets, rests = [], [], []
    if virtual:
        parents.append(-1)
        offsets.append(np.zeros(3))
        rests.append(quat.IDENTITY)
    shift = 1 if virtual else 0
    for b in order:
        r_b = np.array(b.matrix_local.to_3x3())
        head = np.array(b.head_local)
        if b.parent is None:
            parents.append(0 if virtual else -1)
            offsets.append(head)
            rests.append(quat.from_matrix(r_b))
        else:
            r_p = np.array(b.parent.matrix_local.to_3x3())
            parents.append(index[b.parent.name] + shift)
            offsets.append(r_p.T @ (head - np.array(b.parent.head_local)))
            rests.append(quat.from_matrix(r_p.T @ r_b))
    return Skeleton(tuple(all_names), tuple(parents), np.array(offsets), np.array(rests)), all_names


def armature_basis(obj: bpy.types.Object) -> np.ndarray:
    """Rotation that stands the armature's own space up (Z up), without turning it about Z.

    Imported FBX/glTF rigs often keep Y-up bones inside an object rotated 90 degrees; a character
    that is merely turned in the scene keeps walking the way it faces.
    """
    q = obj.matrix_world.to_quaternion()
    world = quat.normalize(np.array([q.w, q.x, q.y, q.z]))
    up = quat.rotate(quat.conj(world), np.array([0.0, 0.0, 1.0]))
    return quat.between(up, np.array([0.0, 0.0, 1.0]))


def stored_bone_map(obj: bpy.types.Object) -> BoneMap | None:
    """The bone map kept on the armature (detected, then possibly fixed by hand), if it has one."""
    rows = getattr(obj, "marionette_bone_map", None)
    joints = {r.joint: r.bone for r in rows or () if r.bone}
    if not joints:
        return None
    return BoneMap(getattr(obj, "marionette_bone_map_source", "") or "Custom", joints, "Z")


def armature_alignment(obj: bpy.types.Object, bone_map: BoneMap | None = None, stored: bool = True) -> RestAlignment:
    """How the canonical skeleton sits on this armature: the given map, else the one stored on the
    armature (`stored`), else one detected from bone names or, failing that, the skeleton's shape."""
    skeleton, names = armature_skeleton(obj)
    basis = armature_basis(obj)
    if bone_map is None and stored:
        bone_map = stored_bone_map(obj)
    if bone_map is None:
        if set(CANONICAL.names) <= set(names):
            bone_map = CANONICAL_MAP
        else:
            up = quat.rotate(quat.conj(basis), np.array([0.0, 0.0, 1.0]))
            bone_map = detect_map(names, up="Z", skeleton=skeleton, up_vector=up)
    for n in bone_map.joints.values():
        if n not in names:
            raise RetargetError(f"The bone map points at bone '{n}', which armature '{obj.name}' does not have.")
    return RestAlignment.build(skeleton, bone_map, facing_basis(skeleton, bone_map, basis))


# -- control rigs --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ControlLayer:
    """How to animate a rig whose mapped bones are driven by constraints (Rigify's generated rig):
    the map names the driven bones (Rigify's ORG bones); the motion is keyed on the controls."""

    name: str
    controls: tuple[tuple[str, str, bool], ...]
    """(control bone, driven bone it follows, whether its location is keyed)"""
    properties: dict
    """pose bone -> {custom property: value} keyed with the motion (Rigify's IK/FK switches -> FK)"""
    deform: tuple[str, ...]
    """bones keyed with their evaluated pose when the animator asks for keys on the deform bones"""


@lru_cache(maxsize=None)
def _control_layers() -> tuple[ControlLayer, ...]:
    out = []
    for path in sorted(RIG_MAP_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if "controls" in data:
            out.append(ControlLayer(data["name"], tuple((c, r, bool(loc)) for c, r, loc in data["controls"]),
                                    data.get("properties", {}), tuple(data.get("deform", ()))))
    return tuple(out)


def control_layer(obj) -> ControlLayer | None:
    """The control layer of this armature, if it is a control rig Marionette knows (recognised by
    its driven bones, e.g. Rigify's ORG bones; `missing_controls` says whether it can be keyed)."""
    if obj is None or obj.type != "ARMATURE":
        return None
    bones = obj.data.bones
    for layer in _control_layers():
        if all(r in bones for _, r, _ in layer.controls):
            return layer
    return None


def missing_controls(obj, layer: ControlLayer) -> list[str]:
    bones = obj.data.bones
    return [c for c, _, _ in layer.controls if c not in bones] + [b for b in layer.properties if b not in bones]


RIG_TARGETS = ("CONTROLS", "DEFORM")


def _matrix_basis_to_arrays(m) -> tuple[np.ndarray, np.ndarray]:
    loc, rot, _ = m.decompose()
    return np.array([rot.w, rot.x, rot.y, rot.z]), np.array(loc)


def _plain_anchor(obj, name: str, controls: set[str], driven: set[str]) -> str | None:
    """The control this one hangs from through bones with no constraints, drivers or unusual
    rotation inheritance (Rigify: forearm_fk under upper_arm_fk), else None. Its pose then follows from the
    anchor's by plain parenting, without asking Blender to evaluate the rig in between.
    `driven`: names of bones with drivers."""
    pose = obj.pose.bones

    def plain(bone):
        # scale inheritance does not matter: every pose placed here has unit scale
        return (not pose[bone.name].constraints and bone.name not in driven and bone.use_inherit_rotation
                and bone.use_local_location)

    b = obj.data.bones[name]
    if not plain(b):
        return None
    p = b.parent
    while p is not None:
        if p.name in controls:
            return p.name
        if not plain(p):
            return None
        p = p.parent
    return None


def _control_levels(obj, names: list[str]) -> tuple[list[list[str]], dict[str, str]]:
    """Controls grouped so that each group only depends (through parents and constraint targets on
    this armature) on controls of earlier groups: one depsgraph update per group and frame. Controls
    with a plain anchor (see `_plain_anchor`) join their anchor's group and are returned as
    {control: anchor}."""
    pose = obj.pose.bones
    wanted = set(names)
    ad = obj.animation_data
    driven = {fc.data_path.split('"')[1] for fc in ad.drivers if fc.data_path.startswith("pose.bones")} if ad else set()
    anchors = {n: a for n in names if (a := _plain_anchor(obj, n, wanted, driven)) is not None}

    def direct(name):
        pb = pose[name]
        out = [pb.parent.name] if pb.parent else []
        for c in pb.constraints:
            if getattr(c, "target", None) == obj and getattr(c, "subtarget", ""):
                out.append(c.subtarget)
        return out

    level: dict[str, int] = {}

    def control_deps(name):
        found, stack, seen = set(), direct(name), set()
        while stack:
            b = stack.pop()
            if b in seen or b not in pose:
                continue
            seen.add(b)
            if b in wanted and b != name:
                found.add(b)
            else:
                stack.extend(direct(b))
        return found

    deps = {n: control_deps(n) for n in names}

    def depth(n, visiting=()):
        if n not in level:
            if n in visiting:
                return 0
            if n in anchors:
                level[n] = depth(anchors[n], visiting + (n,))
            else:
                level[n] = 1 + max((depth(d, visiting + (n,)) for d in deps[n]), default=-1)
        return level[n]

    for n in names:
        depth(n)
    groups: list[list[str]] = [[] for _ in range(max(level.values()) + 1)]
    for n in names:
        groups[level[n]].append(n)
    # within a group, anchors before the controls that hang from them
    for g in groups:
        g.sort(key=lambda n: _anchor_depth(n, anchors))
    return [g for g in groups if g], anchors


def _anchor_depth(n: str, anchors: dict[str, str]) -> int:
    d = 0
    while n in anchors:
        n, d = anchors[n], d + 1
    return d


def _pose_matrices(skeleton, rotations, translations, index: list[int]) -> np.ndarray:
    """(T, len(index), 4, 4) armature-space pose matrices of some skeleton joints (Blender bones)."""
    ws, ps = skeleton.forward_kinematics(rotations, translations)
    T = ws.shape[0]
    out = np.zeros((T, len(index), 4, 4))
    out[..., :3, :3] = quat.to_matrix(ws[:, index])
    out[..., :3, 3] = ps[:, index]
    out[..., 3, 3] = 1.0
    return out


def _write_controls(obj, layer: ControlLayer, align, rotations, translations, name, frame_start,
                    object_location, deform: bool):
    """Key the control layer so the driven bones take the retargeted pose: for every frame each
    control is placed (pose-space matrix) where its driven bone's motion carries it, group by group."""
    names = list(align.skeleton.names)
    controls = [c for c, _, _ in layer.controls]
    refs = [names.index(r) for _, r, _ in layer.controls]
    rest = {b.name: np.array(b.matrix_local) for b in obj.data.bones}
    pose_ref = _pose_matrices(align.skeleton, rotations, translations, refs)
    attach = np.stack([np.linalg.inv(rest[r]) @ rest[c] for c, r, _ in layer.controls])
    targets = pose_ref @ attach  # (T, C, 4, 4)
    T = targets.shape[0]
    groups, anchors = _control_levels(obj, controls)
    col = {c: i for i, c in enumerate(controls)}
    # a control hanging plainly from another one: basis = (anchor pose . anchor rest^-1 . rest)^-1 . pose
    plain_basis = {c: np.linalg.inv(targets[:, col[a]] @ (np.linalg.inv(rest[a]) @ rest[c])) @ targets[:, col[c]]
                   for c, a in anchors.items()}
    pose = obj.pose.bones
    baked = [b for b in layer.deform if b in pose] if deform else []

    rot_keys = {c: np.empty((T, 4)) for c in controls + baked}
    loc_keys = {c: np.empty((T, 3)) for c in controls + baked}
    # Work on a copy of the rig object (constraints and drivers follow it to the copy): the animator's
    # pose and properties stay untouched, and meshes bound to the rig are not re-evaluated every step.
    work = obj.copy()
    bpy.context.scene.collection.objects.link(work)
    try:
        if work.animation_data is not None:
            work.animation_data.action = None
        wpose = work.pose.bones
        for b, props in layer.properties.items():
            for k, v in props.items():
                wpose[b][k] = v
        identity = Matrix.Identity(4)
        for pb in wpose:
            pb.matrix_basis = identity
        view_layer = bpy.context.view_layer
        view_layer.update()
        for t in range(T):
            for group in groups:
                for c in group:
                    if c in plain_basis:
                        wpose[c].matrix_basis = Matrix(plain_basis[c][t].tolist())
                    else:
                        wpose[c].matrix = Matrix(targets[t, col[c]].tolist())
                view_layer.update()
            for c in controls:
                rot_keys[c][t], loc_keys[c][t] = _matrix_basis_to_arrays(wpose[c].matrix_basis)
            for b in baked:
                pb = wpose[b]
                m = work.convert_space(pose_bone=pb, matrix=pb.matrix, from_space="POSE", to_space="LOCAL")
                rot_keys[b][t], loc_keys[b][t] = _matrix_basis_to_arrays(m)
    finally:
        bpy.data.objects.remove(work)
    action = _new_action(obj, name)
    frames = frame_start + np.arange(T, dtype=np.float64)
    # location keys where the map asks, and where a free control had to move to follow its bone
    # (Rigify's upper FK spine hangs from the hips control)
    size = float(np.ptp(np.stack([r[:3, 3] for r in rest.values()]), axis=0).max())
    moved = {c for c, _, loc in layer.controls if loc} | set(baked)
    moved |= {c for c in controls if not all(pose[c].lock_location) and np.abs(loc_keys[c]).max() > 1e-4 * size}
    for c in controls + baked:
        pb = pose[c]
        _key_rotation(action, obj, pb, frames, rot_keys[c])
        if c in moved:
            path = pb.path_from_id("location")
            for i in range(3):
                _set_keys(_ensure_fcurve(action, obj, path, i, c), frames, loc_keys[c][:, i])
    for b, props in layer.properties.items():
        for k, v in props.items():
            _set_keys(_ensure_fcurve(action, obj, f'pose.bones["{b}"]["{k}"]', 0, b), frames, np.full(T, float(v)))
    if object_location is not None:
        for i in range(3):
            _set_keys(_ensure_fcurve(action, obj, "location", i, "Object Transforms"), frames, object_location[:, i])
    return action


def evaluated_pose(obj, action, bones: list[str], frame_start: int, num_frames: int, frames=None):
    """Armature-space orientations (T, n, 4) and head positions (T, n, 3) of some bones as Blender
    evaluates them (constraints, drivers, IK included) while `action` plays.
    frames: the (possibly fractional) frames to evaluate instead of frame_start .. + num_frames."""
    frames = frame_start + np.arange(num_frames, dtype=np.float64) if frames is None else np.asarray(frames, float)
    num_frames = len(frames)
    scene = bpy.context.scene
    ad = obj.animation_data or obj.animation_data_create()
    previous = (ad.action, getattr(ad, "action_slot", None))
    frame = scene.frame_current
    ws = np.empty((num_frames, len(bones), 4))
    ps = np.empty((num_frames, len(bones), 3))
    try:
        if action is not None:
            ad.action = action
            assign_action_slot(obj, action)
        for t in range(num_frames):
            whole = int(np.floor(frames[t]))
            scene.frame_set(whole, subframe=float(frames[t] - whole))
            for i, b in enumerate(bones):
                m = np.array(obj.pose.bones[b].matrix)
                r = m[:3, :3] / np.linalg.norm(m[:3, :3], axis=0)
                ws[t, i] = quat.from_matrix(r)
                ps[t, i] = m[:3, 3]
    finally:
        ad.action = previous[0]
        if previous[1] is not None and hasattr(ad, "action_slot"):
            ad.action_slot = previous[1]
        scene.frame_set(frame)
    return quat.make_continuous(ws), ps


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


# -- clips on armatures -------------------------------------------------------------------------

def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


ROOT_MOTION = ("HIP", "OBJECT", "IN_PLACE")


def write_clip(
    obj: bpy.types.Object,
    clip: MotionClip,
    name: str,
    frame_start: int,
    fps: float | None = None,
    bone_map: BoneMap | None = None,
    scale_root: bool = True,
    root_motion: str = "HIP",
    foot_lock: bool = True,
    rig_target: str | None = None,
):
    """Retarget a canonical clip onto an armature and key it as a new Action.

    rig_target: on a control rig (Rigify's generated rig), "CONTROLS" keys the FK controls (and
    switches the limbs to FK); "DEFORM" also keys the deform bones with their evaluated pose.
    Default: the armature's own setting (`marionette_rig_target`).

    foot_lock: pin the rig's ankles wherever the clip's feet are planted (different leg proportions
    would otherwise make them slide a little).

    root_motion: "HIP" keys the travel on the hip bone; "OBJECT" keys the travel over the ground
    on the armature object (the hips keep only height and sway); "IN_PLACE" drops the travel.
    """
    if root_motion not in ROOT_MOTION:
        raise MotionError(f"Root motion must be one of {', '.join(ROOT_MOTION)}; got {root_motion!r}.")
    align = armature_alignment(obj, bone_map)
    names = list(align.skeleton.names)
    if fps is not None:
        clip = clip.resample(fps)
    travel = None
    if root_motion != "HIP":
        root = clip.root_translation.copy()
        travel = root[:, :2] - root[0, :2]
        root[:, :2] = root[0, :2]
        clip = MotionClip(clip.rotations, root, clip.fps)
    carrier, note = _root_carrier(obj, align)
    rotations, translations = align.from_canonical(clip, scale_root=scale_root,
                                                   carrier=None if carrier is None else names.index(carrier))
    if foot_lock:
        rotations, translations = align.lock_feet(rotations, translations, clip)
    skeleton = align.skeleton
    keyed = {names[m] for m in align.mapping if m >= 0}
    # Bones between mapped ones (CMU's LHipJoint, a second neck bone) are keyed at rest as well: the
    # retargeting assumes them there, and unkeyed they would keep a pose left by the previous action.
    for m in list(keyed):
        p = skeleton.parents[names.index(m)]
        while p >= 0 and names[p] not in keyed and names[p] in obj.pose.bones:
            keyed.add(names[p])
            p = skeleton.parents[p]
    moved = {names[b] for b in align.moved_bones()}
    if carrier is not None:
        # the carrier and the bones down to the pelvis: rest rotations, the carrier's location keyed
        moved = (moved - {names[int(align.mapping[0])]}) | {carrier}
        b = obj.data.bones[names[int(align.mapping[0])]]
        while b is not None and b.name != carrier:
            b = b.parent
            keyed.add(b.name)
    object_path = None
    if root_motion == "OBJECT":
        # canonical metres -> armature units (leg-length scale) -> world, added to where the object stands
        k = align.scale if scale_root else 1.0
        d = np.zeros((clip.num_frames, 3))
        d[:, :2] = travel
        d = quat.rotate(np.broadcast_to(quat.conj(align.basis), (clip.num_frames, 4)), d) / k
        m3 = np.array(obj.matrix_world.to_3x3())
        object_path = np.array(obj.location) + d @ m3.T
    layer = control_layer(obj)
    if layer is not None:
        missing = missing_controls(obj, layer)
        if missing:
            raise RetargetError(f"'{obj.name}' looks like a {layer.name}, but it lacks the control bone(s) "
                                f"{', '.join(missing[:5])}: Marionette keys that rig on its controls. "
                                "Regenerate the rig, or animate its metarig.")
        target = rig_target or getattr(obj, "marionette_rig_target", "CONTROLS")
        if target not in RIG_TARGETS:
            raise MotionError(f"Rig target must be one of {', '.join(RIG_TARGETS)}; got {target!r}.")
        return _write_controls(obj, layer, align, rotations, translations, name, frame_start, object_path,
                               deform=target == "DEFORM")
    action = write_action(obj, name, rotations, translations, skeleton, names, frame_start, keyed, moved,
                          object_location=object_path)
    if note:
        action["marionette_note"] = note
    return action


def _root_carrier(obj, align) -> tuple[str | None, str]:
    """For a hip bone connected to its parent (Blender's BVH importer connects it under a root bone),
    which cannot take location keys: the nearest unconnected ancestor, which carries the travel, and a
    sentence telling the animator so. (None, "") for a hip bone that can move."""
    pelvis = obj.data.bones.get(align.skeleton.names[int(align.mapping[0])])
    if pelvis is None or not pelvis.use_connect or pelvis.parent is None:
        return None, ""
    carrier = pelvis.parent
    while carrier.use_connect and carrier.parent is not None:
        carrier = carrier.parent
    return carrier.name, (f"'{pelvis.name}' is connected to '{pelvis.parent.name}' and cannot move on its own: "
                          f"the motion's travel is keyed on '{carrier.name}'.")


def read_clip(
    obj: bpy.types.Object,
    action,
    frame_start: int,
    num_frames: int,
    fps: float,
    bone_map: BoneMap | None = None,
    scale_root: bool = True,
    frames=None,
) -> MotionClip:
    """Read an Action on an armature back into a canonical clip (at `frames`, possibly fractional,
    instead of frame_start .. + num_frames when given)."""
    if frames is not None:
        num_frames = len(frames)
    if num_frames <= 0:
        raise MotionError("There are no frames to read.")
    align = armature_alignment(obj, bone_map)
    if control_layer(obj) is not None:
        # the mapped bones follow controls through constraints: read them as Blender evaluates them
        names = list(align.skeleton.names)
        mapped = [int(m) for m in align.mapping if m >= 0]
        ws = np.tile(quat.IDENTITY, (num_frames, len(names), 1))
        ps = np.zeros((num_frames, len(names), 3))
        ws[:, mapped], ps[:, mapped] = evaluated_pose(obj, action, [names[m] for m in mapped], frame_start, num_frames,
                                                      frames)
        return align.posed_to_canonical(ws, ps, fps, scale_root=scale_root)
    rot, trans = read_action(obj, action, align.skeleton, list(align.skeleton.names), frame_start, num_frames, frames)
    return align.to_canonical(rot, trans, fps, scale_root=scale_root)


def create_canonical_armature(context, name: str = "Marionette") -> bpy.types.Object:
    """An armature with the canonical skeleton's bones (T-pose), at the 3D cursor."""
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    context.collection.objects.link(obj)
    obj.location = context.scene.cursor.location
    view_layer = context.view_layer
    for o in view_layer.objects:
        o.select_set(False)
    view_layer.objects.active = obj
    obj.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    _, pos = CANONICAL.rest_pose()
    ebones = {}
    for j, n in enumerate(CANONICAL.names):
        eb = arm.edit_bones.new(n)
        kids = CANONICAL.children(j)
        head = pos[j]
        if len(kids) == 1:
            tail = pos[kids[0]]
        elif n == "pelvis":
            tail = head + np.array([0.0, 0.0, 0.1])
        elif n == "spine3":
            tail = pos[CANONICAL.index("neck")]
        elif n == "head":
            tail = head + np.array([0.0, 0.0, 0.15])
        elif n.endswith("wrist"):
            tail = head + np.array([0.08 * np.sign(head[0]), 0.0, 0.0])
        elif n.endswith("foot"):
            tail = head + np.array([0.0, -0.06, 0.0])
        else:
            tail = head + np.array([0.0, 0.0, 0.1])
        eb.head = head.tolist()
        eb.tail = tail.tolist()
        eb.roll = 0.0
        p = CANONICAL.parents[j]
        if p >= 0:
            eb.parent = ebones[CANONICAL.names[p]]
        ebones[n] = eb
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


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
    from .inference.inbetween import InbetweenError, KeyedPoses
    from .inference.skeleton import NUM_JOINTS

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
